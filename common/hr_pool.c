#include "hr_pool.h"
#include "hr_assert.h"
#include "hr_err.h"
#include "hr_log.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define THREADS_MAX   64
#define LIMIT_POLL_MS 20 /* a thread held back by max_running looks again this often */

struct hr_pool {
    uv_loop_t *loop;
    hr_pool_opts o;
    uv_async_t async;
    pthread_t *tids;
    int n_threads; /* started */
    /* loop thread only */
    int pending;
    int closing;
    void (*close_cb)(void *);
    void *close_arg;
    uint64_t submitted, rejected;
    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    hr_pool_job *head, *tail;           /* waiting for a thread */
    hr_pool_job *done_head, *done_tail; /* finished, not yet delivered */
    int running, running_max;
    uint64_t completed, canceled, wait_ns_max;
};

static void push(hr_pool_job **head, hr_pool_job **tail, hr_pool_job *j)
{
    j->next_ = NULL;
    if (*tail)
        (*tail)->next_ = j;
    else
        *head = j;
    *tail = j;
}

static void lower_priority(const hr_pool *p)
{
#ifdef SCHED_IDLE
    if (p->o.idle) {
        /* set by the thread itself: the policy is per thread (and inherited by
         * nothing else); the static priority of SCHED_IDLE must be 0 */
        struct sched_param sp = {.sched_priority = 0};
        int rc = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
        if (rc == 0)
            return;
        hr_debug("pool", "%s: SCHED_IDLE refused (%s); lowering the nice value", p->o.name,
                 strerror(rc));
    }
#endif
    if (p->o.nice <= 0)
        return;
    /* Linux: a thread id names just this thread */
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, tid);
    if (cur == -1 && errno)
        return;
    int want = cur + p->o.nice > 19 ? 19 : cur + p->o.nice;
    if (setpriority(PRIO_PROCESS, tid, want) != 0)
        hr_debug("pool", "%s: cannot lower the thread priority: %s", p->o.name, strerror(errno));
}

/* The jobs that may run at once now (under mu). */
static int running_limit(const hr_pool *p)
{
    if (!p->o.max_running)
        return p->o.threads;
    int n = p->o.max_running(p->o.max_running_arg);
    return n < 0 ? 0 : n > p->o.threads ? p->o.threads : n;
}

/* Waits on cv at most ms (under mu). */
static void wait_ms(hr_pool *p, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

static void *thread_main(void *arg)
{
    hr_pool *p = arg;
    lower_priority(p);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        for (;;) {
            if (!p->head && !p->stopping)
                pthread_cond_wait(&p->cv, &p->mu);
            else if (p->head && !p->stopping && p->running >= running_limit(p))
                wait_ms(p, LIMIT_POLL_MS); /* held back: ingest is busy, say */
            else
                break;
        }
        hr_pool_job *j = p->head;
        if (!j)
            break; /* stopping, nothing waits (hr_pool_close moved the waiting ones) */
        p->head = j->next_;
        if (!p->head)
            p->tail = NULL;
        p->running++;
        if (p->running > p->running_max)
            p->running_max = p->running;
        uint64_t waited = uv_hrtime() - j->queued_ns;
        if (waited > p->wait_ns_max)
            p->wait_ns_max = waited;
        pthread_mutex_unlock(&p->mu);

        j->work_(j);

        pthread_mutex_lock(&p->mu);
        p->running--;
        p->completed++;
        j->status_ = 0;
        push(&p->done_head, &p->done_tail, j);
        uv_async_send(&p->async); /* thread-safe; coalesced */
    }
    pthread_mutex_unlock(&p->mu);
    if (p->o.on_thread_exit)
        p->o.on_thread_exit();
    return NULL;
}

static void on_closed(uv_handle_t *h)
{
    hr_pool *p = h->data;
    void (*cb)(void *) = p->close_cb;
    void *arg = p->close_arg;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->tids);
    free(p);
    if (cb)
        cb(arg);
}

static void join_all(hr_pool *p)
{
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->tids[i], NULL);
    p->n_threads = 0;
}

static void on_async(uv_async_t *a)
{
    hr_pool *p = a->data;
    pthread_mutex_lock(&p->mu);
    hr_pool_job *j = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (j) {
        hr_pool_job *next = j->next_;
        p->pending--;
        j->done_(j, j->status_); /* may free j */
        j = next;
    }
    if (p->closing && p->pending == 0 && !uv_is_closing((uv_handle_t *)&p->async)) {
        join_all(p); /* every thread has left its last job: they are exiting */
        uv_close((uv_handle_t *)&p->async, on_closed);
    }
}

int hr_pool_start(uv_loop_t *loop, const hr_pool_opts *o, hr_pool **out)
{
    if (!o || o->threads < 1 || o->threads > THREADS_MAX || o->max_jobs < 1 || o->nice < 0 ||
        o->nice > 19)
        return -EINVAL;
    hr_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->tids = calloc((size_t)o->threads, sizeof(*p->tids));
    if (!p->tids) {
        free(p);
        return -ENOMEM;
    }
    p->loop = loop;
    p->o = *o;
    if (!p->o.name)
        p->o.name = "pool";
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    int rc = uv_async_init(loop, &p->async, on_async);
    if (rc) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p->tids);
        free(p);
        return rc;
    }
    p->async.data = p;
    for (int i = 0; i < o->threads; i++) {
        rc = -pthread_create(&p->tids[i], NULL, thread_main, p);
        if (rc)
            break;
        char name[16];
        snprintf(name, sizeof(name), "%.10s-%d", p->o.name, i);
        pthread_setname_np(p->tids[i], name);
        p->n_threads++;
    }
    if (rc) {
        pthread_mutex_lock(&p->mu);
        p->stopping = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        join_all(p);
        p->closing = 1;
        uv_close((uv_handle_t *)&p->async, on_closed);
        return rc;
    }
    *out = p;
    return 0;
}

int hr_pool_submit(hr_pool *p, hr_pool_job *j, hr_pool_work_fn work, hr_pool_done_fn done)
{
    HR_DEBUG_ASSERT(work && done);
    if (p->closing)
        return HR_ESTATE;
    if (p->pending >= p->o.max_jobs) {
        p->rejected++;
        return -EAGAIN;
    }
    j->work_ = work;
    j->done_ = done;
    j->status_ = 0;
    j->queued_ns = uv_hrtime();
    p->pending++;
    p->submitted++;
    pthread_mutex_lock(&p->mu);
    push(&p->head, &p->tail, j);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void hr_pool_stats_get(hr_pool *p, hr_pool_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->threads = p->o.threads;
    out->max_jobs = p->o.max_jobs;
    out->pending = p->pending;
    out->submitted = p->submitted;
    out->rejected = p->rejected;
    pthread_mutex_lock(&p->mu);
    out->running = p->running;
    out->running_max = p->running_max;
    out->completed = p->completed;
    out->canceled = p->canceled;
    out->wait_ns_max = p->wait_ns_max;
    pthread_mutex_unlock(&p->mu);
}

void hr_pool_close(hr_pool *p, void (*cb)(void *), void *arg)
{
    HR_DEBUG_ASSERT(!p->closing);
    p->closing = 1;
    p->close_cb = cb;
    p->close_arg = arg;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    for (hr_pool_job *j = p->head, *next; j; j = next) {
        next = j->next_;
        j->status_ = -ECANCELED;
        p->canceled++;
        push(&p->done_head, &p->done_tail, j);
    }
    p->head = p->tail = NULL;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    uv_async_send(&p->async); /* delivers the canceled jobs, then finishes the close */
}

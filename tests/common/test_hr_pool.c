/* common/hr_pool: the cap on concurrent work, the bound on pending jobs,
 * completion on the loop thread, cancellation at close, thread priority. */
#include "common/hr_err.h"
#include "common/hr_pool.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

/* A gate every job waits at until the test opens it. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_open;
static atomic_int g_now, g_max, g_ran, g_exits;
static pthread_t g_loop_thread;

typedef struct job {
    hr_pool_job j;
    int ran, done, status, on_loop, nice;
} job;

static void gate_set(int open)
{
    pthread_mutex_lock(&g_mu);
    g_open = open;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

static void work(hr_pool_job *pj)
{
    job *jb = pj->data;
    int now = atomic_fetch_add(&g_now, 1) + 1;
    int max = atomic_load(&g_max);
    while (now > max && !atomic_compare_exchange_weak(&g_max, &max, now))
        ;
    jb->nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    pthread_mutex_lock(&g_mu);
    while (!g_open)
        pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    atomic_fetch_sub(&g_now, 1);
    atomic_fetch_add(&g_ran, 1);
    jb->ran = 1;
}

static void done(hr_pool_job *pj, int status)
{
    job *jb = pj->data;
    jb->done++;
    jb->status = status;
    jb->on_loop = pthread_equal(pthread_self(), g_loop_thread);
}

static void thread_exit(void)
{
    atomic_fetch_add(&g_exits, 1);
}

static int g_closed;
static void closed(void *arg)
{
    g_closed++;
}

/* Runs the loop until cond holds, at most ~5 s. */
#define RUN_UNTIL(loop, cond)                                                                      \
    do {                                                                                           \
        for (int i_ = 0; i_ < 5000 && !(cond); i_++) {                                             \
            uv_run(loop, UV_RUN_NOWAIT);                                                           \
            usleep(1000);                                                                          \
        }                                                                                          \
    } while (0)

static void reset(void)
{
    gate_set(0);
    atomic_store(&g_now, 0);
    atomic_store(&g_max, 0);
    atomic_store(&g_ran, 0);
    atomic_store(&g_exits, 0);
    g_closed = 0;
    g_loop_thread = pthread_self();
}

Test(hr_pool, caps_running_and_pending_and_delivers_on_loop)
{
    uv_loop_t loop;
    hr_pool *p = NULL;
    job jobs[7] = {0};
    reset();
    cr_assert_eq(uv_loop_init(&loop), 0);
    hr_pool_opts o = {
        .name = "test", .threads = 2, .max_jobs = 6, .nice = 5, .on_thread_exit = thread_exit};
    cr_assert_eq(hr_pool_start(&loop, &o, &p), 0);
    for (int i = 0; i < 6; i++) {
        jobs[i].j.data = &jobs[i];
        cr_assert_eq(hr_pool_submit(p, &jobs[i].j, work, done), 0, "job %d", i);
    }
    jobs[6].j.data = &jobs[6];
    cr_expect_eq(hr_pool_submit(p, &jobs[6].j, work, done), -EAGAIN, "the 7th pending is refused");
    hr_pool_stats st;
    RUN_UNTIL(&loop, atomic_load(&g_now) == 2);
    usleep(50000); /* a third thread, if any, would show up now */
    hr_pool_stats_get(p, &st);
    cr_expect_eq(st.running, 2);
    cr_expect_eq(st.pending, 6);
    cr_expect_eq(st.rejected, 1);
    cr_expect_eq(atomic_load(&g_max), 2, "never more than 2 at once");
    gate_set(1);
    RUN_UNTIL(&loop, jobs[0].done && jobs[1].done && jobs[2].done && jobs[3].done && jobs[4].done &&
                         jobs[5].done);
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(jobs[i].done, 1, "job %d done once", i);
        cr_expect_eq(jobs[i].status, 0);
        cr_expect(jobs[i].ran);
        cr_expect(jobs[i].on_loop, "done runs on the loop thread");
    }
    cr_expect_eq(jobs[6].done, 0);
    cr_expect_eq(jobs[6].ran, 0);
    hr_pool_stats_get(p, &st);
    cr_expect_eq(st.pending, 0);
    cr_expect_eq(st.completed, 6);
    cr_expect_eq(st.running_max, 2);
    /* room again once delivered */
    cr_expect_eq(hr_pool_submit(p, &jobs[6].j, work, done), 0);
    RUN_UNTIL(&loop, jobs[6].done);
    cr_expect_eq(jobs[6].status, 0);
    int main_nice = getpriority(PRIO_PROCESS, 0);
    cr_expect_eq(jobs[0].nice, main_nice + 5 > 19 ? 19 : main_nice + 5, "threads run niced");
    hr_pool_close(p, closed, NULL);
    RUN_UNTIL(&loop, g_closed);
    cr_expect_eq(g_closed, 1);
    cr_expect_eq(atomic_load(&g_exits), 2, "on_thread_exit on each thread");
    cr_expect_eq(uv_loop_close(&loop), 0);
}

Test(hr_pool, close_cancels_waiting_jobs)
{
    uv_loop_t loop;
    hr_pool *p = NULL;
    job jobs[3] = {0};
    reset();
    cr_assert_eq(uv_loop_init(&loop), 0);
    hr_pool_opts o = {.name = "test", .threads = 1, .max_jobs = 8};
    cr_assert_eq(hr_pool_start(&loop, &o, &p), 0);
    for (int i = 0; i < 3; i++) {
        jobs[i].j.data = &jobs[i];
        cr_assert_eq(hr_pool_submit(p, &jobs[i].j, work, done), 0);
    }
    RUN_UNTIL(&loop, atomic_load(&g_now) == 1);
    hr_pool_close(p, closed, NULL);
    cr_expect_eq(hr_pool_submit(p, &jobs[0].j, work, done), HR_ESTATE, "closing: refused");
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_expect_eq(jobs[1].done, 1, "waiting jobs are canceled at once");
    cr_expect_eq(jobs[1].status, -ECANCELED);
    cr_expect_eq(g_closed, 0, "the running job holds the close");
    gate_set(1);
    RUN_UNTIL(&loop, g_closed);
    cr_expect_eq(jobs[0].done, 1);
    cr_expect_eq(jobs[0].status, 0);
    cr_expect(jobs[0].ran);
    for (int i = 1; i < 3; i++) {
        cr_expect_eq(jobs[i].done, 1);
        cr_expect_eq(jobs[i].status, -ECANCELED);
        cr_expect_not(jobs[i].ran, "a canceled job never runs");
    }
    cr_expect_eq(g_closed, 1);
    cr_expect_eq(uv_loop_close(&loop), 0);
}

Test(hr_pool, bad_options)
{
    uv_loop_t loop;
    hr_pool *p = NULL;
    cr_assert_eq(uv_loop_init(&loop), 0);
    hr_pool_opts o = {.name = "x", .threads = 0, .max_jobs = 1};
    cr_expect_eq(hr_pool_start(&loop, &o, &p), -EINVAL);
    o.threads = 1;
    o.max_jobs = 0;
    cr_expect_eq(hr_pool_start(&loop, &o, &p), -EINVAL);
    o.max_jobs = 1;
    o.nice = 20;
    cr_expect_eq(hr_pool_start(&loop, &o, &p), -EINVAL);
    cr_expect_null(p);
    cr_expect_eq(uv_loop_close(&loop), 0);
}

static atomic_int g_limit = 2;
static int limit_fn(void *arg)
{
    return atomic_load(&g_limit);
}

/* Records the thread's scheduling policy in jb->nice. */
static void work_policy(hr_pool_job *pj)
{
    job *jb = pj->data;
    int policy;
    struct sched_param sp;
    jb->nice = pthread_getschedparam(pthread_self(), &policy, &sp) == 0 ? policy : -1;
    jb->ran = 1;
}

Test(hr_pool, idle_threads_and_a_running_limit_that_changes)
{
    uv_loop_t loop;
    hr_pool *p = NULL;
    job jobs[4] = {0};
    reset();
    atomic_store(&g_limit, 1);
    cr_assert_eq(uv_loop_init(&loop), 0);
    hr_pool_opts o = {.name = "test",
                      .threads = 3,
                      .max_jobs = 8,
                      .idle = 1,
                      .max_running = limit_fn,
                      .on_thread_exit = thread_exit};
    cr_assert_eq(hr_pool_start(&loop, &o, &p), 0);
    for (int i = 0; i < 4; i++) {
        jobs[i].j.data = &jobs[i];
        cr_assert_eq(hr_pool_submit(p, &jobs[i].j, work, done), 0);
    }
    RUN_UNTIL(&loop, atomic_load(&g_now) == 1);
    usleep(100000); /* a second job, if the limit were ignored, would start now */
    cr_expect_eq(atomic_load(&g_max), 1, "limit 1: one job at a time");
    atomic_store(&g_limit, 3); /* ingest went quiet: the held threads take jobs */
    RUN_UNTIL(&loop, atomic_load(&g_now) == 3);
    cr_expect_eq(atomic_load(&g_now), 3, "limit 3: three at once");
    gate_set(1);
    RUN_UNTIL(&loop, jobs[0].done && jobs[1].done && jobs[2].done && jobs[3].done);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(jobs[i].status, 0);
    /* the policy, seen from inside a job */
    job pj = {0};
    pj.j.data = &pj;
    cr_assert_eq(hr_pool_submit(p, &pj.j, work_policy, done), 0);
    RUN_UNTIL(&loop, pj.done);
    cr_expect_eq(pj.nice, SCHED_IDLE, "threads run under SCHED_IDLE");
    hr_pool_close(p, closed, NULL);
    RUN_UNTIL(&loop, g_closed);
    cr_expect_eq(atomic_load(&g_exits), 3);
    cr_expect_eq(uv_loop_close(&loop), 0);
}

Test(hr_pool, a_running_limit_of_zero_starts_nothing_until_it_rises)
{
    uv_loop_t loop;
    hr_pool *p = NULL;
    job jobs[2] = {0};
    reset();
    gate_set(1);
    atomic_store(&g_limit, 0); /* a duty cycle rests */
    cr_assert_eq(uv_loop_init(&loop), 0);
    hr_pool_opts o = {.name = "test", .threads = 2, .max_jobs = 4, .max_running = limit_fn};
    cr_assert_eq(hr_pool_start(&loop, &o, &p), 0);
    for (int i = 0; i < 2; i++) {
        jobs[i].j.data = &jobs[i];
        cr_assert_eq(hr_pool_submit(p, &jobs[i].j, work, done), 0);
    }
    usleep(150000);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_expect_eq(atomic_load(&g_ran), 0, "limit 0: no job starts");
    atomic_store(&g_limit, 1);
    RUN_UNTIL(&loop, jobs[0].done && jobs[1].done);
    cr_expect_eq(atomic_load(&g_ran), 2, "limit 1: both ran");
    cr_expect_eq(atomic_load(&g_max), 1, "one at a time");
    hr_pool_close(p, closed, NULL);
    RUN_UNTIL(&loop, g_closed);
    cr_expect_eq(uv_loop_close(&loop), 0);
}

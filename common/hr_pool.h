/* A small pool of worker threads for slow CPU-bound work that must not hold
 * libuv's thread pool, which makes ingest durable (write, fsync, rename):
 * password hashing now, signing and rendering later (decision 0013).
 *
 * - Bounded: at most opts.max_jobs jobs are submitted and not yet done
 *   (running + waiting + finished but not yet delivered). hr_pool_submit
 *   beyond that answers -EAGAIN at once, so the caller refuses the work
 *   (HTTP 503 + Retry-After) instead of queueing it without bound.
 * - At most opts.threads jobs run at once; waiting jobs run in FIFO order.
 * - Completions run on the loop thread (uv_async), in completion order.
 * - The threads run at a lower CPU priority (opts.nice, per thread on Linux),
 *   so the loop, Redis and ingest win a contested CPU; with opts.idle they run
 *   under SCHED_IDLE, on CPU time nothing else of the process wants.
 * - opts.max_running may lower the number of jobs running at once while the
 *   pool runs (e.g. while ingest is busy, decision 0019).
 *
 * Everything except the work function runs on the loop thread. The pool owns
 * no job: the caller allocates it (usually inside its own request struct),
 * keeps it alive until done runs, and frees it there or later. */
#ifndef HR_POOL_H
#define HR_POOL_H

#include <stdint.h>
#include <uv.h>

typedef struct hr_pool hr_pool;
typedef struct hr_pool_job hr_pool_job;

/* Runs on a pool thread. It may block (it holds one of the threads). */
typedef void (*hr_pool_work_fn)(hr_pool_job *j);
/* Runs on the loop thread exactly once per accepted job: status 0 after work
 * ran, -ECANCELED when the pool was closed before work started (work never
 * ran). The job may be freed inside. */
typedef void (*hr_pool_done_fn)(hr_pool_job *j, int status);

struct hr_pool_job {
    void *data;         /* the caller's; untouched by the pool */
    uint64_t queued_ns; /* uv_hrtime() at submission (set by hr_pool_submit) */
    /* private */
    hr_pool_work_fn work_;
    hr_pool_done_fn done_;
    hr_pool_job *next_;
    int status_;
};

typedef struct hr_pool_opts {
    const char *name; /* thread names "<name>-<i>" (first 10 bytes) and logs; static storage */
    int threads;      /* 1..64 */
    int max_jobs;     /* >= 1: jobs submitted and not yet done */
    int nice;         /* 0..19 added to the threads' nice value; 0 = as the process */
    int idle;         /* 1: each thread puts itself under SCHED_IDLE (Linux; nice is the
                         fallback when that is refused) */
    /* optional: the most jobs that may run at once now (0..threads; 0: none
     * may start now, e.g. while a duty cycle rests; values out of range are
     * clamped). Called on a pool thread under the pool's
     * lock before it takes a job, so it must be cheap, thread-safe and must
     * not call the pool; a thread over the limit checks again every 20 ms. */
    int (*max_running)(void *arg);
    void *max_running_arg;
    /* optional: runs on each thread just before it exits (hr_pool_close), e.g.
     * to free a per-thread connection (sto_worker_redis_failed) */
    void (*on_thread_exit)(void);
} hr_pool_opts;

/* Counters for /metrics and tests. */
typedef struct hr_pool_stats {
    int threads;
    int max_jobs;
    int pending;     /* submitted and not yet done */
    int running;     /* in a work function now */
    int running_max; /* the most work functions ever running at once */
    uint64_t submitted, rejected, completed, canceled;
    uint64_t wait_ns_max; /* longest time a job waited for a thread */
} hr_pool_stats;

/* Starts the threads. o is copied. 0, -EINVAL (bad options), -ENOMEM, or a
 * negative errno / libuv code (thread or async handle creation). On success
 * free with hr_pool_close. */
int hr_pool_start(uv_loop_t *loop, const hr_pool_opts *o, hr_pool **out);

/* Queues work(j) then done(j, status) on the loop. 0; -EAGAIN when max_jobs
 * are pending (nothing queued, done will not run); HR_ESTATE after
 * hr_pool_close. j must stay valid until done runs. */
int hr_pool_submit(hr_pool *p, hr_pool_job *j, hr_pool_work_fn work, hr_pool_done_fn done);

/* Reads the counters (loop thread). */
void hr_pool_stats_get(hr_pool *p, hr_pool_stats *out);

/* Cancels the waiting jobs (their done runs with -ECANCELED), lets the
 * running ones finish and deliver, joins the threads, closes the handle,
 * frees p, then calls cb(arg) (cb may be NULL). Asynchronous: run the loop. */
void hr_pool_close(hr_pool *p, void (*cb)(void *), void *arg);

#endif

/*
 * Nabla runtime: the thread pool the runtime's kernels split large work over.
 *
 * One pool per process (per copy of the runtime), started at the first parallel call that
 * has work for more than one thread. A parallel call runs its parts on the calling thread and
 * on up to nabla_threads() - 1 workers; the parts write disjoint memory and each computes what
 * a serial call would, in the same order, so results never depend on the thread count.
 *
 * Kernels may be called from many threads at once. The pool serves one call at a time: a call
 * that finds it busy (another caller's, or a part calling back into the runtime) runs its parts
 * on its own thread, in order, so nothing waits on anything but its own work.
 */
#include "nabla_runtime.h"
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define NABLA_MAX_THREADS 64

/* One parallel call: lives on the caller's stack until every worker that joined it has left. */
struct nabla_job {
    void (*task)(void *context, long part);
    void *context;
    long parts;
    long next;    /* the next part to take (atomic) */
    int helpers;  /* workers that may join */
    int joined;   /* workers that joined (under the lock) */
    int active;   /* workers still inside (under the lock) */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_left = PTHREAD_COND_INITIALIZER;
static struct nabla_job *pool_job;         /* under the lock */
static unsigned long pool_generation;      /* under the lock: one more per job */
static int pool_workers;                   /* under the lock: workers started */
static int pool_busy;                      /* atomic: a caller owns the pool */
static int requested_threads;              /* atomic: 0 is the default */

static void run_parts(struct nabla_job *job) {
    for (;;) {
        long part = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
        if (part >= job->parts) return;
        job->task(job->context, part);
    }
}

static void *worker_main(void *unused) {
    unsigned long seen = 0;
    (void)unused;
    pthread_mutex_lock(&pool_lock);
    for (;;) {
        struct nabla_job *job;
        while (pool_job == NULL || pool_generation == seen) pthread_cond_wait(&pool_wake, &pool_lock);
        seen = pool_generation;
        job = pool_job;
        if (job->joined >= job->helpers) continue;
        job->joined++;
        job->active++;
        pthread_mutex_unlock(&pool_lock);
        run_parts(job);
        pthread_mutex_lock(&pool_lock);
        if (--job->active == 0) pthread_cond_broadcast(&pool_left);
    }
    return NULL;
}

static int default_threads(void) {
    const char *text = getenv("NABLA_THREADS");
    long count = 0;
    if (text && *text) {
        char *end = NULL;
        count = strtol(text, &end, 10);
        if (*end != '\0' || count < 1) count = 0;
    }
    if (count == 0) count = sysconf(_SC_NPROCESSORS_ONLN);
    if (count < 1) count = 1;
    return count > NABLA_MAX_THREADS ? NABLA_MAX_THREADS : (int)count;
}

int nabla_threads(void) {
    static int cached;
    int count = __atomic_load_n(&requested_threads, __ATOMIC_RELAXED);
    if (count > 0) return count;
    count = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (count > 0) return count;
    count = default_threads();
    __atomic_store_n(&cached, count, __ATOMIC_RELAXED);
    return count;
}

void nabla_set_threads(int count) {
    if (count > NABLA_MAX_THREADS) count = NABLA_MAX_THREADS;
    __atomic_store_n(&requested_threads, count < 0 ? 0 : count, __ATOMIC_RELAXED);
}

void nabla_parallel(long parts, void (*task)(void *context, long part), void *context) {
    struct nabla_job job;
    int threads = nabla_threads();
    long part;
    if (threads > parts) threads = (int)parts;
    if (threads <= 1 || __atomic_exchange_n(&pool_busy, 1, __ATOMIC_ACQUIRE)) {
        for (part = 0; part < parts; part++) task(context, part);
        return;
    }
    job.task = task;
    job.context = context;
    job.parts = parts;
    job.next = 0;
    job.helpers = threads - 1;
    job.joined = 0;
    job.active = 0;
    pthread_mutex_lock(&pool_lock);
    while (pool_workers < threads - 1) {
        pthread_t id;
        pthread_attr_t attributes;
        int started;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&id, &attributes, worker_main, NULL) == 0;
        pthread_attr_destroy(&attributes);
        if (!started) break;  /* fewer workers: the caller does more of the parts */
        pool_workers++;
    }
    pool_job = &job;
    pool_generation++;
    pthread_cond_broadcast(&pool_wake);
    pthread_mutex_unlock(&pool_lock);
    run_parts(&job);
    pthread_mutex_lock(&pool_lock);
    /* Parts still running belong to workers that joined; none can join after this. */
    pool_job = NULL;
    while (job.active > 0) pthread_cond_wait(&pool_left, &pool_lock);
    pthread_mutex_unlock(&pool_lock);
    __atomic_store_n(&pool_busy, 0, __ATOMIC_RELEASE);
}

/* One nabla_parallel_blocks call: the task and how its range is cut. */
struct nabla_blocks {
    void (*task)(void *context, long begin, long end);
    void *context;
    long begin, end, width, parts;
};

static void run_block(void *context, long part) {
    const struct nabla_blocks *b = (const struct nabla_blocks *)context;
    long first = b->begin + part * b->width;
    b->task(b->context, first, part == b->parts - 1 ? b->end : first + b->width);
}

void nabla_parallel_blocks(long begin, long end, long granule, void (*task)(void *context, long begin, long end), void *context) {
    struct nabla_blocks blocks;
    long count = end - begin, threads = nabla_threads(), width;
    if (count <= 0) return;
    width = count / (2 * threads) / granule * granule;
    if (width < granule) width = granule;
    blocks.task = task;
    blocks.context = context;
    blocks.begin = begin;
    blocks.end = end;
    blocks.width = width;
    blocks.parts = count / width > 0 ? count / width : 1;
    nabla_parallel(blocks.parts, run_block, &blocks);
}

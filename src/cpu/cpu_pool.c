/* The CPU path's threads: each context keeps its own helpers, started on its
 * first parallel op and parked on a condition variable between ops, so an
 * op pays a wake-up (a few microseconds) instead of creating and joining
 * threads (about 36 us each here, a tenth of a 1 M-element op). Contexts
 * share nothing; a context is externally synchronized, so one job runs at a
 * time. A helper that cannot be started leaves its share to the others. */
#include "../internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

typedef struct helper_slot {
    inorm_cpu_pool *pool;
    unsigned index;          /* 1.. ; the caller is 0 */
    unsigned long first_job; /* jobs posted before it started */
} helper_slot;

struct inorm_cpu_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* a job was posted, or quit */
    pthread_cond_t idle;  /* the last helper finished the job */
    pthread_t ids[INORM_CPU_MAX_THREADS];
    helper_slot slots[INORM_CPU_MAX_THREADS];
    unsigned helpers;     /* started */
    unsigned long job;    /* jobs posted */
    unsigned running;     /* helpers not yet done with the current job */
    unsigned participants;
    void (*body)(void *arg, unsigned index, unsigned participants);
    void *arg;
    bool quit;
};

unsigned inorm_cpu_threads_for(size_t items, size_t min_items)
{
    if (items < min_items)
        return 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : cores > INORM_CPU_MAX_THREADS ? INORM_CPU_MAX_THREADS : (unsigned)cores;
}

static void *helper_main(void *p)
{
    helper_slot *slot = p;
    inorm_cpu_pool *pool = slot->pool;
    pthread_mutex_lock(&pool->lock);
    unsigned long seen = slot->first_job;
    for (;;) {
        while (!pool->quit && pool->job == seen)
            pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->quit)
            break;
        seen = pool->job;
        void (*body)(void *, unsigned, unsigned) = pool->body;
        void *arg = pool->arg;
        const unsigned participants = pool->participants;
        pthread_mutex_unlock(&pool->lock);
        if (slot->index < participants)
            body(arg, slot->index, participants);
        pthread_mutex_lock(&pool->lock);
        if (--pool->running == 0)
            pthread_cond_signal(&pool->idle);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* The context's pool, made on first use; NULL without memory for it. */
static inorm_cpu_pool *pool_of(inorm_context *ctx)
{
    if (ctx->cpu_pool)
        return ctx->cpu_pool;
    inorm_cpu_pool *pool = inorm_calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    if (pthread_mutex_init(&pool->lock, NULL) != 0) {
        inorm_free(pool);
        return NULL;
    }
    if (pthread_cond_init(&pool->wake, NULL) != 0) {
        pthread_mutex_destroy(&pool->lock);
        inorm_free(pool);
        return NULL;
    }
    if (pthread_cond_init(&pool->idle, NULL) != 0) {
        pthread_cond_destroy(&pool->wake);
        pthread_mutex_destroy(&pool->lock);
        inorm_free(pool);
        return NULL;
    }
    ctx->cpu_pool = pool;
    return pool;
}

void inorm_cpu_run(inorm_context *ctx, unsigned threads, void (*body)(void *arg, unsigned index, unsigned participants),
                   void *arg)
{
    inorm_cpu_pool *pool = threads > 1 ? pool_of(ctx) : NULL;
    if (!pool) {
        body(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    while (pool->helpers + 1 < threads) {
        helper_slot *slot = &pool->slots[pool->helpers];
        *slot = (helper_slot){ pool, pool->helpers + 1, pool->job };
        if (pthread_create(&pool->ids[pool->helpers], NULL, helper_main, slot) != 0)
            break;
        pool->helpers++;
    }
    pool->participants = pool->helpers + 1 < threads ? pool->helpers + 1 : threads;
    pool->body = body;
    pool->arg = arg;
    pool->running = pool->helpers;
    pool->job++;
    pthread_cond_broadcast(&pool->wake);
    const unsigned participants = pool->participants;
    pthread_mutex_unlock(&pool->lock);

    body(arg, 0, participants);

    pthread_mutex_lock(&pool->lock);
    while (pool->running > 0)
        pthread_cond_wait(&pool->idle, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}

void inorm_cpu_pool_destroy(inorm_context *ctx)
{
    inorm_cpu_pool *pool = ctx->cpu_pool;
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->quit = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->helpers; ++i)
        pthread_join(pool->ids[i], NULL);
    pthread_cond_destroy(&pool->idle);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    inorm_free(pool);
    ctx->cpu_pool = NULL;
}

/* ---------------------------------------------------------------------------
 * Per-pixel work (src/color.c, src/blend.c): one contiguous share per thread.
 * ------------------------------------------------------------------------ */

/* Below this many items the work stays on the calling thread. */
#define PIXELS_PARALLEL_MIN (1u << 14)

typedef struct range_job {
    void (*body)(void *arg, size_t first, size_t last);
    void *arg;
    size_t count;
} range_job;

static void range_share(void *p, unsigned index, unsigned participants)
{
    const range_job *job = p;
    job->body(job->arg, job->count * index / participants, job->count * (index + 1) / participants);
}

void inorm_cpu_for_range(inorm_context *ctx, size_t count, void (*body)(void *arg, size_t first, size_t last),
                         void *arg)
{
    range_job job = { body, arg, count };
    inorm_cpu_run(ctx, inorm_cpu_threads_for(count, PIXELS_PARALLEL_MIN), range_share, &job);
}

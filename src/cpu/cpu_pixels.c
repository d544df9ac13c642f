/* Per-pixel work of the CPU path spread over the cores: the range is cut into
 * one contiguous share per thread, the last share runs on the caller. */
#include "../internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#define MAX_THREADS 16
/* Below this many items the work stays on the calling thread. */
#define PARALLEL_MIN_ITEMS (1u << 14)

typedef struct range_task {
    void (*body)(void *arg, size_t first, size_t last);
    void *arg;
    size_t first, last;
} range_task;

static void *range_entry(void *p)
{
    range_task *task = p;
    task->body(task->arg, task->first, task->last);
    return NULL;
}

void inorm_cpu_for_range(size_t count, void (*body)(void *arg, size_t first, size_t last), void *arg)
{
    long cores = count < PARALLEL_MIN_ITEMS ? 1 : sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = cores < 1 ? 1 : cores > MAX_THREADS ? MAX_THREADS : (unsigned)cores;
    range_task tasks[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    bool started[MAX_THREADS] = { false };
    for (unsigned t = 0; t < threads; ++t)
        tasks[t] = (range_task){ body, arg, count * t / threads, count * (t + 1) / threads };
    for (unsigned t = 0; t + 1 < threads; ++t)
        started[t] = pthread_create(&ids[t], NULL, range_entry, &tasks[t]) == 0;
    body(arg, tasks[threads - 1].first, tasks[threads - 1].last);
    for (unsigned t = 0; t + 1 < threads; ++t) {
        if (started[t])
            pthread_join(ids[t], NULL);
        else  /* no thread: do its share here */
            body(arg, tasks[t].first, tasks[t].last);
    }
}

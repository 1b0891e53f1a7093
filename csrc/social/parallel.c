#define _POSIX_C_SOURCE 200809L
#include "social/parallel.h"

#include <pthread.h>

#include "common/cpus.h"

/* Below this many units of work one thread is faster than starting more. */
#define QODE_SOCIAL_PARALLEL_THRESHOLD 2.0e5
#define QODE_SOCIAL_MAX_WORKERS 16

int qode_social_workers(int requested, double work, size_t n_items)
{
    int workers = requested;
    if (workers <= 0) {
        if (work < QODE_SOCIAL_PARALLEL_THRESHOLD)
            return 1;
        workers = qode_online_cpus();
    }
    if (workers > QODE_SOCIAL_MAX_WORKERS)
        workers = QODE_SOCIAL_MAX_WORKERS;
    if ((size_t)workers > n_items)
        workers = n_items > 0 ? (int)n_items : 1;
    return workers;
}

typedef struct {
    qode_range_fn fn;
    void *ctx;
    size_t begin, end;
    int worker;
} chunk_task;

static void *run_chunk(void *arg)
{
    chunk_task *task = arg;
    task->fn(task->ctx, task->begin, task->end, task->worker);
    return NULL;
}

void qode_social_parallel_for(size_t n_items, int n_workers, qode_range_fn fn, void *ctx)
{
    if (n_workers <= 1 || n_items <= 1) {
        fn(ctx, 0, n_items, 0);
        return;
    }
    if (n_workers > QODE_SOCIAL_MAX_WORKERS)
        n_workers = QODE_SOCIAL_MAX_WORKERS;
    chunk_task tasks[QODE_SOCIAL_MAX_WORKERS];
    pthread_t threads[QODE_SOCIAL_MAX_WORKERS];
    int started[QODE_SOCIAL_MAX_WORKERS] = {0};
    for (int w = 0; w < n_workers; w++) {
        tasks[w].fn = fn;
        tasks[w].ctx = ctx;
        tasks[w].begin = n_items * (size_t)w / (size_t)n_workers;
        tasks[w].end = n_items * (size_t)(w + 1) / (size_t)n_workers;
        tasks[w].worker = w;
    }
    for (int w = 1; w < n_workers; w++)
        started[w] = pthread_create(&threads[w], NULL, run_chunk, &tasks[w]) == 0;
    run_chunk(&tasks[0]);
    for (int w = 1; w < n_workers; w++) {
        if (started[w])
            pthread_join(threads[w], NULL);
        else
            run_chunk(&tasks[w]);
    }
}

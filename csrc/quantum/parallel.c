#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "quantum/parallel.h"

/* Below about this many amplitude updates in total, one thread is faster. */
#define QODE_PARALLEL_MIN_WORK 65536.0
#define QODE_MAX_THREADS 64

int qode_qbatch_threads(int requested, int64_t batch, double work_per_item)
{
    /* small work first: asking the system for its CPU count reads a file,
     * which costs more than simulating a few small circuits */
    if ((double)batch * work_per_item < QODE_PARALLEL_MIN_WORK)
        return 1;
    int n = requested;
    if (n <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus < 1 ? 1 : (cpus > QODE_MAX_THREADS ? QODE_MAX_THREADS : (int)cpus);
    }
    if (n > QODE_MAX_THREADS)
        n = QODE_MAX_THREADS;
    if (n > batch)
        n = batch < 1 ? 1 : (int)batch;
    return n;
}

typedef struct {
    qode_qbatch_fn fn;
    void *ctx;
    int thread;
    int64_t b0, b1;
} chunk;

static void *run_chunk(void *arg)
{
    chunk *c = (chunk *)arg;
    c->fn(c->ctx, c->thread, c->b0, c->b1);
    return NULL;
}

qode_status qode_qbatch_run(qode_qbatch_fn fn, void *ctx, int64_t batch, int n_threads)
{
    if (n_threads <= 1 || batch <= 1) {
        fn(ctx, 0, 0, batch);
        return QODE_OK;
    }
    chunk chunks[QODE_MAX_THREADS];
    pthread_t ids[QODE_MAX_THREADS];
    int started[QODE_MAX_THREADS] = {0};
    for (int t = 0; t < n_threads; t++) {
        chunks[t].fn = fn;
        chunks[t].ctx = ctx;
        chunks[t].thread = t;
        chunks[t].b0 = batch * t / n_threads;
        chunks[t].b1 = batch * (t + 1) / n_threads;
    }
    for (int t = 1; t < n_threads; t++)
        started[t] = pthread_create(&ids[t], NULL, run_chunk, &chunks[t]) == 0;
    run_chunk(&chunks[0]);
    for (int t = 1; t < n_threads; t++) {
        if (started[t])
            pthread_join(ids[t], NULL);
        else
            run_chunk(&chunks[t]);
    }
    return QODE_OK;
}

/* A minimal parallel-for on plain pthreads for the social kernels.
 *
 * The index range [0, n_items) is cut into `n_workers` contiguous chunks;
 * chunk w runs as fn(ctx, begin, end, w) on its own thread (chunk 0 on the
 * calling thread).  Threads are created per call, so callers only ask for
 * more than one worker when a call carries enough work to pay for that
 * (about tens of microseconds per thread). */
#ifndef QODE_SOCIAL_PARALLEL_H
#define QODE_SOCIAL_PARALLEL_H

#include <stddef.h>

typedef void (*qode_range_fn)(void *ctx, size_t begin, size_t end, int worker);

/* Number of workers to use for `work` units of work (roughly one unit per
 * floating-point operation of the pair loops): 1 below the threshold, else
 * min(requested or the online CPU count, 16, n_items). */
int qode_social_workers(int requested, double work, size_t n_items);

/* Runs fn over [0, n_items) with n_workers workers.  If a thread cannot be
 * created its chunk runs on the calling thread instead, so this never
 * fails. */
void qode_social_parallel_for(size_t n_items, int n_workers, qode_range_fn fn, void *ctx);

#endif /* QODE_SOCIAL_PARALLEL_H */

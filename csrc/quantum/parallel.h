/* Splitting a batch of circuits over plain pthreads.
 *
 * The batch is cut into contiguous chunks, one per thread; thread t gets
 * rows [b0, b1).  Threads are only started when the work is large enough to
 * pay for them (see qode_qbatch_threads), and the calling thread always takes
 * the first chunk itself. */
#ifndef QODE_QUANTUM_PARALLEL_H
#define QODE_QUANTUM_PARALLEL_H

#include <stdint.h>

#include "common/status.h"

typedef void (*qode_qbatch_fn)(void *ctx, int thread, int64_t b0, int64_t b1);

/* How many threads to use for `batch` items of `work_per_item` amplitude
 * updates each: 1 below a threshold, otherwise `requested` (0 = the number of
 * online CPUs, at most 64), never more than `batch`. */
int qode_qbatch_threads(int requested, int64_t batch, double work_per_item);

/* Runs fn over [0, batch) on n_threads threads.  Returns QODE_ERR_NO_MEMORY
 * only if no thread could be started at all; otherwise falls back to running
 * the chunks that failed to start on the calling thread. */
qode_status qode_qbatch_run(qode_qbatch_fn fn, void *ctx, int64_t batch, int n_threads);

#endif /* QODE_QUANTUM_PARALLEL_H */

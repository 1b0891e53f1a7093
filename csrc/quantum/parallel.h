/* Splitting a batch of circuits over threads.
 *
 * The batch is cut into a fixed list of contiguous chunks (a few per
 * thread, see qode_qbatch_chunks) that the threads take in turn as they
 * finish, so a thread slowed down by other work on the machine does not hold
 * the others back.  Which rows a chunk holds depends only on the batch size
 * and the thread count, never on timing: a caller that sums per chunk and
 * then over chunks in order gets the same bits on every run.
 *
 * Worker threads are started once and then wait for work (starting a
 * thread costs tens of microseconds, as much as a small batch); the calling
 * thread always works too.  Threads are only used when the work is large
 * enough to pay for them (see qode_qbatch_threads). */
#ifndef QODE_QUANTUM_PARALLEL_H
#define QODE_QUANTUM_PARALLEL_H

#include <stdint.h>

#include "common/status.h"

/* Runs rows [b0, b1) of chunk `chunk`; `thread` (0 .. n_threads - 1) names
 * the per-thread work space to use.  Called once per chunk, each thread
 * usually several times. */
typedef void (*qode_qbatch_fn)(void *ctx, int thread, int64_t chunk, int64_t b0, int64_t b1);

/* How many threads to use for `batch` items of `work_per_item` amplitude
 * updates each: 1 below a threshold, otherwise `requested` (0 = the number of
 * online CPUs, at most 64), never more than `batch`.  An item may be a tile:
 * it updates the amplitudes of all its circuits together, in vectors, in
 * about the time one circuit's take, so its work is one circuit's. */
int qode_qbatch_threads(int requested, int64_t batch, double work_per_item);

/* The number of chunks qode_qbatch_run cuts `batch` into on n_threads. */
int64_t qode_qbatch_chunks(int64_t batch, int n_threads);

/* Runs fn over every chunk of [0, batch) on up to n_threads threads (fewer
 * if workers cannot be started, or if another call is using the workers;
 * the results are the same either way). */
qode_status qode_qbatch_run(qode_qbatch_fn fn, void *ctx, int64_t batch, int n_threads);

#endif /* QODE_QUANTUM_PARALLEL_H */

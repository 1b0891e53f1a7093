/* The public entry points of the batched simulator.
 *
 * Buffers (all contiguous, row-major, batch-major):
 *   data       batch x c->n_data doubles (NULL allowed when n_data == 0)
 *   trainable  c->n_trainable doubles (NULL allowed when 0)
 *   states     batch x 2^n complex numbers of `dtype` (COMPLEX64/COMPLEX128)
 * Every function validates its inputs first and, on failure, writes a
 * sentence into msg[0..msg_len) and returns a non-OK status.  Work is split
 * over the batch with pthreads when it is large (n_threads: 0 = automatic,
 * 1 = single-threaded).  Results do not depend on the number of threads
 * except for the summation order of trainable gradients.
 */
#ifndef QODE_QUANTUM_SIMULATE_H
#define QODE_QUANTUM_SIMULATE_H

#include <stddef.h>
#include <stdint.h>

#include "quantum/circuit.h"

/* Simulates every circuit b of the batch, U_b |0...0>, and writes the
 * read-outs that are requested (non-NULL):
 *   expval  batch x obs->n_obs   <psi_b| O_k |psi_b>
 *   probs   batch x 2^n          |psi_b[i]|^2
 *   states  batch x 2^n complex  psi_b
 *   record  qode_qsim_record_doubles(n, batch) doubles: the forward record
 *           for qode_qsim_adjoint_vjp; *recorded (not NULL with a record) is
 *           set to 1 when it was written, 0 when this circuit keeps none
 * Small circuits (n <= 10) of a batch run QODE_TILE_LANES at a time with
 * vectorised kernels (tiled.h); others one at a time. */
qode_status qode_qsim_forward(const qode_circuit *c, qode_dtype dtype, int64_t batch,
                              const double *data, const double *trainable,
                              const qode_observables *obs, double *expval, double *probs,
                              void *states, double *record, int *recorded, int n_threads,
                              char *msg, size_t msg_len);

/* The forward record: what a forward pass keeps so that the adjoint need not
 * run it again (tiled.h, qode_tile_record_doubles): the product state and
 * U psi of every circuit, 384 bytes per circuit at 4 qubits.  Only the
 * dense mode with a wire-rotation encoding (seed 002's VQC) keeps one, and
 * only when just expectation values are read.  The size a record buffer
 * must have: 0 when no circuit of n_qubits in a batch of `batch` can keep
 * one. */
size_t qode_qsim_record_doubles(int32_t n_qubits, int64_t batch);

/* 1 if qode_qsim_forward / qode_qsim_adjoint_vjp use the tiled path. */
int qode_qsim_uses_tiles(int32_t n_qubits, int64_t batch);

/* How a batch of `batch` circuits of validated circuit c runs when its
 * expectation values of obs (may be NULL) are differentiated
 * (qode_qsim_adjoint_vjp): one at a time, tiled, or tiled in dense mode
 * (tiled_dense.h, which can depend on the trainable values: it needs real
 * matrices in the encoding); -1 when out of memory.  For tests and
 * diagnostics. */
enum { QODE_PATH_ROWS = 0, QODE_PATH_TILES = 1, QODE_PATH_DENSE = 2 };
int qode_qsim_path(const qode_circuit *c, const double *trainable, const qode_observables *obs,
                   int64_t batch);

/* states[b] <- U_b |0...0> for every circuit b (qode_qsim_forward, states only). */
qode_status qode_qsim_run(const qode_circuit *c, qode_dtype dtype, int64_t batch,
                          const double *data, const double *trainable, void *states,
                          int n_threads, char *msg, size_t msg_len);

/* out[b, k] <- <psi_b| O_k |psi_b> (batch x obs->n_obs doubles). */
qode_status qode_qsim_expval(const qode_observables *obs, qode_dtype dtype, int32_t n_qubits,
                             int64_t batch, const void *states, double *out, int n_threads,
                             char *msg, size_t msg_len);

/* out[b, i] <- |psi_b[i]|^2 (batch x 2^n doubles). */
qode_status qode_qsim_probs(qode_dtype dtype, int32_t n_qubits, int64_t batch,
                            const void *states, double *out, int n_threads,
                            char *msg, size_t msg_len);

/* out[b, s] <- basis index of shot s of circuit b (batch x shots).  Each
 * circuit has its own generator derived from (seed, b), so results do not
 * depend on threading. */
qode_status qode_qsim_sample(qode_dtype dtype, int32_t n_qubits, int64_t batch,
                             const void *states, int64_t shots, uint64_t seed, int64_t *out,
                             int n_threads, char *msg, size_t msg_len);

/* Adjoint-method vector-Jacobian product (Jones & Gacon, arXiv:2009.02823).
 * Given the final states of qode_qsim_run (or NULL: then they are recomputed,
 * which the tiled path always does), the forward record of qode_qsim_forward
 * for the same circuit, batch, data, trainable values and observables (or
 * NULL: then the forward pass runs again; a record is used only where that
 * call wrote one) and upstream gradients
 *   grad_expval  batch x obs->n_obs  (dL/d<O_k>; NULL = zero; obs may be NULL)
 *   grad_probs   batch x 2^n         (dL/dp_i;   NULL = zero)
 * writes
 *   grad_data       batch x c->n_data  (overwritten; may be NULL if n_data == 0)
 *   grad_trainable  c->n_trainable     (overwritten, summed over the batch)
 * with one backward sweep per circuit: two work states, no allocation per
 * gate. */
qode_status qode_qsim_adjoint_vjp(const qode_circuit *c, qode_dtype dtype, int64_t batch,
                                  const double *data, const double *trainable,
                                  const void *states, const double *record,
                                  const qode_observables *obs,
                                  const double *grad_expval, const double *grad_probs,
                                  double *grad_data, double *grad_trainable, int n_threads,
                                  char *msg, size_t msg_len);

#endif /* QODE_QUANTUM_SIMULATE_H */

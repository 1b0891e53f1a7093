/* The dense mode of the tiled path: everything after the encoding as one
 * matrix (tiled_dense_plan.c plans it, tiled_dense.c has its tile passes,
 * tiled.c drives them).
 *
 * In a variational circuit, every gate after the data encoding usually has
 * trainable or constant angles, the same in every circuit of the batch.
 * Then each circuit is
 *     psi_b = the product state of the prefix (per circuit, tiled_prefix.h),
 *     phi_b = U psi_b,
 * with U one dim x dim matrix per call (dim = 2^n).  For a few qubits U psi
 * is cheaper than the gates one by one (2 dim^2 multiply-adds per circuit
 * for a real psi, against about 8 dim per fused block), and the adjoint
 * needs no backward sweep per circuit.  With lam_b = M phi_b the seeded
 * lambda (see adjoint.c):
 *     data angles (in the prefix):  from mu_b = Re(U^+ lam_b), by the prefix
 *                                   adjoint, or by a pass per wire when each
 *                                   wire's encoding is one real rotation
 *                                   (sched->rotations, tiled.h),
 *     angles inside U:              2 Re Tr(dU/dt C),  C = sum_b psi_b lam_b^+,
 * and C, summed over the whole batch, goes through one adjoint sweep per
 * call over its dim columns (qode_tile_dense_gradients), whatever the batch.
 *
 * A prefix block is split for this: its segments up to its last data
 * segment stay in the prefix (its "head"), the shared run after that (its
 * "tail") moves into U.  The mode is used when
 *   - every step after the prefix, up to main_end, reads no data,
 *   - every head is real (RY encodings: real rotations and real shared
 *     runs), so psi is real and U psi takes half the work of a complex psi,
 *   - n <= QODE_TILE_DENSE_MAX_QUBITS and U psi costs no more than the
 *     steps it replaces.  (At 6 qubits U, its transpose and the sums of C
 *     take 384 KiB, and the mode measured no faster than the stepwise
 *     path even at 6 layers.)
 *
 * Tried and measured no faster (December 2026): with single-rotation
 * encodings, psi psi^T is a product over the wires of B0 + cos t B1 +
 * sin t B2, so a diagonal read-out psi^T Re(U^+ D U) psi is linear in the
 * 3^d products of the wires' (1, cos t, sin t) (81 at 4 qubits), or
 * bilinear in those of two halves of the wires (9 x 9), and the adjoint
 * needs no state.  That takes about 40% fewer multiply-adds per circuit
 * than U psi and its adjoint; built and tested against the per-circuit
 * path, it ran 10% faster on one thread and no faster on two (4096
 * four-qubit circuits, interleaved A/B), the small products costing more
 * loads and stores per multiply-add than U psi, plus the per-call planning
 * of the forms. */
#ifndef QODE_QUANTUM_TILED_DENSE_H
#define QODE_QUANTUM_TILED_DENSE_H

#include <stddef.h>

#include "quantum/prepare.h"
#include "quantum/tiled.h"

#define QODE_TILE_DENSE_MAX_QUBITS 5

/* The adjoint keeps psi and lam of this many tiles for one pass of
 * qode_tile_dense_accumulate. */
#define QODE_TILE_DENSE_GROUP 8

/* Decides whether schedule s (built by qode_tile_schedule_new, segments
 * done, no checkpoints yet) runs dense; if so, splits the prefix blocks,
 * builds U and its transpose planes (s->dense_u, s->dense_w) and, for a
 * single-rotation encoding, s->rotations.  Returns 0 when out of memory. */
int qode_tile_dense_plan(const qode_circuit *c, const qode_prepared_gate *prepared,
                         qode_tile_schedule *s);

/* Adds the gradients of the trainable angles inside U, given C (2 dim^2
 * doubles, entry (x, y) at 2 (x dim + y), re then im), summed over the
 * batch.  `prepared` as for qode_tile_schedule_new with derivatives.
 * Returns 0 when out of memory (nothing added). */
int qode_tile_dense_gradients(const qode_circuit *c, const qode_prepared_gate *prepared,
                               const qode_tile_schedule *s, const double *cmat,
                               double *grad_trainable);

/* Doubles of work space one thread's dense adjoint needs (tiled.c lays
 * it out). */
size_t qode_tile_dense_work_doubles(const qode_tile_schedule *s, int n);

/* ---- tile passes (tile layout: amplitude i of lane l at i * L + l; the
 * products U psi and Re(U^+ lam) are qode_tile_matmul) ---- */

/* acc += psi lam^+ summed over the lanes of `tiles` tiles staged at
 * stage + t slot, each a psi plane then the re and im planes of its lam
 * (acc = that sum when `first`: what acc held is not read).  acc holds
 * 2 dim^2 four-lane vectors: entry (x, y) re at 8 (x dim + y), im 4 doubles
 * later (both halves of a tile's lanes go into one vector). */
void qode_tile_dense_accumulate(const double *stage, size_t slot, int tiles, int n, int first,
                                double *acc);

/* out[2 (x dim + y) + part] = the sum of the four lanes of acc's entry. */
void qode_tile_dense_reduce(const double *acc, int n, double *out);

#endif /* QODE_QUANTUM_TILED_DENSE_H */

/* The state passes of the tiled path (tile_kernels.c), for tiled.c only.
 *
 * A tile holds QODE_TILE_LANES = L circuits with their amplitudes
 * interleaved: re[i * L + l] is the real part of amplitude i of circuit l
 * (im likewise).  "Bit p" is bit p of the amplitude index, wire n - 1 - p in
 * PennyLane's order.  These functions know nothing of circuits or schedules.
 */
#ifndef QODE_QUANTUM_TILE_KERNELS_H
#define QODE_QUANTUM_TILE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "common/simd.h"
#include "quantum/gates.h"
#include "quantum/lane2.h"
#include "quantum/tiled.h"

#define L QODE_TILE_LANES

/* Four lanes as one vector (GCC/Clang vector extension).  aligned(8) allows
 * unaligned access and may_alias lets it read and write double arrays.  The
 * kernels work on NV such vectors per row of L lanes. */
typedef double vec4 __attribute__((vector_size(32), aligned(8), may_alias));
#define NV (L / 4)
#define LD(p) (*(const vec4 *)(const void *)(p))
#define ST(p, v) (*(vec4 *)(void *)(p) = (v))
/* One double in all four lanes (a macro: a function returning a vector
 * would change the ABI between the two builds). */
#define SPLAT(x) ((vec4){(x), (x), (x), (x)})

/* 1.0 for the lanes 4v .. 4v+3 below `valid`, 0.0 for the others: sums over
 * the circuits of a tile leave out its unused lanes by this factor. */
static QODE_ALWAYS_INLINE void qode_valid_lanes(int valid, int v, vec4 *keep)
{
    for (int i = 0; i < 4; i++)
        (*keep)[i] = 4 * v + i < valid ? 1.0 : 0.0;
}

/* Applies one gate, given per lane (all lanes share form and wires). */
void qode_tile_apply(double *re, double *im, int n, const qode_gate_matrix *const *g);

/* Per-lane 2x2 matrices on target bit `target` (wire n - 1 - target). */
void qode_tile_apply_2x2(double *re, double *im, int n, int target, const lane2 *mats);

/* The same from (re, im) into another tile state (out_re, out_im). */
void qode_tile_apply_2x2_to(const double *re, const double *im, int n, int target,
                            const lane2 *mats, double *out_re, double *out_im);

/* The product state of one column per wire: cols[(4 w + k) L + l] holds,
 * for lane l, re and im of the wire's |0> entry (k = 0, 1) and |1> entry
 * (k = 2, 3); amplitude i is the product over wires of their entry at the
 * wire's bit of i.  Built bit by bit from the least significant (wire n-1). */
void qode_tile_product_state(double *re, double *im, int n, const double *cols);

/* The same for real columns (their imaginary parts are not read), into
 * the real plane only. */
void qode_tile_product_state_real(double *re, int n, const double *cols);

/* x[j] = s[src[j]] for every amplitude j (all lanes): a permutation step. */
void qode_tile_gather(const double *sr, const double *si, const int32_t *src, size_t dim,
                      double *xr, double *xi);

/* v[l] = <psi_l| P |psi_l> for the Pauli word (x, z). */
void qode_tile_pauli_expval(const double *re, const double *im, int n, uint64_t x,
                            uint64_t z, double *out);

/* y = m x for a real rows x cols matrix m (row-major, rows a multiple of
 * 4): x has cols rows of L lanes (x[k * L + l]), y gets rows rows.  With m
 * = U's re plane over its im plane and x = psi, y is U psi (re plane, then
 * im plane); see tiled_dense.h and the observable matrix of tiled.h. */
void qode_tile_matmul(const double *m, size_t rows, size_t cols, const double *x, double *y);

/* p = |psi|^2 per amplitude and lane (a real tile plane). */
void qode_tile_abs2(const double *re, const double *im, int n, double *p);

/* lam = d psi per amplitude and lane, d a real tile plane. */
void qode_tile_scale(const double *d, const double *re, const double *im, int n, double *lr,
                     double *li);

/* The most Z-word terms read (or seeded) in one pass. */
#define QODE_TILE_DIAG_MAX_TERMS 64

/* out[t * L + l] = <psi_l| Z_t |psi_l> for every term t < terms (at most
 * QODE_TILE_DIAG_MAX_TERMS) of diagonal observables. */
void qode_tile_z_expvals(const double *re, const double *im, int n, const uint64_t *z,
                         int64_t terms, double *out);

/* lam_i = psi_i sum_t w_t (-1)^{popcount(i & z_t)} per lane: the adjoint seed
 * of diagonal observables, w[t * L + l] the upstream weight of term t. */
void qode_tile_z_seed(double *lr, double *li, const double *re, const double *im, int n,
                      const uint64_t *z, int64_t terms, const double *w);

/* lam += w P psi per lane, w = (wr, wi) complex per lane (already times i^{#Y}). */
void qode_tile_add_pauli(double *lr, double *li, const double *re, const double *im, int n,
                         uint64_t x, uint64_t z, const double *wr, const double *wi);

/* acc[l] += Re <lam_l| G_l |phi_l> for a gate (or gate derivative) matrix
 * given per lane, of any form but a permutation. */
void qode_tile_inner(const double *lr, const double *li, const double *re, const double *im,
                     int n, const qode_gate_matrix *const *g, double *acc);

/* R[b][a] = sum over pairs of phi_b conj(lam_a) per lane (b, a: the value of
 * the target bit), the reduced 2x2 matrix from which <lam| (1 x D) |phi> =
 * sum_ab D_ab R[b][a] follows for any 2x2 D on that wire.  With `update`
 * not NULL, lam <- update lam on that wire afterwards, fused into the same
 * pass over the state. */
void qode_tile_reduced(double *lr, double *li, const double *re, const double *im, int n,
                       int target, const lane2 *update, lane2 *out);

/* The reduced matrix of qode_tile_reduced (no update) for lam = d phi, d a
 * real tile plane, but for its diagonal, which is left 0: there it is real
 * (sum d_b |phi_b|^2), and where phi is the state after a block B, as in
 * tiled.c's last layer, the gradient of an angle of B reads only
 * Re Tr(K R), K = (dB/dt) B^+ anti-Hermitian, to which a real diagonal
 * adds nothing.  The rest,
 *     R[0][1] = sum d_1 z,  R[1][0] = sum d_0 conj(z),  z = phi_0 conj(phi_1),
 * takes 8 multiply-adds per amplitude pair instead of 16, and reads no lam. */
void qode_tile_reduced_offdiag(const double *re, const double *im, const double *d, int n,
                               int target, lane2 *out);

/* x[j] = s[j * sj] u0 + s[j * sj + so] u1 for j < count (per lane, u in the
 * cols layout): one bit of a vector contracted with a column.  The top bit
 * of 2 count entries has sj = 1, so = count; the bottom bit sj = 2, so = 1.
 * x may be s (each x[j] is written after its inputs are read, and no later
 * j reads it). */
void qode_tile_contract_bit(const double *sr, const double *si, size_t count, size_t sj,
                            size_t so, const double *u, double *xr, double *xi);

/* The same for a real s and real columns (real planes only). */
void qode_tile_contract_bit_real(const double *s, size_t count, size_t sj, size_t so,
                                 const double *u, double *x);

#endif /* QODE_QUANTUM_TILE_KERNELS_H */

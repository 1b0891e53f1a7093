/* State-vector kernels with the precision chosen at run time.
 *
 * `s` points to 2^n interleaved complex numbers of the given dtype
 * (QODE_COMPLEX64 or QODE_COMPLEX128).  None of these allocate. */
#ifndef QODE_QUANTUM_KERNELS_H
#define QODE_QUANTUM_KERNELS_H

#include <stdint.h>

#include "common/dtype.h"
#include "quantum/gates.h"

/* s <- |0...0>. */
void qode_qstate_set_zero_state(void *s, qode_dtype dtype, int n);

/* s <- G s. */
void qode_qstate_apply(void *s, qode_dtype dtype, int n, const qode_gate_matrix *g);

/* <lam| G |phi> for a derivative matrix G (CTRL1: zero where a control is 0). */
void qode_qstate_inner(const void *lam, const void *phi, qode_dtype dtype, int n,
                      const qode_gate_matrix *g, double *re, double *im);

/* <s| P |s> for the Pauli word with masks (x, z) (real for Hermitian P). */
double qode_qstate_expval_pauli(const void *s, qode_dtype dtype, int n, uint64_t x, uint64_t z);

/* out += w P s. */
void qode_qstate_add_pauli(void *out, const void *s, qode_dtype dtype, int n, uint64_t x,
                          uint64_t z, double w);

/* p[i] = |s_i|^2 for all 2^n basis states. */
void qode_qstate_probabilities(const void *s, qode_dtype dtype, int n, double *p);

#endif /* QODE_QUANTUM_KERNELS_H */

/* Element-wise kernels on states, for float and double storage.
 *
 * A state is `nr` real scalars: n elements, times two for complex dtypes
 * (interleaved).  Real linear combinations never need to know about complex
 * numbers; norms do, and take the problem to find the element width. */
#ifndef QODE_VEC_OPS_H
#define QODE_VEC_OPS_H

#include <stddef.h>

#include "solver/solver.h"

/* Runs the statements with `real` defined as double or float. */
#define QODE_DISPATCH_REAL(is_double, ...)   \
    do {                                     \
        if (is_double) {                     \
            typedef double real;             \
            __VA_ARGS__                      \
        } else {                             \
            typedef float real;              \
            __VA_ARGS__                      \
        }                                    \
    } while (0)

/* out = base + sum_{j < m} k[j] * coef[j], summed in the order in which
 * torch.sum(k * coef, dim=-1) sums on a CPU whose SIMD vectors hold `lanes`
 * elements of the state's dtype (see TORCH_ORDER_SUM).  base may be NULL
 * (zero); out may alias base. */
void qode_vec_lincomb(void *out, const void *base, void *const *k, const double *coef, int m,
                      size_t nr, int is_double, int lanes);

/* x *= s */
void qode_vec_scale(void *x, double s, size_t nr, int is_double);

/* out = a - b */
void qode_vec_sub(void *out, const void *a, const void *b, size_t nr, int is_double);

/* y += a * x */
void qode_vec_axpy(void *y, double a, const void *x, size_t nr, int is_double);

/* sum_i a_i b_i over the real scalars (for complex data: Re sum conj(a) b). */
double qode_vec_dot(const void *a, const void *b, size_t nr, int is_double);

/* 1 if every scalar is finite. */
int qode_vec_all_finite(const void *x, size_t nr, int is_double);

/* The scaled vector v_i / tol_i with tol_i = atol_i + rtol_i * max(|ya_i|, |yb_i|)
 * (yb may be NULL), written to `out` (same dtype as the state). */
void qode_scaled_vector(const qode_problem *problem, void *out, const void *v, const void *ya,
                        const void *yb);

/* The default norm of that scaled vector, computed without storing it: the
 * maximum over segments of sqrt(mean |v_i / tol_i|^2). */
double qode_scaled_rms_norm(const qode_problem *problem, const void *v, const void *ya,
                            const void *yb);

#endif /* QODE_VEC_OPS_H */

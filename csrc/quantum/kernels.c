/* Instantiates kernels_impl.h in double and single precision and dispatches
 * on the dtype. */
#include <string.h>

#include "quantum/kernels.h"

static int popcount64(uint64_t v)
{
    return __builtin_popcountll(v);
}

static int parity(uint64_t v)
{
    return __builtin_parityll(v);
}

/* Bits that a gate fixes (target, second target, controls), ascending. */
static int sorted_positions(const qode_gate_matrix *g, int pos[4])
{
    uint64_t fixed = g->ctrl_mask | ((uint64_t)1 << g->target);
    if (g->form == QODE_FORM_DENSE2)
        fixed |= (uint64_t)1 << g->target2;
    int np = 0;
    while (fixed != 0 && np < 4) {
        pos[np++] = __builtin_ctzll(fixed);
        fixed &= fixed - 1;
    }
    return np;
}

/* Inserts a 0 bit at each of the ascending positions pos[0..np-1] of k: maps
 * 0 .. 2^(n-np)-1 onto the indices whose fixed bits are all 0. */
static uint64_t spread(uint64_t k, const int *pos, int np)
{
    for (int j = 0; j < np; j++) {
        uint64_t low = k & (((uint64_t)1 << pos[j]) - 1);
        k = ((k >> pos[j]) << (pos[j] + 1)) | low;
    }
    return k;
}

#define REAL double
#define SUFFIX _c128
#include "quantum/kernels_impl.h"
#undef REAL
#undef SUFFIX

#define REAL float
#define SUFFIX _c64
#include "quantum/kernels_impl.h"
#undef REAL
#undef SUFFIX

void qode_state_set_zero_state(void *s, qode_dtype dtype, int n)
{
    size_t bytes = qode_dtype_size(dtype) << n;
    memset(s, 0, bytes);
    if (dtype == QODE_COMPLEX128)
        ((double *)s)[0] = 1.0;
    else
        ((float *)s)[0] = 1.0f;
}

void qode_state_apply(void *s, qode_dtype dtype, int n, const qode_gate_matrix *g)
{
    if (dtype == QODE_COMPLEX128)
        apply_gate_c128((double *)s, n, g);
    else
        apply_gate_c64((float *)s, n, g);
}

void qode_state_inner(const void *lam, const void *phi, qode_dtype dtype, int n,
                      const qode_gate_matrix *g, double *re, double *im)
{
    if (dtype == QODE_COMPLEX128)
        inner_gate_c128((const double *)lam, (const double *)phi, n, g, re, im);
    else
        inner_gate_c64((const float *)lam, (const float *)phi, n, g, re, im);
}

double qode_state_expval_pauli(const void *s, qode_dtype dtype, int n, uint64_t x, uint64_t z)
{
    if (dtype == QODE_COMPLEX128)
        return expval_pauli_c128((const double *)s, n, x, z);
    return expval_pauli_c64((const float *)s, n, x, z);
}

void qode_state_add_pauli(void *out, const void *s, qode_dtype dtype, int n, uint64_t x,
                          uint64_t z, double w)
{
    if (dtype == QODE_COMPLEX128)
        add_pauli_c128((double *)out, (const double *)s, n, x, z, w);
    else
        add_pauli_c64((float *)out, (const float *)s, n, x, z, w);
}

void qode_state_probabilities(const void *s, qode_dtype dtype, int n, double *p)
{
    if (dtype == QODE_COMPLEX128)
        probabilities_c128((const double *)s, n, p);
    else
        probabilities_c64((const float *)s, n, p);
}

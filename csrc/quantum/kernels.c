/* Instantiates kernels_impl.h in double and single precision and dispatches
 * on the dtype. */
#include <string.h>

#include "common/simd.h"
#include "quantum/kernels.h"

static int popcount64(uint64_t v)
{
    return __builtin_popcountll(v);
}

static int parity(uint64_t v)
{
    return __builtin_parityll(v);
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

void qode_qstate_set_zero_state(void *s, qode_dtype dtype, int n)
{
    size_t bytes = qode_dtype_size(dtype) << n;
    memset(s, 0, bytes);
    if (dtype == QODE_COMPLEX128)
        ((double *)s)[0] = 1.0;
    else
        ((float *)s)[0] = 1.0f;
}

/* ---- vectorised complex128 one-qubit kernels ---------------------------------
 * Two complex numbers (re, im, re, im) per 32-byte vector, in the interleaved
 * layout of the state.  Compiled for AVX2/FMA and baseline x86-64, chosen when
 * the library loads (SIMD_CLONES, common/simd.h). */

/* cmul below passes 32-byte vectors between inlined functions; GCC's note on
 * the AVX calling convention does not concern them. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

typedef double cvec __attribute__((vector_size(32), aligned(8), may_alias));
typedef long long lvec __attribute__((vector_size(32)));
#define CLD(p) (*(const cvec *)(const void *)(p))
#define CST(p, v) (*(cvec *)(void *)(p) = (v))
#ifdef __clang__
#define SHUF(a, i0, i1, i2, i3) __builtin_shufflevector(a, a, i0, i1, i2, i3)
#else
#define SHUF(a, i0, i1, i2, i3) __builtin_shuffle(a, (lvec){i0, i1, i2, i3})
#endif

/* Element-wise complex product of two vectors of two complex numbers each. */
static inline cvec cmul(cvec a, cvec m)
{
    const cvec sign = {-1.0, 1.0, -1.0, 1.0};
    return SHUF(a, 0, 0, 2, 2) * m + SHUF(a, 1, 1, 3, 3) * SHUF(m, 1, 0, 3, 2) * sign;
}

SIMD_CLONES
static void dense1_vec(double *s, uint64_t dim, int t, const double *m)
{
    if (t == 0) {
        /* each vector is one pair (a0, a1): out = (m00 a0 + m01 a1, m10 a0 + m11 a1) */
        const cvec col0 = {m[0], m[1], m[4], m[5]}, col1 = {m[2], m[3], m[6], m[7]};
        for (uint64_t i = 0; i < dim; i += 2) {
            cvec a = CLD(s + 2 * i);
            CST(s + 2 * i, cmul(SHUF(a, 0, 1, 0, 1), col0) + cmul(SHUF(a, 2, 3, 2, 3), col1));
        }
        return;
    }
    const cvec m00 = {m[0], m[1], m[0], m[1]}, m01 = {m[2], m[3], m[2], m[3]};
    const cvec m10 = {m[4], m[5], m[4], m[5]}, m11 = {m[6], m[7], m[6], m[7]};
    uint64_t stride = (uint64_t)1 << t;
    for (uint64_t base = 0; base < dim; base += 2 * stride) {
        for (uint64_t i = base; i < base + stride; i += 2) {
            cvec a = CLD(s + 2 * i), b = CLD(s + 2 * (i + stride));
            CST(s + 2 * i, cmul(a, m00) + cmul(b, m01));
            CST(s + 2 * (i + stride), cmul(a, m10) + cmul(b, m11));
        }
    }
}

SIMD_CLONES
static void diag1_vec(double *s, uint64_t dim, int t, const double *d)
{
    if (t == 0) {
        const cvec f = {d[0], d[1], d[2], d[3]};
        for (uint64_t i = 0; i < dim; i += 2)
            CST(s + 2 * i, cmul(CLD(s + 2 * i), f));
        return;
    }
    int first_is_one = (d[0] == 1.0 && d[1] == 0.0); /* Z, S, T, PhaseShift */
    const cvec f0 = {d[0], d[1], d[0], d[1]}, f1 = {d[2], d[3], d[2], d[3]};
    uint64_t stride = (uint64_t)1 << t;
    for (uint64_t base = 0; base < dim; base += 2 * stride) {
        if (!first_is_one)
            for (uint64_t i = base; i < base + stride; i += 2)
                CST(s + 2 * i, cmul(CLD(s + 2 * i), f0));
        for (uint64_t i = base + stride; i < base + 2 * stride; i += 2)
            CST(s + 2 * i, cmul(CLD(s + 2 * i), f1));
    }
}

void qode_qstate_apply(void *s, qode_dtype dtype, int n, const qode_gate_matrix *g)
{
    if (dtype == QODE_COMPLEX128) {
        /* n >= 1 always, so dim >= 2 and vectors of two amplitudes fit */
        if (g->form == QODE_FORM_DENSE1)
            dense1_vec((double *)s, (uint64_t)1 << n, g->target, g->m);
        else if (g->form == QODE_FORM_DIAG1)
            diag1_vec((double *)s, (uint64_t)1 << n, g->target, g->m);
        else
            apply_gate_c128((double *)s, n, g);
    } else {
        apply_gate_c64((float *)s, n, g);
    }
}

void qode_qstate_inner(const void *lam, const void *phi, qode_dtype dtype, int n,
                      const qode_gate_matrix *g, double *re, double *im)
{
    if (dtype == QODE_COMPLEX128)
        inner_gate_c128((const double *)lam, (const double *)phi, n, g, re, im);
    else
        inner_gate_c64((const float *)lam, (const float *)phi, n, g, re, im);
}

double qode_qstate_expval_pauli(const void *s, qode_dtype dtype, int n, uint64_t x, uint64_t z)
{
    if (dtype == QODE_COMPLEX128)
        return expval_pauli_c128((const double *)s, n, x, z);
    return expval_pauli_c64((const float *)s, n, x, z);
}

void qode_qstate_add_pauli(void *out, const void *s, qode_dtype dtype, int n, uint64_t x,
                          uint64_t z, double w)
{
    if (dtype == QODE_COMPLEX128)
        add_pauli_c128((double *)out, (const double *)s, n, x, z, w);
    else
        add_pauli_c64((float *)out, (const float *)s, n, x, z, w);
}

void qode_qstate_probabilities(const void *s, qode_dtype dtype, int n, double *p)
{
    if (dtype == QODE_COMPLEX128)
        probabilities_c128((const double *)s, n, p);
    else
        probabilities_c64((const float *)s, n, p);
}

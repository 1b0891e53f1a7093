/* 2x2 complex matrices as 8 doubles (row-major, interleaved re/im): the
 * small algebra of fused one-qubit blocks in the tiled path. */
#ifndef QODE_QUANTUM_MAT2_H
#define QODE_QUANTUM_MAT2_H

#include <string.h>

#include "quantum/gates.h"

/* Any one-qubit gate matrix as a dense 2x2. */
static inline void mat2_of_gate(const qode_gate_matrix *g, double *out)
{
    if (g->form == QODE_FORM_DIAG1) {
        out[0] = g->m[0]; out[1] = g->m[1]; out[2] = 0; out[3] = 0;
        out[4] = 0; out[5] = 0; out[6] = g->m[2]; out[7] = g->m[3];
    } else {
        memcpy(out, g->m, 8 * sizeof(double));
    }
}

/* out = a b (out may alias neither). */
static inline void mat2_mul(const double *a, const double *b, double *out)
{
    for (int r = 0; r < 2; r++) {
        for (int c = 0; c < 2; c++) {
            double re = 0, im = 0;
            for (int k = 0; k < 2; k++) {
                double ar = a[2 * (2 * r + k)], ai = a[2 * (2 * r + k) + 1];
                double br = b[2 * (2 * k + c)], bi = b[2 * (2 * k + c) + 1];
                re += ar * br - ai * bi;
                im += ar * bi + ai * br;
            }
            out[2 * (2 * r + c)] = re;
            out[2 * (2 * r + c) + 1] = im;
        }
    }
}

/* a <- m a */
static inline void mat2_lmul(const double *m, double *a)
{
    double tmp[8];
    mat2_mul(m, a, tmp);
    memcpy(a, tmp, sizeof tmp);
}

static inline void mat2_identity(double *out)
{
    static const double id[8] = {1, 0, 0, 0, 0, 0, 1, 0};
    memcpy(out, id, sizeof id);
}

static inline void mat2_dagger(const double *a, double *out)
{
    out[0] = a[0]; out[1] = -a[1];
    out[2] = a[4]; out[3] = -a[5];
    out[4] = a[2]; out[5] = -a[3];
    out[6] = a[6]; out[7] = -a[7];
}

/* Re sum_ab D_ab R[b][a] = Re Tr(D R). */
static inline double mat2_trace_re(const double *d, const double *r)
{
    double t = 0;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            int ab = 2 * (2 * a + b), ba = 2 * (2 * b + a);
            t += d[ab] * r[ba] - d[ab + 1] * r[ba + 1];
        }
    return t;
}

#endif /* QODE_QUANTUM_MAT2_H */

/* 2x2 complex matrices of the QODE_TILE_LANES circuits of a tile, stored
 * entry-major so that every operation is a loop over lanes that vectorises:
 * e[2k][l] and e[2k+1][l] are the real and imaginary parts of entry k
 * (row-major: 00, 01, 10, 11) for lane l.  Used for the fused one-qubit
 * blocks of the tiled path (tiled.c). */
#ifndef QODE_QUANTUM_LANE2_H
#define QODE_QUANTUM_LANE2_H

#include "common/simd.h"
#include "quantum/tiled.h"

#define LANES QODE_TILE_LANES

typedef struct {
    double e[8][LANES];
} lane2;

/* Every lane set to the 2x2 matrix m (8 doubles, interleaved). */
static QODE_ALWAYS_INLINE void lane2_broadcast(const double *m, lane2 *out)
{
    for (int k = 0; k < 8; k++)
        for (int l = 0; l < LANES; l++)
            out->e[k][l] = m[k];
}

static QODE_ALWAYS_INLINE void lane2_identity(lane2 *out)
{
    static const double id[8] = {1, 0, 0, 0, 0, 0, 1, 0};
    lane2_broadcast(id, out);
}

/* out = a b per lane (out may alias neither). */
static QODE_ALWAYS_INLINE void lane2_mul(const lane2 *a, const lane2 *b, lane2 *out)
{
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2; c++) {
            const double *a0r = a->e[2 * (2 * r)], *a0i = a->e[2 * (2 * r) + 1];
            const double *a1r = a->e[2 * (2 * r + 1)], *a1i = a->e[2 * (2 * r + 1) + 1];
            const double *b0r = b->e[2 * c], *b0i = b->e[2 * c + 1];
            const double *b1r = b->e[2 * (2 + c)], *b1i = b->e[2 * (2 + c) + 1];
            double *or_ = out->e[2 * (2 * r + c)], *oi = out->e[2 * (2 * r + c) + 1];
            for (int l = 0; l < LANES; l++) {
                or_[l] = a0r[l] * b0r[l] - a0i[l] * b0i[l] + a1r[l] * b1r[l] - a1i[l] * b1i[l];
                oi[l] = a0r[l] * b0i[l] + a0i[l] * b0r[l] + a1r[l] * b1i[l] + a1i[l] * b1r[l];
            }
        }
}

static QODE_ALWAYS_INLINE void lane2_dagger(const lane2 *a, lane2 *out)
{
    static const int from[4] = {0, 2, 1, 3}; /* entry (r, c) of a^+ is conj a(c, r) */
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < LANES; l++) {
            out->e[2 * k][l] = a->e[2 * from[k]][l];
            out->e[2 * k + 1][l] = -a->e[2 * from[k] + 1][l];
        }
}

/* t[l] = Re Tr(D R) per lane = Re sum_ab D_ab R_ba. */
static QODE_ALWAYS_INLINE void lane2_trace_re(const lane2 *d, const lane2 *r, double *t)
{
    static const int transposed[4] = {0, 2, 1, 3};
    for (int l = 0; l < LANES; l++)
        t[l] = 0.0;
    for (int k = 0; k < 4; k++) {
        const double *dr = d->e[2 * k], *di = d->e[2 * k + 1];
        const double *rr = r->e[2 * transposed[k]], *ri = r->e[2 * transposed[k] + 1];
        for (int l = 0; l < LANES; l++)
            t[l] += dr[l] * rr[l] - di[l] * ri[l];
    }
}

#undef LANES

#endif /* QODE_QUANTUM_LANE2_H */

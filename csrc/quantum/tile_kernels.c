/* The state passes of the tiled path: every function here updates or reads
 * the interleaved states of one tile (QODE_TILE_LANES circuits, see tiled.h)
 * and knows nothing of schedules or circuits; tiled.c drives them.
 *
 * The loops work on vectors of four lanes, load every amplitude they need
 * before storing any, and so vectorise without aliasing concerns.  The hot
 * ones are compiled twice (AVX2/FMA and baseline x86-64) and the right one
 * is picked when the library loads.
 *
 * The build uses -std=c11, under which GCC never fuses a * b + c into one
 * fused multiply-add; the solver relies on that to round exactly as torch
 * does.  The amplitude arithmetic of the tiled path has no such contract,
 * and the fused form is both faster (half the floating-point instructions)
 * and at least as accurate, so its two files (this one and tiled.c) allow
 * it.  The pragma comes before the includes so that the inline helpers they
 * define are compiled the same way. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif
#include <string.h>

#include "common/simd.h"
#include "quantum/tile_kernels.h"

/* Gate matrices of the L lanes, entry-major: r[k][l], i[k][l] for entry k. */
typedef struct {
    double r[16][L];
    double i[16][L];
} lane_matrix;

static void load_lanes(const qode_gate_matrix *const *g, int entries, lane_matrix *m)
{
    for (int k = 0; k < entries; k++) {
        for (int l = 0; l < L; l++) {
            m->r[k][l] = g[l]->m[2 * k];
            m->i[k][l] = g[l]->m[2 * k + 1];
        }
    }
}

/* k-th index whose fixed bits are 0 (zeros inserted at ascending positions). */
static inline uint64_t spread(uint64_t k, const int *pos, int np)
{
    for (int j = 0; j < np; j++) {
        uint64_t low = k & (((uint64_t)1 << pos[j]) - 1);
        k = ((k >> pos[j]) << (pos[j] + 1)) | low;
    }
    return k;
}

/* A 2x2 matrix per lane as rows of L lanes: entry k (row-major) has real
 * parts r[k][0..L) and imaginary parts i[k][0..L).  Both lane_matrix and
 * lane2 hold one; this points into either without copying. */
typedef struct {
    const double *r[4];
    const double *i[4];
} pair_rows;

static pair_rows rows_of_lane_matrix(const lane_matrix *m)
{
    pair_rows p;
    for (int k = 0; k < 4; k++) {
        p.r[k] = m->r[k];
        p.i[k] = m->i[k];
    }
    return p;
}

static int rows_real(const pair_rows *m)
{
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < L; l++)
            if (m->i[k][l] != 0.0)
                return 0;
    return 1;
}

/* One pair (i0, i0 + stride) of lane vector v times the 2x2 (mr, mi), read
 * from (re, im) and written to (out_re, out_im) (the same arrays, or others). */
static QODE_ALWAYS_INLINE void pair_update(const double *re, const double *im, double *out_re,
                                           double *out_im, uint64_t i0, uint64_t stride,
                                           const vec4 *mr, const vec4 *mi, int v, int real)
{
    size_t o0 = i0 * L + 4 * v, o1 = (i0 + stride) * L + 4 * v;
    vec4 ar = LD(re + o0), ai = LD(im + o0), br = LD(re + o1), bi = LD(im + o1);
    vec4 cr = mr[0] * ar + mr[1] * br, ci = mr[0] * ai + mr[1] * bi;
    vec4 dr = mr[2] * ar + mr[3] * br, di = mr[2] * ai + mr[3] * bi;
    if (!real) {
        cr = cr - mi[0] * ai - mi[1] * bi;
        ci = ci + mi[0] * ar + mi[1] * br;
        dr = dr - mi[2] * ai - mi[3] * bi;
        di = di + mi[2] * ar + mi[3] * br;
    }
    ST(out_re + o0, cr);
    ST(out_im + o0, ci);
    ST(out_re + o1, dr);
    ST(out_im + o1, di);
}

/* The pairs loop of tile_pairs for lane vector v; `real` is a constant at
 * each call, so each variant compiles to its own loop. */
static QODE_ALWAYS_INLINE void pairs_lane_vector(const double *re, const double *im,
                                                 double *out_re, double *out_im, uint64_t count,
                                                 const int *pos, int np, uint64_t ctrl,
                                                 uint64_t stride, const pair_rows *m, int v,
                                                 int real)
{
    vec4 mr[4], mi[4];
    for (int k = 0; k < 4; k++) {
        mr[k] = LD(m->r[k] + 4 * v);
        mi[k] = LD(m->i[k] + 4 * v);
    }
    if (np == 1 && ctrl == 0) { /* a plain one-qubit gate: blocks of pairs, no index spreading */
        for (uint64_t base = 0; base < 2 * count; base += 2 * stride)
            for (uint64_t i0 = base; i0 < base + stride; i0++)
                pair_update(re, im, out_re, out_im, i0, stride, mr, mi, v, real);
        return;
    }
    for (uint64_t k = 0; k < count; k++)
        pair_update(re, im, out_re, out_im, spread(k, pos, np) | ctrl, stride, mr, mi, v, real);
}

/* 2x2 (per lane) on the pairs (i, i + 2^target) with every control bit set.
 * One vector of lanes at a time: its 8 matrix registers, 4 inputs and the
 * products fit the 16 vector registers (all NV at once would spill). */
SIMD_CLONES
static void tile_pairs(const double *re, const double *im, double *out_re, double *out_im,
                       int n, const qode_gate_matrix *g, const pair_rows *m)
{
    int pos[4];
    int np = qode_gate_fixed_positions(g, pos);
    uint64_t stride = (uint64_t)1 << g->target, count = ((uint64_t)1 << n) >> np;
    int real_matrix = rows_real(m);
    for (int v = 0; v < NV; v++) {
        if (real_matrix)
            pairs_lane_vector(re, im, out_re, out_im, count, pos, np, g->ctrl_mask, stride, m, v,
                              1);
        else
            pairs_lane_vector(re, im, out_re, out_im, count, pos, np, g->ctrl_mask, stride, m, v,
                              0);
    }
}

/* diag(d0, d1) per lane on one target bit; d0 = 1 is skipped. */
SIMD_CLONES
static void tile_diag(double *re, double *im, int n, const qode_gate_matrix *g,
                      const lane_matrix *m, int first_is_one)
{
    uint64_t dim = (uint64_t)1 << n, stride = (uint64_t)1 << g->target;
    vec4 dr[2][NV], di[2][NV];
    for (int b = 0; b < 2; b++)
        for (int v = 0; v < NV; v++) {
            dr[b][v] = LD(m->r[b] + 4 * v);
            di[b][v] = LD(m->i[b] + 4 * v);
        }
    for (uint64_t base = 0; base < dim; base += 2 * stride) {
        for (int b = first_is_one ? 1 : 0; b < 2; b++) {
            uint64_t lo = base + (b ? stride : 0);
            for (uint64_t i = lo; i < lo + stride; i++) {
                for (int v = 0; v < NV; v++) {
                    size_t o = i * L + 4 * v;
                    vec4 ar = LD(re + o), ai = LD(im + o);
                    ST(re + o, dr[b][v] * ar - di[b][v] * ai);
                    ST(im + o, dr[b][v] * ai + di[b][v] * ar);
                }
            }
        }
    }
}

/* X on the target where all controls are 1: swaps whole lane rows. */
static void tile_flip(double *re, double *im, int n, const qode_gate_matrix *g)
{
    int pos[4];
    int np = qode_gate_fixed_positions(g, pos);
    uint64_t stride = (uint64_t)1 << g->target, count = ((uint64_t)1 << n) >> np;
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i0 = spread(k, pos, np) | g->ctrl_mask, i1 = i0 + stride;
        for (int v = 0; v < NV; v++) {
            size_t o0 = i0 * L + 4 * v, o1 = i1 * L + 4 * v;
            vec4 a = LD(re + o0), b = LD(re + o1), c = LD(im + o0), d = LD(im + o1);
            ST(re + o0, b); ST(re + o1, a); ST(im + o0, d); ST(im + o1, c);
        }
    }
}

/* 4x4 per lane on (first wire = hi bit, second wire = lo bit). */
SIMD_CLONES
static void tile_dense2(double *re, double *im, int n, const qode_gate_matrix *g,
                        const lane_matrix *m)
{
    int pos[4];
    int np = qode_gate_fixed_positions(g, pos);
    uint64_t hi = (uint64_t)1 << g->target, lo = (uint64_t)1 << g->target2;
    uint64_t count = ((uint64_t)1 << n) >> np;
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i0 = spread(k, pos, np);
        uint64_t idx[4] = {i0, i0 | lo, i0 | hi, i0 | hi | lo};
        double ar[4][L], ai[4][L];
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < L; l++) {
                ar[c][l] = re[idx[c] * L + l];
                ai[c][l] = im[idx[c] * L + l];
            }
        for (int r = 0; r < 4; r++) {
            double sr[L] = {0}, si[L] = {0};
            for (int c = 0; c < 4; c++) {
                const double *mr = m->r[4 * r + c], *mi = m->i[4 * r + c];
                for (int l = 0; l < L; l++) {
                    sr[l] += mr[l] * ar[c][l] - mi[l] * ai[c][l];
                    si[l] += mr[l] * ai[c][l] + mi[l] * ar[c][l];
                }
            }
            for (int l = 0; l < L; l++) {
                re[idx[r] * L + l] = sr[l];
                im[idx[r] * L + l] = si[l];
            }
        }
    }
}

void qode_tile_apply(double *re, double *im, int n, const qode_gate_matrix *const *g)
{
    lane_matrix m;
    switch (g[0]->form) {
    case QODE_FORM_FLIP:
        tile_flip(re, im, n, g[0]);
        return;
    case QODE_FORM_DIAG1: {
        load_lanes(g, 2, &m);
        int first_is_one = 1;
        for (int l = 0; l < L; l++)
            first_is_one &= (m.r[0][l] == 1.0 && m.i[0][l] == 0.0);
        tile_diag(re, im, n, g[0], &m, first_is_one);
        return;
    }
    case QODE_FORM_DENSE1:
    case QODE_FORM_CTRL1: {
        load_lanes(g, 4, &m);
        pair_rows rows = rows_of_lane_matrix(&m);
        tile_pairs(re, im, re, im, n, g[0], &rows);
        return;
    }
    case QODE_FORM_DENSE2:
        load_lanes(g, 16, &m);
        tile_dense2(re, im, n, g[0], &m);
        return;
    }
}

void qode_tile_apply_2x2(double *re, double *im, int n, int target, const lane2 *mats)
{
    qode_tile_apply_2x2_to(re, im, n, target, mats, re, im);
}

void qode_tile_apply_2x2_to(const double *re, const double *im, int n, int target,
                            const lane2 *mats, double *out_re, double *out_im)
{
    qode_gate_matrix geometry;
    geometry.form = QODE_FORM_DENSE1;
    geometry.target = target;
    geometry.target2 = -1;
    geometry.ctrl_mask = 0;
    pair_rows rows;
    for (int k = 0; k < 4; k++) {
        rows.r[k] = mats->e[2 * k];
        rows.i[k] = mats->e[2 * k + 1];
    }
    tile_pairs(re, im, out_re, out_im, n, &geometry, &rows); /* every amplitude in a pair */
}

SIMD_CLONES
void qode_tile_product_state(double *re, double *im, int n, const double *cols)
{
    for (int l = 0; l < L; l++) {
        re[l] = 1.0;
        im[l] = 0.0;
    }
    for (int p = 0; p < n; p++) {
        const double *u = cols + (size_t)4 * (n - 1 - p) * L;
        size_t half = (size_t)1 << p;
        for (int v = 0; v < NV; v++) {
            vec4 u0r = LD(u + 4 * v), u0i = LD(u + L + 4 * v);
            vec4 u1r = LD(u + 2 * L + 4 * v), u1i = LD(u + 3 * L + 4 * v);
            for (size_t j = 0; j < half; j++) {
                size_t o0 = j * L + 4 * v, o1 = (j + half) * L + 4 * v;
                vec4 ar = LD(re + o0), ai = LD(im + o0);
                ST(re + o1, ar * u1r - ai * u1i);
                ST(im + o1, ar * u1i + ai * u1r);
                ST(re + o0, ar * u0r - ai * u0i);
                ST(im + o0, ar * u0i + ai * u0r);
            }
        }
    }
}

SIMD_CLONES
void qode_tile_product_state_real(double *re, int n, const double *cols)
{
    for (int l = 0; l < L; l++)
        re[l] = 1.0;
    for (int p = 0; p < n; p++) {
        const double *u = cols + (size_t)4 * (n - 1 - p) * L;
        size_t half = (size_t)1 << p;
        for (int v = 0; v < NV; v++) {
            vec4 u0 = LD(u + 4 * v), u1 = LD(u + 2 * L + 4 * v);
            for (size_t j = 0; j < half; j++) {
                size_t o0 = j * L + 4 * v, o1 = (j + half) * L + 4 * v;
                vec4 a = LD(re + o0);
                ST(re + o1, a * u1);
                ST(re + o0, a * u0);
            }
        }
    }
}

SIMD_CLONES
void qode_tile_gather(const double *sr, const double *si, const int32_t *src, size_t dim,
                      double *xr, double *xi)
{
    for (size_t j = 0; j < dim; j++) {
        size_t from = (size_t)src[j] * L;
        for (int v = 0; v < NV; v++) {
            ST(xr + j * L + 4 * v, LD(sr + from + 4 * v));
            ST(xi + j * L + 4 * v, LD(si + from + 4 * v));
        }
    }
}

SIMD_CLONES
void qode_tile_pauli_expval(const double *re, const double *im, int n, uint64_t x,
                            uint64_t z, double *out)
{
    uint64_t dim = (uint64_t)1 << n;
    vec4 sr[NV], si[NV];
    for (int v = 0; v < NV; v++) {
        sr[v] = (vec4){0, 0, 0, 0};
        si[v] = (vec4){0, 0, 0, 0};
    }
    for (uint64_t i = 0; i < dim; i++) {
        uint64_t j = i ^ x;
        double sign = __builtin_parityll(i & z) ? -1.0 : 1.0;
        for (int v = 0; v < NV; v++) {
            vec4 ri = LD(re + i * L + 4 * v), qi = LD(im + i * L + 4 * v);
            vec4 rj = LD(re + j * L + 4 * v), qj = LD(im + j * L + 4 * v);
            /* conj(psi_j) psi_i */
            sr[v] += sign * (rj * ri + qj * qi);
            si[v] += sign * (rj * qi - qj * ri);
        }
    }
    int ny = __builtin_popcountll(x & z) & 3;
    double a[L], b[L];
    for (int v = 0; v < NV; v++) {
        ST(a + 4 * v, sr[v]);
        ST(b + 4 * v, si[v]);
    }
    for (int l = 0; l < L; l++)
        out[l] = ny == 0 ? a[l] : ny == 1 ? -b[l] : ny == 2 ? -a[l] : b[l];
}

SIMD_CLONES
void qode_tile_z_expvals(const double *re, const double *im, int n, const uint64_t *z,
                         int64_t terms, double *out)
{
    uint64_t dim = (uint64_t)1 << n;
    vec4 acc[QODE_TILE_DIAG_MAX_TERMS][NV];
    for (int64_t t = 0; t < terms; t++)
        for (int v = 0; v < NV; v++)
            acc[t][v] = (vec4){0, 0, 0, 0};
    for (uint64_t i = 0; i < dim; i++) {
        vec4 p[NV];
        for (int v = 0; v < NV; v++) {
            vec4 a = LD(re + i * L + 4 * v), b = LD(im + i * L + 4 * v);
            p[v] = a * a + b * b;
        }
        for (int64_t t = 0; t < terms; t++) {
            double sign = __builtin_parityll(i & z[t]) ? -1.0 : 1.0;
            for (int v = 0; v < NV; v++)
                acc[t][v] += sign * p[v];
        }
    }
    for (int64_t t = 0; t < terms; t++)
        for (int v = 0; v < NV; v++)
            ST(out + t * L + 4 * v, acc[t][v]);
}

SIMD_CLONES
void qode_tile_z_seed(double *lr, double *li, const double *re, const double *im, int n,
                      const uint64_t *z, int64_t terms, const double *w)
{
    uint64_t dim = (uint64_t)1 << n;
    for (uint64_t i = 0; i < dim; i++) {
        vec4 s[NV];
        for (int v = 0; v < NV; v++)
            s[v] = (vec4){0, 0, 0, 0};
        for (int64_t t = 0; t < terms; t++) {
            double sign = __builtin_parityll(i & z[t]) ? -1.0 : 1.0;
            for (int v = 0; v < NV; v++)
                s[v] += sign * LD(w + t * L + 4 * v);
        }
        for (int v = 0; v < NV; v++) {
            ST(lr + i * L + 4 * v, s[v] * LD(re + i * L + 4 * v));
            ST(li + i * L + 4 * v, s[v] * LD(im + i * L + 4 * v));
        }
    }
}

SIMD_CLONES
void qode_tile_add_pauli(double *lr, double *li, const double *re, const double *im, int n,
                         uint64_t x, uint64_t z, const double *wr, const double *wi)
{
    uint64_t dim = (uint64_t)1 << n;
    vec4 ar[NV], ai[NV];
    for (int v = 0; v < NV; v++) {
        ar[v] = LD(wr + 4 * v);
        ai[v] = LD(wi + 4 * v);
    }
    for (uint64_t i = 0; i < dim; i++) {
        uint64_t j = i ^ x;
        double sign = __builtin_parityll(i & z) ? -1.0 : 1.0;
        for (int v = 0; v < NV; v++) {
            vec4 pr = LD(re + i * L + 4 * v), pq = LD(im + i * L + 4 * v);
            vec4 xr = LD(lr + j * L + 4 * v), xi = LD(li + j * L + 4 * v);
            ST(lr + j * L + 4 * v, xr + sign * (ar[v] * pr - ai[v] * pq));
            ST(li + j * L + 4 * v, xi + sign * (ar[v] * pq + ai[v] * pr));
        }
    }
}

/* acc[l] += Re <lam_l| G_l |phi_l> for a derivative matrix (pair forms: the
 * CTRL1 derivative is zero where a control is 0, so only control=1 pairs). */
SIMD_CLONES
static void tile_inner_pairs(const double *lr, const double *li, const double *re,
                             const double *im, int n, const qode_gate_matrix *g,
                             const lane_matrix *m, double *acc)
{
    int pos[4];
    int np = qode_gate_fixed_positions(g, pos);
    uint64_t stride = (uint64_t)1 << g->target, count = ((uint64_t)1 << n) >> np;
    vec4 mr[4][NV], mi[4][NV], s[NV];
    for (int v = 0; v < NV; v++) {
        s[v] = (vec4){0, 0, 0, 0};
        for (int k = 0; k < 4; k++) {
            mr[k][v] = LD(m->r[k] + 4 * v);
            mi[k][v] = LD(m->i[k] + 4 * v);
        }
    }
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i0 = spread(k, pos, np) | g->ctrl_mask, i1 = i0 + stride;
        for (int v = 0; v < NV; v++) {
            size_t o0 = i0 * L + 4 * v, o1 = i1 * L + 4 * v;
            vec4 ar = LD(re + o0), ai = LD(im + o0), br = LD(re + o1), bi = LD(im + o1);
            vec4 g0r = mr[0][v] * ar - mi[0][v] * ai + mr[1][v] * br - mi[1][v] * bi;
            vec4 g0i = mr[0][v] * ai + mi[0][v] * ar + mr[1][v] * bi + mi[1][v] * br;
            vec4 g1r = mr[2][v] * ar - mi[2][v] * ai + mr[3][v] * br - mi[3][v] * bi;
            vec4 g1i = mr[2][v] * ai + mi[2][v] * ar + mr[3][v] * bi + mi[3][v] * br;
            s[v] += LD(lr + o0) * g0r + LD(li + o0) * g0i + LD(lr + o1) * g1r + LD(li + o1) * g1i;
        }
    }
    double t[L];
    for (int v = 0; v < NV; v++)
        ST(t + 4 * v, s[v]);
    for (int l = 0; l < L; l++)
        acc[l] += t[l];
}

SIMD_CLONES
static void tile_inner_dense2(const double *lr, const double *li, const double *re,
                              const double *im, int n, const qode_gate_matrix *g,
                              const lane_matrix *m, double *acc)
{
    int pos[4];
    int np = qode_gate_fixed_positions(g, pos);
    uint64_t hi = (uint64_t)1 << g->target, lo = (uint64_t)1 << g->target2;
    uint64_t count = ((uint64_t)1 << n) >> np;
    double s[L] = {0};
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i0 = spread(k, pos, np);
        uint64_t idx[4] = {i0, i0 | lo, i0 | hi, i0 | hi | lo};
        for (int r = 0; r < 4; r++) {
            double gr[L] = {0}, gi[L] = {0};
            for (int c = 0; c < 4; c++) {
                const double *mr = m->r[4 * r + c], *mi = m->i[4 * r + c];
                const double *pr = re + idx[c] * L, *pi = im + idx[c] * L;
                for (int l = 0; l < L; l++) {
                    gr[l] += mr[l] * pr[l] - mi[l] * pi[l];
                    gi[l] += mr[l] * pi[l] + mi[l] * pr[l];
                }
            }
            const double *xr = lr + idx[r] * L, *xi = li + idx[r] * L;
            for (int l = 0; l < L; l++)
                s[l] += xr[l] * gr[l] + xi[l] * gi[l];
        }
    }
    for (int l = 0; l < L; l++)
        acc[l] += s[l];
}

void qode_tile_inner(const double *lr, const double *li, const double *re, const double *im,
                     int n, const qode_gate_matrix *const *g, double *acc)
{
    lane_matrix m;
    if (g[0]->form == QODE_FORM_DENSE2) {
        load_lanes(g, 16, &m);
        tile_inner_dense2(lr, li, re, im, n, g[0], &m, acc);
        return;
    }
    if (g[0]->form == QODE_FORM_DIAG1) {
        /* diag(d0, d1) as the 2x2 [[d0, 0], [0, d1]] */
        for (int l = 0; l < L; l++) {
            m.r[0][l] = g[l]->m[0]; m.i[0][l] = g[l]->m[1];
            m.r[1][l] = 0; m.i[1][l] = 0;
            m.r[2][l] = 0; m.i[2][l] = 0;
            m.r[3][l] = g[l]->m[2]; m.i[3][l] = g[l]->m[3];
        }
    } else {
        load_lanes(g, 4, &m);
    }
    tile_inner_pairs(lr, li, re, im, n, g[0], &m, acc);
}

/* The loop of tile_reduced for lane vector v; `update` (a constant at each
 * call) also applies m to lam in the same pass, after reading it. */
static QODE_ALWAYS_INLINE void reduced_lane_vector(double *lr, double *li, const double *re,
                                                   const double *im, uint64_t dim,
                                                   uint64_t stride, const lane2 *m, int v,
                                                   int update, lane2 *out)
{
    vec4 acc[8], mr[2][2], mi[2][2];
    for (int k = 0; k < 8; k++)
        acc[k] = (vec4){0, 0, 0, 0};
    /* loaded once: the compiler may not move them out of a loop that stores
     * through may_alias pointers */
    for (int r = 0; r < 2 && update; r++)
        for (int c = 0; c < 2; c++) {
            mr[r][c] = LD(m->e[4 * r + 2 * c] + 4 * v);
            mi[r][c] = LD(m->e[4 * r + 2 * c + 1] + 4 * v);
        }
    for (uint64_t base = 0; base < dim; base += 2 * stride) {
        for (uint64_t i = base; i < base + stride; i++) {
            size_t o[2] = {i * L + 4 * v, (i + stride) * L + 4 * v};
            vec4 pr[2], pi[2], xr[2], xi[2];
            for (int b = 0; b < 2; b++) {
                pr[b] = LD(re + o[b]); pi[b] = LD(im + o[b]);
                xr[b] = LD(lr + o[b]); xi[b] = LD(li + o[b]);
            }
            for (int b = 0; b < 2; b++)
                for (int a = 0; a < 2; a++) {
                    /* phi_b conj(lam_a), one fused multiply-add per product
                     * straight into the accumulator */
                    acc[2 * (2 * b + a)] += pr[b] * xr[a];
                    acc[2 * (2 * b + a)] += pi[b] * xi[a];
                    acc[2 * (2 * b + a) + 1] += pi[b] * xr[a];
                    acc[2 * (2 * b + a) + 1] -= pr[b] * xi[a];
                }
            if (!update)
                continue;
            for (int r = 0; r < 2; r++) { /* lam_r <- m_r0 lam_0 + m_r1 lam_1 */
                vec4 m0r = mr[r][0], m0i = mi[r][0], m1r = mr[r][1], m1i = mi[r][1];
                ST(lr + o[r], m0r * xr[0] - m0i * xi[0] + m1r * xr[1] - m1i * xi[1]);
                ST(li + o[r], m0r * xi[0] + m0i * xr[0] + m1r * xi[1] + m1i * xr[1]);
            }
        }
    }
    for (int k = 0; k < 8; k++)
        ST(out->e[k] + 4 * v, acc[k]);
}

SIMD_CLONES
void qode_tile_reduced_offdiag(const double *re, const double *im, const double *d, int n,
                               int target, lane2 *out)
{
    uint64_t dim = (uint64_t)1 << n, stride = (uint64_t)1 << target;
    /* both lane vectors in one sweep: each cache line (a row of L lanes) is
     * read once; 4 NV sums fit in registers, unlike qode_tile_reduced's 8 NV */
    vec4 r01r[NV], r01i[NV], r10r[NV], r10i[NV];
    for (int v = 0; v < NV; v++)
        r01r[v] = r01i[v] = r10r[v] = r10i[v] = SPLAT(0.0);
    for (uint64_t base = 0; base < dim; base += 2 * stride) {
        for (uint64_t i = base; i < base + stride; i++) {
            for (int v = 0; v < NV; v++) {
                size_t o0 = i * L + 4 * v, o1 = (i + stride) * L + 4 * v;
                vec4 a0 = LD(re + o0), b0 = LD(im + o0), a1 = LD(re + o1), b1 = LD(im + o1);
                vec4 zr = a0 * a1 + b0 * b1, zi = b0 * a1 - a0 * b1;
                vec4 d0 = LD(d + o0), d1 = LD(d + o1);
                r01r[v] += d1 * zr;
                r01i[v] += d1 * zi;
                r10r[v] += d0 * zr;
                r10i[v] -= d0 * zi;
            }
        }
    }
    for (int v = 0; v < NV; v++) {
        vec4 part[8] = {SPLAT(0.0), SPLAT(0.0), r01r[v], r01i[v], r10r[v], r10i[v],
                        SPLAT(0.0), SPLAT(0.0)};
        for (int k = 0; k < 8; k++)
            ST(out->e[k] + 4 * v, part[k]);
    }
}

SIMD_CLONES
void qode_tile_reduced(double *lr, double *li, const double *re, const double *im, int n,
                       int target, const lane2 *update, lane2 *out)
{
    uint64_t dim = (uint64_t)1 << n, stride = (uint64_t)1 << target;
    for (int v = 0; v < NV; v++) {
        if (update != NULL)
            reduced_lane_vector(lr, li, re, im, dim, stride, update, v, 1, out);
        else
            reduced_lane_vector(lr, li, re, im, dim, stride, NULL, v, 0, out);
    }
}

SIMD_CLONES
void qode_tile_contract_bit(const double *sr, const double *si, size_t count, size_t sj,
                            size_t so, const double *u, double *xr, double *xi)
{
    for (int v = 0; v < NV; v++) {
        vec4 u0r = LD(u + 4 * v), u0i = LD(u + L + 4 * v);
        vec4 u1r = LD(u + 2 * L + 4 * v), u1i = LD(u + 3 * L + 4 * v);
        for (size_t j = 0; j < count; j++) {
            size_t a = j * sj * L + 4 * v, b = (j * sj + so) * L + 4 * v;
            vec4 ar = LD(sr + a), ai = LD(si + a), br = LD(sr + b), bi = LD(si + b);
            ST(xr + j * L + 4 * v, ar * u0r - ai * u0i + br * u1r - bi * u1i);
            ST(xi + j * L + 4 * v, ar * u0i + ai * u0r + br * u1i + bi * u1r);
        }
    }
}

SIMD_CLONES
void qode_tile_contract_bit_real(const double *s, size_t count, size_t sj, size_t so,
                                 const double *u, double *x)
{
    for (int v = 0; v < NV; v++) {
        vec4 u0 = LD(u + 4 * v), u1 = LD(u + 2 * L + 4 * v);
        for (size_t j = 0; j < count; j++) {
            size_t a = j * sj * L + 4 * v, b = (j * sj + so) * L + 4 * v;
            ST(x + j * L + 4 * v, LD(s + a) * u0 + LD(s + b) * u1);
        }
    }
}

/* y = m x: four rows of y at a time, 4 x NV four-lane accumulators, one load of
 * x[k] for four multiply-adds per vector, each accumulator one
 * multiply-add per k (so none waits on its own last one). */
SIMD_CLONES
void qode_tile_matmul(const double *m, size_t rows, size_t cols, const double *x, double *y)
{
    for (size_t r = 0; r < rows; r += 4) {
        const double *m0 = m + r * cols, *m1 = m0 + cols, *m2 = m1 + cols, *m3 = m2 + cols;
        vec4 a0[NV], a1[NV], a2[NV], a3[NV];
        for (int v = 0; v < NV; v++)
            a0[v] = a1[v] = a2[v] = a3[v] = SPLAT(0.0);
        for (size_t k = 0; k < cols; k++) {
            vec4 b0 = SPLAT(m0[k]), b1 = SPLAT(m1[k]), b2 = SPLAT(m2[k]), b3 = SPLAT(m3[k]);
            for (int v = 0; v < NV; v++) {
                vec4 xv = LD(x + k * L + 4 * v);
                a0[v] += b0 * xv;
                a1[v] += b1 * xv;
                a2[v] += b2 * xv;
                a3[v] += b3 * xv;
            }
        }
        for (int v = 0; v < NV; v++) {
            ST(y + r * L + 4 * v, a0[v]);
            ST(y + (r + 1) * L + 4 * v, a1[v]);
            ST(y + (r + 2) * L + 4 * v, a2[v]);
            ST(y + (r + 3) * L + 4 * v, a3[v]);
        }
    }
}

SIMD_CLONES
void qode_tile_abs2(const double *re, const double *im, int n, double *p)
{
    size_t count = (size_t)L << n;
    for (size_t i = 0; i < count; i += 4) {
        vec4 a = LD(re + i), b = LD(im + i);
        ST(p + i, a * a + b * b);
    }
}

SIMD_CLONES
void qode_tile_scale(const double *d, const double *re, const double *im, int n, double *lr,
                     double *li)
{
    size_t count = (size_t)L << n;
    for (size_t i = 0; i < count; i += 4) {
        vec4 f = LD(d + i);
        ST(lr + i, f * LD(re + i));
        ST(li + i, f * LD(im + i));
    }
}

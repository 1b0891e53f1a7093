/* Tile kernels: QODE_TILE_LANES circuits updated together (see tiled.h).
 *
 * Every kernel copies the lanes of the amplitudes it reads into small local
 * arrays first, computes, then writes back: the loops over lanes then have no
 * possible aliasing and vectorise.  The kernels are compiled twice (AVX2/FMA
 * and baseline x86-64) and the right one is picked when the library loads.
 *
 * The build uses -std=c11, under which GCC never fuses a * b + c into one
 * fused multiply-add; the solver relies on that to round exactly as torch
 * does.  The amplitude arithmetic here has no such contract, and the fused
 * form is both faster (half the floating-point instructions) and at least as
 * accurate, so this file alone allows it.  It must come before the includes
 * so that the inline helpers they define are compiled the same way. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/simd.h"
#include "common/fast_sincos.h"
#include "quantum/lane2.h"
#include "quantum/mat2.h"
#include "quantum/tiled.h"

#define L QODE_TILE_LANES

/* Four lanes as one vector (GCC/Clang vector extension).  aligned(8) allows
 * unaligned access and may_alias lets it read and write double arrays.  The
 * kernels work on NV such vectors per row of L lanes. */
typedef double vec4 __attribute__((vector_size(32), aligned(8), may_alias));
#define NV (L / 4)
#define LD(p) (*(const vec4 *)(const void *)(p))
#define ST(p, v) (*(vec4 *)(void *)(p) = (v))

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

/* ---- enumeration of the touched indices ----------------------------------- */

/* k-th index whose fixed bits are 0 (zeros inserted at ascending positions). */
static inline uint64_t spread(uint64_t k, const int *pos, int np)
{
    for (int j = 0; j < np; j++) {
        uint64_t low = k & (((uint64_t)1 << pos[j]) - 1);
        k = ((k >> pos[j]) << (pos[j] + 1)) | low;
    }
    return k;
}

/* ---- gate application ----------------------------------------------------- */

/* The pairs loop of tile_pairs for lane vector v; `real` is a constant at
 * each call, so each variant compiles to its own loop. */
static QODE_ALWAYS_INLINE void pairs_lane_vector(double *re, double *im, uint64_t count,
                                                 const int *pos, int np, uint64_t ctrl,
                                                 uint64_t stride, const lane_matrix *m, int v,
                                                 int real)
{
    vec4 mr[4], mi[4];
    for (int k = 0; k < 4; k++) {
        mr[k] = LD(m->r[k] + 4 * v);
        mi[k] = LD(m->i[k] + 4 * v);
    }
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i0 = spread(k, pos, np) | ctrl, i1 = i0 + stride;
        size_t o0 = i0 * L + 4 * v, o1 = i1 * L + 4 * v;
        vec4 ar = LD(re + o0), ai = LD(im + o0), br = LD(re + o1), bi = LD(im + o1);
        vec4 cr = mr[0] * ar + mr[1] * br, ci = mr[0] * ai + mr[1] * bi;
        vec4 dr = mr[2] * ar + mr[3] * br, di = mr[2] * ai + mr[3] * bi;
        if (!real) {
            cr = cr - mi[0] * ai - mi[1] * bi;
            ci = ci + mi[0] * ar + mi[1] * br;
            dr = dr - mi[2] * ai - mi[3] * bi;
            di = di + mi[2] * ar + mi[3] * br;
        }
        ST(re + o0, cr);
        ST(im + o0, ci);
        ST(re + o1, dr);
        ST(im + o1, di);
    }
}

/* 2x2 (per lane) on the pairs (i, i + 2^target) with every control bit set.
 * One vector of lanes at a time: its 8 matrix registers, 4 inputs and the
 * products fit the 16 vector registers (all NV at once would spill). */
SIMD_CLONES
static void tile_pairs(double *re, double *im, int n, const qode_gate_matrix *g,
                       const lane_matrix *m, int real_matrix)
{
    int pos[4];
    int np = qode_gate_fixed_positions(g, pos);
    uint64_t stride = (uint64_t)1 << g->target, count = ((uint64_t)1 << n) >> np;
    for (int v = 0; v < NV; v++) {
        if (real_matrix)
            pairs_lane_vector(re, im, count, pos, np, g->ctrl_mask, stride, m, v, 1);
        else
            pairs_lane_vector(re, im, count, pos, np, g->ctrl_mask, stride, m, v, 0);
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

static int all_imag_zero(const lane_matrix *m, int entries)
{
    for (int k = 0; k < entries; k++)
        for (int l = 0; l < L; l++)
            if (m->i[k][l] != 0.0)
                return 0;
    return 1;
}

/* Applies one gate, given per lane (all lanes share form and wires). */
static void tile_apply(double *re, double *im, int n, const qode_gate_matrix *const *g)
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
    case QODE_FORM_CTRL1:
        load_lanes(g, 4, &m);
        tile_pairs(re, im, n, g[0], &m, all_imag_zero(&m, 4));
        return;
    case QODE_FORM_DENSE2:
        load_lanes(g, 16, &m);
        tile_dense2(re, im, n, g[0], &m);
        return;
    }
}

/* ---- forward and read-outs ------------------------------------------------- */

static const double *lane_row(const qode_tile_job *job, int l)
{
    if (job->c->n_data == 0)
        return NULL;
    int64_t b = job->b0 + (l < job->valid ? l : 0);
    return job->data + (size_t)b * job->c->n_data;
}

/* A dense 2x2 gate on one wire, given as per-lane matrices. */
static void block_geometry(const qode_circuit *c, int wire, qode_gate_matrix *g)
{
    g->form = QODE_FORM_DENSE1;
    g->target = c->n_qubits - 1 - wire;
    g->target2 = -1;
    g->ctrl_mask = 0;
}

/* The matrices of segment `seg` in every lane (and, when dv != NULL, the
 * derivatives of a data op with respect to each of its angles). */
SIMD_CLONES
static void segment_lanes(const qode_tile_job *job, const qode_tile_segment *seg, lane2 *v,
                          lane2 *dv)
{
    if (seg->data_op < 0) {
        lane2_broadcast(seg->m, v);
        return;
    }
    if (seg->rotation) { /* U = c U(0) + s U(pi), dU/dt = (c U(pi) - s U(0)) / 2, c, s of t/2 */
        double half[L], sn[L], cs[L];
        for (int l = 0; l < L; l++)
            half[l] = lane_row(job, l)[seg->column] / 2;
        qode_sincos_array(half, sn, cs, L);
        vec4 c4[NV], s4[NV];
        for (int q = 0; q < NV; q++) {
            c4[q] = LD(cs + 4 * q);
            s4[q] = LD(sn + 4 * q);
        }
        for (int k = 0; k < 8; k++) {
            double m0 = seg->m[k], mp = seg->m_pi[k];
            for (int q = 0; q < NV; q++)
                ST(v->e[k] + 4 * q, c4[q] * m0 + s4[q] * mp);
        }
        if (dv == NULL)
            return;
        for (int k = 0; k < 8; k++) {
            double m0 = 0.5 * seg->m[k], mp = 0.5 * seg->m_pi[k];
            for (int q = 0; q < NV; q++)
                ST(dv->e[k] + 4 * q, c4[q] * mp - s4[q] * m0);
        }
        return;
    }
    /* any other data op: its matrix and derivatives, lane by lane */
    const qode_circuit *c = job->c;
    const qode_op *op = &c->ops[seg->data_op];
    for (int l = 0; l < L; l++) {
        qode_prepared_gate scratch;
        double m[8];
        const qode_prepared_gate *pg = qode_prepared_op(c, job->prepared, seg->data_op,
                                                        lane_row(job, l), job->trainable,
                                                        dv != NULL, &scratch);
        mat2_of_gate(&pg->forward, m);
        for (int k = 0; k < 8; k++)
            v->e[k][l] = m[k];
        if (dv == NULL)
            continue;
        for (int p = 0; p < qode_gate_params(op->kind); p++) {
            if (c->refs[op->param_start + p].source == QODE_PARAM_CONSTANT)
                continue;
            mat2_of_gate(&pg->derivative[p], m);
            for (int k = 0; k < 8; k++)
                dv[p].e[k][l] = m[k];
        }
    }
}

/* The product of a block's segments in every lane. */
SIMD_CLONES
static void block_product(const qode_tile_job *job, const qode_tile_step *st, lane2 *out)
{
    const qode_tile_segment *segs = job->sched->segments + st->seg_start;
    int32_t m = st->seg_count;
    if (m == 1) {
        segment_lanes(job, &segs[0], out, NULL);
        return;
    }
    /* partial products in two buffers, the last one straight into out (a
     * copy of a lane2 is 512 bytes, slower than a product) */
    lane2 partial[2], v;
    segment_lanes(job, &segs[0], &partial[0], NULL);
    for (int32_t j = 1; j < m; j++) {
        segment_lanes(job, &segs[j], &v, NULL);
        lane2_mul(&v, &partial[(j - 1) & 1], j == m - 1 ? out : &partial[j & 1]);
    }
}

/* Applies per-lane 2x2 matrices on one wire. */
static void apply_lane_2x2(double *re, double *im, const qode_circuit *c, int wire,
                           const lane2 *mats)
{
    qode_gate_matrix geometry;
    block_geometry(c, wire, &geometry);
    lane_matrix m;
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < L; l++) {
            m.r[k][l] = mats->e[2 * k][l];
            m.i[k][l] = mats->e[2 * k + 1][l];
        }
    tile_pairs(re, im, c->n_qubits, &geometry, &m, all_imag_zero(&m, 4));
}

/* The prefix column of every wire, cols[(4 * w + k) * L + l]: B_w |0> =
 * (k = 0, 1: re, im of amplitude 0; k = 2, 3: of amplitude 1) for lane l,
 * with B_w the wire's prefix block, or |0> for a wire without one. */
static void prefix_columns(const qode_tile_job *job, double *cols)
{
    const qode_tile_schedule *s = job->sched;
    int n = job->c->n_qubits;
    for (int w = 0; w < n; w++)
        for (int l = 0; l < L; l++) {
            cols[(4 * w + 0) * L + l] = 1.0;
            cols[(4 * w + 1) * L + l] = 0.0;
            cols[(4 * w + 2) * L + l] = 0.0;
            cols[(4 * w + 3) * L + l] = 0.0;
        }
    for (int32_t t = 0; t < s->main_end; t++) {
        const qode_tile_step *st = &s->steps[t];
        if (!st->prefix)
            continue;
        lane2 b;
        block_product(job, st, &b);
        static const int entry[4] = {0, 1, 4, 5}; /* column 0: (0,0) and (1,0) */
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < L; l++)
                cols[(4 * st->wire + k) * L + l] = b.e[entry[k]][l];
    }
}

/* The product state of the prefix columns: amplitude i is the product over
 * wires of their column entry at the wire's bit of i.  Built bit by bit from
 * the least significant one (wire n-1). */
SIMD_CLONES
static void product_state(double *re, double *im, int n, const double *cols)
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

/* Applies step t of the schedule (not a prefix block) to the tile. */
static void apply_step(const qode_tile_job *job, const qode_tile_step *st, double *re,
                       double *im)
{
    const qode_circuit *c = job->c;
    if (st->op < 0) {
        lane2 mats;
        block_product(job, st, &mats);
        apply_lane_2x2(re, im, c, st->wire, &mats);
        return;
    }
    qode_prepared_gate scratch[L];
    const qode_gate_matrix *g[L];
    for (int l = 0; l < L; l++)
        g[l] = &qode_prepared_op(c, job->prepared, st->op, lane_row(job, l), job->trainable, 0,
                                 &scratch[l])->forward;
    tile_apply(re, im, c->n_qubits, g);
}

/* x[j] = s[src[j]] for every amplitude j (all lanes): a permutation step. */
SIMD_CLONES
static void tile_gather(const double *sr, const double *si, const int32_t *src, size_t dim,
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

/* The forward pass into (re, im); stores the state before each step that has
 * a checkpoint slot when `checkpoints` is not NULL.  `cols`: work for
 * prefix_columns, left holding them; `other`: one more tile state, the
 * target of permutation gathers. */
static void forward_pass(const qode_tile_job *job, double *re, double *im, double *cols,
                         double *checkpoints, double *other)
{
    const qode_tile_schedule *s = job->sched;
    int n = job->c->n_qubits;
    size_t plane = (size_t)L << n;
    double *cr = re, *ci = im, *xr = other, *xi = other + plane;
    prefix_columns(job, cols);
    product_state(cr, ci, n, cols);
    for (int32_t t = 0; t < s->main_end; t++) {
        const qode_tile_step *st = &s->steps[t];
        if (st->prefix)
            continue;
        if (st->permutation) { /* gather into the other buffer and switch to it */
            tile_gather(cr, ci, s->perms + st->start, (size_t)1 << n, xr, xi);
            double *tr = cr, *ti = ci;
            cr = xr; ci = xi; xr = tr; xi = ti;
            continue;
        }
        if (checkpoints != NULL && st->checkpoint >= 0) {
            double *slot = checkpoints + (size_t)st->checkpoint * 2 * plane;
            memcpy(slot, cr, sizeof(double) * plane);
            memcpy(slot + plane, ci, sizeof(double) * plane);
        }
        apply_step(job, st, cr, ci);
    }
    if (cr != re) {
        memcpy(re, cr, sizeof(double) * plane);
        memcpy(im, ci, sizeof(double) * plane);
    }
}

void qode_tile_forward(const qode_tile_job *job, double *re, double *im, double *work)
{
    int n = job->c->n_qubits;
    forward_pass(job, re, im, work, NULL, work + (size_t)4 * n * L);
}

/* v[l] = <psi_l| P |psi_l> for the Pauli word (x, z). */
SIMD_CLONES
static void tile_pauli_expval(const double *re, const double *im, int n, uint64_t x,
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

/* Observables whose terms are all Z words (no X or Y) and few enough are
 * read and seeded in one pass over the state instead of one per term. */
#define DIAG_MAX_TERMS 64

static int diagonal_observables(const qode_observables *obs)
{
    int64_t terms = obs->term_start[obs->n_obs];
    if (terms > DIAG_MAX_TERMS)
        return 0;
    for (int64_t t = 0; t < terms; t++)
        if (obs->x_mask[t] != 0)
            return 0;
    return 1;
}

/* out[t * L + l] = <psi_l| Z_t |psi_l> for every term t of diagonal observables. */
SIMD_CLONES
static void tile_z_expvals(const double *re, const double *im, int n, const uint64_t *z,
                           int64_t terms, double *out)
{
    uint64_t dim = (uint64_t)1 << n;
    vec4 acc[DIAG_MAX_TERMS][NV];
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

/* lam_i = psi_i sum_t w_t (-1)^{popcount(i & z_t)} per lane: the adjoint seed
 * of diagonal observables, w[t * L + l] the upstream weight of term t. */
SIMD_CLONES
static void tile_z_seed(double *lr, double *li, const double *re, const double *im, int n,
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

void qode_tile_readout(const qode_tile_job *job, const double *re, const double *im,
                       double *expval, double *probs, void *states, qode_dtype dtype)
{
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n;
    const qode_observables *obs = &job->sched->obs;
    if (expval != NULL && obs->n_obs > 0 && diagonal_observables(obs)) {
        double v[DIAG_MAX_TERMS * L];
        tile_z_expvals(re, im, n, obs->z_mask, obs->term_start[obs->n_obs], v);
        for (int32_t k = 0; k < obs->n_obs; k++)
            for (int l = 0; l < job->valid; l++) {
                double total = 0.0;
                for (int64_t t = obs->term_start[k]; t < obs->term_start[k + 1]; t++)
                    total += obs->coeff[t] * v[t * L + l];
                expval[(size_t)(job->b0 + l) * obs->n_obs + k] = total;
            }
    } else if (expval != NULL && obs->n_obs > 0) {
        double v[L];
        for (int32_t k = 0; k < obs->n_obs; k++) {
            double total[L] = {0};
            for (int64_t t = obs->term_start[k]; t < obs->term_start[k + 1]; t++) {
                tile_pauli_expval(re, im, n, obs->x_mask[t], obs->z_mask[t], v);
                for (int l = 0; l < L; l++)
                    total[l] += obs->coeff[t] * v[l];
            }
            for (int l = 0; l < job->valid; l++)
                expval[(size_t)(job->b0 + l) * obs->n_obs + k] = total[l];
        }
    }
    if (probs != NULL) {
        for (int l = 0; l < job->valid; l++) {
            double *p = probs + (size_t)(job->b0 + l) * dim;
            for (size_t i = 0; i < dim; i++)
                p[i] = re[i * L + l] * re[i * L + l] + im[i * L + l] * im[i * L + l];
        }
    }
    if (states != NULL) {
        for (int l = 0; l < job->valid; l++) {
            size_t row = (size_t)(job->b0 + l) * dim;
            if (dtype == QODE_COMPLEX128) {
                double *s = (double *)states + 2 * row;
                for (size_t i = 0; i < dim; i++) {
                    s[2 * i] = re[i * L + l];
                    s[2 * i + 1] = im[i * L + l];
                }
            } else {
                float *s = (float *)states + 2 * row;
                for (size_t i = 0; i < dim; i++) {
                    s[2 * i] = (float)re[i * L + l];
                    s[2 * i + 1] = (float)im[i * L + l];
                }
            }
        }
    }
}

/* ---- adjoint ----------------------------------------------------------------- */

/* lam += w P psi per lane, w = (wr, wi) complex per lane (already times i^{#Y}). */
SIMD_CLONES
static void tile_add_pauli(double *lr, double *li, const double *re, const double *im, int n,
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

static void tile_inner(const double *lr, const double *li, const double *re, const double *im,
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

static void seed_lambda(const qode_tile_job *job, const double *grad_expval,
                        const double *grad_probs, const double *re, const double *im,
                        double *lr, double *li)
{
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n;
    const qode_observables *obs = &job->sched->obs;
    memset(lr, 0, sizeof(double) * dim * L);
    memset(li, 0, sizeof(double) * dim * L);
    if (obs->n_obs > 0 && grad_expval != NULL && diagonal_observables(obs)) {
        double w[DIAG_MAX_TERMS * L];
        for (int32_t k = 0; k < obs->n_obs; k++)
            for (int64_t t = obs->term_start[k]; t < obs->term_start[k + 1]; t++)
                for (int l = 0; l < L; l++)
                    w[t * L + l] = l < job->valid ? grad_expval[(size_t)(job->b0 + l) * obs->n_obs + k] *
                                                        obs->coeff[t]
                                                  : 0.0;
        tile_z_seed(lr, li, re, im, n, obs->z_mask, obs->term_start[obs->n_obs], w);
    } else if (obs->n_obs > 0 && grad_expval != NULL) {
        for (int32_t k = 0; k < obs->n_obs; k++) {
            for (int64_t t = obs->term_start[k]; t < obs->term_start[k + 1]; t++) {
                double wr[L], wi[L];
                int ny = __builtin_popcountll(obs->x_mask[t] & obs->z_mask[t]) & 3;
                int any = 0;
                for (int l = 0; l < L; l++) {
                    double w = l < job->valid
                                   ? grad_expval[(size_t)(job->b0 + l) * obs->n_obs + k] * obs->coeff[t]
                                   : 0.0;
                    any |= (w != 0.0);
                    /* w i^{#Y} */
                    wr[l] = ny == 0 ? w : ny == 2 ? -w : 0.0;
                    wi[l] = ny == 1 ? w : ny == 3 ? -w : 0.0;
                }
                if (any)
                    tile_add_pauli(lr, li, re, im, n, obs->x_mask[t], obs->z_mask[t], wr, wi);
            }
        }
    }
    if (grad_probs != NULL) {
        for (int l = 0; l < job->valid; l++) {
            const double *h = grad_probs + (size_t)(job->b0 + l) * dim;
            for (size_t i = 0; i < dim; i++) {
                lr[i * L + l] += h[i] * re[i * L + l];
                li[i * L + l] += h[i] * im[i * L + l];
            }
        }
    }
}

/* The loop of tile_reduced for lane vector v; `update` (a constant at each
 * call) also applies m to lam in the same pass, after reading it. */
static QODE_ALWAYS_INLINE void reduced_lane_vector(double *lr, double *li, const double *re,
                                                   const double *im, uint64_t dim,
                                                   uint64_t stride, const lane2 *m, int v,
                                                   int update, lane2 *out)
{
    vec4 acc[8];
    for (int k = 0; k < 8; k++)
        acc[k] = (vec4){0, 0, 0, 0};
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
                    /* phi_b conj(lam_a) */
                    acc[2 * (2 * b + a)] += pr[b] * xr[a] + pi[b] * xi[a];
                    acc[2 * (2 * b + a) + 1] += pi[b] * xr[a] - pr[b] * xi[a];
                }
            if (!update)
                continue;
            for (int r = 0; r < 2; r++) { /* lam_r <- m_r0 lam_0 + m_r1 lam_1 */
                vec4 m0r = LD(m->e[4 * r] + 4 * v), m0i = LD(m->e[4 * r + 1] + 4 * v);
                vec4 m1r = LD(m->e[4 * r + 2] + 4 * v), m1i = LD(m->e[4 * r + 3] + 4 * v);
                ST(lr + o[r], m0r * xr[0] - m0i * xi[0] + m1r * xr[1] - m1i * xi[1]);
                ST(li + o[r], m0r * xi[0] + m0i * xr[0] + m1r * xi[1] + m1i * xr[1]);
            }
        }
    }
    for (int k = 0; k < 8; k++)
        ST(out->e[k] + 4 * v, acc[k]);
}

/* R[b][a] = sum over pairs of phi_b conj(lam_a) per lane (b, a: the value of
 * the target bit), the reduced 2x2 matrix from which <lam| (1 x D) |phi> =
 * sum_ab D_ab R[b][a] follows for any 2x2 D on that wire.  With `update`
 * not NULL, lam <- update lam on that wire afterwards, fused into the same
 * pass over the state. */
SIMD_CLONES
static void tile_reduced(double *lr, double *li, const double *re, const double *im, int n,
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

static void add_gradient(const qode_tile_job *job, const qode_param_ref *r, int l, double value,
                         double *grad_data, double *grad_trainable)
{
    if (r->source == QODE_PARAM_DATA)
        grad_data[(size_t)(job->b0 + l) * job->c->n_data + r->index] += value;
    else
        grad_trainable[r->index] += value;
}

/* The per-lane 2x2 matrices of a fused block B = V_{m-1} ... V_0 (its
 * segments): V_s, the suffixes S_s = V_{m-1} ... V_{s+1}, and the
 * derivatives dV_s of data ops (3 per segment, one per angle). */
typedef struct {
    lane2 *v;
    lane2 *suffix;
    lane2 *dv;
} block_mats;

static block_mats block_scratch(const qode_tile_step *st, double *scratch)
{
    size_t m = (size_t)st->seg_count;
    lane2 *base = (lane2 *)(void *)scratch;
    block_mats b = {base, base + m, base + 2 * m};
    return b;
}

/* Fills bm for block st and returns B^+ in inv. */
SIMD_CLONES
static void block_lane_matrices(const qode_tile_job *job, const qode_tile_step *st,
                                const block_mats *bm, lane2 *inv)
{
    int m = st->seg_count;
    const qode_tile_segment *segs = job->sched->segments + st->seg_start;
    for (int j = 0; j < m; j++)
        segment_lanes(job, &segs[j], &bm->v[j], &bm->dv[3 * j]);
    lane2_identity(&bm->suffix[m - 1]);
    for (int j = m - 2; j >= 0; j--)
        lane2_mul(&bm->suffix[j + 1], &bm->v[j + 1], &bm->suffix[j]);
    lane2 b;
    lane2_mul(&bm->suffix[0], &bm->v[0], &b); /* B = S_0 V_0 */
    lane2_dagger(&b, inv);
}

/* The gradients of a block's angles from R, the per-lane reduced matrix of
 * (phi before the block, lam after it): with Q_s = P_s R S_s
 * (P_s = V_{s-1} ... V_0),
 *   an angle of a data op V_s:      2 Re Tr(dV_s Q_s)   (per lane),
 *   a trainable angle in a run s:   2 Re Tr(A sum_lanes Q_s)  (A: see tiled.h). */
SIMD_CLONES
static void block_gradients(const qode_tile_job *job, const qode_tile_step *st,
                            const block_mats *bm, const lane2 *red, double *grad_data,
                            double *grad_trainable)
{
    const qode_circuit *c = job->c;
    int m = st->seg_count;
    const qode_tile_segment *segs = job->sched->segments + st->seg_start;
    /* P_j R, updated as j grows, in two buffers (no 512-byte copies) */
    lane2 partial[2], qbuf;
    const lane2 *pr = red;
    for (int j = 0; j < m; j++) {
        const qode_tile_segment *seg = &segs[j];
        if (j > 0) {
            lane2_mul(&bm->v[j - 1], pr, &partial[j & 1]);
            pr = &partial[j & 1];
        }
        if (seg->data_op < 0 && seg->grad_count == 0)
            continue;
        const lane2 *q = pr;
        if (j < m - 1) {
            lane2_mul(pr, &bm->suffix[j], &qbuf);
            q = &qbuf;
        }
        if (seg->data_op < 0) {
            double qsum[8] = {0};
            for (int k = 0; k < 8; k++)
                for (int l = 0; l < job->valid; l++)
                    qsum[k] += q->e[k][l];
            for (int32_t k = 0; k < seg->grad_count; k++) {
                const qode_tile_shared_grad *g = &job->sched->grads[seg->grad_start + k];
                grad_trainable[g->index] += 2.0 * mat2_trace_re(g->a, qsum);
            }
            continue;
        }
        const qode_op *op = &c->ops[seg->data_op];
        for (int k = 0; k < qode_gate_params(op->kind); k++) {
            const qode_param_ref *r = &c->refs[op->param_start + k];
            if (r->source == QODE_PARAM_CONSTANT)
                continue;
            double t[L];
            lane2_trace_re(&bm->dv[3 * j + k], q, t);
            for (int l = 0; l < job->valid; l++)
                add_gradient(job, r, l, 2.0 * t[l], grad_data, grad_trainable);
        }
    }
}

/* Where the adjoint sweep keeps its states (see qode_tile_work_doubles). */
typedef struct {
    double *pr, *pi;     /* the forward state (un-applied step by step without checkpoints) */
    double *lr, *li;     /* lambda */
    double *xr, *xi;     /* scratch of the prefix contractions */
    double *checkpoints; /* n_checkpoints stored states */
    double *mats;        /* block_mats */
    double *cols;        /* prefix columns */
} adjoint_work;

static adjoint_work adjoint_layout(const qode_tile_schedule *s, int n, double *work)
{
    size_t plane = (size_t)L << n;
    adjoint_work a;
    a.pr = work;
    a.pi = a.pr + plane;
    a.lr = a.pi + plane;
    a.li = a.lr + plane;
    a.xr = a.li + plane;
    a.xi = a.xr + plane;
    a.checkpoints = a.xi + plane;
    a.cols = a.checkpoints + (size_t)s->n_checkpoints * 2 * plane;
    a.mats = a.cols + (size_t)4 * n * L;
    return a;
}

/* The state before step st: its checkpoint, or pr/pi after un-applying the
 * step (inv: per-lane inverse for a block, NULL for a multi-qubit op). */
static void state_before(const qode_tile_job *job, const qode_tile_step *st,
                         const adjoint_work *w, const lane2 *inv, const double **phr,
                         const double **phi)
{
    size_t plane = (size_t)L << job->c->n_qubits;
    if (st->checkpoint >= 0) {
        *phr = w->checkpoints + (size_t)st->checkpoint * 2 * plane;
        *phi = *phr + plane;
        return;
    }
    *phr = w->pr;
    *phi = w->pi;
    if (job->sched->n_checkpoints > 0)
        return; /* checkpoint mode: a step without one has nothing to differentiate */
    if (inv != NULL) {
        apply_lane_2x2(w->pr, w->pi, job->c, st->wire, inv);
        return;
    }
    qode_prepared_gate scratch[L];
    const qode_gate_matrix *g[L];
    for (int l = 0; l < L; l++)
        g[l] = &qode_prepared_op(job->c, job->prepared, st->op, lane_row(job, l),
                                 job->trainable, 1, &scratch[l])->inverse;
    tile_apply(w->pr, w->pi, job->c->n_qubits, g);
}

/* The adjoint step of a block: gradients from the reduced matrix of (phi
 * before, lam after), then lam <- B^+ lam when update_lambda. */
static void block_adjoint(const qode_tile_job *job, const qode_tile_step *st,
                          const adjoint_work *w, int update_lambda, double *grad_data,
                          double *grad_trainable)
{
    int n = job->c->n_qubits;
    block_mats bm = block_scratch(st, w->mats);
    lane2 inv, red;
    block_lane_matrices(job, st, &bm, &inv);
    const double *phr, *phi;
    state_before(job, st, w, &inv, &phr, &phi);
    tile_reduced(w->lr, w->li, phr, phi, n, n - 1 - st->wire, update_lambda ? &inv : NULL,
                 &red);
    block_gradients(job, st, &bm, &red, grad_data, grad_trainable);
}

/* The adjoint step of a multi-qubit op. */
static void op_adjoint(const qode_tile_job *job, const qode_tile_step *st,
                       const adjoint_work *w, int update_lambda, double *grad_data,
                       double *grad_trainable)
{
    const qode_circuit *c = job->c;
    int n = c->n_qubits;
    const qode_op *op = &c->ops[st->op];
    qode_prepared_gate scratch[L];
    const qode_prepared_gate *pg[L];
    const qode_gate_matrix *g[L];
    for (int l = 0; l < L; l++)
        pg[l] = qode_prepared_op(c, job->prepared, st->op, lane_row(job, l), job->trainable, 1,
                                 &scratch[l]);
    const double *phr, *phi;
    state_before(job, st, w, NULL, &phr, &phi);
    int np = qode_gate_params(op->kind);
    for (int j = 0; j < np; j++) {
        const qode_param_ref *r = &c->refs[op->param_start + j];
        if (r->source == QODE_PARAM_CONSTANT)
            continue;
        double acc[L] = {0};
        for (int l = 0; l < L; l++)
            g[l] = &pg[l]->derivative[j];
        tile_inner(w->lr, w->li, phr, phi, n, g, acc);
        for (int l = 0; l < job->valid; l++)
            add_gradient(job, r, l, 2.0 * acc[l], grad_data, grad_trainable);
    }
    if (update_lambda) {
        for (int l = 0; l < L; l++)
            g[l] = &pg[l]->inverse;
        tile_apply(w->lr, w->li, n, g);
    }
}

/* x[j] = s[j * sj] u0 + s[j * sj + so] u1 for j < count (per lane, u in the
 * cols layout): one bit of a vector contracted with a column.  The top bit
 * of 2 count entries has sj = 1, so = count; the bottom bit sj = 2, so = 1.
 * x may be s (each x[j] is written after its inputs are read, and no later
 * j reads it). */
SIMD_CLONES
static void contract_bit(const double *sr, const double *si, size_t count, size_t sj,
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

/* Gradients of the prefix blocks.  lam is the adjoint state right after the
 * prefix, where the forward state is the product of the columns u_w.  For the
 * block on wire w (bit p), phi before it is that product with |0> on w, so
 *   R[0][a] = sum over i with bit p = a of conj(lam_i) prod_{q != p} u_q[bit q of i],
 *   R[1][a] = 0.
 * T_k, lam^* contracted over bits 0..k-1, is kept for every k (T_0 in lam,
 * the others in pr/pi, free by now); bit p then contracts T_p over its top
 * bits in x. */
static void prefix_adjoint(const qode_tile_job *job, const adjoint_work *w, double *grad_data,
                           double *grad_trainable)
{
    const qode_tile_schedule *s = job->sched;
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n;
    /* T_0 = conj(lam), in place (lam is not needed any more); T_1, T_2, ...
     * packed in pr/pi */
    for (size_t i = 0; i < dim * L; i++)
        w->li[i] = -w->li[i];
    size_t offset[64];
    const double *tr = w->lr, *ti = w->li;
    size_t size = dim, next = 0;
    for (int k = 0; k < n - 1; k++) { /* T_{k+1} from T_k over bit k (wire n-1-k) */
        offset[k + 1] = next;
        contract_bit(tr, ti, size / 2, 2, 1, w->cols + (size_t)4 * (n - 1 - k) * L,
                     w->pr + next * L, w->pi + next * L);
        tr = w->pr + next * L;
        ti = w->pi + next * L;
        next += size / 2;
        size /= 2;
    }
    lane2 red;
    for (int32_t t = 0; t < s->main_end; t++) {
        const qode_tile_step *st = &s->steps[t];
        if (!st->prefix)
            continue;
        int p = n - 1 - st->wire;
        size_t len = dim >> p; /* entries of T_p */
        const double *sr = p == 0 ? w->lr : w->pr + offset[p] * L;
        const double *si = p == 0 ? w->li : w->pi + offset[p] * L;
        double *xr = w->xr, *xi = w->xi;
        for (int q = n - 1; q > p; q--) { /* contract the top bit q */
            len /= 2;
            contract_bit(sr, si, len, 1, len, w->cols + (size_t)4 * (n - 1 - q) * L, xr, xi);
            sr = xr;
            si = xi;
        }
        for (int l = 0; l < L; l++) {
            red.e[0][l] = sr[l];     red.e[1][l] = si[l];     /* R[0][0] */
            red.e[2][l] = sr[L + l]; red.e[3][l] = si[L + l]; /* R[0][1] */
            red.e[4][l] = red.e[5][l] = red.e[6][l] = red.e[7][l] = 0.0;
        }
        block_mats bm = block_scratch(st, w->mats);
        lane2 inv;
        block_lane_matrices(job, st, &bm, &inv);
        block_gradients(job, st, &bm, &red, grad_data, grad_trainable);
    }
}

/* Un-applies a permutation step: lam (and without checkpoints phi) gathered
 * with the inverse table through x; lam and x trade places. */
static void permutation_adjoint(const qode_tile_job *job, const qode_tile_step *st,
                                adjoint_work *w)
{
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n, plane = (size_t)L << n;
    const int32_t *inverse = job->sched->perms + st->start + dim;
    if (job->sched->n_checkpoints == 0) {
        tile_gather(w->pr, w->pi, inverse, dim, w->xr, w->xi);
        memcpy(w->pr, w->xr, sizeof(double) * plane);
        memcpy(w->pi, w->xi, sizeof(double) * plane);
    }
    tile_gather(w->lr, w->li, inverse, dim, w->xr, w->xi);
    double *tr = w->lr, *ti = w->li;
    w->lr = w->xr; w->li = w->xi;
    w->xr = tr; w->xi = ti;
}

void qode_tile_adjoint(const qode_tile_job *job, const double *grad_expval,
                       const double *grad_probs, double *work, double *grad_data,
                       double *grad_trainable)
{
    const qode_circuit *c = job->c;
    const qode_tile_schedule *s = job->sched;
    adjoint_work w = adjoint_layout(s, c->n_qubits, work);
    forward_pass(job, w.pr, w.pi, w.cols, s->n_checkpoints > 0 ? w.checkpoints : NULL, w.xr);
    seed_lambda(job, grad_expval, grad_probs, w.pr, w.pi, w.lr, w.li);
    if (c->n_data > 0)
        for (int l = 0; l < job->valid; l++)
            memset(grad_data + (size_t)(job->b0 + l) * c->n_data, 0, sizeof(double) * c->n_data);
    /* the first non-prefix step: lam need not move past it unless a prefix follows */
    int32_t first = 0;
    while (first < s->main_end && s->steps[first].prefix)
        first++;
    for (int32_t t = s->main_end - 1; t >= 0; t--) {
        const qode_tile_step *st = &s->steps[t];
        if (st->prefix)
            continue;
        int update = t > first || s->n_prefix > 0;
        if (st->permutation) {
            permutation_adjoint(job, st, &w);
            continue;
        }
        if (st->op < 0)
            block_adjoint(job, st, &w, update, grad_data, grad_trainable);
        else
            op_adjoint(job, st, &w, update, grad_data, grad_trainable);
    }
    if (s->n_prefix > 0)
        prefix_adjoint(job, &w, grad_data, grad_trainable);
}

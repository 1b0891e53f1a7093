/* The product-state prefix of the tiled path (see tiled_prefix.h).
 *
 * A prefix block B = V_{m-1} ... V_0 (its segments) is only ever applied to
 * |0>, so the forward pass needs v_m = B|0> with v_{s+1} = V_s v_s, and the
 * adjoint needs, for an angle t of segment s,
 *     <lam| dB/dt |0 on the wire, the other columns elsewhere>
 *         = k^T V_{m-1} ... V_{s+1} (dV_s/dt) v_s = nu_s^T (dV_s/dt) v_s,
 * where k is lam contracted with the other wires' columns (conjugated) and
 * nu_{s-1} = V_s^T nu_s.  Everything is a 2x2 matrix times a 2-vector per
 * lane.  Compiled like tiled.c (fused multiply-adds allowed). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif
#include <string.h>

#include "common/simd.h"
#include "common/fast_sincos.h"
#include "quantum/mat2.h"
#include "quantum/tile_kernels.h"
#include "quantum/tiled_blocks.h"
#include "quantum/tiled_prefix.h"

/* A complex 2-vector per lane, laid out as one wire's prefix column: e[0],
 * e[1] the re and im of entry 0, e[2], e[3] of entry 1. */
typedef struct {
    double e[4][L];
} lane_vec;

/* (A loop of stores: memset of these 256 bytes became a slow `rep stos`.) */
static QODE_ALWAYS_INLINE void set_ket_zero(lane_vec *x)
{
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < L; l++)
            x->e[k][l] = k == 0 ? 1.0 : 0.0;
}

/* cos and sin of half of every data column, per lane: c[k * L + l],
 * s[k * L + l] for column k of lane l's row (NULL: not computed, each
 * rotation computes its own). */
typedef struct {
    const double *c, *s;
} half_angles;

/* The most data columns whose half angles are computed together. */
#define ANGLE_TABLE_COLUMNS 64

/* Lanes 4v .. 4v+3 of y = m x, with the entries of m as vectors of lanes:
 * (a0, a1) row 0, (b0, b1) row 1, each as re, im.  All of x is loaded
 * before y is stored, so y may alias x. */
static QODE_ALWAYS_INLINE void rows_times_vec(vec4 a0r, vec4 a0i, vec4 a1r, vec4 a1i, vec4 b0r,
                                              vec4 b0i, vec4 b1r, vec4 b1i, const lane_vec *x,
                                              lane_vec *y, int v)
{
    vec4 x0r = LD(x->e[0] + 4 * v), x0i = LD(x->e[1] + 4 * v);
    vec4 x1r = LD(x->e[2] + 4 * v), x1i = LD(x->e[3] + 4 * v);
    ST(y->e[0] + 4 * v, a0r * x0r - a0i * x0i + a1r * x1r - a1i * x1i);
    ST(y->e[1] + 4 * v, a0r * x0i + a0i * x0r + a1r * x1i + a1i * x1r);
    ST(y->e[2] + 4 * v, b0r * x0r - b0i * x0i + b1r * x1r - b1i * x1i);
    ST(y->e[3] + 4 * v, b0r * x0i + b0i * x0r + b1r * x1i + b1i * x1r);
}

/* Row-major entry numbers of (0, 0), (0, 1), (1, 0), (1, 1) of m, or of m^T. */
static const int entry_of[2][4] = {{0, 1, 2, 3}, {0, 2, 1, 3}};

/* y = m x (transpose = 0) or y = m^T x (transpose = 1) for a 2x2 m shared
 * by all lanes (8 doubles, row-major, interleaved). */
static QODE_ALWAYS_INLINE void shared_mat_vec(const double *m, int transpose, const lane_vec *x,
                                              lane_vec *y)
{
    const int *k = entry_of[transpose];
#define RE(j) ((vec4){m[2 * k[j]], m[2 * k[j]], m[2 * k[j]], m[2 * k[j]]})
#define IM(j) ((vec4){m[2 * k[j] + 1], m[2 * k[j] + 1], m[2 * k[j] + 1], m[2 * k[j] + 1]})
    for (int v = 0; v < NV; v++)
        rows_times_vec(RE(0), IM(0), RE(1), IM(1), RE(2), IM(2), RE(3), IM(3), x, y, v);
#undef RE
#undef IM
}

/* The same with a matrix per lane. */
static QODE_ALWAYS_INLINE void lane_mat_vec(const lane2 *m, int transpose, const lane_vec *x,
                                            lane_vec *y)
{
    const int *k = entry_of[transpose];
#define RE(j) LD(m->e[2 * k[j]] + 4 * v)
#define IM(j) LD(m->e[2 * k[j] + 1] + 4 * v)
    for (int v = 0; v < NV; v++)
        rows_times_vec(RE(0), IM(0), RE(1), IM(1), RE(2), IM(2), RE(3), IM(3), x, y, v);
#undef RE
#undef IM
}

/* y = c a + s b per lane (c, s: L doubles each). */
static QODE_ALWAYS_INLINE void lane_combine(const double *c, const double *s, const lane_vec *a,
                                            const lane_vec *b, lane_vec *y)
{
    for (int v = 0; v < NV; v++) {
        vec4 cv = LD(c + 4 * v), sv = LD(s + 4 * v);
        for (int k = 0; k < 4; k++)
            ST(y->e[k] + 4 * v, cv * LD(a->e[k] + 4 * v) + sv * LD(b->e[k] + 4 * v));
    }
}

/* t[l] = Re (x^T y) per lane (no conjugation). */
static QODE_ALWAYS_INLINE void bilinear_re(const lane_vec *x, const lane_vec *y, double *t)
{
    for (int v = 0; v < NV; v++) {
        int o = 4 * v;
        ST(t + o, LD(x->e[0] + o) * LD(y->e[0] + o) - LD(x->e[1] + o) * LD(y->e[1] + o) +
                      LD(x->e[2] + o) * LD(y->e[2] + o) - LD(x->e[3] + o) * LD(y->e[3] + o));
    }
}

/* cos and sin of half the angle in data column `column`, per lane:
 * where they lie in the table (read in place: copied into small arrays,
 * stored in halves and loaded whole, they stall store forwarding), or
 * computed into own (L cosines, then L sines) without one.  Also copied to
 * cs[0..L) and cs[L..2L) when cs is not NULL (the adjoint's record). */
static QODE_ALWAYS_INLINE void half_angle_sincos(const qode_tile_job *job, int32_t column,
                                                 half_angles table, double *own, double *cs,
                                                 const double **c, const double **s)
{
    if (table.c != NULL) {
        *c = table.c + (size_t)column * L;
        *s = table.s + (size_t)column * L;
    } else {
        double half[L];
        for (int l = 0; l < L; l++)
            half[l] = qode_tile_lane_row(job, l)[column] / 2;
        qode_sincos_array(half, own + L, own, L);
        *c = own;
        *s = own + L;
    }
    if (cs != NULL) {
        memcpy(cs, *c, sizeof(double) * L);
        memcpy(cs + L, *s, sizeof(double) * L);
    }
}

/* y = V x for segment seg in every lane.  A rotation is V = c U(0) + s U(pi)
 * with c, s of half its angle; they are returned in cs[0..L) and cs[L..2L)
 * when cs is not NULL. */
SIMD_CLONES
static void segment_apply(const qode_tile_job *job, const qode_tile_segment *seg,
                          half_angles table, const lane_vec *x, lane_vec *y, double *cs)
{
    if (seg->data_op < 0) {
        shared_mat_vec(seg->m, 0, x, y);
        return;
    }
    if (seg->rotation) {
        double own[2 * L];
        const double *c, *s;
        half_angle_sincos(job, seg->column, table, own, cs, &c, &s);
        lane_vec a, b;
        shared_mat_vec(seg->m, 0, x, &a);
        shared_mat_vec(seg->m_pi, 0, x, &b);
        lane_combine(c, s, &a, &b, y);
        return;
    }
    lane2 v;
    qode_tile_segment_lanes(job, seg, &v, NULL);
    lane_mat_vec(&v, 0, x, y);
}

/* y = V |0> (the first column of V) for the first segment of a block,
 * which always acts on |0>: no matrix-vector product.  cs as for
 * segment_apply. */
SIMD_CLONES
static void segment_first_column(const qode_tile_job *job, const qode_tile_segment *seg,
                                 half_angles table, lane_vec *y, double *cs)
{
    /* entries (0, 0) and (1, 0), re and im: m[0], m[1], m[4], m[5] */
    static const int first_column[4] = {0, 1, 4, 5};
    if (seg->data_op < 0) {
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < L; l++)
                y->e[k][l] = seg->m[first_column[k]];
        return;
    }
    if (seg->rotation) {
        double own[2 * L];
        const double *c, *s;
        half_angle_sincos(job, seg->column, table, own, cs, &c, &s);
        for (int v = 0; v < NV; v++) {
            vec4 cv = LD(c + 4 * v), sv = LD(s + 4 * v);
            for (int k = 0; k < 4; k++)
                ST(y->e[k] + 4 * v, cv * seg->m[first_column[k]] + sv * seg->m_pi[first_column[k]]);
        }
        return;
    }
    lane2 v;
    qode_tile_segment_lanes(job, seg, &v, NULL);
    for (int k = 0; k < 4; k++)
        memcpy(y->e[k], v.e[first_column[k]], sizeof(double) * L);
}

/* y = V_j x for segment j of a block's segments; the first acts on |0>
 * (x unused), so it is only its first column.  cs as for segment_apply. */
static QODE_ALWAYS_INLINE void block_segment(const qode_tile_job *job,
                                             const qode_tile_segment *segs, int32_t j,
                                             half_angles table, const lane_vec *x, lane_vec *y,
                                             double *cs)
{
    if (j == 0)
        segment_first_column(job, &segs[0], table, y, cs);
    else
        segment_apply(job, &segs[j], table, x, y, cs);
}

/* Doubles of the record of one prefix block: v_0 .. v_m, then (c, s) of
 * each segment (used by rotations only). */
static size_t block_record_doubles(const qode_tile_step *st)
{
    size_t m = (size_t)st->seg_count;
    return (m + 1) * 4 * L + m * 2 * L;
}

size_t qode_tile_prefix_record_doubles(const qode_tile_schedule *s)
{
    size_t total = 0;
    for (int32_t t = 0; t < s->main_end; t++)
        if (s->steps[t].prefix)
            total += block_record_doubles(&s->steps[t]);
    return total;
}

/* v_0 .. v_m of prefix block st into v, and each rotation's (c, s) into cs. */
static void block_forward(const qode_tile_job *job, const qode_tile_step *st,
                          half_angles table, lane_vec *v, double *cs)
{
    const qode_tile_segment *segs = job->sched->segments + st->seg_start;
    set_ket_zero(&v[0]);
    for (int32_t j = 0; j < st->seg_count; j++)
        block_segment(job, segs, j, table, &v[j], &v[j + 1], cs + (size_t)2 * L * j);
}

/* Every half angle of the tile in one call (when there are at most
 * ANGLE_TABLE_COLUMNS data columns), into sn and cs: the independent lanes
 * of the sin/cos polynomials overlap in the pipeline, where one rotation at
 * a time waits on each. */
static QODE_ALWAYS_INLINE half_angles angle_table(const qode_tile_job *job, double *sn,
                                                  double *cs)
{
    int32_t n_data = job->c->n_data;
    half_angles table = {NULL, NULL};
    if (n_data == 0 || n_data > ANGLE_TABLE_COLUMNS)
        return table;
    double half[ANGLE_TABLE_COLUMNS * L];
    for (int l = 0; l < L; l++) {
        const double *row = qode_tile_lane_row(job, l);
        for (int32_t k = 0; k < n_data; k++)
            half[k * L + l] = row[k] / 2;
    }
    qode_sincos_array(half, sn, cs, n_data * L);
    table.c = cs;
    table.s = sn;
    return table;
}

SIMD_CLONES
void qode_tile_prefix_columns(const qode_tile_job *job, double *cols, double *record)
{
    const qode_tile_schedule *s = job->sched;
    int n = job->c->n_qubits;
    double sn[ANGLE_TABLE_COLUMNS * L], cs[ANGLE_TABLE_COLUMNS * L];
    half_angles table = angle_table(job, sn, cs);
    lane_vec x[2];
    set_ket_zero(&x[0]);
    for (int w = 0; w < n; w++)
        memcpy(cols + (size_t)4 * w * L, &x[0], sizeof(lane_vec));
    for (int32_t t = 0; t < s->main_end; t++) {
        const qode_tile_step *st = &s->steps[t];
        if (!st->prefix)
            continue;
        const lane_vec *column;
        if (record != NULL) { /* every v_s kept for the adjoint */
            lane_vec *v = (lane_vec *)(void *)record;
            block_forward(job, st, table, v, record + (size_t)(st->seg_count + 1) * 4 * L);
            column = &v[st->seg_count];
            record += block_record_doubles(st);
        } else { /* only the last: two vectors in turn */
            const qode_tile_segment *segs = s->segments + st->seg_start;
            int cur = 0;
            set_ket_zero(&x[0]);
            for (int32_t j = 0; j < st->seg_count; j++, cur ^= 1)
                block_segment(job, segs, j, table, &x[cur], &x[cur ^ 1], NULL);
            column = &x[cur];
        }
        memcpy(cols + (size_t)4 * st->wire * L, column, sizeof(lane_vec));
    }
}

/* Adds the gradients of prefix block st, given k (see the top of the file)
 * and the block's record from qode_tile_prefix_columns. */
SIMD_CLONES
static void block_gradients(const qode_tile_job *job, const qode_tile_step *st,
                            const lane_vec *kappa, const double *record, double *grad_data,
                            double *grad_trainable)
{
    const qode_circuit *c = job->c;
    const qode_tile_segment *segs = job->sched->segments + st->seg_start;
    int m = st->seg_count;
    const lane_vec *v = (const lane_vec *)(const void *)record; /* v[0 .. m] */
    const double *cs = record + (size_t)(m + 1) * 4 * L;
    lane_vec nu[2];
    int cur = 0;
    nu[0] = *kappa;
    for (int s = m - 1; s >= 0; s--) {
        const qode_tile_segment *seg = &segs[s];
        const lane_vec *x = &v[s], *y = &nu[cur];
        lane_vec *next = &nu[cur ^ 1];
        if (seg->data_op < 0) { /* trainable angles: 2 Re Tr(A X), X[b][a] = sum_l x_b y_a */
            if (seg->grad_count > 0) {
                vec4 acc[8] = {0};
                for (int v = 0; v < NV; v++) {
                    vec4 keep; /* 1 or 0 per lane */
                    qode_valid_lanes(job->valid, v, &keep);
                    for (int b = 0; b < 2; b++)
                        for (int a = 0; a < 2; a++) {
                            vec4 xr = keep * LD(x->e[2 * b] + 4 * v);
                            vec4 xi = keep * LD(x->e[2 * b + 1] + 4 * v);
                            vec4 yr = LD(y->e[2 * a] + 4 * v), yi = LD(y->e[2 * a + 1] + 4 * v);
                            acc[2 * (2 * b + a)] += xr * yr;
                            acc[2 * (2 * b + a)] -= xi * yi;
                            acc[2 * (2 * b + a) + 1] += xr * yi;
                            acc[2 * (2 * b + a) + 1] += xi * yr;
                        }
                }
                qode_tile_shared_run_gradients(job, seg, acc, grad_trainable);
            }
            if (s > 0)
                shared_mat_vec(seg->m, 1, y, next);
        } else if (seg->rotation) {
            /* dV/dt = (c U(pi) - s U(0)) / 2 */
            const double *co = cs + (size_t)2 * L * s, *si = co + L;
            lane_vec a, b;
            double ta[L], tb[L];
            shared_mat_vec(seg->m, 0, x, &a);
            shared_mat_vec(seg->m_pi, 0, x, &b);
            bilinear_re(y, &a, ta);
            bilinear_re(y, &b, tb);
            const qode_param_ref *r = &c->refs[c->ops[seg->data_op].param_start];
            for (int l = 0; l < job->valid; l++)
                qode_tile_add_gradient(job, r, l, co[l] * tb[l] - si[l] * ta[l], grad_data,
                                       grad_trainable);
            if (s > 0) { /* V^T y = c U(0)^T y + s U(pi)^T y */
                shared_mat_vec(seg->m, 1, y, &a);
                shared_mat_vec(seg->m_pi, 1, y, &b);
                lane_combine(co, si, &a, &b, next);
            }
        } else { /* any other data op: its matrices per lane */
            lane2 vm, dv[3];
            const qode_op *op = &c->ops[seg->data_op];
            qode_tile_segment_lanes(job, seg, &vm, dv);
            for (int p = 0; p < qode_gate_params(op->kind); p++) {
                const qode_param_ref *r = &c->refs[op->param_start + p];
                if (r->source == QODE_PARAM_CONSTANT)
                    continue;
                lane_vec d;
                double t[L];
                lane_mat_vec(&dv[p], 0, x, &d);
                bilinear_re(y, &d, t);
                for (int l = 0; l < job->valid; l++)
                    qode_tile_add_gradient(job, r, l, 2.0 * t[l], grad_data, grad_trainable);
            }
            if (s > 0)
                lane_mat_vec(&vm, 1, y, next);
        }
        cur ^= 1;
    }
}

/* T = S u0 + S' u1 over one bit (see qode_tile_contract_bit), complex or
 * real (then the imaginary planes are neither read nor written). */
static void contract_bit(int real, const double *sr, const double *si, size_t count, size_t sj,
                         size_t so, const double *u, double *xr, double *xi)
{
    if (real)
        qode_tile_contract_bit_real(sr, count, sj, so, u, xr);
    else
        qode_tile_contract_bit(sr, si, count, sj, so, u, xr, xi);
}

/* lam (T_0 = conj lam) is contracted with the columns bit by bit: T_{k+1}
 * from T_k over bit k (wire n-1-k), every T_k kept (T_0 in lam, the others
 * packed in t); the block on bit p then contracts T_p over its top bits in
 * x, which leaves k for that wire. */
SIMD_CLONES
void qode_tile_prefix_adjoint(const qode_tile_job *job, int real, double *lr, double *li,
                              double *tr, double *ti, double *xr, double *xi, const double *cols,
                              const double *record, double *grad_data, double *grad_trainable)
{
    const qode_tile_schedule *s = job->sched;
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n;
    if (!real)
        for (size_t i = 0; i < dim * L; i++)
            li[i] = -li[i];
    size_t offset[64];
    const double *sr = lr, *si = li;
    size_t size = dim, next = 0;
    for (int k = 0; k < n - 1; k++) {
        offset[k + 1] = next;
        contract_bit(real, sr, si, size / 2, 2, 1, cols + (size_t)4 * (n - 1 - k) * L,
                     tr + next * L, ti + next * L);
        sr = tr + next * L;
        si = ti + next * L;
        next += size / 2;
        size /= 2;
    }
    for (int32_t t = 0; t < s->main_end; t++) {
        const qode_tile_step *st = &s->steps[t];
        if (!st->prefix)
            continue;
        int p = n - 1 - st->wire;
        size_t len = dim >> p; /* entries of T_p */
        const double *ur = p == 0 ? lr : tr + offset[p] * L;
        const double *ui = p == 0 ? li : ti + offset[p] * L;
        for (int q = n - 1; q > p; q--) { /* contract the top bit q */
            len /= 2;
            contract_bit(real, ur, ui, len, 1, len, cols + (size_t)4 * (n - 1 - q) * L, xr, xi);
            ur = xr;
            ui = xi;
        }
        lane_vec kappa;
        memcpy(kappa.e[0], ur, sizeof(double) * L);
        memcpy(kappa.e[2], ur + L, sizeof(double) * L);
        if (real) {
            memset(kappa.e[1], 0, sizeof(double) * L);
            memset(kappa.e[3], 0, sizeof(double) * L);
        } else {
            memcpy(kappa.e[1], ui, sizeof(double) * L);
            memcpy(kappa.e[3], ui + L, sizeof(double) * L);
        }
        block_gradients(job, st, &kappa, record, grad_data, grad_trainable);
        record += block_record_doubles(st);
    }
}

SIMD_CLONES
void qode_tile_rotation_columns(const qode_tile_job *job, double *cols)
{
    int n = job->c->n_qubits;
    double sn[ANGLE_TABLE_COLUMNS * L], cs[ANGLE_TABLE_COLUMNS * L];
    half_angles table = angle_table(job, sn, cs);
    for (int w = 0; w < n; w++) {
        const qode_tile_wire_rotation *r = &job->sched->rotations[w];
        lane_vec *v = (lane_vec *)(void *)(cols + (size_t)4 * w * L);
        if (r->column < 0) {
            set_ket_zero(v);
            continue;
        }
        double own[2 * L];
        const double *c, *s;
        half_angle_sincos(job, r->column, table, own, NULL, &c, &s);
        for (int l = 0; l < L; l++) {
            v->e[0][l] = c[l] * r->a[0] + s[l] * r->b[0];
            v->e[1][l] = 0.0;
            v->e[2][l] = c[l] * r->a[1] + s[l] * r->b[1];
            v->e[3][l] = 0.0;
        }
    }
}

/* dL/dt = 2 mu . dpsi/dt with dpsi/dt = (K / 2 on the wire) psi: the sum
 * over the amplitude pairs (i0, i1) of the wire's bit of
 * mu_i0 (K psi)_i0 + mu_i1 (K psi)_i1, lane by lane.  The pairs go two at a
 * time into separate sums, both lane halves at once (8 running sums): with
 * one running sum per lane half, each add waited on the one before. */
static QODE_ALWAYS_INLINE size_t pair_index(size_t j, int bit) /* j with a 0 inserted at bit */
{
    return ((j >> bit) << (bit + 1)) | (j & (((size_t)1 << bit) - 1));
}

static QODE_ALWAYS_INLINE void add_pair_terms(const double *mu, const double *psi, size_t i0,
                                              size_t stride, const vec4 k[4], vec4 sum[2][NV])
{
    for (int v = 0; v < NV; v++) {
        size_t o0 = i0 * L + 4 * v, o1 = (i0 + stride) * L + 4 * v;
        vec4 p0 = LD(psi + o0), p1 = LD(psi + o1);
        sum[0][v] += LD(mu + o0) * (k[0] * p0 + k[1] * p1);
        sum[1][v] += LD(mu + o1) * (k[2] * p0 + k[3] * p1);
    }
}

SIMD_CLONES
void qode_tile_rotation_gradients(const qode_tile_job *job, const double *mu, const double *psi,
                                  double *grad_data)
{
    int n = job->c->n_qubits;
    size_t half = (size_t)1 << (n - 1); /* amplitude pairs per wire */
    for (int w = 0; w < n; w++) {
        const qode_tile_wire_rotation *r = &job->sched->rotations[w];
        if (r->column < 0)
            continue;
        int bit = n - 1 - w;
        size_t stride = (size_t)1 << bit;
        vec4 k[4] = {SPLAT(r->k[0]), SPLAT(r->k[1]), SPLAT(r->k[2]), SPLAT(r->k[3])};
        vec4 even[2][NV], odd[2][NV];
        for (int v = 0; v < NV; v++)
            even[0][v] = even[1][v] = odd[0][v] = odd[1][v] = SPLAT(0.0);
        size_t j = 0;
        for (; j + 1 < half; j += 2) {
            add_pair_terms(mu, psi, pair_index(j, bit), stride, k, even);
            add_pair_terms(mu, psi, pair_index(j + 1, bit), stride, k, odd);
        }
        if (j < half) /* (one pair: a single qubit) */
            add_pair_terms(mu, psi, pair_index(j, bit), stride, k, even);
        double g[L];
        for (int v = 0; v < NV; v++)
            ST(g + 4 * v, (even[0][v] + even[1][v]) + (odd[0][v] + odd[1][v]));
        for (int l = 0; l < job->valid; l++)
            grad_data[(size_t)(job->b0 + l) * job->c->n_data + r->column] += g[l];
    }
}

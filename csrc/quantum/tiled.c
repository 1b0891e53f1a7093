/* Tile kernels: QODE_TILE_LANES circuits updated together (see tiled.h).
 *
 * Every kernel copies the lanes of the amplitudes it reads into small local
 * arrays first, computes, then writes back: the loops over lanes then have no
 * possible aliasing and vectorise.  The kernels are compiled twice (AVX2/FMA
 * and baseline x86-64) and the right one is picked when the library loads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quantum/tiled.h"

#define L QODE_TILE_LANES

/* Four lanes as one vector (GCC/Clang vector extension).  aligned(8) allows
 * unaligned access and may_alias lets it read and write double arrays.  The
 * kernels work on NV such vectors per row of L lanes. */
typedef double vec4 __attribute__((vector_size(32), aligned(8), may_alias));
#define NV (L / 4)
#define LD(p) (*(const vec4 *)(const void *)(p))
#define ST(p, v) (*(vec4 *)(void *)(p) = (v))

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SIMD_CLONES
#endif

size_t qode_tile_state_doubles(int n)
{
    return (size_t)2 * L << n;
}

/* ---- 2x2 complex helpers (row-major, interleaved) ------------------------------ */

/* Any one-qubit gate matrix as a dense 2x2. */
static inline void gate_2x2(const qode_gate_matrix *g, double *out)
{
    if (g->form == QODE_FORM_DIAG1) {
        out[0] = g->m[0]; out[1] = g->m[1]; out[2] = 0; out[3] = 0;
        out[4] = 0; out[5] = 0; out[6] = g->m[2]; out[7] = g->m[3];
    } else {
        memcpy(out, g->m, 8 * sizeof(double));
    }
}

/* out = a b (out may alias neither). */
static inline void mul_2x2(const double *a, const double *b, double *out)
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

static void identity_2x2(double *out)
{
    static const double id[8] = {1, 0, 0, 0, 0, 0, 1, 0};
    memcpy(out, id, sizeof id);
}

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

/* ---- schedule (gate fusion) ------------------------------------------------- */

static void segments_of_block(const qode_circuit *c, const qode_prepared_gate *prepared,
                              int with_derivatives, qode_tile_schedule *s, qode_tile_step *st,
                              int32_t *n_segments, int32_t *n_grads)
{
    const int32_t *ops = s->block_ops + st->start;
    st->seg_start = *n_segments;
    st->shared = 1;
    int32_t j = 0;
    while (j < st->count) {
        qode_tile_segment *seg = &s->segments[(*n_segments)++];
        if (prepared[ops[j]].uses_data) {
            const qode_op *op = &c->ops[ops[j]];
            seg->data_op = ops[j];
            seg->grad_start = seg->grad_count = 0;
            seg->rotation = op->kind == QODE_GATE_RX || op->kind == QODE_GATE_RY ||
                            op->kind == QODE_GATE_RZ;
            if (seg->rotation) {
                qode_gate_matrix g;
                double angles[3] = {0.0, 0.0, 0.0};
                seg->column = c->refs[op->param_start].index;
                qode_gate_build(c, op, angles, &g);
                gate_2x2(&g, seg->m);
                angles[0] = 3.14159265358979323846;
                qode_gate_build(c, op, angles, &g);
                gate_2x2(&g, seg->m_pi);
            }
            st->shared = 0;
            j++;
            continue;
        }
        int32_t end = j;
        while (end < st->count && !prepared[ops[end]].uses_data)
            end++;
        seg->data_op = -1;
        seg->rotation = 0;
        identity_2x2(seg->m);
        for (int32_t q = j; q < end; q++) {
            double u[8], tmp[8];
            gate_2x2(&prepared[ops[q]].forward, u);
            mul_2x2(u, seg->m, tmp);
            memcpy(seg->m, tmp, sizeof tmp);
        }
        seg->grad_start = *n_grads;
        seg->grad_count = 0;
        if (with_derivatives) {
            /* A = (ops after q) dU_q (ops before q), all within the run */
            double before[8];
            identity_2x2(before);
            for (int32_t q = j; q < end; q++) {
                const qode_op *op = &c->ops[ops[q]];
                double after[8], u[8], tmp[8];
                identity_2x2(after);
                for (int32_t r = q + 1; r < end; r++) {
                    gate_2x2(&prepared[ops[r]].forward, u);
                    mul_2x2(u, after, tmp);
                    memcpy(after, tmp, sizeof tmp);
                }
                for (int p = 0; p < qode_gate_params(op->kind); p++) {
                    const qode_param_ref *ref = &c->refs[op->param_start + p];
                    if (ref->source != QODE_PARAM_TRAINABLE)
                        continue;
                    qode_tile_shared_grad *g = &s->grads[(*n_grads)++];
                    double d[8];
                    gate_2x2(&prepared[ops[q]].derivative[p], d);
                    mul_2x2(d, before, tmp);
                    mul_2x2(after, tmp, g->a);
                    g->index = ref->index;
                    seg->grad_count++;
                }
                gate_2x2(&prepared[ops[q]].forward, u);
                mul_2x2(u, before, tmp);
                memcpy(before, tmp, sizeof tmp);
            }
        }
        j = end;
    }
    st->seg_count = *n_segments - st->seg_start;
}

qode_tile_schedule *qode_tile_schedule_new(const qode_circuit *c,
                                           const qode_prepared_gate *prepared,
                                           int with_derivatives)
{
    int n = c->n_qubits;
    size_t ops = c->n_ops > 0 ? (size_t)c->n_ops : 1;
    qode_tile_schedule *s = calloc(1, sizeof *s);
    int32_t *pending = malloc(sizeof(int32_t) * ops * (size_t)n); /* per wire: op list */
    int32_t *n_pending = calloc((size_t)n, sizeof(int32_t));
    if (s != NULL) {
        s->steps = calloc(2 * ops, sizeof(qode_tile_step));
        s->block_ops = malloc(sizeof(int32_t) * ops);
        s->segments = calloc(ops, sizeof(qode_tile_segment));
        s->grads = calloc(3 * ops, sizeof(qode_tile_shared_grad));
    }
    if (s == NULL || pending == NULL || n_pending == NULL || s->steps == NULL ||
        s->block_ops == NULL || s->segments == NULL || s->grads == NULL) {
        free(pending);
        free(n_pending);
        qode_tile_schedule_free(s);
        return NULL;
    }
    int32_t used = 0;
#define FLUSH(w)                                                                   \
    do {                                                                           \
        if (n_pending[w] > 0) {                                                    \
            qode_tile_step st = {-1, (w), used, n_pending[w], 0, 0, 0};            \
            memcpy(s->block_ops + used, pending + (size_t)(w) * ops,               \
                   sizeof(int32_t) * n_pending[w]);                                \
            used += n_pending[w];                                                  \
            if (n_pending[w] > s->max_block)                                       \
                s->max_block = n_pending[w];                                       \
            s->steps[s->n_steps++] = st;                                           \
            n_pending[w] = 0;                                                      \
        }                                                                          \
    } while (0)
    for (int32_t k = 0; k < c->n_ops; k++) {
        const qode_op *op = &c->ops[k];
        int nw = qode_gate_wires(op->kind);
        if (nw == 1) {
            int w = op->wires[0];
            pending[(size_t)w * ops + n_pending[w]++] = k;
            continue;
        }
        for (int j = 0; j < nw; j++)
            FLUSH(op->wires[j]);
        qode_tile_step st = {k, -1, 0, 0, 0, 0, 0};
        s->steps[s->n_steps++] = st;
    }
    for (int w = 0; w < n; w++)
        FLUSH(w);
#undef FLUSH
    free(pending);
    free(n_pending);
    int32_t n_segments = 0, n_grads = 0;
    for (int32_t t = 0; t < s->n_steps; t++)
        if (s->steps[t].op < 0)
            segments_of_block(c, prepared, with_derivatives, s, &s->steps[t], &n_segments,
                              &n_grads);
    return s;
}

void qode_tile_schedule_free(qode_tile_schedule *s)
{
    if (s == NULL)
        return;
    free(s->steps);
    free(s->block_ops);
    free(s->segments);
    free(s->grads);
    free(s);
}

/* Per-lane 2x2 matrices of one block: its gates U_j and suffix products. */
static size_t block_scratch_doubles(const qode_tile_schedule *s)
{
    /* per segment and lane: V, S (8 doubles each) and up to 3 derivatives */
    return (size_t)5 * (s->max_block > 0 ? s->max_block : 1) * L * 8;
}

size_t qode_tile_work_doubles(const qode_tile_schedule *s, int n, int adjoint)
{
    return (adjoint ? 2 : 1) * qode_tile_state_doubles(n) + block_scratch_doubles(s);
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

/* 2x2 (per lane) on the pairs (i, i + 2^target) with every control bit set. */
SIMD_CLONES
static void tile_pairs(double *re, double *im, int n, const qode_gate_matrix *g,
                       const lane_matrix *m, int real_matrix)
{
    int pos[4];
    int np = qode_gate_fixed_positions(g, pos);
    uint64_t stride = (uint64_t)1 << g->target, count = ((uint64_t)1 << n) >> np;
    vec4 mr[4][NV], mi[4][NV];
    for (int k = 0; k < 4; k++)
        for (int v = 0; v < NV; v++) {
            mr[k][v] = LD(m->r[k] + 4 * v);
            mi[k][v] = LD(m->i[k] + 4 * v);
        }
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i0 = spread(k, pos, np) | g->ctrl_mask, i1 = i0 + stride;
        for (int v = 0; v < NV; v++) {
            size_t o0 = i0 * L + 4 * v, o1 = i1 * L + 4 * v;
            vec4 ar = LD(re + o0), ai = LD(im + o0), br = LD(re + o1), bi = LD(im + o1);
            if (real_matrix) {
                ST(re + o0, mr[0][v] * ar + mr[1][v] * br);
                ST(im + o0, mr[0][v] * ai + mr[1][v] * bi);
                ST(re + o1, mr[2][v] * ar + mr[3][v] * br);
                ST(im + o1, mr[2][v] * ai + mr[3][v] * bi);
            } else {
                ST(re + o0, mr[0][v] * ar - mi[0][v] * ai + mr[1][v] * br - mi[1][v] * bi);
                ST(im + o0, mr[0][v] * ai + mi[0][v] * ar + mr[1][v] * bi + mi[1][v] * br);
                ST(re + o1, mr[2][v] * ar - mi[2][v] * ai + mr[3][v] * br - mi[3][v] * bi);
                ST(im + o1, mr[2][v] * ai + mi[2][v] * ar + mr[3][v] * bi + mi[3][v] * br);
            }
        }
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

/* The matrix of segment `seg` for lane l: shared, or built for its data row. */
static void segment_matrix(const qode_tile_job *job, const qode_tile_segment *seg, int l,
                           double *out)
{
    if (seg->data_op < 0) {
        memcpy(out, seg->m, sizeof seg->m);
        return;
    }
    if (seg->rotation) {
        double t = lane_row(job, l)[seg->column] / 2;
        double c = cos(t), s = sin(t);
        for (int k = 0; k < 8; k++)
            out[k] = c * seg->m[k] + s * seg->m_pi[k];
        return;
    }
    qode_prepared_gate scratch;
    gate_2x2(&qode_prepared_op(job->c, job->prepared, seg->data_op, lane_row(job, l),
                               job->trainable, 0, &scratch)->forward, out);
}

/* Per-lane product of a block's segments: mats[l*8 .. l*8+7]. */
static void block_product(const qode_tile_job *job, const qode_tile_step *st, double *mats)
{
    const qode_tile_segment *segs = job->sched->segments + st->seg_start;
    for (int l = 0; l < L; l++) {
        if (st->shared && l > 0) { /* the same in every lane */
            memcpy(mats + 8 * l, mats, 8 * sizeof(double));
            continue;
        }
        double acc[8], v[8], tmp[8];
        identity_2x2(acc);
        for (int32_t j = 0; j < st->seg_count; j++) {
            segment_matrix(job, &segs[j], l, v);
            mul_2x2(v, acc, tmp);
            memcpy(acc, tmp, sizeof acc);
        }
        memcpy(mats + 8 * l, acc, sizeof acc);
    }
}

/* Applies per-lane 2x2 matrices mats (8 doubles per lane) on one wire. */
static void apply_lane_2x2(double *re, double *im, const qode_circuit *c, int wire,
                           const double *mats)
{
    qode_gate_matrix geometry;
    block_geometry(c, wire, &geometry);
    lane_matrix m;
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < L; l++) {
            m.r[k][l] = mats[8 * l + 2 * k];
            m.i[k][l] = mats[8 * l + 2 * k + 1];
        }
    tile_pairs(re, im, c->n_qubits, &geometry, &m, all_imag_zero(&m, 4));
}

void qode_tile_forward(const qode_tile_job *job, double *re, double *im, double *work)
{
    const qode_circuit *c = job->c;
    int n = c->n_qubits;
    size_t dim = (size_t)1 << n;
    memset(re, 0, sizeof(double) * dim * L);
    memset(im, 0, sizeof(double) * dim * L);
    for (int l = 0; l < L; l++)
        re[l] = 1.0;
    qode_prepared_gate scratch[L];
    const qode_gate_matrix *g[L];
    double mats[8 * L];
    (void)work;
    for (int32_t t = 0; t < job->sched->n_steps; t++) {
        const qode_tile_step *st = &job->sched->steps[t];
        if (st->op < 0) {
            block_product(job, st, mats);
            apply_lane_2x2(re, im, c, st->wire, mats);
            continue;
        }
        for (int l = 0; l < L; l++)
            g[l] = &qode_prepared_op(c, job->prepared, st->op, lane_row(job, l), job->trainable,
                                     0, &scratch[l])->forward;
        tile_apply(re, im, n, g);
    }
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

void qode_tile_readout(const qode_tile_job *job, const double *re, const double *im,
                       const qode_observables *obs, double *expval, double *probs,
                       void *states, qode_dtype dtype)
{
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n;
    if (expval != NULL && obs != NULL) {
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

static void seed_lambda(const qode_tile_job *job, const qode_observables *obs,
                        const double *grad_expval, const double *grad_probs, const double *re,
                        const double *im, double *lr, double *li)
{
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n;
    memset(lr, 0, sizeof(double) * dim * L);
    memset(li, 0, sizeof(double) * dim * L);
    if (obs != NULL && grad_expval != NULL) {
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

/* R[b][a] = sum over pairs of phi_b conj(lam_a) per lane (b, a: the value of
 * the target bit), the reduced 2x2 matrix from which <lam| (1 x D) |phi> =
 * sum_ab D_ab R[b][a] follows for any 2x2 D on that wire.  out[8 * l + 2 * (2 b + a)]. */
SIMD_CLONES
static void tile_reduced(const double *lr, const double *li, const double *re, const double *im,
                         int n, int target, double *out)
{
    uint64_t dim = (uint64_t)1 << n, stride = (uint64_t)1 << target;
    vec4 acc[8][NV];
    for (int k = 0; k < 8; k++)
        for (int v = 0; v < NV; v++)
            acc[k][v] = (vec4){0, 0, 0, 0};
    for (uint64_t base = 0; base < dim; base += 2 * stride) {
        for (uint64_t i = base; i < base + stride; i++) {
            size_t o[2] = {i * L, (i + stride) * L};
            for (int v = 0; v < NV; v++) {
                vec4 pr[2], pi[2], xr[2], xi[2];
                for (int b = 0; b < 2; b++) {
                    pr[b] = LD(re + o[b] + 4 * v); pi[b] = LD(im + o[b] + 4 * v);
                    xr[b] = LD(lr + o[b] + 4 * v); xi[b] = LD(li + o[b] + 4 * v);
                }
                for (int b = 0; b < 2; b++)
                    for (int a = 0; a < 2; a++) {
                        /* phi_b conj(lam_a) */
                        acc[2 * (2 * b + a)][v] += pr[b] * xr[a] + pi[b] * xi[a];
                        acc[2 * (2 * b + a) + 1][v] += pi[b] * xr[a] - pr[b] * xi[a];
                    }
            }
        }
    }
    for (int k = 0; k < 8; k++) {
        double t[L];
        for (int v = 0; v < NV; v++)
            ST(t + 4 * v, acc[k][v]);
        for (int l = 0; l < L; l++)
            out[8 * l + k] = t[l];
    }
}

/* Re sum_ab D_ab R[b][a]. */
static double trace_re(const double *d, const double *r)
{
    double t = 0;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            int ab = 2 * (2 * a + b), ba = 2 * (2 * b + a);
            t += d[ab] * r[ba] - d[ab + 1] * r[ba + 1];
        }
    return t;
}

static void dagger_2x2(const double *a, double *out)
{
    out[0] = a[0]; out[1] = -a[1];
    out[2] = a[4]; out[3] = -a[5];
    out[4] = a[2]; out[5] = -a[3];
    out[6] = a[6]; out[7] = -a[7];
}

static void add_gradient(const qode_tile_job *job, const qode_param_ref *r, int l, double value,
                         double *grad_data, double *grad_trainable)
{
    if (r->source == QODE_PARAM_DATA)
        grad_data[(size_t)(job->b0 + l) * job->c->n_data + r->index] += value;
    else
        grad_trainable[r->index] += value;
}

/* The adjoint step of a fused block B = V_{m-1} ... V_0 (its segments) on one
 * wire: phi <- B^+ phi; then, with R the reduced matrix of (phi, lam) and
 * Q_s = P_s R S_s (P_s = V_{s-1} ... V_0, S_s = V_{m-1} ... V_{s+1}),
 *   an angle of a data op V_s:      2 Re Tr(dV_s Q_s)   (per lane),
 *   a trainable angle in a run s:   2 Re Tr(A sum_lanes Q_s)  (A: see tiled.h);
 * then lam <- B^+ lam (skipped for the first step of the circuit). */
static void block_adjoint(const qode_tile_job *job, const qode_tile_step *st, double *pr,
                          double *pi, double *lr, double *li, double *scratch_mats,
                          int update_lambda, double *grad_data, double *grad_trainable)
{
    const qode_circuit *c = job->c;
    int n = c->n_qubits, m = st->seg_count;
    const qode_tile_segment *segs = job->sched->segments + st->seg_start;
    double *v = scratch_mats;                          /* v[(s * L + l) * 8]: V_s of lane l */
    double *suffix = scratch_mats + (size_t)m * L * 8; /* S_s of lane l */
    double *dv = scratch_mats + (size_t)2 * m * L * 8; /* dV_s / d angle p: [(s*L+l)*3+p]*8 */
    double inv[8 * L], red[8 * L];
    for (int l = 0; l < L; l++) {
        if (st->shared && l > 0) { /* same matrices in every lane: copy lane 0 */
            for (int j = 0; j < m; j++) {
                memcpy(v + ((size_t)j * L + l) * 8, v + (size_t)j * L * 8, 8 * sizeof(double));
                memcpy(suffix + ((size_t)j * L + l) * 8, suffix + (size_t)j * L * 8,
                       8 * sizeof(double));
            }
            memcpy(inv + 8 * l, inv, 8 * sizeof(double));
            continue;
        }
        for (int j = 0; j < m; j++) {
            if (segs[j].data_op < 0) {
                memcpy(v + ((size_t)j * L + l) * 8, segs[j].m, 8 * sizeof(double));
                continue;
            }
            if (segs[j].rotation) { /* U = c U(0) + s U(pi), dU/dt = (c U(pi) - s U(0)) / 2 */
                double t = lane_row(job, l)[segs[j].column] / 2;
                double cs = cos(t), sn = sin(t);
                double *u = v + ((size_t)j * L + l) * 8, *du = dv + ((size_t)j * L + l) * 3 * 8;
                for (int k = 0; k < 8; k++) {
                    u[k] = cs * segs[j].m[k] + sn * segs[j].m_pi[k];
                    du[k] = 0.5 * (cs * segs[j].m_pi[k] - sn * segs[j].m[k]);
                }
                continue;
            }
            /* a data op: its matrix and derivatives, built once here */
            qode_prepared_gate scratch;
            const qode_op *op = &c->ops[segs[j].data_op];
            const qode_prepared_gate *pg = qode_prepared_op(c, job->prepared, segs[j].data_op,
                                                            lane_row(job, l), job->trainable, 1,
                                                            &scratch);
            gate_2x2(&pg->forward, v + ((size_t)j * L + l) * 8);
            for (int k = 0; k < qode_gate_params(op->kind); k++)
                if (c->refs[op->param_start + k].source != QODE_PARAM_CONSTANT)
                    gate_2x2(&pg->derivative[k], dv + (((size_t)j * L + l) * 3 + k) * 8);
        }
        identity_2x2(suffix + ((size_t)(m - 1) * L + l) * 8);
        for (int j = m - 2; j >= 0; j--)
            mul_2x2(suffix + ((size_t)(j + 1) * L + l) * 8, v + ((size_t)(j + 1) * L + l) * 8,
                    suffix + ((size_t)j * L + l) * 8);
        double b[8];
        mul_2x2(suffix + (size_t)l * 8, v + (size_t)l * 8, b); /* B = S_0 V_0 */
        dagger_2x2(b, inv + 8 * l);
    }
    apply_lane_2x2(pr, pi, c, st->wire, inv);
    tile_reduced(lr, li, pr, pi, n, n - 1 - st->wire, red);
    double qsum[8];
    for (int j = 0; j < m; j++) {
        const qode_tile_segment *seg = &segs[j];
        int needs = seg->data_op >= 0 || seg->grad_count > 0;
        if (!needs)
            continue;
        memset(qsum, 0, sizeof qsum);
        for (int l = 0; l < job->valid; l++) {
            /* Q = P_j R S_j; P_0 and S_{m-1} are identities, skip them */
            double p[8], tmp[8], q[8];
            const double *left = red + 8 * l;
            if (j > 0) {
                memcpy(p, v + (size_t)l * 8, sizeof p); /* P_j = V_{j-1} ... V_0 */
                for (int k = 1; k < j; k++) {
                    mul_2x2(v + ((size_t)k * L + l) * 8, p, tmp);
                    memcpy(p, tmp, sizeof tmp);
                }
                mul_2x2(p, red + 8 * l, tmp);
                left = tmp;
            }
            if (j < m - 1)
                mul_2x2(left, suffix + ((size_t)j * L + l) * 8, q);
            else
                memcpy(q, left, sizeof q);
            if (seg->data_op < 0) {
                for (int k = 0; k < 8; k++)
                    qsum[k] += q[k];
                continue;
            }
            const qode_op *op = &c->ops[seg->data_op];
            for (int k = 0; k < qode_gate_params(op->kind); k++) {
                const qode_param_ref *r = &c->refs[op->param_start + k];
                if (r->source == QODE_PARAM_CONSTANT)
                    continue;
                const double *d = dv + (((size_t)j * L + l) * 3 + k) * 8;
                add_gradient(job, r, l, 2.0 * trace_re(d, q), grad_data, grad_trainable);
            }
        }
        for (int32_t k = 0; k < seg->grad_count; k++) {
            const qode_tile_shared_grad *g = &job->sched->grads[seg->grad_start + k];
            grad_trainable[g->index] += 2.0 * trace_re(g->a, qsum);
        }
    }
    if (update_lambda)
        apply_lane_2x2(lr, li, c, st->wire, inv);
}

void qode_tile_adjoint(const qode_tile_job *job, const qode_observables *obs,
                       const double *grad_expval, const double *grad_probs, double *work,
                       double *grad_data, double *grad_trainable)
{
    const qode_circuit *c = job->c;
    int n = c->n_qubits;
    size_t dim = (size_t)1 << n;
    double *pr = work, *pi = work + dim * L, *lr = work + 2 * dim * L, *li = work + 3 * dim * L;
    double *scratch_mats = work + 4 * dim * L;
    qode_tile_forward(job, pr, pi, NULL);
    seed_lambda(job, obs, grad_expval, grad_probs, pr, pi, lr, li);
    if (c->n_data > 0)
        for (int l = 0; l < job->valid; l++)
            memset(grad_data + (size_t)(job->b0 + l) * c->n_data, 0, sizeof(double) * c->n_data);

    qode_prepared_gate scratch[L];
    const qode_prepared_gate *pg[L];
    const qode_gate_matrix *g[L];
    for (int32_t t = job->sched->n_steps - 1; t >= 0; t--) {
        const qode_tile_step *st = &job->sched->steps[t];
        if (st->op < 0) {
            block_adjoint(job, st, pr, pi, lr, li, scratch_mats, t > 0, grad_data,
                          grad_trainable);
            continue;
        }
        const qode_op *op = &c->ops[st->op];
        for (int l = 0; l < L; l++)
            pg[l] = qode_prepared_op(c, job->prepared, st->op, lane_row(job, l), job->trainable,
                                     1, &scratch[l]);
        for (int l = 0; l < L; l++)
            g[l] = &pg[l]->inverse;
        tile_apply(pr, pi, n, g); /* phi <- U^+ phi */
        int np = qode_gate_params(op->kind);
        for (int j = 0; j < np; j++) {
            const qode_param_ref *r = &c->refs[op->param_start + j];
            if (r->source == QODE_PARAM_CONSTANT)
                continue;
            double acc[L] = {0};
            for (int l = 0; l < L; l++)
                g[l] = &pg[l]->derivative[j];
            tile_inner(lr, li, pr, pi, n, g, acc);
            for (int l = 0; l < job->valid; l++)
                add_gradient(job, r, l, 2.0 * acc[l], grad_data, grad_trainable);
        }
        if (t > 0) {
            for (int l = 0; l < L; l++)
                g[l] = &pg[l]->inverse;
            tile_apply(lr, li, n, g); /* lam <- U^+ lam */
        }
    }
}

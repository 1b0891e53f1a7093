/* The per-lane 2x2 algebra of fused one-qubit blocks (see tiled_blocks.h):
 * segment matrices in every lane, block products, and the gradients of a
 * block's angles from its reduced matrix.  Compiled like tiled.c (fused
 * multiply-adds allowed; see tile_kernels.c for why). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif
#include "common/simd.h"
#include "common/fast_sincos.h"
#include "quantum/mat2.h"
#include "quantum/tile_kernels.h"
#include "quantum/tiled_blocks.h"

/* The matrices of segment `seg` in every lane (and, when dv != NULL, the
 * derivatives of a data op with respect to each of its angles). */
SIMD_CLONES
void qode_tile_segment_lanes(const qode_tile_job *job, const qode_tile_segment *seg, lane2 *v,
                             lane2 *dv)
{
    if (seg->data_op < 0) {
        lane2_broadcast(seg->m, v);
        return;
    }
    if (seg->rotation) { /* U = c U(0) + s U(pi), dU/dt = (c U(pi) - s U(0)) / 2, c, s of t/2 */
        double half[L], sn[L], cs[L];
        for (int l = 0; l < L; l++)
            half[l] = qode_tile_lane_row(job, l)[seg->column] / 2;
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
                                                        qode_tile_lane_row(job, l), job->trainable,
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
void qode_tile_block_product(const qode_tile_job *job, const qode_tile_step *st, lane2 *out)
{
    const qode_tile_segment *segs = job->sched->segments + st->seg_start;
    int32_t m = st->seg_count;
    /* partial products in two buffers, the last one straight into out (a
     * copy of a lane2 is 512 bytes, slower than a product) */
    lane2 partial[2], v;
    qode_tile_segment_lanes(job, &segs[0], m == 1 ? out : &partial[0], NULL);
    for (int32_t j = 1; j < m; j++) {
        qode_tile_segment_lanes(job, &segs[j], &v, NULL);
        lane2_mul(&v, &partial[(j - 1) & 1], j == m - 1 ? out : &partial[j & 1]);
    }
}

qode_block_mats qode_tile_block_scratch(const qode_tile_step *st, double *scratch)
{
    size_t m = (size_t)st->seg_count;
    lane2 *base = (lane2 *)(void *)scratch;
    qode_block_mats b = {base, base + m, base + 2 * m};
    return b;
}

/* Fills bm for block st and returns B^+ in inv. */
SIMD_CLONES
void qode_tile_block_lane_matrices(const qode_tile_job *job, const qode_tile_step *st,
                                   const qode_block_mats *bm, lane2 *inv)
{
    int m = st->seg_count;
    const qode_tile_segment *segs = job->sched->segments + st->seg_start;
    for (int j = 0; j < m; j++)
        qode_tile_segment_lanes(job, &segs[j], &bm->v[j], &bm->dv[3 * j]);
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
void qode_tile_block_gradients(const qode_tile_job *job, const qode_tile_step *st,
                               const qode_block_mats *bm, const lane2 *red, double *grad_data,
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
                qode_tile_add_gradient(job, r, l, 2.0 * t[l], grad_data, grad_trainable);
        }
    }
}

void qode_tile_shared_run_gradients(const qode_tile_job *job, const qode_tile_segment *seg,
                                    const vec4 acc[8], double *grad_trainable)
{
    double sum[8];
    for (int k = 0; k < 8; k++)
        sum[k] = (acc[k][0] + acc[k][1]) + (acc[k][2] + acc[k][3]);
    for (int32_t k = 0; k < seg->grad_count; k++) {
        const qode_tile_shared_grad *g = &job->sched->grads[seg->grad_start + k];
        grad_trainable[g->index] += 2.0 * mat2_trace_re(g->a, sum);
    }
}

/* Adjoint-method gradients as a vector-Jacobian product.
 *
 * For a scalar loss L with upstream gradients g_k = dL/d<O_k> and
 * h_i = dL/dp_i, L depends on the final state only through
 *   <psi| M |psi>,  M = sum_k g_k O_k + sum_i h_i |i><i|   (Hermitian).
 * With psi = U_N ... U_1 |0>, the derivative by an angle t of gate U_j is
 *   dL/dt = 2 Re <lambda_j| dU_j/dt |phi_{j-1}>,
 *   lambda_j = U_{j+1}^+ ... U_N^+ M psi,   phi_{j-1} = U_j^+ ... U_N^+ psi.
 * One sweep from the last gate to the first un-applies each gate from both
 * lambda and phi, so the cost is about three forward passes whatever the
 * number of angles (Jones & Gacon, arXiv:2009.02823).  An angle used by
 * several gates collects the sum of their contributions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quantum/kernels.h"
#include "quantum/parallel.h"
#include "quantum/prepare.h"
#include "quantum/simulate.h"
#include "quantum/tiled.h"
#include "quantum/tiled_dense.h"

typedef struct {
    const qode_circuit *c;
    qode_dtype dtype;
    const double *data;
    const double *trainable;
    const char *states;
    const qode_observables *obs;
    const double *grad_expval;
    const double *grad_probs;
    double *grad_data;
    double *grad_trainable_per_chunk; /* chunks x train_stride */
    size_t train_stride;
    size_t c_offset;                   /* dense: where a chunk's sums of C start in its row */
    double *work;                      /* per thread: 2 states, or 4 tile states */
    size_t work_doubles;               /* per thread */
    const qode_prepared_gate *prepared;
    int64_t batch;
    const qode_tile_schedule *sched;
    const double *record;  /* NULL, or the forward record: */
    size_t record_doubles; /* doubles per tile */
} vjp_ctx;

/* lam <- M psi for circuit row b. */
static void seed_lambda(const vjp_ctx *x, int64_t b, const void *psi, void *lam)
{
    int n = x->c->n_qubits;
    size_t dim = (size_t)1 << n;
    memset(lam, 0, qode_dtype_size(x->dtype) * dim);
    const qode_observables *o = x->obs;
    if (o != NULL && x->grad_expval != NULL) {
        for (int32_t k = 0; k < o->n_obs; k++) {
            double g = x->grad_expval[(size_t)b * o->n_obs + k];
            if (g == 0.0)
                continue;
            for (int64_t t = o->term_start[k]; t < o->term_start[k + 1]; t++)
                qode_qstate_add_pauli(lam, psi, x->dtype, n, o->x_mask[t], o->z_mask[t],
                                     g * o->coeff[t]);
        }
    }
    if (x->grad_probs != NULL) {
        const double *h = x->grad_probs + (size_t)b * dim;
        if (x->dtype == QODE_COMPLEX128) {
            const double *p = psi;
            double *l = lam;
            for (size_t i = 0; i < 2 * dim; i++)
                l[i] += h[i / 2] * p[i];
        } else {
            const float *p = psi;
            float *l = lam;
            for (size_t i = 0; i < 2 * dim; i++)
                l[i] += (float)h[i / 2] * p[i];
        }
    }
}

static void vjp_tiles(void *arg, int thread, int64_t chunk, int64_t t0, int64_t t1)
{
    const vjp_ctx *x = (const vjp_ctx *)arg;
    double *work = x->work + (size_t)thread * x->work_doubles;
    double *gtrain = x->grad_trainable_per_chunk + (size_t)chunk * x->train_stride;
    for (int64_t t = t0; t < t1; t++) {
        qode_tile_job job = {x->c, x->sched, x->prepared, x->data, x->trainable,
                             t * QODE_TILE_LANES, 0, 0};
        int64_t left = x->batch - job.b0;
        job.valid = (int)(left < QODE_TILE_LANES ? left : QODE_TILE_LANES);
        job.slot = (int)(t - t0);
        const double *record =
            x->record != NULL ? x->record + (size_t)t * x->record_doubles : NULL;
        qode_tile_adjoint(&job, x->grad_expval, x->grad_probs, record, work, x->grad_data,
                          gtrain);
    }
    qode_tile_chunk_finish(x->sched, x->c->n_qubits, t1 - t0, work, gtrain + x->c_offset);
}

static void vjp_rows(void *arg, int thread, int64_t chunk, int64_t b0, int64_t b1)
{
    const vjp_ctx *x = (const vjp_ctx *)arg;
    const qode_circuit *c = x->c;
    int n = c->n_qubits;
    size_t state_bytes = qode_dtype_size(x->dtype) << n;
    void *phi = x->work + (size_t)thread * x->work_doubles;
    void *lam = (char *)phi + state_bytes;
    double *gtrain = x->grad_trainable_per_chunk + (size_t)chunk * x->train_stride;
    qode_prepared_gate scratch;
    for (int64_t b = b0; b < b1; b++) {
        const double *row = c->n_data > 0 ? x->data + (size_t)b * c->n_data : NULL;
        double *grow = c->n_data > 0 ? x->grad_data + (size_t)b * c->n_data : NULL;
        if (grow != NULL)
            memset(grow, 0, sizeof(double) * c->n_data);
        if (x->states != NULL) {
            memcpy(phi, x->states + (size_t)b * state_bytes, state_bytes);
        } else { /* recompute psi_b */
            qode_qstate_set_zero_state(phi, x->dtype, n);
            for (int32_t k = 0; k < c->n_ops; k++)
                qode_qstate_apply(phi, x->dtype, n,
                                 &qode_prepared_op(c, x->prepared, k, row, x->trainable, 0,
                                                   &scratch)->forward);
        }
        seed_lambda(x, b, phi, lam);
        for (int32_t k = c->n_ops - 1; k >= 0; k--) {
            const qode_op *op = &c->ops[k];
            const qode_prepared_gate *g =
                qode_prepared_op(c, x->prepared, k, row, x->trainable, 1, &scratch);
            qode_qstate_apply(phi, x->dtype, n, &g->inverse);
            int np = qode_gate_params(op->kind);
            for (int j = 0; j < np; j++) {
                const qode_param_ref *r = &c->refs[op->param_start + j];
                if (r->source == QODE_PARAM_CONSTANT)
                    continue;
                double re, im;
                qode_qstate_inner(lam, phi, x->dtype, n, &g->derivative[j], &re, &im);
                if (r->source == QODE_PARAM_DATA)
                    grow[r->index] += 2.0 * re;
                else
                    gtrain[r->index] += 2.0 * re;
            }
            if (k > 0)
                qode_qstate_apply(lam, x->dtype, n, &g->inverse);
        }
    }
}

qode_status qode_qsim_adjoint_vjp(const qode_circuit *c, qode_dtype dtype, int64_t batch,
                                  const double *data, const double *trainable,
                                  const void *states, const double *record,
                                  const qode_observables *obs,
                                  const double *grad_expval, const double *grad_probs,
                                  double *grad_data, double *grad_trainable, int n_threads,
                                  char *msg, size_t len)
{
    qode_status st;
    size_t bytes;
    if (dtype != QODE_COMPLEX64 && dtype != QODE_COMPLEX128) {
        if (msg != NULL && len > 0)
            snprintf(msg, len, "state vectors must be complex64 or complex128");
        return QODE_ERR_INVALID_ARGUMENT;
    }
    if (batch < 0) {
        if (msg != NULL && len > 0)
            snprintf(msg, len, "batch size must be >= 0");
        return QODE_ERR_INVALID_ARGUMENT;
    }
    if ((st = qode_circuit_validate(c, msg, len)) != QODE_OK ||
        (st = qode_qstate_bytes(c->n_qubits, batch, dtype, &bytes, msg, len)) != QODE_OK ||
        (st = qode_circuit_check_params(c, batch, data, trainable, msg, len)) != QODE_OK)
        return st;
    if (obs != NULL && (st = qode_observables_validate(obs, c->n_qubits, msg, len)) != QODE_OK)
        return st;

    int n = c->n_qubits;
    size_t dim = (size_t)1 << n;
    int tiled = qode_qsim_uses_tiles(n, batch);
    double terms = obs != NULL ? (double)obs->term_start[obs->n_obs] : 0.0;
    qode_prepared_gate *prepared = qode_prepare_gates(c, trainable, 1);
    /* only expectation values differentiated: trailing gates may fold into them */
    int fold = grad_probs == NULL;
    qode_tile_schedule *sched =
        (tiled && prepared != NULL) ? qode_tile_schedule_new(c, prepared, 1, obs, fold) : NULL;
    /* amplitude updates per circuit: about four passes per gate, or in dense
     * mode U psi, Re(U^+ lam) and the sums of C */
    double work_per_row = sched != NULL && sched->dense
                              ? 6.0 * (double)dim * (double)dim + (double)dim * (terms + 2.0)
                              : (double)dim * (4.0 * c->n_ops + terms + 2.0);
    int64_t units = tiled ? (batch + QODE_TILE_LANES - 1) / QODE_TILE_LANES : batch;
    /* (a tile's work counts as one circuit's: see parallel.h) */
    int threads = qode_qbatch_threads(n_threads, units, work_per_row);
    /* per thread: the tile work space, or 2 states (as doubles, enough for complex128) */
    size_t work_doubles = tiled ? (sched ? qode_tile_work_doubles(sched, n, 1) : 0) : 4 * dim;
    size_t work_bytes = sizeof(double) * work_doubles * (size_t)threads;
    double *workspace = work_doubles > 0 ? malloc(work_bytes) : NULL;
    /* trainable sums per chunk, each on its own cache lines, added up in
     * chunk order: the same bits whichever thread ran which chunk */
    int64_t chunks = qode_qbatch_chunks(units, threads);
    size_t c_offset = ((size_t)(c->n_trainable > 0 ? c->n_trainable : 1) + 7) / 8 * 8;
    size_t c_doubles = sched != NULL ? qode_tile_chunk_doubles(sched, n) : 0;
    size_t train_stride = c_offset + (c_doubles + 7) / 8 * 8;
    /* (a chunk's sums of C are written whole by qode_tile_chunk_finish: only
     * its trainable gradients start from zero) */
    double *gtrain = malloc(sizeof(double) * (size_t)chunks * train_stride);
    if (gtrain != NULL)
        for (int64_t k = 0; k < chunks; k++)
            memset(gtrain + (size_t)k * train_stride, 0, sizeof(double) * c_offset);
    if (workspace == NULL || gtrain == NULL || prepared == NULL || (tiled && sched == NULL)) {
        free(workspace);
        free(gtrain);
        free(prepared);
        qode_tile_schedule_free(sched);
        if (msg != NULL && len > 0)
            snprintf(msg, len, "the adjoint sweep needs %zu bytes of work space", work_bytes);
        return QODE_ERR_NO_MEMORY;
    }
    size_t record_doubles =
        record != NULL && sched != NULL ? qode_tile_record_doubles(sched, n, fold) : 0;
    vjp_ctx x = {c, dtype, data, trainable, (const char *)states, obs, grad_expval,
                 grad_probs, grad_data, gtrain, train_stride, c_offset, workspace,
                 work_doubles, prepared, batch, sched,
                 record_doubles > 0 ? record : NULL, record_doubles};
    st = qode_qbatch_run(tiled ? vjp_tiles : vjp_rows, &x, units, threads);
    /* sums over chunks in chunk order (into chunk 0's row), a row at a time:
     * each entry still adds chunks 1, 2, ... in order, but the rows are read
     * in sequence (entry by entry, the 32 chunks' rows of a 4-qubit dense C
     * missed L1 on every read; this function's own time per call, by perf,
     * fell from 17-28 to 6-10 us) */
    for (int64_t k = 1; k < chunks; k++) {
        const double *row = gtrain + (size_t)k * train_stride;
        for (size_t i = 0; i < c_offset + c_doubles; i++)
            gtrain[i] += row[i];
    }
    for (int32_t i = 0; i < c->n_trainable; i++)
        grad_trainable[i] = gtrain[i];
    if (c_doubles > 0 && st == QODE_OK &&
        !qode_tile_dense_gradients(c, prepared, sched, gtrain + c_offset, grad_trainable)) {
        if (msg != NULL && len > 0)
            snprintf(msg, len, "out of memory in the adjoint sweep");
        st = QODE_ERR_NO_MEMORY;
    }
    free(workspace);
    free(gtrain);
    free(prepared);
    qode_tile_schedule_free(sched);
    return st;
}

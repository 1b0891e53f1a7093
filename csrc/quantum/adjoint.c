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
    double *grad_trainable_per_thread; /* n_threads x n_trainable */
    char *work;                        /* n_threads x 2 states */
    const qode_prepared_gate *prepared;
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
                qode_state_add_pauli(lam, psi, x->dtype, n, o->x_mask[t], o->z_mask[t],
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

static void vjp_rows(void *arg, int thread, int64_t b0, int64_t b1)
{
    const vjp_ctx *x = (const vjp_ctx *)arg;
    const qode_circuit *c = x->c;
    int n = c->n_qubits;
    size_t state_bytes = qode_dtype_size(x->dtype) << n;
    void *phi = x->work + (size_t)thread * 2 * state_bytes;
    void *lam = (char *)phi + state_bytes;
    double *gtrain = x->grad_trainable_per_thread + (size_t)thread * c->n_trainable;
    qode_prepared_gate scratch;
    for (int64_t b = b0; b < b1; b++) {
        const void *psi = x->states + (size_t)b * state_bytes;
        const double *row = c->n_data > 0 ? x->data + (size_t)b * c->n_data : NULL;
        double *grow = c->n_data > 0 ? x->grad_data + (size_t)b * c->n_data : NULL;
        if (grow != NULL)
            memset(grow, 0, sizeof(double) * c->n_data);
        memcpy(phi, psi, state_bytes);
        seed_lambda(x, b, psi, lam);
        for (int32_t k = c->n_ops - 1; k >= 0; k--) {
            const qode_op *op = &c->ops[k];
            const qode_prepared_gate *g =
                qode_prepared_op(c, x->prepared, k, row, x->trainable, 1, &scratch);
            qode_state_apply(phi, x->dtype, n, &g->inverse);
            int np = qode_gate_params(op->kind);
            for (int j = 0; j < np; j++) {
                const qode_param_ref *r = &c->refs[op->param_start + j];
                if (r->source == QODE_PARAM_CONSTANT)
                    continue;
                double re, im;
                qode_state_inner(lam, phi, x->dtype, n, &g->derivative[j], &re, &im);
                if (r->source == QODE_PARAM_DATA)
                    grow[r->index] += 2.0 * re;
                else
                    gtrain[r->index] += 2.0 * re;
            }
            if (k > 0)
                qode_state_apply(lam, x->dtype, n, &g->inverse);
        }
    }
}

qode_status qode_qsim_adjoint_vjp(const qode_circuit *c, qode_dtype dtype, int64_t batch,
                                  const double *data, const double *trainable,
                                  const void *states, const qode_observables *obs,
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
        (st = qode_state_bytes(c->n_qubits, batch, dtype, &bytes, msg, len)) != QODE_OK ||
        (st = qode_circuit_check_params(c, batch, data, trainable, msg, len)) != QODE_OK)
        return st;
    if (obs != NULL && (st = qode_observables_validate(obs, c->n_qubits, msg, len)) != QODE_OK)
        return st;

    size_t dim = (size_t)1 << c->n_qubits;
    double terms = obs != NULL ? (double)obs->term_start[obs->n_obs] : 0.0;
    double work = (double)dim * (3.0 * c->n_ops + terms + 2.0);
    int threads = qode_batch_threads(n_threads, batch, work);
    size_t work_bytes = 2 * qode_dtype_size(dtype) * dim * (size_t)threads;
    char *workspace = malloc(work_bytes);
    double *gtrain = calloc((size_t)threads * (c->n_trainable > 0 ? c->n_trainable : 1),
                            sizeof(double));
    qode_prepared_gate *prepared = qode_prepare_gates(c, trainable, 1);
    if (workspace == NULL || gtrain == NULL || prepared == NULL) {
        free(workspace);
        free(gtrain);
        free(prepared);
        if (msg != NULL && len > 0)
            snprintf(msg, len, "the adjoint sweep needs %zu bytes of work space", work_bytes);
        return QODE_ERR_NO_MEMORY;
    }
    vjp_ctx x = {c, dtype, data, trainable, (const char *)states, obs, grad_expval,
                 grad_probs, grad_data, gtrain, workspace, prepared};
    st = qode_batch_run(vjp_rows, &x, batch, threads);
    for (int32_t i = 0; i < c->n_trainable; i++) {
        double total = 0.0;
        for (int t = 0; t < threads; t++)
            total += gtrain[(size_t)t * c->n_trainable + i];
        grad_trainable[i] = total;
    }
    free(workspace);
    free(gtrain);
    free(prepared);
    return st;
}

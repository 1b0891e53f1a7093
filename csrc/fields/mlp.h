/* A native vector field: a multilayer perceptron applied to every row of the state.
 *
 * f(t, y)[b] = W_L act(... act(W_1 [y_b, t?] + b_1) ...) + b_L for each of the
 * `batch` rows y_b of the state (batch x width elements, row-major).  With one
 * layer and no activation this is the linear field f = y A^T + c.  Weights are
 * row-major (out x in), exactly as torch.nn.Linear stores them, so a module's
 * parameters can be handed over without copying.
 *
 * The field plugs into the solver through the ordinary callback signatures
 * (qode_rhs_fn / qode_vjp_fn, ctx = the qode_mlp): its vector-Jacobian product
 * returns y_bar and t_bar and *adds* v^T df/dparams to the gradient buffers it
 * was given, so one discrete-adjoint sweep accumulates the parameter gradients
 * of a whole solve without Python.  Everything it needs at run time lives in
 * the caller-owned `work` buffer: evaluating the field never allocates.
 */
#ifndef QODE_FIELDS_MLP_H
#define QODE_FIELDS_MLP_H

#include <stddef.h>

#include "common/dtype.h"
#include "common/status.h"

typedef enum {
    QODE_ACT_IDENTITY = 0,
    QODE_ACT_TANH = 1,
    QODE_ACT_RELU = 2,
    QODE_ACT_SOFTPLUS = 3,   /* log(1 + e^z), as torch.nn.Softplus() with beta 1 */
    QODE_ACT_SIGMOID = 4,
    QODE_ACT_COUNT
} qode_activation;

/* Layers a field may have (the work layout keeps one pointer per layer on the stack). */
#define QODE_MLP_MAX_LAYERS 32

typedef struct {
    qode_dtype dtype;            /* QODE_FLOAT32 or QODE_FLOAT64 */
    size_t batch;                /* rows of the state */
    size_t n_layers;             /* L >= 1 */
    const size_t *widths;        /* L + 1 widths; widths[0] == widths[L] == the row width */
    int time_input;              /* 1: layer 1 also reads t, as its last input column */
    qode_activation activation;  /* after every layer but the last */
    const void *const *weights;  /* L matrices: widths[l+1] x (widths[l] + time column) */
    const void *const *biases;   /* L vectors of widths[l+1], or NULL (no biases) */
    /* Parameter-gradient accumulator, qode_mlp_n_params elements: every
     * weight matrix, then every bias vector, in layer order.  May be NULL. */
    void *grads;
    void *work;                  /* qode_mlp_work_bytes(mlp) bytes, owned by the caller */
} qode_mlp;

/* QODE_OK when the description is consistent (message in `message`, which may
 * be NULL, otherwise).  `work` is not looked at: size it after this check. */
qode_status qode_mlp_check(const qode_mlp *mlp, char *message, size_t message_size);

/* Bytes of scratch space the field needs (hidden activations and two
 * gradient rows per state row). */
size_t qode_mlp_work_bytes(const qode_mlp *mlp);

/* Elements in the state: batch * widths[0]. */
size_t qode_mlp_state_size(const qode_mlp *mlp);

/* Elements in the flat parameter vector (weights, then biases). */
size_t qode_mlp_n_params(const qode_mlp *mlp);

/* qode_rhs_fn: dydt = f(t, y); ctx is a checked qode_mlp. */
int qode_mlp_rhs(void *ctx, double t, const void *y, void *dydt);

/* qode_vjp_fn: y_bar = (df/dy)^T v, *t_bar = v . df/dt, and mlp->grads +=
 * v^T df/dparams.  y_bar is overwritten. */
int qode_mlp_vjp(void *ctx, double t, const void *y, const void *v, void *y_bar, double *t_bar);

/* qode_field_vjp_fn (solver/adjoint_dynamics.h): as qode_mlp_vjp, but also
 * writes f(t, y) to f_out (unless NULL) from the same forward pass, and adds
 * the parameter gradient to p_bar (unless NULL) instead of mlp->grads. */
int qode_mlp_field_vjp(void *ctx, double t, const void *y, const void *v, void *f_out,
                       void *y_bar, double *t_bar, void *p_bar);

#endif /* QODE_FIELDS_MLP_H */

/* The augmented system of the continuous adjoint, for native vector fields.
 *
 * Solving it backwards in time from the last output gives the gradients of
 * torchdiffeq's `odeint_adjoint`.  The augmented state is laid out as
 * torchdiffeq flattens its tuple (t-adjoint, y, a, parameter adjoints):
 *
 *   [ t_adj (1) | y (n) | a (n) | p_adj (n_params) ]
 *
 * and its derivative is (-a . df/dt, f(t, y), -a^T df/dy, -a^T df/dparams).
 * One call of the field's combined evaluation gives all four, so a whole
 * backward solve runs in C.
 */
#ifndef QODE_SOLVER_ADJOINT_DYNAMICS_H
#define QODE_SOLVER_ADJOINT_DYNAMICS_H

#include <stddef.h>

#include "common/dtype.h"

/* A native field's evaluation with its full vector-Jacobian product:
 * f_out = f(t, y) (skipped when NULL), y_bar = (df/dy)^T v, *t_bar = v . df/dt,
 * and p_bar += (df/dparams)^T v (skipped when NULL).  Returns 0 on success. */
typedef int (*qode_field_vjp_fn)(void *ctx, double t, const void *y, const void *v,
                                 void *f_out, void *y_bar, double *t_bar, void *p_bar);

typedef struct {
    qode_dtype dtype;         /* float32 or float64: the state's and the parameters' */
    size_t n;                 /* elements of y */
    size_t n_params;
    qode_field_vjp_fn field_vjp;
    void *field_ctx;
    void *minus_a;            /* n elements of scratch, owned by the caller */
} qode_adjoint_dynamics;

/* Elements of the augmented state: 1 + 2 n + n_params. */
size_t qode_adjoint_state_size(const qode_adjoint_dynamics *dynamics);

/* qode_rhs_fn of the augmented system; ctx is a qode_adjoint_dynamics. */
int qode_adjoint_dynamics_rhs(void *ctx, double t, const void *aug, void *daug);

#endif /* QODE_SOLVER_ADJOINT_DYNAMICS_H */

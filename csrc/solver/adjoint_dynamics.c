/* The continuous adjoint's augmented system (see adjoint_dynamics.h). */
#include "solver/adjoint_dynamics.h"

#include <string.h>

size_t qode_adjoint_state_size(const qode_adjoint_dynamics *d)
{
    return 1 + 2 * d->n + d->n_params;
}

int qode_adjoint_dynamics_rhs(void *ctx, double t, const void *aug, void *daug)
{
    const qode_adjoint_dynamics *d = ctx;
    size_t size = qode_dtype_size(d->dtype), n = d->n;
    const char *in = aug;
    char *out = daug;
    const char *y = in + size, *a = in + (1 + n) * size;
    char *f = out + size, *a_dot = out + (1 + n) * size, *p_dot = out + (1 + 2 * n) * size;
    /* v = -a, so that the VJP comes out with the adjoint's signs. */
    if (d->dtype == QODE_FLOAT64) {
        const double *src = (const double *)a;
        double *dst = d->minus_a;
        for (size_t i = 0; i < n; i++)
            dst[i] = -src[i];
    } else {
        const float *src = (const float *)a;
        float *dst = d->minus_a;
        for (size_t i = 0; i < n; i++)
            dst[i] = -src[i];
    }
    memset(p_dot, 0, d->n_params * size);
    double t_dot = 0.0;
    int status = d->field_vjp(d->field_ctx, t, y, d->minus_a, f, a_dot, &t_dot,
                              d->n_params > 0 ? p_dot : NULL);
    if (d->dtype == QODE_FLOAT64)
        *(double *)out = t_dot;
    else
        *(float *)out = (float)t_dot;
    return status;
}

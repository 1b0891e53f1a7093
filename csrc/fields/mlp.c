/* The MLP vector field (see mlp.h): checks, sizes and the precision dispatch. */
#include "fields/mlp.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/fast_tanh.h"
#include "common/simd.h"

#define REAL double
#define SUFFIX _f64
#define TANH qode_fast_tanh
#define TANH_ARRAY qode_fast_tanh_array
#include "fields/mlp_impl.h"
#undef REAL
#undef SUFFIX
#undef TANH
#undef TANH_ARRAY

#define REAL float
#define SUFFIX _f32
#define TANH qode_fast_tanhf
#define TANH_ARRAY qode_fast_tanhf_array
#include "fields/mlp_impl.h"
#undef REAL
#undef SUFFIX
#undef TANH
#undef TANH_ARRAY

static qode_status invalid(char *message, size_t size, const char *format, ...)
{
    if (message != NULL && size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(message, size, format, args);
        va_end(args);
    }
    return QODE_ERR_INVALID_ARGUMENT;
}

qode_status qode_mlp_check(const qode_mlp *m, char *message, size_t size)
{
    if (m->dtype != QODE_FLOAT32 && m->dtype != QODE_FLOAT64)
        return invalid(message, size, "the MLP field supports float32 and float64 states");
    if (m->n_layers < 1 || m->n_layers > QODE_MLP_MAX_LAYERS)
        return invalid(message, size, "the MLP field needs 1 to %d layers, got %zu",
                       QODE_MLP_MAX_LAYERS, m->n_layers);
    if ((unsigned)m->activation >= QODE_ACT_COUNT)
        return invalid(message, size, "unknown activation %d", (int)m->activation);
    if (m->widths == NULL || m->weights == NULL)
        return invalid(message, size, "the MLP field needs widths and weights");
    for (size_t l = 0; l <= m->n_layers; l++)
        if (m->widths[l] == 0)
            return invalid(message, size, "layer width %zu is zero", l);
    if (m->widths[0] != m->widths[m->n_layers])
        return invalid(message, size,
                       "a vector field maps the state to itself: the last layer has %zu "
                       "outputs but the state rows have %zu elements",
                       m->widths[m->n_layers], m->widths[0]);
    for (size_t l = 0; l < m->n_layers; l++)
        if (m->weights[l] == NULL || (m->biases != NULL && m->biases[l] == NULL))
            return invalid(message, size, "layer %zu has no weights or no bias", l);
    return QODE_OK;
}

size_t qode_mlp_state_size(const qode_mlp *m)
{
    return m->batch * m->widths[0];
}

size_t qode_mlp_n_params(const qode_mlp *m)
{
    size_t count = 0;
    for (size_t l = 0; l < m->n_layers; l++)
        count += m->widths[l + 1] * (m->widths[l] + (l == 0 ? (size_t)m->time_input : 0) +
                                     (m->biases ? 1 : 0));
    return count;
}

size_t qode_mlp_work_bytes(const qode_mlp *m)
{
    /* See the layout in mlp_impl.h: input, z and h of the hidden layers,
     * output, two gradient buffers. */
    size_t widest = 0, features = m->widths[0] + m->widths[m->n_layers];
    for (size_t l = 0; l <= m->n_layers; l++)
        widest = m->widths[l] > widest ? m->widths[l] : widest;
    for (size_t l = 1; l < m->n_layers; l++)
        features += 2 * m->widths[l];
    return m->batch * (features + 2 * widest) * qode_dtype_size(m->dtype);
}

int qode_mlp_rhs(void *ctx, double t, const void *y, void *dydt)
{
    const qode_mlp *m = ctx;
    if (m->dtype == QODE_FLOAT64)
        return rhs_f64(m, t, y, dydt);
    return rhs_f32(m, t, y, dydt);
}

int qode_mlp_field_vjp(void *ctx, double t, const void *y, const void *v, void *f_out,
                       void *y_bar, double *t_bar, void *p_bar)
{
    const qode_mlp *m = ctx;
    if (m->dtype == QODE_FLOAT64)
        return vjp_f64(m, t, y, v, f_out, y_bar, t_bar, p_bar);
    return vjp_f32(m, t, y, v, f_out, y_bar, t_bar, p_bar);
}

int qode_mlp_vjp(void *ctx, double t, const void *y, const void *v, void *y_bar, double *t_bar)
{
    const qode_mlp *m = ctx;
    return qode_mlp_field_vjp(ctx, t, y, v, NULL, y_bar, t_bar, m->grads);
}

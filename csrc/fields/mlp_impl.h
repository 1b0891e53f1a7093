/* The MLP field's loops, written once for both precisions.
 *
 * mlp.c includes this file twice, with REAL = double / SUFFIX = _f64 and
 * REAL = float / SUFFIX = _f32; TANH_ARRAY is qode_fast_tanh(f)_array
 * (absolute error ~1e-16 / 1e-7).
 *
 * Layout: inside the field, activations are feature-major (feature j of row b
 * at [j * batch + b]), so every inner loop runs over the batch: contiguous,
 * the same length for every layer shape, and vectorised by the compiler.
 * Hidden layer l (1 <= l < L) keeps its pre-activation z_l and output h_l, so
 * the VJP reuses one forward pass.  Sums over the batch (weight gradients)
 * use LANES independent partial sums in a fixed order: vectorisable and
 * deterministic.
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SUFFIX)

#define LANES 8

static REAL FN(activate)(qode_activation act, REAL z)
{
    switch (act) {
    case QODE_ACT_RELU: return z > 0 ? z : (REAL)0;
    /* torch.nn.Softplus returns z itself above its threshold of 20. */
    case QODE_ACT_SOFTPLUS: return z > 20 ? z : (REAL)log1p(exp(z));
    case QODE_ACT_SIGMOID: return (REAL)(1.0 / (1.0 + exp(-(double)z)));
    default: return z;
    }
}

/* d act / dz at z, given h = act(z). */
static REAL FN(slope)(qode_activation act, REAL z, REAL h)
{
    switch (act) {
    case QODE_ACT_TANH: return 1 - h * h;
    case QODE_ACT_RELU: return z > 0 ? (REAL)1 : (REAL)0;
    case QODE_ACT_SOFTPLUS: return z > 20 ? (REAL)1 : (REAL)(1.0 / (1.0 + exp(-(double)z)));
    case QODE_ACT_SIGMOID: return h * (1 - h);
    default: return 1;
    }
}

/* sum_b a[b] * c[b]. */
static QODE_ALWAYS_INLINE REAL FN(batch_dot)(const REAL *a, const REAL *c, size_t n)
{
    REAL part[LANES] = {0};
    size_t b = 0;
    for (; b + LANES <= n; b += LANES)
        for (size_t l = 0; l < LANES; l++)
            part[l] += a[b + l] * c[b + l];
    REAL sum = 0;
    for (; b < n; b++)
        sum += a[b] * c[b];
    for (size_t l = 0; l < LANES; l++)
        sum += part[l];
    return sum;
}

/* sum_b a[b]. */
static QODE_ALWAYS_INLINE REAL FN(batch_sum)(const REAL *a, size_t n)
{
    REAL part[LANES] = {0};
    size_t b = 0;
    for (; b + LANES <= n; b += LANES)
        for (size_t l = 0; l < LANES; l++)
            part[l] += a[b + l];
    REAL sum = 0;
    for (; b < n; b++)
        sum += a[b];
    for (size_t l = 0; l < LANES; l++)
        sum += part[l];
    return sum;
}

typedef struct {
    REAL *input;                        /* the state, feature-major: widths[0] x batch */
    REAL *z[QODE_MLP_MAX_LAYERS + 1];   /* z[l], h[l] for 1 <= l < L */
    REAL *h[QODE_MLP_MAX_LAYERS + 1];
    REAL *out;                          /* the last layer's output, widths[L] x batch */
    REAL *g0, *g1;                      /* two gradient buffers, widest x batch */
} FN(mlp_buffers);

static QODE_ALWAYS_INLINE FN(mlp_buffers) FN(layout)(const qode_mlp *m)
{
    FN(mlp_buffers) w;
    REAL *next = m->work;
    size_t widest = 0;
    for (size_t l = 0; l <= m->n_layers; l++)
        widest = m->widths[l] > widest ? m->widths[l] : widest;
    w.input = next;
    next += m->batch * m->widths[0];
    for (size_t l = 1; l < m->n_layers; l++) {
        w.z[l] = next;
        next += m->batch * m->widths[l];
        w.h[l] = next;
        next += m->batch * m->widths[l];
    }
    w.out = next;
    next += m->batch * m->widths[m->n_layers];
    w.g0 = next;
    next += m->batch * widest;
    w.g1 = next;
    return w;
}

/* Row-major (batch x width) <-> feature-major (width x batch). */
static QODE_ALWAYS_INLINE void FN(to_features)(const REAL *rows, REAL *features, size_t batch, size_t width)
{
    for (size_t b = 0; b < batch; b++)
        for (size_t j = 0; j < width; j++)
            features[j * batch + b] = rows[b * width + j];
}

static QODE_ALWAYS_INLINE void FN(to_rows)(const REAL *features, REAL *rows, size_t batch, size_t width)
{
    for (size_t b = 0; b < batch; b++)
        for (size_t j = 0; j < width; j++)
            rows[b * width + j] = features[j * batch + b];
}

/* out[j, :] = bias[j] + W[j, n_in] t + sum_k W[j, k] in[k, :] (feature-major). */
static QODE_ALWAYS_INLINE void FN(dense)(const qode_mlp *m, size_t n_in, size_t n_out, int with_time, double t,
                      const REAL *W, const REAL *bias, const REAL *in, REAL *out)
{
    size_t batch = m->batch, row = n_in + (size_t)with_time;
    for (size_t j = 0; j < n_out; j++) {
        const REAL *w = W + j * row;
        REAL start = bias ? bias[j] : 0;
        if (with_time)
            start += w[n_in] * (REAL)t;
        REAL *o = out + j * batch;
        for (size_t b = 0; b < batch; b++)
            o[b] = start;
        for (size_t k = 0; k < n_in; k++) {
            REAL wk = w[k];
            const REAL *x = in + k * batch;
            for (size_t b = 0; b < batch; b++)
                o[b] += wk * x[b];
        }
    }
}

/* Forward pass from w->input; leaves the output in w->out. */
static SIMD_CLONES void FN(forward)(const qode_mlp *m, double t, FN(mlp_buffers) *w)
{
    const REAL *in = w->input;
    for (size_t l = 0; l < m->n_layers; l++) {
        size_t n_in = m->widths[l], n_out = m->widths[l + 1];
        int last = l + 1 == m->n_layers;
        REAL *dst = last ? w->out : w->z[l + 1];
        FN(dense)(m, n_in, n_out, l == 0 && m->time_input, t, m->weights[l],
                  m->biases ? m->biases[l] : NULL, in, dst);
        if (!last) {
            size_t count = m->batch * n_out;
            REAL *hidden = w->h[l + 1];
            if (m->activation == QODE_ACT_TANH) {  /* the common case, vectorised */
                TANH_ARRAY(hidden, dst, count);
            } else {
                for (size_t i = 0; i < count; i++)
                    hidden[i] = FN(activate)(m->activation, dst[i]);
            }
            in = hidden;
        }
    }
}

static SIMD_CLONES int FN(rhs)(const qode_mlp *m, double t, const REAL *y, REAL *dydt)
{
    FN(mlp_buffers) w = FN(layout)(m);
    FN(to_features)(y, w.input, m->batch, m->widths[0]);
    FN(forward)(m, t, &w);
    FN(to_rows)(w.out, dydt, m->batch, m->widths[m->n_layers]);
    return 0;
}

/* Reverse sweep.  g holds dL/d(output of layer l+1), feature-major; on the
 * way down it becomes dL/d(input of layer l+1). */
static SIMD_CLONES int FN(vjp)(const qode_mlp *m, double t, const REAL *y, const REAL *v,
                               REAL *f_out, REAL *y_bar, double *t_bar, REAL *p_bar)
{
    FN(mlp_buffers) w = FN(layout)(m);
    size_t batch = m->batch;
    FN(to_features)(y, w.input, batch, m->widths[0]);
    /* A single layer's derivatives do not depend on y. */
    if (m->n_layers > 1 || f_out != NULL)
        FN(forward)(m, t, &w);
    if (f_out != NULL)
        FN(to_rows)(w.out, f_out, batch, m->widths[m->n_layers]);
    /* Where each layer's weight and bias gradients start in p_bar. */
    size_t weight_at[QODE_MLP_MAX_LAYERS], bias_at[QODE_MLP_MAX_LAYERS], offset = 0;
    for (size_t l = 0; l < m->n_layers; l++) {
        weight_at[l] = offset;
        offset += m->widths[l + 1] * (m->widths[l] + (l == 0 ? (size_t)m->time_input : 0));
    }
    for (size_t l = 0; l < m->n_layers; l++) {
        bias_at[l] = offset;
        offset += m->biases ? m->widths[l + 1] : 0;
    }
    REAL *g = w.g0, *g_in = w.g1;
    FN(to_features)(v, g, batch, m->widths[m->n_layers]);
    double time_sum = 0.0;
    for (size_t l = m->n_layers; l-- > 0;) {
        size_t n_in = m->widths[l], n_out = m->widths[l + 1];
        int with_time = l == 0 && m->time_input;
        size_t row = n_in + (size_t)with_time;
        const REAL *W = m->weights[l];
        const REAL *in = l == 0 ? w.input : w.h[l];
        REAL *dW = p_bar ? p_bar + weight_at[l] : NULL;
        REAL *db = p_bar && m->biases ? p_bar + bias_at[l] : NULL;
        memset(g_in, 0, batch * n_in * sizeof(REAL));
        for (size_t j = 0; j < n_out; j++) {
            const REAL *gj = g + j * batch, *wj = W + j * row;
            for (size_t k = 0; k < n_in; k++) {
                REAL wk = wj[k];
                REAL *d = g_in + k * batch;
                for (size_t b = 0; b < batch; b++)
                    d[b] += wk * gj[b];
            }
            if (with_time || db != NULL) {
                REAL g_sum = FN(batch_sum)(gj, batch);
                if (with_time)
                    time_sum += (double)(wj[n_in] * g_sum);
                if (db != NULL)
                    db[j] += g_sum;
                if (with_time && dW != NULL)
                    dW[j * row + n_in] += g_sum * (REAL)t;
            }
            if (dW != NULL)
                for (size_t k = 0; k < n_in; k++)
                    dW[j * row + k] += FN(batch_dot)(gj, in + k * batch, batch);
        }
        if (l > 0) {
            /* Through the activation of layer l: g = g_in * act'(z_l). */
            size_t count = batch * n_in;
            const REAL *z = w.z[l], *h = w.h[l];
            if (m->activation == QODE_ACT_TANH) {
                for (size_t i = 0; i < count; i++)
                    g_in[i] *= 1 - h[i] * h[i];
            } else {
                for (size_t i = 0; i < count; i++)
                    g_in[i] *= FN(slope)(m->activation, z[i], h[i]);
            }
        }
        REAL *swap = g;
        g = g_in;
        g_in = swap;
    }
    FN(to_rows)(g, y_bar, batch, m->widths[0]);
    *t_bar = time_sum;
    return 0;
}

#undef LANES
#undef FN
#undef CAT
#undef CAT_

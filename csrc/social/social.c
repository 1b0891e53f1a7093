/* Entry points of the social interaction kernels: argument checks, the
 * workspace, and dispatch to the float64 / float32 instantiations of
 * social_kernel.inc. */

/* Lets GCC if-convert the clamps in the fast tanh and vectorise the hidden-unit
 * loops; qode never relies on floating-point traps. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
/* Fused multiply-adds where the target has them (ISO C mode turns them off
 * by default); they only make each rounding step more accurate. */
#pragma GCC optimize("fp-contract=fast")
#endif

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* The pair loops are compiled twice (SIMD_CLONES, common/simd.h): for AVX2
 * + FMA and for the baseline; the loader picks one per CPU. */
#include "common/simd.h"
#include "common/fast_tanh.h"
#include "social/parallel.h"
#include "social/social_internal.h"

#define REAL double
#define SFX f64
#define TANH qode_fast_tanh
#include "social/social_kernel.inc"
#undef REAL
#undef SFX
#undef TANH

#define REAL float
#define SFX f32
#define TANH qode_fast_tanhf
#include "social/social_kernel.inc"
#undef REAL
#undef SFX
#undef TANH

/* Sets *detail (if wanted) and returns the status. */
static qode_status fail(qode_status status, const char *message, const char **detail)
{
    if (detail != NULL)
        *detail = message;
    return status;
}

/* a * b, or 0 with *overflow set. */
static size_t mul_size(size_t a, size_t b, int *overflow)
{
    if (a != 0 && b > SIZE_MAX / a) {
        *overflow = 1;
        return 0;
    }
    return a * b;
}

/* 1 if all n values are finite. */
static int all_finite(const void *data, size_t n, qode_dtype dtype)
{
    if (dtype == QODE_FLOAT64) {
        const double *x = data;
        for (size_t e = 0; e < n; e++)
            if (!isfinite(x[e]))
                return 0;
    } else {
        const float *x = data;
        for (size_t e = 0; e < n; e++)
            if (!isfinite(x[e]))
                return 0;
    }
    return 1;
}

/* 1 if all n values are 0 or 1. */
static int all_binary(const void *data, size_t n, qode_dtype dtype)
{
    for (size_t e = 0; e < n; e++) {
        double v = dtype == QODE_FLOAT64 ? ((const double *)data)[e] : ((const float *)data)[e];
        if (v != 0.0 && v != 1.0)
            return 0;
    }
    return 1;
}

static qode_status check_config(const qode_social_config *cfg, qode_dtype dtype,
                                const char **detail)
{
    if (cfg == NULL)
        return fail(QODE_ERR_INVALID_ARGUMENT, "social: config is NULL", detail);
    if (dtype != QODE_FLOAT32 && dtype != QODE_FLOAT64)
        return fail(QODE_ERR_INVALID_ARGUMENT, "social: dtype must be float32 or float64", detail);
    if (cfg->agents == 0 || cfg->dim == 0 || cfg->hidden == 0)
        return fail(QODE_ERR_SHAPE, "social: agents, dim and hidden must be at least 1", detail);
    if (!(isfinite(cfg->eps) && cfg->eps > 0.0))
        return fail(QODE_ERR_INVALID_ARGUMENT, "social: eps must be finite and > 0", detail);
    if (!isfinite(cfg->radius))
        return fail(QODE_ERR_INVALID_ARGUMENT, "social: radius must be finite", detail);
    if (!isfinite(cfg->cutoff_width) || cfg->cutoff_width < 0.0
        || (cfg->radius > 0.0 && cfg->cutoff_width > cfg->radius)
        || (cfg->radius <= 0.0 && cfg->cutoff_width != 0.0))
        return fail(QODE_ERR_INVALID_ARGUMENT,
                    "social: cutoff_width must be in [0, radius] (and 0 without a radius)", detail);
    if (!isfinite(cfg->beta1) || !isfinite(cfg->beta2))
        return fail(QODE_ERR_INVALID_ARGUMENT, "social: beta1 and beta2 must be finite", detail);
    return QODE_OK;
}

/* Checks presence, finiteness and the mask's values of every input. */
static qode_status check_inputs(const qode_social_config *cfg, qode_dtype dtype,
                                const qode_social_inputs *in, const char **detail)
{
    int overflow = 0;
    const size_t n = mul_size(cfg->batch, cfg->agents, &overflow);
    const size_t nd = mul_size(n, cfg->dim, &overflow);
    const size_t h2d = mul_size(cfg->hidden, mul_size(2, cfg->dim, &overflow), &overflow);
    const size_t ng = mul_size(n, cfg->n_goals, &overflow);
    const size_t no = mul_size(n, cfg->n_obstacles, &overflow);
    const size_t ngd = mul_size(ng, cfg->dim, &overflow);
    const size_t nod = mul_size(no, cfg->dim, &overflow);
    if (overflow)
        return fail(QODE_ERR_NO_MEMORY, "social: array sizes overflow", detail);
    if (in == NULL)
        return fail(QODE_ERR_INVALID_ARGUMENT, "social: inputs are NULL", detail);
    struct {
        const void *data;
        size_t size;
        int required;
        const char *missing;
        const char *nonfinite;
    } arrays[] = {
        {in->h, nd, 1, "social: h is NULL", "social: h contains NaN or Inf"},
        {in->mask, n, 0, "", "social: mask contains NaN or Inf"},
        {in->aggressiveness, n, 1, "social: aggressiveness is NULL",
         "social: aggressiveness contains NaN or Inf"},
        {in->w1, h2d, 1, "social: w1 is NULL", "social: w1 contains NaN or Inf"},
        {in->b1, cfg->hidden, 1, "social: b1 is NULL", "social: b1 contains NaN or Inf"},
        {in->w2, h2d / 2, 1, "social: w2 is NULL", "social: w2 contains NaN or Inf"},
        {in->b2, cfg->dim, 1, "social: b2 is NULL", "social: b2 contains NaN or Inf"},
        {in->goals, ngd, ngd > 0, "social: goals are NULL", "social: goals contain NaN or Inf"},
        {in->goal_weights, ng, ng > 0, "social: goal weights are NULL",
         "social: goal weights contain NaN or Inf"},
        {in->obstacles, nod, nod > 0, "social: obstacles are NULL",
         "social: obstacles contain NaN or Inf"},
        {in->obstacle_weights, no, no > 0, "social: obstacle weights are NULL",
         "social: obstacle weights contain NaN or Inf"},
        {in->self_term, nd, 0, "", "social: the self-dynamics term contains NaN or Inf"},
    };
    for (size_t a = 0; a < sizeof(arrays) / sizeof(arrays[0]); a++) {
        if (arrays[a].data == NULL) {
            if (arrays[a].required)
                return fail(QODE_ERR_INVALID_ARGUMENT, arrays[a].missing, detail);
            continue;
        }
        if (!all_finite(arrays[a].data, arrays[a].size, dtype))
            return fail(QODE_ERR_NONFINITE, arrays[a].nonfinite, detail);
    }
    if (in->mask != NULL && !all_binary(in->mask, n, dtype))
        return fail(QODE_ERR_INVALID_ARGUMENT, "social: mask values must be 0 or 1", detail);
    return QODE_OK;
}

/* Carves the workspace out of one zeroed allocation.  Offsets are rounded to
 * 64 bytes.  Backward-only arrays are left out of the forward pass. */
static qode_status workspace_create(const qode_social_config *cfg, qode_dtype dtype,
                                    int backward, qode_social_workspace *ws,
                                    const char **detail)
{
    const size_t real = dtype == QODE_FLOAT64 ? sizeof(double) : sizeof(float);
    const size_t N = cfg->agents, D = cfg->dim, H = cfg->hidden;
    const size_t n = cfg->batch * N; /* checked by check_inputs */
    const double pairs = (double)n * (double)N;
    const int use_cells = cfg->radius > 0.0;
    const double per_pair = (double)(H + D) * (backward ? 3.0 : 1.0);
    const double work = (use_cells ? (double)n * (N < 64 ? N : 64) : pairs) * per_pair;
    int workers = qode_social_workers(cfg->num_threads, work, n);
    /* Each backward worker keeps private copies of dv and dh: fewer workers
     * when those copies would pass 256 MiB. */
    const double private_bytes = (double)n * (double)(H + D) * (double)real;
    while (backward && workers > 1 && workers * private_bytes > 268435456.0)
        workers--;
    const size_t W = (size_t)workers;

    int overflow = 0;
    size_t counts[17];
    size_t sizes[17];
    counts[0] = mul_size(n, H, &overflow);   sizes[0] = real;          /* u */
    counts[1] = counts[0];                  sizes[1] = real;          /* v */
    counts[2] = mul_size(W, H, &overflow);  sizes[2] = real;          /* acc */
    counts[3] = counts[2];                  sizes[3] = real;          /* big_p */
    counts[4] = counts[2];                  sizes[4] = real;          /* s_tmp */
    counts[5] = mul_size(W, D, &overflow);  sizes[5] = real;          /* p_vec */
    counts[6] = backward ? counts[0] : 0;   sizes[6] = real;          /* du */
    counts[7] = backward ? mul_size(W, counts[0], &overflow) : 0; sizes[7] = real; /* dv */
    counts[8] = backward ? mul_size(W, mul_size(n, D, &overflow), &overflow) : 0;
    sizes[8] = real;                                                   /* dh */
    counts[9] = backward ? mul_size(W, mul_size(D, H, &overflow), &overflow) : 0;
    sizes[9] = real;                                                   /* dw2 */
    counts[10] = backward ? counts[5] : 0;  sizes[10] = real;         /* db2 */
    counts[11] = 2 * W;                     sizes[11] = sizeof(double); /* dbeta */
    counts[12] = mul_size(W, N, &overflow); sizes[12] = sizeof(size_t); /* candidates */
    counts[13] = qode_cell_list_bytes(cfg->batch, N); sizes[13] = 1;  /* cell list */
    if (counts[13] == 0)
        overflow = 1;
    counts[14] = mul_size(3, counts[12], &overflow); sizes[14] = sizeof(double); /* pairs */
    counts[15] = mul_size(2 * D, H, &overflow); sizes[15] = real;     /* w1t */
    counts[16] = mul_size(H, D, &overflow); sizes[16] = real;         /* w2t */

    size_t offsets[17];
    size_t total = 0;
    for (int a = 0; a < 17 && !overflow; a++) {
        size_t bytes = mul_size(counts[a], sizes[a], &overflow);
        if (overflow || bytes > SIZE_MAX - total - 64)
            overflow = 1;
        offsets[a] = total;
        total += (bytes + 63) / 64 * 64;
    }
    if (overflow)
        return fail(QODE_ERR_NO_MEMORY, "social: workspace size overflows", detail);
    char *block = calloc(1, total > 0 ? total : 1);
    if (block == NULL)
        return fail(QODE_ERR_NO_MEMORY, "social: out of memory for the workspace", detail);

    ws->workers = workers;
    ws->use_cells = use_cells;
    ws->block = block;
    ws->u = block + offsets[0];
    ws->v = block + offsets[1];
    ws->acc = block + offsets[2];
    ws->big_p = block + offsets[3];
    ws->s_tmp = block + offsets[4];
    ws->p_vec = block + offsets[5];
    ws->du = block + offsets[6];
    ws->dv_private = block + offsets[7];
    ws->dh_private = block + offsets[8];
    ws->dw2_private = block + offsets[9];
    ws->db2_private = block + offsets[10];
    ws->dbeta_private = (double *)(block + offsets[11]);
    ws->candidates = (size_t *)(block + offsets[12]);
    ws->pair_scratch = (double *)(block + offsets[14]);
    ws->w1t = block + offsets[15];
    ws->w2t = block + offsets[16];
    qode_cell_list_init(&ws->cells, cfg->batch, N, D > 1 ? 2 : 1, block + offsets[13]);
    return QODE_OK;
}

qode_status qode_social_forward(const qode_social_config *config, qode_dtype dtype,
                                const qode_social_inputs *inputs, void *out,
                                const char **detail)
{
    qode_status status = check_config(config, dtype, detail);
    if (status == QODE_OK)
        status = check_inputs(config, dtype, inputs, detail);
    if (status != QODE_OK)
        return status;
    if (out == NULL)
        return fail(QODE_ERR_INVALID_ARGUMENT, "social: out is NULL", detail);
    if (config->batch == 0)
        return QODE_OK;
    qode_social_workspace ws;
    status = workspace_create(config, dtype, 0, &ws, detail);
    if (status != QODE_OK)
        return status;
    if (dtype == QODE_FLOAT64)
        status = social_forward_f64(config, inputs, &ws, out);
    else
        status = social_forward_f32(config, inputs, &ws, out);
    free(ws.block);
    return status;
}

qode_status qode_social_backward(const qode_social_config *config, qode_dtype dtype,
                                 const qode_social_inputs *inputs, const void *grad_out,
                                 qode_social_grads *grads, const char **detail)
{
    qode_status status = check_config(config, dtype, detail);
    if (status == QODE_OK)
        status = check_inputs(config, dtype, inputs, detail);
    if (status != QODE_OK)
        return status;
    if (grad_out == NULL || grads == NULL)
        return fail(QODE_ERR_INVALID_ARGUMENT, "social: grad_out or grads is NULL", detail);
    int overflow = 0;
    size_t nd = mul_size(mul_size(config->batch, config->agents, &overflow), config->dim,
                         &overflow);
    if (!all_finite(grad_out, nd, dtype))
        return fail(QODE_ERR_NONFINITE, "social: grad_out contains NaN or Inf", detail);
    if (grads->h == NULL || grads->aggressiveness == NULL || grads->w1 == NULL
        || grads->b1 == NULL || grads->w2 == NULL || grads->b2 == NULL
        || (config->n_goals > 0 && (grads->goals == NULL || grads->goal_weights == NULL))
        || (config->n_obstacles > 0
            && (grads->obstacles == NULL || grads->obstacle_weights == NULL))
        || (inputs->self_term != NULL && grads->self_term == NULL))
        return fail(QODE_ERR_INVALID_ARGUMENT, "social: a gradient buffer is NULL", detail);
    grads->beta1 = 0.0;
    grads->beta2 = 0.0;
    if (config->batch == 0) {
        /* No agents: only the parameter gradients exist, and they are 0. */
        size_t real = dtype == QODE_FLOAT64 ? sizeof(double) : sizeof(float);
        size_t D = config->dim, H = config->hidden;
        for (size_t e = 0; e < real * H * 2 * D; e++) ((char *)grads->w1)[e] = 0;
        for (size_t e = 0; e < real * H; e++) ((char *)grads->b1)[e] = 0;
        for (size_t e = 0; e < real * D * H; e++) ((char *)grads->w2)[e] = 0;
        for (size_t e = 0; e < real * D; e++) ((char *)grads->b2)[e] = 0;
        return QODE_OK;
    }
    qode_social_workspace ws;
    status = workspace_create(config, dtype, 1, &ws, detail);
    if (status != QODE_OK)
        return status;
    if (dtype == QODE_FLOAT64)
        status = social_backward_f64(config, inputs, &ws, grad_out, grads);
    else
        status = social_backward_f32(config, inputs, &ws, grad_out, grads);
    free(ws.block);
    return status;
}

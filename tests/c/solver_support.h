/* Test problems and callbacks shared by the solver's C test programs.
 *
 * Every callback takes a `test_ctx`, which counts calls, remembers the range of
 * times the vector field was sampled at and can be told to fail, so that one
 * context type serves the accuracy, control and error-path tests alike.
 * Complex states are interleaved (re, im) pairs, as the core stores them.
 */
#ifndef QODE_TEST_SOLVER_SUPPORT_H
#define QODE_TEST_SOLVER_SUPPORT_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "solver/solver.h"

#define TEST_MAX_RECORDED_STEPS 4096

typedef struct {
    long long calls;          /* rhs evaluations so far */
    long long fail_at;        /* the rhs returns -1 on this call (1-based); 0: never */
    long long nan_from;       /* the rhs writes NaN from this call on; 0: never */
    double t_min, t_max;      /* range of the times the rhs was called at */
    double omega;             /* frequency of the complex oscillator */
    double slope;             /* y' = slope for rhs_constant */
    size_t n;                 /* elements, for the rhs that take several */
    qode_dtype dtype;         /* state dtype, for rhs_decay_any */
    /* Step hook: starts and sizes of accepted steps, in user time. */
    size_t n_accepted;
    double accepted_t0[TEST_MAX_RECORDED_STEPS];
    double accepted_dt[TEST_MAX_RECORDED_STEPS];
    long long hook_fail_at;   /* the hook returns -1 on this call; 0: never */
    long long hook_calls;
    /* Interrupt callback. */
    long long polls;
    long long interrupt_at;   /* the interrupt callback returns 1 on this poll */
    /* Event function g = y[0] - event_level. */
    double event_level;
    int event_nan;            /* the event function returns NaN */
    int norm_fails;           /* the custom norm returns -1 */
} test_ctx;

static inline void test_ctx_init(test_ctx *c)
{
    memset(c, 0, sizeof(*c));
    c->t_min = INFINITY;
    c->t_max = -INFINITY;
    c->omega = 1.0;
    c->slope = -1.0;
    c->n = 1;
    c->dtype = QODE_FLOAT64;
}

/* Bookkeeping every rhs does first; returns nonzero when this call must fail. */
static inline int rhs_enter(test_ctx *c, double t)
{
    c->calls++;
    c->t_min = fmin(c->t_min, t);
    c->t_max = fmax(c->t_max, t);
    return c->fail_at > 0 && c->calls == c->fail_at;
}

/* y' = -y, float64 with ctx->n elements (exact: y0 exp(-t)); from the
 * call nan_from on, the first element of f is NaN. */
static inline int rhs_decay(void *ctx, double t, const void *y, void *dydt)
{
    test_ctx *c = ctx;
    if (rhs_enter(c, t))
        return -1;
    for (size_t i = 0; i < c->n; i++)
        ((double *)dydt)[i] = -((const double *)y)[i];
    if (c->nan_from > 0 && c->calls >= c->nan_from)
        ((double *)dydt)[0] = NAN;
    return 0;
}

/* Element 0 decays (y' = -y), the other ctx->n - 1 elements stay constant. */
static inline int rhs_decay_first(void *ctx, double t, const void *y, void *dydt)
{
    test_ctx *c = ctx;
    if (rhs_enter(c, t))
        return -1;
    ((double *)dydt)[0] = -((const double *)y)[0];
    for (size_t i = 1; i < c->n; i++)
        ((double *)dydt)[i] = 0.0;
    return 0;
}

/* y' = -y for any dtype (ctx->dtype) and ctx->n elements; element i of a
 * complex state decays in both parts. */
static inline int rhs_decay_any(void *ctx, double t, const void *y, void *dydt)
{
    test_ctx *c = ctx;
    if (rhs_enter(c, t))
        return -1;
    size_t nr = c->n * (c->dtype == QODE_COMPLEX64 || c->dtype == QODE_COMPLEX128 ? 2 : 1);
    int is_double = c->dtype == QODE_FLOAT64 || c->dtype == QODE_COMPLEX128;
    for (size_t i = 0; i < nr; i++) {
        if (is_double)
            ((double *)dydt)[i] = -((const double *)y)[i];
        else
            ((float *)dydt)[i] = -((const float *)y)[i];
    }
    return 0;
}

/* y' = -y, float32. */
static inline int rhs_decay_f32(void *ctx, double t, const void *y, void *dydt)
{
    if (rhs_enter(ctx, t))
        return -1;
    ((float *)dydt)[0] = -((const float *)y)[0];
    return 0;
}

/* Rotation y' = A y with A = [[0, -1], [1, 0]]: y(t) = R(t) y0. */
static inline int rhs_rotation(void *ctx, double t, const void *y, void *dydt)
{
    if (rhs_enter(ctx, t))
        return -1;
    const double *u = y;
    double *du = dydt;
    du[0] = -u[1];
    du[1] = u[0];
    return 0;
}

/* y' = i omega y, complex128 with one element: y(t) = y0 exp(i omega t). */
static inline int rhs_oscillator_c128(void *ctx, double t, const void *y, void *dydt)
{
    test_ctx *c = ctx;
    if (rhs_enter(c, t))
        return -1;
    const double *u = y;
    double *du = dydt;
    du[0] = -c->omega * u[1];
    du[1] = c->omega * u[0];
    return 0;
}

/* The same for complex64. */
static inline int rhs_oscillator_c64(void *ctx, double t, const void *y, void *dydt)
{
    test_ctx *c = ctx;
    if (rhs_enter(c, t))
        return -1;
    const float *u = y;
    float *du = dydt;
    du[0] = (float)(-c->omega * u[1]);
    du[1] = (float)(c->omega * u[0]);
    return 0;
}

/* y' = y cos t, non-autonomous: y(t) = y(t0) exp(sin t - sin t0).  Tells
 * user time from internal time in reverse-time solves. */
static inline int rhs_cos_growth(void *ctx, double t, const void *y, void *dydt)
{
    if (rhs_enter(ctx, t))
        return -1;
    ((double *)dydt)[0] = ((const double *)y)[0] * cos(t);
    return 0;
}

/* y' = -y^2 cos t, nonlinear and non-autonomous: from y(0) = 1,
 * y(t) = 1 / (1 + sin t).  Exercises more order conditions than y' = -y. */
static inline int rhs_riccati(void *ctx, double t, const void *y, void *dydt)
{
    if (rhs_enter(ctx, t))
        return -1;
    double u = ((const double *)y)[0];
    ((double *)dydt)[0] = -u * u * cos(t);
    return 0;
}

/* y' = slope (ctx->slope). */
static inline int rhs_constant(void *ctx, double t, const void *y, void *dydt)
{
    (void)y;
    test_ctx *c = ctx;
    if (rhs_enter(c, t))
        return -1;
    ((double *)dydt)[0] = c->slope;
    return 0;
}

/* y' = y^2: from y(0) = 1, y = 1 / (1 - t) blows up at t = 1. */
static inline int rhs_square(void *ctx, double t, const void *y, void *dydt)
{
    if (rhs_enter(ctx, t))
        return -1;
    double u = ((const double *)y)[0];
    ((double *)dydt)[0] = u * u;
    return 0;
}

/* y' = +1 before t = 0.5 and -1 from then on: a jump in f. */
static inline int rhs_switch(void *ctx, double t, const void *y, void *dydt)
{
    (void)y;
    if (rhs_enter(ctx, t))
        return -1;
    ((double *)dydt)[0] = t < 0.5 ? 1.0 : -1.0;
    return 0;
}

/* Step hook: remembers accepted steps, fails on request. */
static inline int hook_record(void *ctx, qode_hook_kind kind, double t0, const void *y0, double dt)
{
    (void)y0;
    test_ctx *c = ctx;
    c->hook_calls++;
    if (c->hook_fail_at > 0 && c->hook_calls == c->hook_fail_at)
        return -1;
    if (kind == QODE_HOOK_ACCEPT && c->n_accepted < TEST_MAX_RECORDED_STEPS) {
        c->accepted_t0[c->n_accepted] = t0;
        c->accepted_dt[c->n_accepted] = dt;
        c->n_accepted++;
    }
    return 0;
}

/* Interrupt callback: asks to stop at poll number interrupt_at. */
static inline int interrupt_at_poll(void *ctx)
{
    test_ctx *c = ctx;
    c->polls++;
    return c->interrupt_at > 0 && c->polls >= c->interrupt_at;
}

/* Event g(t, y) = y[0] - event_level (float64 state). */
static inline int event_level_crossing(void *ctx, double t, const void *y, double *value)
{
    (void)t;
    test_ctx *c = ctx;
    *value = c->event_nan ? NAN : ((const double *)y)[0] - c->event_level;
    return 0;
}

/* Custom norm: the max-norm, or a failure when norm_fails is set (float64). */
static inline int norm_max_or_fail(void *ctx, const void *x, double *value)
{
    test_ctx *c = ctx;
    if (c->norm_fails)
        return -1;
    *value = fabs(((const double *)x)[0]);
    return 0;
}

/* A forward problem with scalar tolerances and no optional callbacks. */
static inline qode_problem make_problem(qode_dtype dtype, size_t n, qode_rhs_fn rhs,
                                        test_ctx *ctx, const double *rtol, const double *atol)
{
    qode_problem p;
    memset(&p, 0, sizeof(p));
    p.dtype = dtype;
    p.n = n;
    p.direction = 1.0;
    p.ctx = ctx;
    p.rhs = rhs;
    p.rtol = rtol;
    p.atol = atol;
    return p;
}

/* A heap copy of `bytes` bytes: solver inputs and outputs live on the heap in
 * these tests so that AddressSanitizer catches any read or write past them. */
static inline void *heap_copy(const void *src, size_t bytes)
{
    void *dst = malloc(bytes);
    if (dst != NULL)
        memcpy(dst, src, bytes);
    return dst;
}

/* The uniform grid t0, t0 + h, ..., t1 with n_steps steps, the last point set
 * to t1 exactly (as the fixed-grid solver requires). */
static inline double *uniform_grid(double t0, double t1, size_t n_steps)
{
    double *grid = malloc((n_steps + 1) * sizeof(double));
    if (grid == NULL)
        return NULL;
    for (size_t i = 0; i <= n_steps; i++)
        grid[i] = t0 + (t1 - t0) * (double)i / (double)n_steps;
    grid[n_steps] = t1;
    return grid;
}

#endif /* QODE_TEST_SOLVER_SUPPORT_H */

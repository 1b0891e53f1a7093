/* Error paths of the solvers: every failure returns its status code and a
 * message, stops calling back, and frees what it allocated (LeakSanitizer,
 * run by tests/test_c_core.py, fails the program on any leak).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "solver/solver.h"
#include "solver_support.h"

static const double TOL = 1e-8;
static const double NEG = -1e-8;

/* Adaptive dopri5 solve of `p` from y0 = 1 over `times`; y_out gets n_t values. */
static qode_status solve_adaptive(const qode_problem *p, const qode_adaptive_options *opt,
                                  const double *times, size_t n_t, qode_solve_info *info)
{
    double one = 1.0;
    double *y0 = heap_copy(&one, sizeof one), *y = malloc(n_t * sizeof(double));
    double *t = heap_copy(times, n_t * sizeof(double));
    qode_status st = qode_solve_adaptive(p, qode_tableau_find("dopri5"), opt, y0, t, n_t, y,
                                         NULL, info);
    free(y0);
    free(y);
    free(t);
    return st;
}

/* Fixed-grid rk4 solve of `p` from y0 = 1 on `grid`, outputs at `times`. */
static qode_status solve_fixed(const qode_problem *p, const double *grid, size_t n_grid,
                               const double *times, size_t n_t, qode_solve_info *info)
{
    qode_fixed_options opt = {QODE_INTERP_LINEAR, 0};
    double one = 1.0;
    double *y0 = heap_copy(&one, sizeof one), *y = malloc(n_t * sizeof(double));
    double *g = heap_copy(grid, n_grid * sizeof(double));
    double *t = heap_copy(times, n_t * sizeof(double));
    qode_status st = qode_solve_fixed(p, qode_tableau_find("rk4"), &opt, y0, g, n_grid, t, n_t,
                                      y, info);
    free(y0);
    free(y);
    free(g);
    free(t);
    return st;
}

static const double T01[2] = {0.0, 1.0};
static const double GRID01[5] = {0.0, 0.25, 0.5, 0.75, 1.0};

/* A failing vector field aborts with QODE_ERR_CALLBACK at once: the 5th call
 * fails and there is no 6th, on both drivers, also with a trajectory record. */
static void test_rhs_failure(void)
{
    qode_adaptive_options opt;
    qode_adaptive_options_default(&opt);
    test_ctx ctx;
    test_ctx_init(&ctx);
    ctx.fail_at = 5;
    qode_problem p = make_problem(QODE_FLOAT64, 1, rhs_decay, &ctx, &TOL, &TOL);
    qode_solve_info info;
    CHECK_INT_EQ(solve_adaptive(&p, &opt, T01, 2, &info), QODE_ERR_CALLBACK);
    CHECK_INT_EQ(ctx.calls, 5);

    /* With a record: the caller still owns it and frees it; nothing leaks. */
    test_ctx_init(&ctx);
    ctx.fail_at = 40;
    qode_trajectory record;
    qode_trajectory_init(&record);
    double one = 1.0, y[2];
    qode_status st = qode_solve_adaptive(&p, qode_tableau_find("dopri5"), &opt, &one, T01, 2, y,
                                         &record, &info);
    CHECK_INT_EQ(st, QODE_ERR_CALLBACK);
    CHECK_INT_EQ(ctx.calls, 40);
    CHECK(record.n_points >= 1);
    qode_trajectory_free(&record);

    test_ctx_init(&ctx);
    ctx.fail_at = 5;
    CHECK_INT_EQ(solve_fixed(&p, GRID01, 5, T01, 2, &info), QODE_ERR_CALLBACK);
    CHECK_INT_EQ(ctx.calls, 5);
}

/* NaN from the vector field in the middle of a solve (the 2nd call is the
 * initial-step probe, the 30th a stage) gives QODE_ERR_NONFINITE with a
 * message naming the time, on both drivers. */
static void test_rhs_nan(void)
{
    const long long nan_calls[3] = {2, 30, 3};
    for (int k = 0; k < 3; k++) {
        test_ctx ctx;
        test_ctx_init(&ctx);
        ctx.nan_from = nan_calls[k];
        qode_problem p = make_problem(QODE_FLOAT64, 1, rhs_decay, &ctx, &TOL, &TOL);
        qode_solve_info info;
        qode_status st;
        if (k < 2) {
            qode_adaptive_options opt;
            qode_adaptive_options_default(&opt);
            st = solve_adaptive(&p, &opt, T01, 2, &info);
        } else {
            st = solve_fixed(&p, GRID01, 5, T01, 2, &info);
        }
        CHECK_MSG(st == QODE_ERR_NONFINITE, "NaN from call %lld: status %d (%s)", nan_calls[k],
                  st, info.message);
        CHECK_MSG(strstr(info.message, "t=") != NULL, "message: %s", info.message);
        /* It stops rather than shrinking the step forever. */
        CHECK_MSG(ctx.calls < nan_calls[k] + 20, "%lld calls", ctx.calls);
    }
}

/* A vector field that is NaN already at (t0, y0) is reported at once, before
 * any step (torchdiffeq would let the NaN initial step become min_step = 0
 * and report "underflow in dt"). */
static void test_rhs_nan_at_start(void)
{
    test_ctx ctx;
    test_ctx_init(&ctx);
    ctx.nan_from = 1;
    qode_problem p = make_problem(QODE_FLOAT64, 1, rhs_decay, &ctx, &TOL, &TOL);
    qode_adaptive_options opt;
    qode_adaptive_options_default(&opt);
    qode_solve_info info;
    qode_status st = solve_adaptive(&p, &opt, T01, 2, &info);
    CHECK_MSG(st == QODE_ERR_NONFINITE, "status %d (%s)", st, info.message);
    CHECK_MSG(strstr(info.message, "t=0") != NULL, "message: %s", info.message);
    CHECK_INT_EQ(ctx.calls, 1);
}
/* A non-finite y0 is refused before f is called. */
static void test_nonfinite_y0(void)
{
    test_ctx ctx;
    test_ctx_init(&ctx);
    qode_problem p = make_problem(QODE_FLOAT64, 1, rhs_decay, &ctx, &TOL, &TOL);
    qode_adaptive_options opt;
    qode_adaptive_options_default(&opt);
    double bad = INFINITY, y[2];
    qode_solve_info info;
    CHECK_INT_EQ(qode_solve_adaptive(&p, qode_tableau_find("dopri5"), &opt, &bad, T01, 2, y,
                                     NULL, &info), QODE_ERR_NONFINITE);
    CHECK_INT_EQ(ctx.calls, 0);
}

/* y' = y^2 from y(0) = 1 blows up at t = 1.  Solving to t = 2, dopri5 shrinks
 * its steps towards the singularity until t + dt == t: the solve ends with
 * QODE_ERR_STEP_UNDERFLOW (not a non-finite state: the stages stay finite at
 * these step sizes), and the message names a time at the pole.  The numerical
 * pole sits where 1/y reaches 0, shifted from 1 by the integration error
 * (~3e-9 at this tolerance), so "at" means within 1e-6. */
static void test_blow_up_underflows(void)
{
    test_ctx ctx;
    test_ctx_init(&ctx);
    qode_problem p = make_problem(QODE_FLOAT64, 1, rhs_square, &ctx, &TOL, &TOL);
    qode_adaptive_options opt;
    qode_adaptive_options_default(&opt);
    const double times[2] = {0.0, 2.0};
    qode_solve_info info;
    qode_status st = solve_adaptive(&p, &opt, times, 2, &info);
    CHECK_MSG(st == QODE_ERR_STEP_UNDERFLOW, "status %d (%s)", st, info.message);
    const char *at = strstr(info.message, "t=");
    CHECK_MSG(at != NULL, "message: %s", info.message);
    if (at != NULL) {
        double t_fail = strtod(at + 2, NULL);
        CHECK_MSG(fabs(t_fail - 1.0) < 1e-6, "failed at t=%.17g", t_fail);
    }
}

/* max_num_steps = 3 stops after 3 attempts between two outputs. */
static void test_max_num_steps(void)
{
    test_ctx ctx;
    test_ctx_init(&ctx);
    qode_problem p = make_problem(QODE_FLOAT64, 1, rhs_decay, &ctx, &TOL, &TOL);
    p.step_hook = hook_record;
    qode_adaptive_options opt;
    qode_adaptive_options_default(&opt);
    opt.max_num_steps = 3;
    const double times[2] = {0.0, 10.0};
    qode_solve_info info;
    qode_status st = solve_adaptive(&p, &opt, times, 2, &info);
    CHECK_MSG(st == QODE_ERR_MAX_STEPS, "status %d (%s)", st, info.message);
    CHECK_INT_EQ(info.n_accepted + info.n_rejected, 3);
    CHECK_MSG(strstr(info.message, "max_num_steps") != NULL, "message: %s", info.message);

    /* The adaptive event solve counts attempts the same way. */
    test_ctx_init(&ctx);
    ctx.event_level = -5.0;  /* y = exp(-t) never gets there */
    p.event = event_level_crossing;
    double one = 1.0, t_event, y_event;
    st = qode_solve_adaptive_event(&p, qode_tableau_find("dopri5"), &opt, &one, 0.0, 1e-9,
                                   &t_event, &y_event, NULL, &info);
    CHECK_MSG(st == QODE_ERR_MAX_STEPS, "status %d (%s)", st, info.message);
}

/* Bad arguments: QODE_ERR_INVALID_ARGUMENT with a message, before f is ever
 * called. */
static void test_invalid_arguments(void)
{
    qode_adaptive_options opt;
    qode_adaptive_options_default(&opt);
    qode_solve_info info;
    test_ctx ctx;
    test_ctx_init(&ctx);
    const qode_problem good = make_problem(QODE_FLOAT64, 1, rhs_decay, &ctx, &TOL, &TOL);
    qode_problem p;

#define EXPECT_INVALID(call, what)                                                           \
    do {                                                                                     \
        memset(&info, 0, sizeof info);                                                       \
        qode_status st_ = (call);                                                            \
        CHECK_MSG(st_ == QODE_ERR_INVALID_ARGUMENT, "%s: status %d (%s)", what, st_,          \
                  info.message);                                                             \
        CHECK_MSG(info.message[0] != '\0', "%s: no message", what);                         \
    } while (0)

    p = good;
    p.rtol = &NEG;
    EXPECT_INVALID(solve_adaptive(&p, &opt, T01, 2, &info), "negative rtol");
    p = good;
    p.atol = &NEG;
    EXPECT_INVALID(solve_fixed(&p, GRID01, 5, T01, 2, &info), "negative atol");
    const double not_monotone[3] = {0.0, 1.0, 0.5}, with_nan[2] = {0.0, NAN};
    EXPECT_INVALID(solve_adaptive(&good, &opt, not_monotone, 3, &info), "t not monotone");
    EXPECT_INVALID(solve_adaptive(&good, &opt, with_nan, 2, &info), "t with NaN");
    EXPECT_INVALID(solve_adaptive(&good, &opt, T01, 0, &info), "empty t");
    const double short_grid[3] = {0.0, 0.5, 0.9}, late_grid[2] = {0.1, 1.0};
    EXPECT_INVALID(solve_fixed(&good, short_grid, 3, T01, 2, &info), "grid ends before t");
    EXPECT_INVALID(solve_fixed(&good, late_grid, 2, T01, 2, &info), "grid starts after t");
    const double zigzag[4] = {0.0, 0.6, 0.4, 1.0};
    EXPECT_INVALID(solve_fixed(&good, zigzag, 4, T01, 2, &info), "grid not monotone");
    EXPECT_INVALID(solve_fixed(&good, GRID01, 5, not_monotone, 3, &info), "fixed t not monotone");
    p = good;
    p.direction = 0.0;
    EXPECT_INVALID(solve_adaptive(&p, &opt, T01, 2, &info), "direction 0");
    p = good;
    p.n = 0;
    EXPECT_INVALID(solve_adaptive(&p, &opt, T01, 2, &info), "empty state");
    p = good;
    p.rhs = NULL;
    EXPECT_INVALID(solve_adaptive(&p, &opt, T01, 2, &info), "no rhs");
    const size_t bad_ends[2] = {1, 3};
    p = good;
    p.segment_ends = bad_ends;
    p.n_segments = 2;
    EXPECT_INVALID(solve_adaptive(&p, &opt, T01, 2, &info), "segments past the state");

    qode_adaptive_options bad = opt;
    bad.min_step = -1.0;
    EXPECT_INVALID(solve_adaptive(&good, &bad, T01, 2, &info), "negative min_step");
    bad = opt;
    bad.max_num_steps = 0;
    EXPECT_INVALID(solve_adaptive(&good, &bad, T01, 2, &info), "max_num_steps 0");
    const double repeated[2] = {0.5, 0.5};
    bad = opt;
    bad.step_t = repeated;
    bad.n_step_t = 1;
    bad.jump_t = repeated + 1;
    bad.n_jump_t = 1;
    EXPECT_INVALID(solve_adaptive(&good, &bad, T01, 2, &info), "time in step_t and jump_t");

    double one = 1.0, y[2], t_event, y_event;
    EXPECT_INVALID(qode_solve_adaptive(&good, qode_tableau_find("rk4"), &opt, &one, T01, 2, y,
                                       NULL, &info), "adaptive solve with a fixed method");
    EXPECT_INVALID(qode_solve_adaptive_event(&good, qode_tableau_find("dopri5"), &opt, &one, 0.0,
                                             1e-9, &t_event, &y_event, NULL, &info),
                   "event solve without an event function");
    p = good;
    p.event = event_level_crossing;
    qode_fixed_options fopt = {QODE_INTERP_LINEAR, 0};
    EXPECT_INVALID(qode_solve_fixed_event(&p, qode_tableau_find("rk4"), &fopt, &one, 0.0, 0.0,
                                          100, 1e-9, &t_event, &y_event, &info),
                   "fixed event solve with step_size 0");
    EXPECT_INVALID(qode_solve_adaptive_event(&p, qode_tableau_find("dopri5"), &opt, &one, 0.0,
                                             0.0, &t_event, &y_event, NULL, &info),
                   "event tolerance 0");
#undef EXPECT_INVALID

    CHECK_INT_EQ(ctx.calls, 0);
    CHECK(qode_tableau_find("dopri6") == NULL);
    CHECK(qode_tableau_find("") == NULL);
    CHECK(qode_tableau_find("DOPRI5") == NULL);
}

/* The interrupt callback (polled after every step attempt) stops the solve
 * with QODE_ERR_CALLBACK at the poll that asks for it. */
static void test_interrupt(void)
{
    for (int fixed = 0; fixed < 2; fixed++) {
        test_ctx ctx;
        test_ctx_init(&ctx);
        ctx.interrupt_at = 3;
        qode_problem p = make_problem(QODE_FLOAT64, 1, rhs_decay, &ctx, &TOL, &TOL);
        p.interrupt = interrupt_at_poll;
        qode_solve_info info;
        qode_status st;
        if (fixed) {
            st = solve_fixed(&p, GRID01, 5, T01, 2, &info);
        } else {
            qode_adaptive_options opt;
            qode_adaptive_options_default(&opt);
            st = solve_adaptive(&p, &opt, T01, 2, &info);
        }
        CHECK_MSG(st == QODE_ERR_CALLBACK, "fixed=%d: status %d", fixed, st);
        CHECK_INT_EQ(ctx.polls, 3);
        CHECK_INT_EQ(info.n_accepted + info.n_rejected, 3);
    }
}

/* Other callbacks that fail: the step hook, the event function (an error, or
 * NaN), and a custom norm. */
static void test_other_callback_failures(void)
{
    qode_adaptive_options opt;
    qode_adaptive_options_default(&opt);
    qode_solve_info info;
    test_ctx ctx;
    test_ctx_init(&ctx);
    ctx.hook_fail_at = 4;
    qode_problem p = make_problem(QODE_FLOAT64, 1, rhs_decay, &ctx, &TOL, &TOL);
    p.step_hook = hook_record;
    CHECK_INT_EQ(solve_adaptive(&p, &opt, T01, 2, &info), QODE_ERR_CALLBACK);
    CHECK_INT_EQ(ctx.hook_calls, 4);

    test_ctx_init(&ctx);
    ctx.event_nan = 1;
    p = make_problem(QODE_FLOAT64, 1, rhs_decay, &ctx, &TOL, &TOL);
    p.event = event_level_crossing;
    double one = 1.0, t_event, y_event;
    qode_status st = qode_solve_adaptive_event(&p, qode_tableau_find("dopri5"), &opt, &one, 0.0,
                                               1e-9, &t_event, &y_event, NULL, &info);
    CHECK_MSG(st == QODE_ERR_NONFINITE, "status %d (%s)", st, info.message);

    /* A fixed-step event search that never finds a sign change gives up. */
    test_ctx_init(&ctx);
    ctx.event_level = -5.0;
    qode_fixed_options fopt = {QODE_INTERP_LINEAR, 0};
    st = qode_solve_fixed_event(&p, qode_tableau_find("rk4"), &fopt, &one, 0.0, 0.1, 50, 1e-9,
                                &t_event, &y_event, &info);
    CHECK_MSG(st == QODE_ERR_EVENT_NOT_FOUND, "status %d (%s)", st, info.message);
    CHECK_INT_EQ(info.n_accepted, 50);

    test_ctx_init(&ctx);
    ctx.norm_fails = 1;
    p = make_problem(QODE_FLOAT64, 1, rhs_decay, &ctx, &TOL, &TOL);
    p.norm = norm_max_or_fail;
    CHECK_INT_EQ(solve_adaptive(&p, &opt, T01, 2, &info), QODE_ERR_CALLBACK);
    /* The same norm, succeeding, gives a normal solve. */
    ctx.norm_fails = 0;
    CHECK_INT_EQ(solve_adaptive(&p, &opt, T01, 2, &info), QODE_OK);
}

int main(void)
{
    test_rhs_failure();
    test_rhs_nan();
    test_rhs_nan_at_start();
    test_nonfinite_y0();
    test_blow_up_underflows();
    test_max_num_steps();
    test_invalid_arguments();
    test_interrupt();
    test_other_callback_failures();
    return check_summary();
}

/* What steers an adaptive solve, and what it leaves behind: per-element
 * tolerances, the mixed (per-segment) norm, step_t / jump_t, events on both
 * drivers, and the recorded trajectory.  Built with AddressSanitizer and UBSan
 * by tests/test_c_core.py.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "solver/solver.h"
#include "solver_support.h"

/* nfe of a dopri5 solve of y' = -y (two elements, both from 1) to t = 2 with
 * the given tolerance arrays and strides. */
static long long decay_pair_nfe(const double *rtol, size_t rtol_stride, const double *atol,
                                size_t atol_stride, double *y_end)
{
    test_ctx ctx;
    test_ctx_init(&ctx);
    ctx.n = 2;
    qode_problem p = make_problem(QODE_FLOAT64, 2, rhs_decay, &ctx, rtol, atol);
    p.rtol_stride = rtol_stride;
    p.atol_stride = atol_stride;
    qode_adaptive_options opt;
    qode_adaptive_options_default(&opt);
    const double start[2] = {1.0, 1.0}, times[2] = {0.0, 2.0};
    double *y0 = heap_copy(start, sizeof start), *t = heap_copy(times, sizeof times);
    double *y = malloc(4 * sizeof(double));
    qode_solve_info info;
    qode_status st = qode_solve_adaptive(&p, qode_tableau_find("dopri5"), &opt, y0, t, 2, y,
                                         NULL, &info);
    CHECK_MSG(st == QODE_OK, "status %d (%s)", st, info.message);
    y_end[0] = y[2];
    y_end[1] = y[3];
    free(y0);
    free(t);
    free(y);
    return st == QODE_OK ? info.nfe : -1;
}

/* Per-element tolerances (stride 1) are read element by element: the two
 * identical components with tolerances {tight, loose} or {loose, tight} take
 * the same steps, more than with the loose scalar and as many as with the
 * tight one would need within a factor.  If the stride were ignored,
 * {loose, tight} would behave like the loose scalar.  The arrays are heap
 * buffers of exactly two elements, so reading a third is caught. */
static void test_per_element_tolerances(void)
{
    const double tight_loose[2] = {1e-10, 1e-4}, loose_tight[2] = {1e-4, 1e-10};
    const double loose = 1e-4, tight = 1e-10;
    double *tl = heap_copy(tight_loose, sizeof tight_loose);
    double *lt = heap_copy(loose_tight, sizeof loose_tight);
    double y_tl[2], y_lt[2], y_loose[2], y_tight[2];
    long long nfe_tl = decay_pair_nfe(tl, 1, tl, 1, y_tl);
    long long nfe_lt = decay_pair_nfe(lt, 1, lt, 1, y_lt);
    long long nfe_loose = decay_pair_nfe(&loose, 0, &loose, 0, y_loose);
    long long nfe_tight = decay_pair_nfe(&tight, 0, &tight, 0, y_tight);
    CHECK_INT_EQ(nfe_tl, nfe_lt);
    CHECK_MSG(nfe_tl > 2 * nfe_loose, "nfe %lld with {tight, loose}, %lld with loose", nfe_tl,
              nfe_loose);
    CHECK_MSG(nfe_tl <= nfe_tight, "nfe %lld with {tight, loose}, %lld with tight", nfe_tl,
              nfe_tight);
    /* Both components follow the tight tolerance, since they share the steps. */
    CHECK_NEAR(y_tl[0], exp(-2.0), 1e-8);
    CHECK_NEAR(y_lt[1], exp(-2.0), 1e-8);
    free(tl);
    free(lt);
}

/* dopri5 solve of y0' = -y0 with n - 1 constant companions (all y = 1) to t = 1;
 * returns nfe, writes y0(1). */
static long long decay_with_companions(size_t n, const size_t *segment_ends, size_t n_segments,
                                       double *y_first)
{
    static const double tol = 1e-8;
    test_ctx ctx;
    test_ctx_init(&ctx);
    ctx.n = n;
    qode_problem p = make_problem(QODE_FLOAT64, n, rhs_decay_first, &ctx, &tol, &tol);
    p.segment_ends = segment_ends;
    p.n_segments = n_segments;
    qode_adaptive_options opt;
    qode_adaptive_options_default(&opt);
    const double times[2] = {0.0, 1.0};
    double *y0 = malloc(n * sizeof(double)), *y = malloc(2 * n * sizeof(double));
    double *t = heap_copy(times, sizeof times);
    for (size_t i = 0; i < n; i++)
        y0[i] = 1.0;
    qode_solve_info info;
    qode_status st = qode_solve_adaptive(&p, qode_tableau_find("dopri5"), &opt, y0, t, 2, y,
                                         NULL, &info);
    CHECK_MSG(st == QODE_OK, "n=%zu: status %d (%s)", n, st, info.message);
    *y_first = y[n];
    free(y0);
    free(y);
    free(t);
    return st == QODE_OK ? info.nfe : -1;
}

/* The mixed norm is the maximum of the segments' RMS norms.  With the decaying
 * element alone in its segment, the 99 error-free companions no longer dilute
 * its error: the solve takes exactly the steps of the one-element problem,
 * whereas the plain RMS over 100 elements (error / 10) takes fewer. */
static void test_mixed_norm_segments(void)
{
    double y_alone, y_segmented, y_plain;
    long long nfe_alone = decay_with_companions(1, NULL, 0, &y_alone);
    const size_t ends[2] = {1, 100};
    size_t *heap_ends = heap_copy(ends, sizeof ends);
    long long nfe_segmented = decay_with_companions(100, heap_ends, 2, &y_segmented);
    long long nfe_plain = decay_with_companions(100, NULL, 0, &y_plain);
    CHECK_INT_EQ(nfe_segmented, nfe_alone);
    CHECK_MSG(nfe_plain < nfe_segmented, "nfe %lld plain, %lld segmented", nfe_plain,
              nfe_segmented);
    CHECK_NEAR(y_segmented, y_alone, 1e-15);
    CHECK_NEAR(y_segmented, exp(-1.0), 1e-7);
    free(heap_ends);
}

/* 1 if some accepted step recorded by the hook starts exactly at `t`, and the
 * step before it ends there (t0 + dt rounds to within an ulp or two). */
static int steps_land_on(const test_ctx *c, double t)
{
    for (size_t i = 1; i < c->n_accepted; i++)
        if (c->accepted_t0[i] == t &&
            fabs(c->accepted_t0[i - 1] + c->accepted_dt[i - 1] - t) <= 4e-16 * fabs(t))
            return 1;
    return 0;
}

/* step_t and jump_t: accepted steps end exactly on them (given in any order),
 * and after a jump f is evaluated again just after it, so that the
 * discontinuous y' = (t < 0.5 ? 1 : -1) is integrated exactly. */
static void test_step_t_and_jump_t(void)
{
    static const double tol = 1e-9;
    const double step_times[3] = {0.7, 0.3, 0.9}, jump_times[1] = {0.5}, times[2] = {0.0, 1.0};
    double *step_t = heap_copy(step_times, sizeof step_times);
    double *jump_t = heap_copy(jump_times, sizeof jump_times);
    double *t = heap_copy(times, sizeof times);
    double zero = 0.0;
    double *y0 = heap_copy(&zero, sizeof zero), *y = malloc(2 * sizeof(double));
    for (int with_jump = 0; with_jump < 2; with_jump++) {
        test_ctx ctx;
        test_ctx_init(&ctx);
        qode_problem p = make_problem(QODE_FLOAT64, 1, rhs_switch, &ctx, &tol, &tol);
        p.step_hook = hook_record;
        qode_adaptive_options opt;
        qode_adaptive_options_default(&opt);
        opt.step_t = step_t;
        opt.n_step_t = 3;
        opt.jump_t = with_jump ? jump_t : NULL;
        opt.n_jump_t = with_jump ? 1 : 0;
        qode_solve_info info;
        qode_status st = qode_solve_adaptive(&p, qode_tableau_find("dopri5"), &opt, y0, t, 2, y,
                                             NULL, &info);
        CHECK_MSG(st == QODE_OK, "status %d (%s)", st, info.message);
        CHECK_INT_EQ(ctx.n_accepted, info.n_accepted);
        for (int i = 0; i < 3; i++)
            CHECK_MSG(steps_land_on(&ctx, step_times[i]), "no step ends at step_t %g (jump %d)",
                      step_times[i], with_jump);
        if (with_jump) {
            CHECK(steps_land_on(&ctx, 0.5));
            /* Piecewise constant f, sampled on the right side of the jump by
             * every stage: every step is exact and none is rejected. */
            CHECK_NEAR(y[1], 0.0, 1e-12);
            CHECK_INT_EQ(info.n_rejected, 0);
        } else {
            /* Without the jump the controller has to find the kink itself. */
            CHECK_MSG(info.n_rejected > 0, "%lld rejected", info.n_rejected);
            CHECK_NEAR(y[1], 0.0, 1e-6);
        }
    }
    free(step_t);
    free(jump_t);
    free(t);
    free(y0);
    free(y);
}

/* Events: y' = -1 from y(0) = 1 reaches g = y - 0.25 = 0 at t = 0.75, found
 * by both drivers to within the event tolerance; in reverse time y' = 1 from
 * y(1) = 1 going down reaches 0.25 at t = 0.25. */
static void test_events(void)
{
    static const double tol = 1e-9;
    const double event_tol = 1e-10;
    double one = 1.0;
    double *y0 = heap_copy(&one, sizeof one), *y_event = malloc(sizeof(double));
    for (int reverse = 0; reverse < 2; reverse++) {
        test_ctx ctx;
        test_ctx_init(&ctx);
        ctx.slope = reverse ? 1.0 : -1.0;
        ctx.event_level = 0.25;
        qode_problem p = make_problem(QODE_FLOAT64, 1, rhs_constant, &ctx, &tol, &tol);
        p.event = event_level_crossing;
        p.direction = reverse ? -1.0 : 1.0;
        double t0 = reverse ? 1.0 : 0.0, expected = reverse ? 0.25 : 0.75, t_event = NAN;
        qode_adaptive_options opt;
        qode_adaptive_options_default(&opt);
        qode_solve_info info;
        qode_status st = qode_solve_adaptive_event(&p, qode_tableau_find("dopri5"), &opt, y0, t0,
                                                   event_tol, &t_event, y_event, NULL, &info);
        CHECK_MSG(st == QODE_OK, "adaptive, reverse=%d: status %d (%s)", reverse, st,
                  info.message);
        CHECK_NEAR(t_event, expected, 2 * event_tol);
        CHECK_NEAR(*y_event, 0.25, 1e-8);

        /* Fixed steps of 0.1 with rk4 (exact for constant f), linear interpolation. */
        qode_fixed_options fopt = {QODE_INTERP_LINEAR, 0};
        t_event = NAN;
        st = qode_solve_fixed_event(&p, qode_tableau_find("rk4"), &fopt, y0, t0, 0.1, 20000,
                                    event_tol, &t_event, y_event, &info);
        CHECK_MSG(st == QODE_OK, "fixed, reverse=%d: status %d (%s)", reverse, st, info.message);
        CHECK_NEAR(t_event, expected, 2 * event_tol);
        CHECK_NEAR(*y_event, 0.25, 1e-8);
        CHECK_MSG(info.n_accepted == 8, "%lld steps of 0.1 to pass 0.75", info.n_accepted);
    }
    /* An event already at t0 (g = 0) returns t0 without stepping. */
    test_ctx ctx;
    test_ctx_init(&ctx);
    ctx.event_level = 1.0;
    qode_problem p = make_problem(QODE_FLOAT64, 1, rhs_constant, &ctx, &tol, &tol);
    p.event = event_level_crossing;
    qode_adaptive_options opt;
    qode_adaptive_options_default(&opt);
    qode_solve_info info;
    double t_event = NAN;
    qode_status st = qode_solve_adaptive_event(&p, qode_tableau_find("dopri5"), &opt, y0, 0.0,
                                               event_tol, &t_event, y_event, NULL, &info);
    CHECK_INT_EQ(st, QODE_OK);
    CHECK(t_event == 0.0 && *y_event == 1.0);
    CHECK_INT_EQ(info.n_accepted, 0);
    free(y0);
    free(y_event);
}

/* The trajectory record of an adaptive solve: one point per accepted step plus
 * the start, times strictly monotone in the direction of the solve, states on
 * the exact solution, f the derivative at each point, and with the final time
 * in step_t the last point is the returned solution.  f is the derivative in
 * internal time s = direction * t (what the backward pass reuses as k[0]), so
 * for y' = -y it is exactly -direction * y, whether fresh or carried over
 * from the last stage. */
static void test_trajectory_record(void)
{
    static const double tol = 1e-9;
    for (int reverse = 0; reverse < 2; reverse++) {
        const double forward_times[3] = {0.0, 1.0, 2.0}, reverse_times[3] = {2.0, 1.0, 0.0};
        const double *times = reverse ? reverse_times : forward_times;
        double t_last = times[2];
        test_ctx ctx;
        test_ctx_init(&ctx);
        qode_problem p = make_problem(QODE_FLOAT64, 1, rhs_decay, &ctx, &tol, &tol);
        p.direction = reverse ? -1.0 : 1.0;
        qode_adaptive_options opt;
        qode_adaptive_options_default(&opt);
        opt.step_t = &t_last;
        opt.n_step_t = 1;
        double y_start = reverse ? exp(-2.0) : 1.0;
        double *y0 = heap_copy(&y_start, sizeof y_start), *y = malloc(3 * sizeof(double));
        double *t = heap_copy(times, 3 * sizeof(double));
        qode_trajectory record;
        qode_trajectory_init(&record);
        qode_solve_info info;
        qode_status st = qode_solve_adaptive(&p, qode_tableau_find("dopri5"), &opt, y0, t, 3, y,
                                             &record, &info);
        CHECK_MSG(st == QODE_OK, "status %d (%s)", st, info.message);
        if (st == QODE_OK && record.n_points > 0) {
            CHECK_INT_EQ(record.n_points, info.n_accepted + 1);
            CHECK_INT_EQ(record.n, 1);
            CHECK_INT_EQ(record.dtype, QODE_FLOAT64);
            const double *ry = record.y, *rf = record.f;
            CHECK(record.t[0] == times[0] && ry[0] == y_start && record.fresh[0] == 1);
            int monotone = 1, on_solution = 1, f_matches = 0;
            for (size_t i = 0; i < record.n_points; i++) {
                if (i > 0 && !(p.direction * record.t[i] > p.direction * record.t[i - 1]))
                    monotone = 0;
                if (fabs(ry[i] - exp(-record.t[i])) > 1e-8)
                    on_solution = 0;
                f_matches += rf[i] == -p.direction * ry[i];
            }
            CHECK_MSG(monotone, "record times not monotone (reverse=%d)", reverse);
            CHECK_MSG(on_solution, "record states off the solution (reverse=%d)", reverse);
            CHECK_INT_EQ(f_matches, record.n_points);
            size_t last = record.n_points - 1;
            CHECK(record.t[last] == times[2]);
            CHECK_NEAR(ry[last], y[2], 1e-15);
        }
        qode_trajectory_free(&record);
        CHECK(record.n_points == 0 && record.t == NULL);
        free(y0);
        free(y);
        free(t);
    }
}

int main(void)
{
    test_per_element_tolerances();
    test_mixed_norm_segments();
    test_step_t_and_jump_t();
    test_events();
    test_trajectory_record();
    return check_summary();
}

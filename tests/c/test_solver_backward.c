/* Time gradients of the fixed-grid backward pass, against finite differences.
 *
 * qode_backward_fixed differentiates the solve with respect to the output
 * times (grad_t) and the grid nodes (grad_grid).  Here a small time-dependent
 * field with a hand-written VJP is solved by every fixed-grid method, with
 * linear and Hermite outputs, with and without perturb, in both directions,
 * and each time gradient is compared with central differences of
 * qode_solve_fixed for the loss L = sum_i w_i . y(t_i).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "solver_support.h"

#define N_STATE 2
#define N_OUT 4
#define MAX_GRID 16

/* f0 = -y0 + sin(3t) cos(y1), f1 = 0.5 y0 - 0.3 y1 + cos(2t): the explicit
 * time dependence exercises the stage-time terms. */
static int rhs_forced(void *ctx, double t, const void *yv, void *out)
{
    (void)ctx;
    const double *y = yv;
    double *f = out;
    f[0] = -y[0] + sin(3 * t) * cos(y[1]);
    f[1] = 0.5 * y[0] - 0.3 * y[1] + cos(2 * t);
    return 0;
}

static int vjp_forced(void *ctx, double t, const void *yv, const void *vv, void *y_bar,
                      double *t_bar)
{
    (void)ctx;
    const double *y = yv, *v = vv;
    double *yb = y_bar;
    yb[0] = -v[0] + 0.5 * v[1];
    yb[1] = -v[0] * sin(3 * t) * sin(y[1]) - 0.3 * v[1];
    *t_bar = v[0] * 3 * cos(3 * t) * cos(y[1]) - v[1] * 2 * sin(2 * t);
    return 0;
}

typedef struct {
    const qode_tableau *tab;
    qode_fixed_options opt;
    double direction;
    double y0[N_STATE];
    double weights[N_OUT * N_STATE];
} case_setup;

static qode_problem forced_problem(double direction)
{
    static const double tol = 1e-6;
    qode_problem p = make_problem(QODE_FLOAT64, N_STATE, rhs_forced, NULL, &tol, &tol);
    p.vjp = vjp_forced;
    p.direction = direction;
    return p;
}

/* L = sum_i w_i . y(t_i) for the solve on (grid, t); NAN on failure. */
static double loss(const case_setup *c, const double *grid, size_t n_grid, const double *t)
{
    qode_problem p = forced_problem(c->direction);
    double *y0 = heap_copy(c->y0, sizeof c->y0);
    double *y = malloc(N_OUT * N_STATE * sizeof(double));
    qode_solve_info info;
    double value = NAN;
    if (qode_solve_fixed(&p, c->tab, &c->opt, y0, grid, n_grid, t, N_OUT, y, &info) == QODE_OK) {
        value = 0.0;
        for (int i = 0; i < N_OUT * N_STATE; i++)
            value += c->weights[i] * y[i];
    }
    free(y0);
    free(y);
    return value;
}

/* Central difference of the loss when t[t_index] and/or grid[grid_index]
 * (SIZE_MAX: neither) move by +-h together. */
static double moved_loss_slope(const case_setup *c, const double *grid, size_t n_grid,
                               const double *t, size_t t_index, size_t grid_index)
{
    const double h = 1e-6;
    double g[MAX_GRID], tt[N_OUT], value[2];
    for (int side = 0; side < 2; side++) {
        memcpy(g, grid, n_grid * sizeof(double));
        memcpy(tt, t, sizeof tt);
        double shift = side == 0 ? h : -h;
        if (t_index < N_OUT)
            tt[t_index] += shift;
        if (grid_index < n_grid)
            g[grid_index] += shift;
        value[side] = loss(c, g, n_grid, tt);
    }
    return (value[0] - value[1]) / (2 * h);
}

static void check_close(double analytic, double numeric, const case_setup *c, const char *what,
                        size_t index)
{
    double tol = 2e-7 * fmax(1.0, fabs(numeric));
    CHECK_MSG(isfinite(analytic) && fabs(analytic - numeric) <= tol,
              "%s interp=%d perturb=%d direction=%g: d/d%s[%zu] = %.12g, finite "
              "differences %.12g", c->tab->name, (int)c->opt.interp, c->opt.perturb,
              c->direction, what, index, analytic, numeric);
}

/* The grid is t itself; grad_grid aliases grad_t, as the binding passes it. */
static void check_grid_is_t(const case_setup *c, const double *t)
{
    qode_problem p = forced_problem(c->direction);
    double *y0 = heap_copy(c->y0, sizeof c->y0);
    double *w = heap_copy(c->weights, sizeof c->weights);
    double *tt = heap_copy(t, N_OUT * sizeof(double));
    double *grad_y0 = malloc(sizeof c->y0), *grad_t = malloc(N_OUT * sizeof(double));
    qode_solve_info info;
    qode_status st = qode_backward_fixed(&p, c->tab, &c->opt, y0, tt, N_OUT, tt, N_OUT, w,
                                         grad_y0, grad_t, grad_t, &info);
    CHECK_MSG(st == QODE_OK, "%s: %s", c->tab->name, info.message);
    for (size_t i = 0; st == QODE_OK && i < N_OUT; i++)
        check_close(grad_t[i], moved_loss_slope(c, t, N_OUT, t, i, i), c, "t (grid = t)", i);
    free(y0);
    free(w);
    free(tt);
    free(grad_y0);
    free(grad_t);
}

/* An explicit grid: node gradients in grad_grid, the outputs' own in grad_t.
 * The ends are shared by t and the grid, so they move together. */
static void check_explicit_grid(const case_setup *c, const double *t, const double *grid,
                                size_t n_grid)
{
    qode_problem p = forced_problem(c->direction);
    double *y0 = heap_copy(c->y0, sizeof c->y0);
    double *w = heap_copy(c->weights, sizeof c->weights);
    double *tt = heap_copy(t, N_OUT * sizeof(double));
    double *gg = heap_copy(grid, n_grid * sizeof(double));
    double *grad_y0 = malloc(sizeof c->y0), *grad_t = malloc(N_OUT * sizeof(double));
    double *grad_grid = malloc(n_grid * sizeof(double));
    double *grad_y0_plain = malloc(sizeof c->y0);
    qode_solve_info info;
    qode_status st = qode_backward_fixed(&p, c->tab, &c->opt, y0, gg, n_grid, tt, N_OUT, w,
                                         grad_y0, grad_t, grad_grid, &info);
    CHECK_MSG(st == QODE_OK, "%s: %s", c->tab->name, info.message);
    if (st == QODE_OK) {
        check_close(grad_t[0] + grad_grid[0], moved_loss_slope(c, grid, n_grid, t, 0, 0), c,
                    "t", 0);
        check_close(grad_t[N_OUT - 1] + grad_grid[n_grid - 1],
                    moved_loss_slope(c, grid, n_grid, t, N_OUT - 1, n_grid - 1), c, "t",
                    N_OUT - 1);
        for (size_t i = 1; i + 1 < N_OUT; i++)
            check_close(grad_t[i], moved_loss_slope(c, grid, n_grid, t, i, SIZE_MAX), c, "t",
                        i);
        for (size_t g = 1; g + 1 < n_grid; g++)
            check_close(grad_grid[g], moved_loss_slope(c, grid, n_grid, t, SIZE_MAX, g), c,
                        "grid", g);
    }
    /* Without places for time gradients the state gradient is unchanged. */
    st = qode_backward_fixed(&p, c->tab, &c->opt, y0, gg, n_grid, tt, N_OUT, w, grad_y0_plain,
                             NULL, NULL, &info);
    CHECK_MSG(st == QODE_OK, "%s: %s", c->tab->name, info.message);
    for (int k = 0; st == QODE_OK && k < N_STATE; k++)
        CHECK_NEAR(grad_y0_plain[k], grad_y0[k], 0.0);
    free(y0);
    free(w);
    free(tt);
    free(gg);
    free(grad_y0);
    free(grad_t);
    free(grad_grid);
    free(grad_y0_plain);
}

static void test_fixed_time_gradients(void)
{
    static const double forward_t[N_OUT] = {0.0, 0.37, 0.81, 1.3};
    for (int m = 0; qode_all_tableaus[m] != NULL; m++) {
        if (qode_all_tableaus[m]->adaptive)
            continue;
        for (int variant = 0; variant < 8; variant++) {
            case_setup c;
            memset(&c, 0, sizeof c);
            c.tab = qode_all_tableaus[m];
            c.opt.interp = (variant & 1) ? QODE_INTERP_CUBIC : QODE_INTERP_LINEAR;
            c.opt.perturb = (variant & 2) != 0;
            c.direction = (variant & 4) ? -1.0 : 1.0;
            c.y0[0] = 0.8;
            c.y0[1] = -0.4;
            for (int i = 0; i < N_OUT * N_STATE; i++)
                c.weights[i] = 0.3 + 0.25 * i - 0.07 * i * i;
            double t[N_OUT];
            for (int i = 0; i < N_OUT; i++)
                t[i] = c.direction > 0 ? forward_t[i] : 1.3 - forward_t[i];
            check_grid_is_t(&c, t);
            /* 9 steps: no node within 1e-3 of an interior output time. */
            double *grid = uniform_grid(t[0], t[N_OUT - 1], 9);
            check_explicit_grid(&c, t, grid, 10);
            free(grid);
        }
    }
}

int main(void)
{
    test_fixed_time_gradients();
    return check_summary();
}

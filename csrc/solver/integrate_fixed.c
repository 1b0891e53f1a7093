/* The fixed-grid driver: torchdiffeq's FixedGridODESolver in C. */
#include <math.h>
#include <string.h>

#include "solver/dense_output.h"
#include "solver/events.h"
#include "solver/rk_work.h"
#include "solver/vec_ops.h"

static qode_status fixed_start(qode_rk_work *w, const qode_problem *p, const qode_tableau *tab,
                               const void *y0, qode_solve_info *info)
{
    memset(w, 0, sizeof(*w));
    memset(info, 0, sizeof(*info));
    qode_status status;
    if ((status = qode_problem_check(p, info)) != QODE_OK)
        return status;
    if ((status = qode_work_init(w, p, tab, info)) != QODE_OK)
        return status;
    memcpy(w->y0, y0, w->state_bytes);
    if (!qode_vec_all_finite(w->y0, w->nr, w->is_double))
        return qode_fail(info, QODE_ERR_NONFINITE, "y0 contains non-finite values (NaN or Inf)");
    return QODE_OK;
}

/* One step from (s0, w->y0) to s1 into w->y1, with its checks. */
static qode_status fixed_step(qode_rk_work *w, const qode_fixed_options *o, double s0,
                              double s1)
{
    double dt = s1 - s0;
    qode_status status = qode_work_hook(w, QODE_HOOK_STEP, s0, w->y0, dt);
    if (status == QODE_OK)
        status = qode_work_stages(w, s0, dt, s1, 0, o->perturb);
    if (status == QODE_OK && !qode_vec_all_finite(w->y1, w->nr, w->is_double))
        status = qode_work_report_nonfinite(w, s0, s1);
    if (status == QODE_OK)
        w->info->n_accepted++;
    return status;
}

/* The step's dense output; the Hermite one needs f(s1, y1) in w->scratch. */
static qode_status fixed_segment(qode_rk_work *w, const qode_fixed_options *o, double s0,
                                 double s1, qode_dense_segment *segment)
{
    qode_dense_segment seg = {QODE_DENSE_LINEAR, s0, s1, w->y0, w->k[0], w->y1, NULL};
    if (o->interp == QODE_INTERP_CUBIC) {
        seg.kind = QODE_DENSE_HERMITE;
        seg.f1 = w->scratch;
        qode_status status = qode_work_eval(w, s1, QODE_AT, w->y1, w->scratch);
        if (status != QODE_OK)
            return status;
    }
    *segment = seg;
    return QODE_OK;
}

static void swap_states(qode_rk_work *w)
{
    void *tmp = w->y0;
    w->y0 = w->y1;
    w->y1 = tmp;
}

qode_status qode_solve_fixed(const qode_problem *p, const qode_tableau *tab,
                             const qode_fixed_options *o, const void *y0, const double *grid,
                             size_t n_grid, const double *t, size_t n_t, void *y_out,
                             qode_solve_info *info)
{
    memset(info, 0, sizeof(*info));
    if (n_t == 0 || n_grid == 0)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "t and the grid must not be empty");
    if (grid[0] != t[0] || grid[n_grid - 1] != t[n_t - 1])
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                         "the time grid must start at t[0] and end at t[-1] "
                         "(grid runs from %g to %g, t from %g to %g)",
                         grid[0], grid[n_grid - 1], t[0], t[n_t - 1]);
    for (size_t i = 1; i < n_grid; i++)
        if (!(p->direction * grid[i] > p->direction * grid[i - 1]))
            return qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                             "the time grid must be strictly monotonic in the direction of t "
                             "(grid[%zu]=%g, grid[%zu]=%g)", i - 1, grid[i - 1], i, grid[i]);
    for (size_t i = 1; i < n_t; i++)
        if (!(p->direction * t[i] > p->direction * t[i - 1]))
            return qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                             "t must be strictly increasing or decreasing");

    qode_rk_work w;
    qode_status status = fixed_start(&w, p, tab, y0, info);
    size_t bytes = w.state_bytes;
    if (status == QODE_OK)
        memcpy(y_out, y0, bytes);
    size_t j = 1;
    for (size_t g = 1; g < n_grid && status == QODE_OK; g++) {
        double s0 = p->direction * grid[g - 1], s1 = p->direction * grid[g];
        status = fixed_step(&w, o, s0, s1);
        while (status == QODE_OK && j < n_t && s1 >= p->direction * t[j]) {
            qode_dense_segment segment;
            /* torchdiffeq evaluates f(t1, y1) again for every output in the step. */
            status = fixed_segment(&w, o, s0, s1, &segment);
            if (status == QODE_OK)
                qode_dense_eval(&w, &segment, p->direction * t[j], (char *)y_out + j * bytes);
            j++;
        }
        swap_states(&w);
        if (status == QODE_OK)
            status = qode_work_poll(&w);
    }
    qode_work_free(&w);
    return status;
}

qode_status qode_solve_fixed_event(const qode_problem *p, const qode_tableau *tab,
                                   const qode_fixed_options *o, const void *y0, double t0,
                                   double step_size, long long max_steps, double event_tol,
                                   double *t_event, void *y_event, qode_solve_info *info)
{
    memset(info, 0, sizeof(*info));
    if (p->event == NULL)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "no event function given");
    if (!(step_size > 0.0) || !isfinite(step_size))
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                         "event handling with a fixed-step method needs a positive step_size, "
                         "got %g", step_size);
    if (!(event_tol > 0.0))
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                         "the event tolerance (atol) must be positive, got %g", event_tol);
    qode_rk_work w;
    qode_status status = fixed_start(&w, p, tab, y0, info);
    double s0 = p->direction * t0, value = 0.0;
    if (status == QODE_OK)
        status = qode_event_value(&w, s0, w.y0, &value);
    int sign0 = qode_sign(value);
    long long steps = 0;
    while (status == QODE_OK) {
        double s1 = s0 + step_size;
        status = fixed_step(&w, o, s0, s1);
        if (status == QODE_OK)
            status = qode_event_value(&w, s1, w.y1, &value);
        if (status != QODE_OK)
            break;
        steps++;
        if (qode_sign(value) != sign0) {
            qode_dense_segment segment;
            double s_event;
            status = fixed_segment(&w, o, s0, s1, &segment);
            if (status == QODE_OK)
                status = qode_locate_event(&w, &segment, sign0, event_tol, &s_event, y_event);
            if (status == QODE_OK)
                *t_event = qode_user_time(&w, s_event);
            break;
        }
        if (steps >= max_steps) {
            status = qode_fail(info, QODE_ERR_EVENT_NOT_FOUND,
                               "Reached maximum number of iterations %lld without an event "
                               "(last t=%.17g)", max_steps, qode_user_time(&w, s1));
            break;
        }
        s0 = s1;
        swap_states(&w);
        if ((status = qode_work_poll(&w)) != QODE_OK)
            break;
    }
    qode_work_free(&w);
    return status;
}

/* The adaptive driver: torchdiffeq's RKAdaptiveStepsizeODESolver in C.
 *
 * State between steps: (s_cur, w->y0, w->k[0]) is the last accepted point,
 * [s_prev, s_cur] the last accepted step, whose quartic dense output is in
 * w->interp, and dt the size proposed for the next attempt. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "solver/dense_output.h"
#include "solver/events.h"
#include "solver/rk_work.h"
#include "solver/step_control.h"
#include "solver/trajectory.h"
#include "solver/vec_ops.h"

typedef struct {
    qode_rk_work w;
    const qode_adaptive_options *options;
    qode_trajectory *record;
    double s_prev, s_cur, dt;
    double *grid_times;   /* step_t then jump_t, internal time, each part sorted */
    const double *step_s, *jump_s;
    size_t n_step_s, n_jump_s, next_step, next_jump;
} adaptive_solver;

void qode_adaptive_options_default(qode_adaptive_options *o)
{
    memset(o, 0, sizeof(*o));
    o->min_step = 0.0;
    o->max_step = INFINITY;
    o->first_step = 0.0;
    o->safety = 0.9;
    o->ifactor = 10.0;
    o->dfactor = 0.2;
    o->max_num_steps = 2147483647LL;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* torch.clamp: NaN stays NaN. */
static double clamp(double x, double lo, double hi)
{
    if (x < lo)
        return lo;
    if (x > hi)
        return hi;
    return x;
}

/* Keeps the times >= s0 (internal time), sorted; returns how many. */
static size_t sort_times_after(double *dst, const double *user_t, size_t n, double direction,
                               double s0)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        double s = direction * user_t[i];
        if (s >= s0)
            dst[kept++] = s;
    }
    qsort(dst, kept, sizeof(double), compare_doubles);
    return kept;
}

/* Index of the first time > s0, clamped to the last index (bisect.bisect). */
static size_t first_after(const double *s, size_t n, double s0)
{
    size_t i = 0;
    while (i < n && s[i] <= s0)
        i++;
    return i < n ? i : (n > 0 ? n - 1 : 0);
}

static qode_status check_options(const qode_adaptive_options *o, qode_solve_info *info)
{
    if (!(o->min_step >= 0.0))
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "min_step must be >= 0, got %g",
                         o->min_step);
    if (!(o->max_step > 0.0) || o->max_step < o->min_step)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                         "max_step must be positive and >= min_step, got %g", o->max_step);
    if (!(o->first_step >= 0.0) || isinf(o->first_step))
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "first_step must be positive, got %g",
                         o->first_step);
    if (!(o->safety > 0.0) || !(o->ifactor >= 1.0) || !(o->dfactor > 0.0 && o->dfactor <= 1.0))
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                         "need safety > 0, ifactor >= 1 and 0 < dfactor <= 1 "
                         "(got %g, %g, %g)", o->safety, o->ifactor, o->dfactor);
    if (o->max_num_steps <= 0)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "max_num_steps must be positive");
    return QODE_OK;
}

static void solver_free(adaptive_solver *as)
{
    qode_work_free(&as->w);
    free(as->grid_times);
    as->grid_times = NULL;
}

/* torchdiffeq's _before_integrate: f0, the first step, step_t / jump_t. */
static qode_status solver_start(adaptive_solver *as, const qode_problem *p,
                                const qode_tableau *tab, const qode_adaptive_options *o,
                                const void *y0, double t0, qode_trajectory *record,
                                qode_solve_info *info)
{
    memset(as, 0, sizeof(*as));
    memset(info, 0, sizeof(*info));
    as->options = o;
    as->record = record;
    qode_status status;
    if (!tab->adaptive)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "%s is not an adaptive method",
                         tab->name);
    if ((status = qode_problem_check(p, info)) != QODE_OK)
        return status;
    if ((status = check_options(o, info)) != QODE_OK)
        return status;
    if (!isfinite(t0))
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "t0 must be finite");
    if ((status = qode_work_init(&as->w, p, tab, info)) != QODE_OK)
        return status;
    qode_rk_work *w = &as->w;
    memcpy(w->y0, y0, w->state_bytes);
    if (!qode_vec_all_finite(w->y0, w->nr, w->is_double))
        return qode_fail(info, QODE_ERR_NONFINITE, "y0 contains non-finite values (NaN or Inf)");

    double s0 = p->direction * t0;
    size_t n_times = o->n_step_t + o->n_jump_t;
    if (n_times > 0) {
        as->grid_times = malloc(n_times * sizeof(double));
        if (as->grid_times == NULL)
            return qode_fail(info, QODE_ERR_NO_MEMORY, "out of memory for step_t/jump_t");
        as->n_step_s = sort_times_after(as->grid_times, o->step_t, o->n_step_t, p->direction, s0);
        as->n_jump_s = sort_times_after(as->grid_times + as->n_step_s, o->jump_t, o->n_jump_t,
                                        p->direction, s0);
        as->step_s = as->grid_times;
        as->jump_s = as->grid_times + as->n_step_s;
        for (size_t i = 0; i < as->n_step_s + as->n_jump_s; i++)
            for (size_t j = i + 1; j < as->n_step_s + as->n_jump_s; j++)
                if (as->grid_times[i] == as->grid_times[j])
                    return qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                                     "`step_t` and `jump_t` must not have any repeated "
                                     "elements between them (t=%g)",
                                     p->direction * as->grid_times[i]);
        as->next_step = first_after(as->step_s, as->n_step_s, s0);
        as->next_jump = first_after(as->jump_s, as->n_jump_s, s0);
    }

    if ((status = qode_work_eval(w, s0, QODE_AT, w->y0, w->k[0])) != QODE_OK)
        return status;
    if (!qode_vec_all_finite(w->k[0], w->nr, w->is_double))
        return qode_fail(info, QODE_ERR_NONFINITE,
                         "the vector field returned non-finite values (NaN or Inf) at t=%.17g",
                         t0);
    if (o->first_step > 0.0) {
        as->dt = o->first_step;
    } else if ((status = qode_initial_step(w, s0, tab->order - 1, &as->dt)) != QODE_OK) {
        return status;
    }
    as->s_prev = as->s_cur = s0;
    if (record != NULL &&
        qode_trajectory_append(record, p->n, p->dtype, t0, w->y0, w->k[0], 1) != QODE_OK)
        return qode_fail(info, QODE_ERR_NO_MEMORY, "out of memory recording the trajectory");
    return QODE_OK;
}

/* One attempt, torchdiffeq's _adaptive_step.  *accepted says how it went. */
static qode_status adaptive_step(adaptive_solver *as, int *accepted)
{
    qode_rk_work *w = &as->w;
    const qode_adaptive_options *o = as->options;
    const qode_tableau *tab = w->tableau;
    qode_status status;

    double dt = as->dt;
    if (!isfinite(dt))
        dt = o->min_step;
    dt = clamp(dt, o->min_step, o->max_step);
    double s0 = as->s_cur;
    if ((status = qode_work_hook(w, QODE_HOOK_STEP, s0, w->y0, dt)) != QODE_OK)
        return status;
    if (!(s0 + dt > s0))
        return qode_fail(w->info, QODE_ERR_STEP_UNDERFLOW, "underflow in dt %g at t=%.17g",
                         dt, qode_user_time(w, s0));
    double s1 = s0 + dt;

    int on_step = 0, on_jump = 0;
    if (as->n_step_s > 0) {
        double next = as->step_s[as->next_step];
        on_step = s0 < next && next < s0 + dt;
        if (on_step) {
            s1 = next;
            dt = s1 - s0;
        }
    }
    if (as->n_jump_s > 0) {
        double next = as->jump_s[as->next_jump];
        on_jump = s0 < next && next < s0 + dt;
        if (on_jump) {
            on_step = 0;
            s1 = next;
            dt = s1 - s0;
        }
    }

    if ((status = qode_work_stages(w, s0, dt, s1, 1, 0)) != QODE_OK)
        return status;
    double coef[QODE_MAX_STAGES];
    for (int j = 0; j < tab->n_stages; j++)
        coef[j] = dt * tab->b_err[j];
    qode_vec_lincomb(w->err, NULL, w->k, coef, tab->n_stages, w->nr, w->is_double, w->lanes);
    double error_ratio;
    if ((status = qode_work_scaled_norm(w, w->err, w->y0, w->y1, &error_ratio)) != QODE_OK)
        return status;

    int accept = error_ratio <= 1.0;
    if (dt > o->max_step)
        accept = 0;
    if (dt <= o->min_step)
        accept = 1;
    if ((!isfinite(error_ratio) || accept) && !qode_vec_all_finite(w->y1, w->nr, w->is_double))
        return qode_work_report_nonfinite(w, s0, s1);
    if (!isfinite(error_ratio)) {
        /* A finite state with an infinite error only happens when a stage
         * overflowed; say so rather than shrinking dt to underflow. */
        for (int j = 0; j < tab->n_stages; j++)
            if (!qode_vec_all_finite(w->k[j], w->nr, w->is_double))
                return qode_work_report_nonfinite(w, s0, s1);
    }

    if (accept) {
        if ((status = qode_work_hook(w, QODE_HOOK_ACCEPT, s0, w->y0, dt)) != QODE_OK)
            return status;
        qode_quartic_fit(w, dt);
        int last = tab->n_stages - 1;
        void *tmp = w->y0;
        w->y0 = w->y1;
        w->y1 = tmp;
        tmp = w->k[0];
        w->k[0] = w->k[last];
        w->k[last] = tmp;
        as->s_prev = s0;
        as->s_cur = s1;
        if (on_step && as->next_step != as->n_step_s - 1)
            as->next_step++;
        if (on_jump) {
            if (as->next_jump != as->n_jump_s - 1)
                as->next_jump++;
            /* f is discontinuous here: re-evaluate on the side we now are on. */
            if ((status = qode_work_eval(w, s1, QODE_JUST_AFTER, w->y0, w->k[0])) != QODE_OK)
                return status;
        }
        w->info->n_accepted++;
        if (as->record != NULL &&
            qode_trajectory_append(as->record, w->problem->n, w->problem->dtype,
                                   qode_user_time(w, s1), w->y0, w->k[0], on_jump) != QODE_OK)
            return qode_fail(w->info, QODE_ERR_NO_MEMORY, "out of memory recording the trajectory");
    } else {
        if ((status = qode_work_hook(w, QODE_HOOK_REJECT, s0, w->y0, dt)) != QODE_OK)
            return status;
        as->s_prev = s0;
        w->info->n_rejected++;
    }
    *accepted = accept;
    as->dt = clamp(qode_next_step(dt, error_ratio, o->safety, o->ifactor, o->dfactor, tab->order),
                   o->min_step, o->max_step);
    return qode_work_poll(w);
}

static qode_status max_steps_exceeded(adaptive_solver *as, long long attempts)
{
    return qode_fail(as->w.info, QODE_ERR_MAX_STEPS,
                     "max_num_steps exceeded (%lld>=%lld) at t=%.17g", attempts,
                     as->options->max_num_steps, qode_user_time(&as->w, as->s_cur));
}

qode_status qode_solve_adaptive(const qode_problem *p, const qode_tableau *tab,
                                const qode_adaptive_options *o, const void *y0, const double *t,
                                size_t n_t, void *y_out, qode_trajectory *record,
                                qode_solve_info *info)
{
    if (n_t == 0)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "t is empty");
    for (size_t i = 0; i < n_t; i++) {
        if (!isfinite(t[i]))
            return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "t must be finite");
        if (i > 0 && !(p->direction * t[i] > p->direction * t[i - 1]))
            return qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                             "t must be strictly increasing or decreasing");
    }
    adaptive_solver as;
    qode_status status = solver_start(&as, p, tab, o, y0, t[0], record, info);
    size_t bytes = as.w.state_bytes;
    if (status == QODE_OK)
        memcpy(y_out, y0, bytes);
    for (size_t i = 1; i < n_t && status == QODE_OK; i++) {
        double s_next = p->direction * t[i];
        long long attempts = 0;
        int accepted;
        while (status == QODE_OK && s_next > as.s_cur) {
            if (attempts >= o->max_num_steps)
                status = max_steps_exceeded(&as, attempts);
            else
                status = adaptive_step(&as, &accepted);
            attempts++;
        }
        if (status == QODE_OK)
            qode_quartic_eval(&as.w, as.s_prev, as.s_cur, s_next, (char *)y_out + i * bytes);
    }
    solver_free(&as);
    return status;
}

qode_status qode_solve_adaptive_event(const qode_problem *p, const qode_tableau *tab,
                                      const qode_adaptive_options *o, const void *y0,
                                      double t0, double event_tol, double *t_event,
                                      void *y_event, qode_trajectory *record,
                                      qode_solve_info *info)
{
    if (p->event == NULL)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "no event function given");
    if (!(event_tol > 0.0))
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                         "the event tolerance (atol) must be positive, got %g", event_tol);
    adaptive_solver as;
    qode_status status = solver_start(&as, p, tab, o, y0, t0, record, info);
    qode_rk_work *w = &as.w;
    double value = 0.0;
    if (status == QODE_OK)
        status = qode_event_value(w, as.s_cur, w->y0, &value);
    if (status == QODE_OK && value == 0.0) {
        *t_event = t0;
        memcpy(y_event, w->y0, w->state_bytes);
        solver_free(&as);
        return QODE_OK;
    }
    int sign0 = qode_sign(value);
    long long attempts = 0;
    while (status == QODE_OK) {
        if (attempts >= o->max_num_steps) {
            status = max_steps_exceeded(&as, attempts);
            break;
        }
        int accepted = 0;
        status = adaptive_step(&as, &accepted);
        attempts++;
        if (status == QODE_OK && accepted) {
            status = qode_event_value(w, as.s_cur, w->y0, &value);
            if (status == QODE_OK && qode_sign(value) != sign0)
                break;
        }
    }
    if (status == QODE_OK) {
        qode_dense_segment segment = {QODE_DENSE_QUARTIC, as.s_prev, as.s_cur,
                                      NULL, NULL, NULL, NULL};
        double s_event;
        status = qode_locate_event(w, &segment, sign0, event_tol, &s_event, y_event);
        *t_event = qode_user_time(w, s_event);
    }
    solver_free(&as);
    return status;
}

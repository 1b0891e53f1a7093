#include "solver/rk_work.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solver/vec_ops.h"

qode_status qode_fail(qode_solve_info *info, qode_status status, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(info->message, sizeof(info->message), format, args);
    va_end(args);
    return status;
}

qode_status qode_problem_check(const qode_problem *p, qode_solve_info *info)
{
    if (p->rhs == NULL)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "no vector field given");
    if (p->n == 0)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "the state is empty");
    if (p->dtype < QODE_FLOAT32 || p->dtype > QODE_COMPLEX128)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "unsupported state dtype");
    if (p->direction != 1.0 && p->direction != -1.0)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "direction must be +1 or -1");
    if (p->rtol == NULL || p->atol == NULL)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "tolerances missing");
    size_t n_rtol = p->rtol_stride ? p->n : 1, n_atol = p->atol_stride ? p->n : 1;
    for (size_t i = 0; i < n_rtol; i++)
        if (!(p->rtol[i * p->rtol_stride] >= 0.0))
            return qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                             "rtol must be non-negative and not NaN, got %g",
                             p->rtol[i * p->rtol_stride]);
    for (size_t i = 0; i < n_atol; i++)
        if (!(p->atol[i * p->atol_stride] >= 0.0))
            return qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                             "atol must be non-negative and not NaN, got %g",
                             p->atol[i * p->atol_stride]);
    if (p->segment_ends != NULL) {
        size_t prev = 0;
        for (size_t s = 0; s < p->n_segments; s++) {
            if (p->segment_ends[s] < prev || p->segment_ends[s] > p->n)
                return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "bad norm segments");
            prev = p->segment_ends[s];
        }
    }
    return QODE_OK;
}

qode_status qode_work_init(qode_rk_work *w, const qode_problem *problem,
                           const qode_tableau *tableau, qode_solve_info *info)
{
    memset(w, 0, sizeof(*w));
    w->problem = problem;
    w->tableau = tableau;
    w->info = info;
    w->is_double = qode_dtype_is_double(problem->dtype);
    w->nr = problem->n * (qode_dtype_is_complex(problem->dtype) ? 2 : 1);
    w->state_bytes = problem->n * qode_dtype_size(problem->dtype);
    int simd_bytes = problem->simd_bytes > 0 ? problem->simd_bytes : 32;
    w->lanes = simd_bytes / (int)qode_dtype_size(problem->dtype);
    /* k[s], y0, y1, y_stage, err, scratch, 5 interpolation coefficients */
    size_t n_buffers = (size_t)tableau->n_stages + 5 + 5;
    if (w->state_bytes > SIZE_MAX / n_buffers)
        return qode_fail(info, QODE_ERR_NO_MEMORY, "state of %zu elements is too large",
                         problem->n);
    w->block = malloc(n_buffers * w->state_bytes);
    if (w->block == NULL)
        return qode_fail(info, QODE_ERR_NO_MEMORY,
                         "could not allocate %zu bytes for the solver workspace",
                         n_buffers * w->state_bytes);
    char *next = (char *)w->block;
    for (int j = 0; j < tableau->n_stages; j++, next += w->state_bytes)
        w->k[j] = next;
    void **singles[] = {&w->y0, &w->y1, &w->y_stage, &w->err, &w->scratch};
    for (size_t j = 0; j < sizeof(singles) / sizeof(singles[0]); j++, next += w->state_bytes)
        *singles[j] = next;
    for (int j = 0; j < 5; j++, next += w->state_bytes)
        w->interp[j] = next;
    return QODE_OK;
}

void qode_work_free(qode_rk_work *w)
{
    free(w->block);
    w->block = NULL;
}

double qode_work_time(const qode_rk_work *w, double s, qode_perturb perturb)
{
    double t;
    if (w->is_double) {
        t = s;
        if (perturb == QODE_JUST_AFTER)
            t = nextafter(t, INFINITY);
        else if (perturb == QODE_JUST_BEFORE)
            t = nextafter(t, -INFINITY);
    } else {
        float tf = (float)s;
        if (perturb == QODE_JUST_AFTER)
            tf = nextafterf(tf, INFINITY);
        else if (perturb == QODE_JUST_BEFORE)
            tf = nextafterf(tf, -INFINITY);
        t = tf;
    }
    return w->problem->direction * t;
}

qode_status qode_work_eval(qode_rk_work *w, double s, qode_perturb perturb, const void *y,
                           void *out)
{
    const qode_problem *p = w->problem;
    w->info->nfe++;
    if (p->rhs(p->ctx, qode_work_time(w, s, perturb), y, out) != 0)
        return QODE_ERR_CALLBACK;
    if (p->direction < 0)
        qode_vec_scale(out, -1.0, w->nr, w->is_double);
    return QODE_OK;
}

double qode_stage_time(const qode_tableau *tab, int i, double s0, double dt, double s1,
                       int adaptive, int perturb, qode_perturb *where)
{
    *where = QODE_AT;
    if (tab->c[i] != 1.0)
        return s0 + tab->c[i] * dt;
    /* The node at the step's end is taken as s1 itself (not s0 + dt) and, as
     * torchdiffeq does, sampled just before it. */
    if (adaptive || perturb)
        *where = QODE_JUST_BEFORE;
    return s1;
}

qode_status qode_work_stages(qode_rk_work *w, double s0, double dt, double s1, int adaptive,
                             int perturb)
{
    const qode_tableau *tab = w->tableau;
    int n_stages = tab->n_stages;
    qode_status status;
    if (!adaptive) {
        status = qode_work_eval(w, s0, perturb ? QODE_JUST_AFTER : QODE_AT, w->y0, w->k[0]);
        if (status != QODE_OK)
            return status;
    }
    double coef[QODE_MAX_STAGES];
    for (int i = 1; i < n_stages; i++) {
        const double *a_row = tab->a + (size_t)i * n_stages;
        for (int j = 0; j < i; j++)
            coef[j] = a_row[j] * dt;
        qode_vec_lincomb(w->y_stage, w->y0, w->k, coef, i, w->nr, w->is_double, w->lanes);
        qode_perturb where;
        double s_i = qode_stage_time(tab, i, s0, dt, s1, adaptive, perturb, &where);
        status = qode_work_eval(w, s_i, where, w->y_stage, w->k[i]);
        if (status != QODE_OK)
            return status;
    }
    if (n_stages > 1 && qode_tableau_solution_is_last_stage(tab)) {
        void *tmp = w->y1;
        w->y1 = w->y_stage;
        w->y_stage = tmp;
    } else {
        for (int j = 0; j < n_stages; j++)
            coef[j] = tab->b[j] * dt;
        qode_vec_lincomb(w->y1, w->y0, w->k, coef, n_stages, w->nr, w->is_double, w->lanes);
    }
    return QODE_OK;
}

qode_status qode_work_scaled_norm(qode_rk_work *w, const void *v, const void *ya,
                                  const void *yb, double *out)
{
    const qode_problem *p = w->problem;
    if (p->norm == NULL) {
        *out = qode_scaled_rms_norm(p, v, ya, yb);
        return QODE_OK;
    }
    qode_scaled_vector(p, w->scratch, v, ya, yb);
    if (p->norm(p->ctx, w->scratch, out) != 0)
        return QODE_ERR_CALLBACK;
    *out = fabs(*out);
    return QODE_OK;
}

qode_status qode_work_hook(qode_rk_work *w, qode_hook_kind kind, double s0, const void *y,
                           double dt)
{
    const qode_problem *p = w->problem;
    if (p->step_hook == NULL)
        return QODE_OK;
    if (p->step_hook(p->ctx, kind, qode_user_time(w, s0), y, dt) != 0)
        return QODE_ERR_CALLBACK;
    return QODE_OK;
}

qode_status qode_work_poll(qode_rk_work *w)
{
    const qode_problem *p = w->problem;
    if (p->interrupt != NULL && p->interrupt(p->ctx) != 0)
        return QODE_ERR_CALLBACK;
    return QODE_OK;
}

qode_status qode_work_event(qode_rk_work *w, double s, const void *y, double *value)
{
    const qode_problem *p = w->problem;
    if (p->event(p->ctx, qode_user_time(w, s), y, value) != 0)
        return QODE_ERR_CALLBACK;
    return QODE_OK;
}

qode_status qode_work_report_nonfinite(qode_rk_work *w, double s0, double s1)
{
    for (int j = 0; j < w->tableau->n_stages; j++)
        if (!qode_vec_all_finite(w->k[j], w->nr, w->is_double))
            return qode_fail(w->info, QODE_ERR_NONFINITE,
                             "the vector field returned non-finite values (NaN or Inf) "
                             "during the step from t=%.17g to t=%.17g",
                             qode_user_time(w, s0), qode_user_time(w, s1));
    return qode_fail(w->info, QODE_ERR_NONFINITE,
                     "the state became non-finite (NaN or Inf) in the step from t=%.17g "
                     "to t=%.17g", qode_user_time(w, s0), qode_user_time(w, s1));
}

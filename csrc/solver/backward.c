/* Discrete adjoints of the Runge-Kutta solves.
 *
 * The backward pass differentiates exactly what the forward pass computed:
 * every accepted step y1 = y0 + dt sum_j b_j k_j with stages
 * k_i = f(s_i, y0 + dt sum_{j<i} a_ij k_j), and every output read off a step's
 * dense output.  Step sizes are constants (as torchdiffeq treats them).  Each
 * step is recomputed from the recorded (y0, k0), then swept in reverse with
 * one vector-Jacobian product of f per stage; no graph of the solver's own
 * arithmetic is ever built.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "solver/rk_work.h"
#include "solver/vec_ops.h"

typedef struct {
    qode_rk_work w;               /* forward buffers: k[], y_stage, scratch */
    void *stage_in[QODE_MAX_STAGES];   /* Y_i, the input of stage i (Y_0 = y0) */
    void *k_bar[QODE_MAX_STAGES];
    void *y0_bar, *y1_bar, *carry_y, *carry_k, *vjp_out, *v_signed, *f1_bar;
    void *block;
    size_t n_buffers;
} backward_work;

static qode_status backward_init(backward_work *b, const qode_problem *p,
                                 const qode_tableau *tab, qode_solve_info *info)
{
    memset(b, 0, sizeof(*b));
    qode_status status = qode_problem_check(p, info);
    if (status != QODE_OK)
        return status;
    if (p->vjp == NULL)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "no vector-Jacobian product given");
    if ((status = qode_work_init(&b->w, p, tab, info)) != QODE_OK)
        return status;
    size_t bytes = b->w.state_bytes;
    b->n_buffers = 2 * (size_t)tab->n_stages + 7;
    b->block = calloc(b->n_buffers, bytes);
    if (b->block == NULL)
        return qode_fail(info, QODE_ERR_NO_MEMORY, "could not allocate %zu bytes for the backward pass",
                         b->n_buffers * bytes);
    char *next = b->block;
    for (int i = 0; i < tab->n_stages; i++, next += bytes)
        b->stage_in[i] = next;
    for (int i = 0; i < tab->n_stages; i++, next += bytes)
        b->k_bar[i] = next;
    void **singles[] = {&b->y0_bar, &b->y1_bar, &b->carry_y, &b->carry_k, &b->vjp_out,
                        &b->v_signed, &b->f1_bar};
    for (size_t i = 0; i < sizeof(singles) / sizeof(singles[0]); i++, next += bytes)
        *singles[i] = next;
    return QODE_OK;
}

static void backward_free(backward_work *b)
{
    qode_work_free(&b->w);
    free(b->block);
}

static void zero(backward_work *b, void *x)
{
    memset(x, 0, b->w.state_bytes);
}

/* y_bar += (df_int/dy)^T v and *s_bar += v . df_int/ds for the internal field
 * f_int(s, y) = direction * f(direction * s, y). */
static qode_status vjp_add(backward_work *b, double s, qode_perturb where, const void *y,
                           const void *v, void *y_bar, double *s_bar)
{
    qode_rk_work *w = &b->w;
    const qode_problem *p = w->problem;
    const void *v_user = v;
    if (p->direction < 0) {
        memcpy(b->v_signed, v, w->state_bytes);
        qode_vec_scale(b->v_signed, -1.0, w->nr, w->is_double);
        v_user = b->v_signed;
    }
    double t_bar = 0.0;
    zero(b, b->vjp_out);
    if (p->vjp(p->ctx, qode_work_time(w, s, where), y, v_user, b->vjp_out, &t_bar) != 0)
        return QODE_ERR_CALLBACK;
    qode_vec_axpy(y_bar, 1.0, b->vjp_out, w->nr, w->is_double);
    *s_bar += p->direction * t_bar;
    return qode_work_poll(w);
}

/* Recomputes the stages of the step (s0, dt) from stage_in[0] and k[0]. */
static qode_status recompute_stages(backward_work *b, double s0, double dt, double s1,
                                    int adaptive, int perturb)
{
    qode_rk_work *w = &b->w;
    const qode_tableau *tab = w->tableau;
    double coef[QODE_MAX_STAGES];
    for (int i = 1; i < tab->n_stages; i++) {
        const double *a_row = tab->a + (size_t)i * tab->n_stages;
        for (int j = 0; j < i; j++)
            coef[j] = a_row[j] * dt;
        qode_vec_lincomb(b->stage_in[i], b->stage_in[0], w->k, coef, i, w->nr, w->is_double,
                         w->lanes);
        qode_perturb where;
        double s_i = qode_stage_time(tab, i, s0, dt, s1, adaptive, perturb, &where);
        qode_status status = qode_work_eval(w, s_i, where, b->stage_in[i], w->k[i]);
        if (status != QODE_OK)
            return status;
    }
    return QODE_OK;
}

/* Reverse sweep through y1 = y0 + dt sum b_j k_j and the stages 1..s-1,
 * given y1_bar and k_bar[] (from the outputs); leaves k_bar[0] for the caller. */
static qode_status reverse_stages(backward_work *b, double s0, double dt, double s1,
                                  int adaptive, int perturb, double *s0_bar)
{
    qode_rk_work *w = &b->w;
    const qode_tableau *tab = w->tableau;
    int n_stages = tab->n_stages;
    qode_vec_axpy(b->y0_bar, 1.0, b->y1_bar, w->nr, w->is_double);
    for (int j = 0; j < n_stages; j++)
        if (tab->b[j] != 0.0)
            qode_vec_axpy(b->k_bar[j], tab->b[j] * dt, b->y1_bar, w->nr, w->is_double);
    for (int i = n_stages - 1; i >= 1; i--) {
        qode_perturb where;
        double s_i = qode_stage_time(tab, i, s0, dt, s1, adaptive, perturb, &where);
        /* Y_i_bar goes to y_stage (free during the backward pass). */
        zero(b, w->y_stage);
        qode_status status = vjp_add(b, s_i, where, b->stage_in[i], b->k_bar[i], w->y_stage,
                                     s0_bar);
        if (status != QODE_OK)
            return status;
        qode_vec_axpy(b->y0_bar, 1.0, w->y_stage, w->nr, w->is_double);
        const double *a_row = tab->a + (size_t)i * n_stages;
        for (int j = 0; j < i; j++)
            if (a_row[j] != 0.0)
                qode_vec_axpy(b->k_bar[j], a_row[j] * dt, w->y_stage, w->nr, w->is_double);
    }
    return QODE_OK;
}

/* Weights of y0, y1, dt*f0, dt*f1 and y_mid in torchdiffeq's quartic at x,
 * and their derivatives with respect to x. */
static void quartic_weights(double x, double weight[5], double slope[5])
{
    double x2 = x * x, x3 = x2 * x, x4 = x3 * x;
    weight[0] = 1 - 11 * x2 + 18 * x3 - 8 * x4;
    weight[1] = -5 * x2 + 14 * x3 - 8 * x4;
    weight[2] = x - 4 * x2 + 5 * x3 - 2 * x4;
    weight[3] = x2 - 3 * x3 + 2 * x4;
    weight[4] = 16 * x2 - 32 * x3 + 16 * x4;
    slope[0] = -22 * x + 54 * x2 - 32 * x3;
    slope[1] = -10 * x + 42 * x2 - 32 * x3;
    slope[2] = 1 - 8 * x + 15 * x2 - 8 * x3;
    slope[3] = 2 * x - 9 * x2 + 8 * x3;
    slope[4] = 32 * x - 96 * x2 + 64 * x3;
}

qode_status qode_backward_adaptive(const qode_problem *p, const qode_tableau *tab,
                                   const qode_trajectory *rec, const double *t, size_t n_t,
                                   const void *grad_out, void *grad_y0, double *grad_t,
                                   qode_solve_info *info)
{
    memset(info, 0, sizeof(*info));
    if (!tab->adaptive)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "%s is not adaptive", tab->name);
    if (rec->n_points == 0 || rec->n != p->n || rec->dtype != p->dtype || n_t == 0)
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "the record does not match the problem");
    backward_work b;
    qode_status status = backward_init(&b, p, tab, info);
    qode_rk_work *w = &b.w;
    size_t bytes = w->state_bytes;
    int last = tab->n_stages - 1;
    double s0_bar = 0.0;
    for (size_t i = 0; i < n_t; i++)
        grad_t[i] = 0.0;

    /* Output i > 0 belongs to the first step whose end reaches it. */
    size_t out = n_t;  /* outputs out.. are done */
    for (size_t j = rec->n_points - 1; j >= 1 && status == QODE_OK; j--) {
        double s0 = p->direction * rec->t[j - 1], s1 = p->direction * rec->t[j];
        double dt = s1 - s0, h = s1 - s0;
        memcpy(b.stage_in[0], (const char *)rec->y + (j - 1) * bytes, bytes);
        memcpy(w->k[0], (const char *)rec->f + (j - 1) * bytes, bytes);
        const void *y1 = (const char *)rec->y + j * bytes;
        status = recompute_stages(&b, s0, dt, s1, 1, 0);
        if (status != QODE_OK)
            break;
        for (int i = 0; i < tab->n_stages; i++)
            zero(&b, b.k_bar[i]);
        zero(&b, b.y0_bar);
        memcpy(b.y1_bar, b.carry_y, bytes);
        qode_vec_axpy(b.k_bar[last], 1.0, b.carry_k, w->nr, w->is_double);

        /* y_mid, for the time derivative of the dense output. */
        double coef[QODE_MAX_STAGES];
        for (int l = 0; l < tab->n_stages; l++)
            coef[l] = dt * tab->b_mid[l];
        qode_vec_lincomb(w->scratch, b.stage_in[0], w->k, coef, tab->n_stages, w->nr,
                         w->is_double, w->lanes);
        while (out > 1 && p->direction * t[out - 1] > s0) {
            size_t i = out - 1;
            double s = p->direction * t[i];
            if (s > s1)
                break;  /* belongs to a later step (cannot happen with a matching record) */
            const void *g = (const char *)grad_out + i * bytes;
            double x = (s - s0) / h, weight[5], slope[5];
            quartic_weights(x, weight, slope);
            qode_vec_axpy(b.y0_bar, weight[0] + weight[4], g, w->nr, w->is_double);
            qode_vec_axpy(b.y1_bar, weight[1], g, w->nr, w->is_double);
            for (int l = 0; l < tab->n_stages; l++)
                if (tab->b_mid[l] != 0.0)
                    qode_vec_axpy(b.k_bar[l], dt * weight[4] * tab->b_mid[l], g, w->nr,
                                  w->is_double);
            qode_vec_axpy(b.k_bar[0], dt * weight[2], g, w->nr, w->is_double);
            qode_vec_axpy(b.k_bar[last], dt * weight[3], g, w->nr, w->is_double);
            double dydx = slope[0] * qode_vec_dot(g, b.stage_in[0], w->nr, w->is_double) +
                          slope[1] * qode_vec_dot(g, y1, w->nr, w->is_double) +
                          dt * slope[2] * qode_vec_dot(g, w->k[0], w->nr, w->is_double) +
                          dt * slope[3] * qode_vec_dot(g, w->k[last], w->nr, w->is_double) +
                          slope[4] * qode_vec_dot(g, w->scratch, w->nr, w->is_double);
            grad_t[i] += p->direction * dydx / h;
            s0_bar -= dydx / h;
            out--;
        }
        status = reverse_stages(&b, s0, dt, s1, 1, 0, &s0_bar);
        if (status != QODE_OK)
            break;
        zero(&b, b.carry_k);
        if (rec->fresh[j - 1]) {
            qode_perturb where = j - 1 == 0 ? QODE_AT : QODE_JUST_AFTER;
            status = vjp_add(&b, s0, where, b.stage_in[0], b.k_bar[0], b.y0_bar, &s0_bar);
        } else {
            memcpy(b.carry_k, b.k_bar[0], bytes);
        }
        memcpy(b.carry_y, b.y0_bar, bytes);
    }
    if (status == QODE_OK) {
        if (out > 1)
            status = qode_fail(info, QODE_ERR_INVALID_ARGUMENT,
                               "the record does not reach the output times");
        memcpy(grad_y0, b.carry_y, bytes);
        qode_vec_axpy(grad_y0, 1.0, grad_out, w->nr, w->is_double);
        grad_t[0] += p->direction * s0_bar;
    }
    backward_free(&b);
    return status;
}

qode_status qode_backward_fixed(const qode_problem *p, const qode_tableau *tab,
                                const qode_fixed_options *o, const void *y0, const double *grid,
                                size_t n_grid, const double *t, size_t n_t, const void *grad_out,
                                void *grad_y0, qode_solve_info *info)
{
    memset(info, 0, sizeof(*info));
    if (n_grid == 0 || n_t == 0 || grid[0] != t[0] || grid[n_grid - 1] != t[n_t - 1])
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "the grid must run from t[0] to t[-1]");
    backward_work b;
    qode_status status = backward_init(&b, p, tab, info);
    qode_rk_work *w = &b.w;
    size_t bytes = w->state_bytes;
    void *states = NULL;
    if (status == QODE_OK) {
        states = malloc(n_grid * bytes);
        if (states == NULL)
            status = qode_fail(info, QODE_ERR_NO_MEMORY, "no memory for %zu grid states", n_grid);
    }
    /* Forward sweep: the state at every grid point. */
    if (status == QODE_OK)
        memcpy(states, y0, bytes);
    for (size_t g = 1; g < n_grid && status == QODE_OK; g++) {
        double s0 = p->direction * grid[g - 1], s1 = p->direction * grid[g];
        memcpy(w->y0, (char *)states + (g - 1) * bytes, bytes);
        status = qode_work_stages(w, s0, s1 - s0, s1, 0, o->perturb);
        if (status == QODE_OK)
            memcpy((char *)states + g * bytes, w->y1, bytes);
    }
    /* Output j belongs to the first grid step whose end reaches it. */
    size_t *owner = NULL;
    if (status == QODE_OK) {
        owner = malloc(n_t * sizeof(size_t));
        if (owner == NULL)
            status = qode_fail(info, QODE_ERR_NO_MEMORY, "no memory");
    }
    if (status == QODE_OK) {
        size_t j = 1;
        for (size_t g = 1; g < n_grid; g++)
            while (j < n_t && p->direction * grid[g] >= p->direction * t[j])
                owner[j++] = g;
    }
    double unused_s_bar = 0.0;
    size_t out = n_t;
    for (size_t g = n_grid - 1; g >= 1 && status == QODE_OK; g--) {
        double s0 = p->direction * grid[g - 1], s1 = p->direction * grid[g], dt = s1 - s0;
        const void *y1 = (char *)states + g * bytes;
        memcpy(b.stage_in[0], (char *)states + (g - 1) * bytes, bytes);
        qode_perturb first = o->perturb ? QODE_JUST_AFTER : QODE_AT;
        status = qode_work_eval(w, s0, first, b.stage_in[0], w->k[0]);
        if (status == QODE_OK)
            status = recompute_stages(&b, s0, dt, s1, 0, o->perturb);
        if (status != QODE_OK)
            break;
        for (int i = 0; i < tab->n_stages; i++)
            zero(&b, b.k_bar[i]);
        zero(&b, b.y0_bar);
        zero(&b, b.f1_bar);
        memcpy(b.y1_bar, b.carry_y, bytes);
        int any_f1 = 0;
        while (out > 1 && owner[out - 1] == g) {
            size_t i = out - 1;
            double s = p->direction * t[i];
            const void *gi = (const char *)grad_out + i * bytes;
            if (o->interp == QODE_INTERP_CUBIC) {
                double h = (s - s0) / (s1 - s0);
                double h00 = (1 + 2 * h) * (1 - h) * (1 - h), h10 = h * (1 - h) * (1 - h);
                double h01 = h * h * (3 - 2 * h), h11 = h * h * (h - 1);
                qode_vec_axpy(b.y0_bar, h00, gi, w->nr, w->is_double);
                qode_vec_axpy(b.k_bar[0], h10 * dt, gi, w->nr, w->is_double);
                qode_vec_axpy(b.y1_bar, h01, gi, w->nr, w->is_double);
                qode_vec_axpy(b.f1_bar, h11 * dt, gi, w->nr, w->is_double);
                any_f1 = 1;
            } else if (s == s0) {
                qode_vec_axpy(b.y0_bar, 1.0, gi, w->nr, w->is_double);
            } else if (s == s1) {
                qode_vec_axpy(b.y1_bar, 1.0, gi, w->nr, w->is_double);
            } else {
                double slope = (s - s0) / (s1 - s0);
                qode_vec_axpy(b.y0_bar, 1.0 - slope, gi, w->nr, w->is_double);
                qode_vec_axpy(b.y1_bar, slope, gi, w->nr, w->is_double);
            }
            out--;
        }
        if (any_f1)
            status = vjp_add(&b, s1, QODE_AT, y1, b.f1_bar, b.y1_bar, &unused_s_bar);
        if (status == QODE_OK)
            status = reverse_stages(&b, s0, dt, s1, 0, o->perturb, &unused_s_bar);
        if (status == QODE_OK)
            status = vjp_add(&b, s0, first, b.stage_in[0], b.k_bar[0], b.y0_bar, &unused_s_bar);
        if (status == QODE_OK)
            memcpy(b.carry_y, b.y0_bar, bytes);
    }
    if (status == QODE_OK) {
        memcpy(grad_y0, b.carry_y, bytes);
        qode_vec_axpy(grad_y0, 1.0, grad_out, w->nr, w->is_double);
    }
    free(owner);
    free(states);
    backward_free(&b);
    return status;
}

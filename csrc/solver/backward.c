/* Discrete adjoints of the Runge-Kutta solves.
 *
 * The backward pass differentiates exactly what the forward pass computed:
 * every accepted step y1 = y0 + dt sum_j b_j k_j with stages
 * k_i = f(s_i, y0 + dt sum_{j<i} a_ij k_j), and every output read off a step's
 * dense output.  Adaptive step sizes are constants (as torchdiffeq treats
 * them); a fixed grid's nodes are inputs (the grid is t itself or built from
 * it), so there dt = s1 - s0 and the stage times s_i = s0 + c_i dt are
 * differentiated too.  Each step is recomputed from its start, then swept in
 * reverse with one vector-Jacobian product of f per stage; no graph of the
 * solver's own arithmetic is ever built.
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
    void *y0_bar, *y1_bar, *carry_y, *carry_k, *vjp_out, *v_signed, *f1_bar, *f1;
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
    b->n_buffers = 2 * (size_t)tab->n_stages + 8;
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
                        &b->v_signed, &b->f1_bar, &b->f1};
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
 * given y1_bar and k_bar[] (from the outputs); leaves k_bar[0] for the caller.
 * Stage i samples f at s0 + c_i dt, so its time gradient goes to *s0_bar and,
 * times c_i, to *dt_bar.  dt_bar == NULL treats dt as a constant (adaptive
 * steps); otherwise it also collects dt's part in the stage sums. */
static qode_status reverse_stages(backward_work *b, double s0, double dt, double s1,
                                  int adaptive, int perturb, double *s0_bar, double *dt_bar)
{
    qode_rk_work *w = &b->w;
    const qode_tableau *tab = w->tableau;
    int n_stages = tab->n_stages;
    qode_vec_axpy(b->y0_bar, 1.0, b->y1_bar, w->nr, w->is_double);
    for (int j = 0; j < n_stages; j++) {
        if (tab->b[j] == 0.0)
            continue;
        qode_vec_axpy(b->k_bar[j], tab->b[j] * dt, b->y1_bar, w->nr, w->is_double);
        if (dt_bar != NULL)
            *dt_bar += tab->b[j] * qode_vec_dot(b->y1_bar, w->k[j], w->nr, w->is_double);
    }
    for (int i = n_stages - 1; i >= 1; i--) {
        qode_perturb where;
        double s_i = qode_stage_time(tab, i, s0, dt, s1, adaptive, perturb, &where);
        /* Y_i_bar goes to y_stage (free during the backward pass). */
        zero(b, w->y_stage);
        double stage_t_bar = 0.0;
        qode_status status = vjp_add(b, s_i, where, b->stage_in[i], b->k_bar[i], w->y_stage,
                                     &stage_t_bar);
        if (status != QODE_OK)
            return status;
        *s0_bar += stage_t_bar;
        if (dt_bar != NULL)
            *dt_bar += tab->c[i] * stage_t_bar;
        qode_vec_axpy(b->y0_bar, 1.0, w->y_stage, w->nr, w->is_double);
        const double *a_row = tab->a + (size_t)i * n_stages;
        for (int j = 0; j < i; j++) {
            if (a_row[j] == 0.0)
                continue;
            qode_vec_axpy(b->k_bar[j], a_row[j] * dt, w->y_stage, w->nr, w->is_double);
            if (dt_bar != NULL)
                *dt_bar += a_row[j] * qode_vec_dot(w->y_stage, w->k[j], w->nr, w->is_double);
        }
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
        status = reverse_stages(&b, s0, dt, s1, 1, 0, &s0_bar, NULL);
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

/* Adds to the bars of a fixed-grid step what output i (at internal time s,
 * cotangent g) contributes, torchdiffeq's interpolation differentiated: the
 * states, f0 (in k_bar[0]) and f1 = f(s1, y1) (in f1_bar), and through
 * x = (s - s0) / dt the output time (*s_bar), s0 and dt.  The Hermite
 * polynomial needs f1's value in b->f1. */
static void reverse_fixed_output(backward_work *b, const qode_fixed_options *o, double s,
                                 double s0, double s1, const void *y1, const void *g,
                                 double *s_bar, double *s0_bar, double *dt_bar)
{
    qode_rk_work *w = &b->w;
    size_t nr = w->nr;
    int is_double = w->is_double;
    double dt = s1 - s0, x = (s - s0) / dt, dydx = 0.0;
    if (o->interp == QODE_INTERP_CUBIC) {
        double h00 = (1 + 2 * x) * (1 - x) * (1 - x), h10 = x * (1 - x) * (1 - x);
        double h01 = x * x * (3 - 2 * x), h11 = x * x * (x - 1);
        qode_vec_axpy(b->y0_bar, h00, g, nr, is_double);
        qode_vec_axpy(b->k_bar[0], h10 * dt, g, nr, is_double);
        qode_vec_axpy(b->y1_bar, h01, g, nr, is_double);
        qode_vec_axpy(b->f1_bar, h11 * dt, g, nr, is_double);
        double g_y0 = qode_vec_dot(g, b->stage_in[0], nr, is_double);
        double g_f0 = qode_vec_dot(g, w->k[0], nr, is_double);
        double g_y1 = qode_vec_dot(g, y1, nr, is_double);
        double g_f1 = qode_vec_dot(g, b->f1, nr, is_double);
        /* d/dx of h00, h10, h01, h11. */
        dydx = (6 * x * x - 6 * x) * g_y0 + (3 * x * x - 4 * x + 1) * dt * g_f0 +
               (6 * x - 6 * x * x) * g_y1 + (3 * x * x - 2 * x) * dt * g_f1;
        *dt_bar += h10 * g_f0 + h11 * g_f1;  /* the explicit dt of h10 dt f0 + h11 dt f1 */
    } else if (s == s0) {
        /* torchdiffeq returns the node's state itself: no time dependence. */
        qode_vec_axpy(b->y0_bar, 1.0, g, nr, is_double);
    } else if (s == s1) {
        qode_vec_axpy(b->y1_bar, 1.0, g, nr, is_double);
    } else {
        qode_vec_axpy(b->y0_bar, 1.0 - x, g, nr, is_double);
        qode_vec_axpy(b->y1_bar, x, g, nr, is_double);
        dydx = qode_vec_dot(g, y1, nr, is_double) - qode_vec_dot(g, b->stage_in[0], nr, is_double);
    }
    /* x = (s - s0) / dt with s0 and dt independent: dx/ds = 1/dt,
     * dx/ds0 = -1/dt, dx/ddt = -x/dt. */
    *s_bar += dydx / dt;
    *s0_bar -= dydx / dt;
    *dt_bar -= dydx * x / dt;
}

qode_status qode_backward_fixed(const qode_problem *p, const qode_tableau *tab,
                                const qode_fixed_options *o, const void *y0, const double *grid,
                                size_t n_grid, const double *t, size_t n_t, const void *grad_out,
                                void *grad_y0, double *grad_t, double *grad_grid,
                                qode_solve_info *info)
{
    memset(info, 0, sizeof(*info));
    if (n_grid == 0 || n_t == 0 || grid[0] != t[0] || grid[n_grid - 1] != t[n_t - 1])
        return qode_fail(info, QODE_ERR_INVALID_ARGUMENT, "the grid must run from t[0] to t[-1]");
    /* Zeroed first, then only added to: grad_grid may alias grad_t. */
    for (size_t i = 0; grad_t != NULL && i < n_t; i++)
        grad_t[i] = 0.0;
    for (size_t g = 0; grad_grid != NULL && g < n_grid; g++)
        grad_grid[g] = 0.0;
    /* Without a place for them, the time gradients' dot products are skipped. */
    int want_times = grad_t != NULL || grad_grid != NULL;
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
    size_t out = n_t;
    for (size_t g = n_grid - 1; g >= 1 && status == QODE_OK; g--) {
        double s0 = p->direction * grid[g - 1], s1 = p->direction * grid[g], dt = s1 - s0;
        const void *y1 = (char *)states + g * bytes;
        memcpy(b.stage_in[0], (char *)states + (g - 1) * bytes, bytes);
        qode_perturb first = o->perturb ? QODE_JUST_AFTER : QODE_AT;
        status = qode_work_eval(w, s0, first, b.stage_in[0], w->k[0]);
        if (status == QODE_OK)
            status = recompute_stages(&b, s0, dt, s1, 0, o->perturb);
        int any_f1 = o->interp == QODE_INTERP_CUBIC && out > 1 && owner[out - 1] == g;
        if (status == QODE_OK && any_f1)
            status = qode_work_eval(w, s1, QODE_AT, y1, b.f1);
        if (status != QODE_OK)
            break;
        for (int i = 0; i < tab->n_stages; i++)
            zero(&b, b.k_bar[i]);
        zero(&b, b.y0_bar);
        zero(&b, b.f1_bar);
        memcpy(b.y1_bar, b.carry_y, bytes);
        /* Internal-time gradients of this step's start, size and end; the
         * nodes' are s0 - dt and s1 + dt of them. */
        double s0_bar = 0.0, dt_bar = 0.0, s1_bar = 0.0;
        while (out > 1 && owner[out - 1] == g) {
            size_t i = out - 1;
            double s_bar = 0.0;
            reverse_fixed_output(&b, o, p->direction * t[i], s0, s1, y1,
                                 (const char *)grad_out + i * bytes, &s_bar, &s0_bar, &dt_bar);
            if (grad_t != NULL)
                grad_t[i] += p->direction * s_bar;
            out--;
        }
        if (any_f1)
            status = vjp_add(&b, s1, QODE_AT, y1, b.f1_bar, b.y1_bar, &s1_bar);
        if (status == QODE_OK)
            status = reverse_stages(&b, s0, dt, s1, 0, o->perturb, &s0_bar,
                                    want_times ? &dt_bar : NULL);
        if (status == QODE_OK)
            status = vjp_add(&b, s0, first, b.stage_in[0], b.k_bar[0], b.y0_bar, &s0_bar);
        if (status == QODE_OK)
            memcpy(b.carry_y, b.y0_bar, bytes);
        if (grad_grid != NULL) {
            grad_grid[g - 1] += p->direction * (s0_bar - dt_bar);
            grad_grid[g] += p->direction * (s1_bar + dt_bar);
        }
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

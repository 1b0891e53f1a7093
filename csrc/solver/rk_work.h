/* Private to the solver: the workspace of one solve and the pieces the
 * adaptive and fixed-grid drivers share.
 *
 * The drivers work in internal time s = direction * t, which always
 * increases (torchdiffeq negates t the same way for reverse-time solves); the
 * workspace converts back to user time whenever it calls a callback. */
#ifndef QODE_RK_WORK_H
#define QODE_RK_WORK_H

#include "solver/solver.h"

/* Where a stage time sits relative to the exact node (torchdiffeq's Perturb):
 * NEXT / PREV evaluate f at the neighbouring representable time so that a
 * step never samples f on the wrong side of a discontinuity. */
typedef enum { QODE_AT = 0, QODE_JUST_AFTER = 1, QODE_JUST_BEFORE = 2 } qode_perturb;

typedef struct {
    const qode_problem *problem;
    const qode_tableau *tableau;
    qode_solve_info *info;
    size_t nr;           /* real scalars per state */
    size_t state_bytes;
    int is_double;
    int lanes;           /* SIMD lanes torch sums stage terms with (see vec_ops.h) */
    void *k[QODE_MAX_STAGES]; /* stage derivatives; k[0] = f(t0, y0) */
    void *y0;            /* state at the start of the current step */
    void *y1;            /* candidate state at its end */
    void *y_stage;       /* input of the stage being evaluated */
    void *err;           /* error estimate */
    void *scratch;       /* scaled vectors for a user norm; Hermite f1 */
    void *interp[5];     /* dense-output polynomial coefficients, lowest power first */
    void *block;         /* the single allocation behind all buffers */
} qode_rk_work;

/* Allocates every buffer once, for the whole solve. */
qode_status qode_work_init(qode_rk_work *w, const qode_problem *problem,
                           const qode_tableau *tableau, qode_solve_info *info);
void qode_work_free(qode_rk_work *w);

/* Checks the problem's fields (sizes, tolerances, callbacks). */
qode_status qode_problem_check(const qode_problem *problem, qode_solve_info *info);

/* The user time at which f is evaluated for internal time s. */
double qode_work_time(const qode_rk_work *w, double s, qode_perturb perturb);

/* out = f at internal time s.  Counts the evaluation, converts the time to
 * user time (rounded to float for float32/complex64 states, as torchdiffeq
 * passes t in the state's precision) and flips the sign for reverse time. */
qode_status qode_work_eval(qode_rk_work *w, double s, qode_perturb perturb, const void *y,
                           void *out);

/* The internal time of stage i of a step from s0 to s1 = s0 + dt, and where
 * f is sampled relative to it (see qode_work_stages for `adaptive`/`perturb`). */
double qode_stage_time(const qode_tableau *tableau, int i, double s0, double dt, double s1,
                       int adaptive, int perturb, qode_perturb *where);

/* Takes the stages of one step of size dt from (s0, y0, k[0]) to s1: fills
 * k[1..], and y1 = y0 + dt * sum b_j k_j (reusing the last stage input when the
 * method allows).  `adaptive` selects torchdiffeq's adaptive behaviour (the
 * node c = 1 is always evaluated just before s1); otherwise `perturb` asks for
 * its fixed-grid one (first node just after s0, node c = 1 just before s1).
 * Fixed-grid steps evaluate k[0] here too; adaptive ones reuse the previous
 * step's last stage, as torchdiffeq does. */
qode_status qode_work_stages(qode_rk_work *w, double s0, double dt, double s1,
                             int adaptive, int perturb);

/* Norm of v_i / (atol_i + rtol_i max(|ya_i|, |yb_i|)) with the problem's norm. */
qode_status qode_work_scaled_norm(qode_rk_work *w, const void *v, const void *ya,
                                  const void *yb, double *out);

/* Calls the step hook, if any, with user time. */
qode_status qode_work_hook(qode_rk_work *w, qode_hook_kind kind, double s0, const void *y,
                           double dt);

/* Polls the interrupt callback, if any. */
qode_status qode_work_poll(qode_rk_work *w);

/* Event function at internal time s. */
qode_status qode_work_event(qode_rk_work *w, double s, const void *y, double *value);

/* After a non-finite step, says in info->message whether f or the state
 * overflowed, and at what (user) time.  Returns QODE_ERR_NONFINITE. */
qode_status qode_work_report_nonfinite(qode_rk_work *w, double s0, double s1);

/* Formats a message into info->message and returns `status`. */
qode_status qode_fail(qode_solve_info *info, qode_status status, const char *format, ...);

static inline double qode_user_time(const qode_rk_work *w, double s)
{
    return w->problem->direction * s;
}

#endif /* QODE_RK_WORK_H */

/* Public interface of the Runge-Kutta solvers.
 *
 * The solvers reproduce torchdiffeq 0.2.5's algorithms: the same stage
 * arithmetic, Hairer's initial step, the integral step-size controller, the
 * RMS error norm, the quartic (adaptive) or linear/Hermite (fixed-grid) dense
 * output, and bisection for events.  Everything a solve needs arrives through
 * `qode_problem`: the state layout, the callbacks and the tolerances.  Time is
 * always double precision; the state is float32, float64, complex64 or
 * complex128.
 */
#ifndef QODE_SOLVER_H
#define QODE_SOLVER_H

#include <stddef.h>

#include "common/dtype.h"
#include "common/status.h"
#include "solver/tableau.h"

/* Callbacks.  Every callback returns 0 on success; any other value aborts the
 * solve with QODE_ERR_CALLBACK (the callback's owner keeps the details).
 * Arrays hold `n` elements of the problem's dtype.  All get the problem's ctx. */

/* dydt = f(t, y).  `dydt` does not alias `y`. */
typedef int (*qode_rhs_fn)(void *ctx, double t, const void *y, void *dydt);
/* Scalar event function g(t, y); an event solve stops where g changes sign. */
typedef int (*qode_event_fn)(void *ctx, double t, const void *y, double *value);
/* A norm of a vector of n elements (replaces the default RMS norm). */
typedef int (*qode_norm_fn)(void *ctx, const void *x, double *value);
/* torchdiffeq's step callbacks, called with the step's start and size. */
typedef enum { QODE_HOOK_STEP = 0, QODE_HOOK_ACCEPT = 1, QODE_HOOK_REJECT = 2 } qode_hook_kind;
typedef int (*qode_step_hook_fn)(void *ctx, qode_hook_kind kind, double t0, const void *y0,
                                 double dt);
/* Vector-Jacobian product of f at (t, y): y_bar = (df/dy)^T v and *t_bar =
 * v . df/dt.  The callback's owner accumulates parameter gradients itself. */
typedef int (*qode_vjp_fn)(void *ctx, double t, const void *y, const void *v, void *y_bar,
                           double *t_bar);
/* Polled after every step attempt, e.g. to notice Ctrl-C. */
typedef int (*qode_interrupt_fn)(void *ctx);

typedef struct {
    qode_dtype dtype;
    size_t n;                 /* elements in the state; a complex number is one */
    double direction;         /* +1 when t increases, -1 when it decreases */
    void *ctx;                /* passed to every callback */
    qode_rhs_fn rhs;          /* required */
    qode_event_fn event;      /* event solves only */
    qode_norm_fn norm;        /* NULL: default norm below */
    qode_vjp_fn vjp;          /* backward passes only */
    qode_step_hook_fn step_hook;  /* may be NULL */
    qode_interrupt_fn interrupt;  /* may be NULL */
    /* Tolerances, one per element: rtol[i * rtol_stride] (stride 0: a scalar). */
    const double *rtol;
    size_t rtol_stride;
    const double *atol;
    size_t atol_stride;
    /* Default norm: the maximum over segments of the RMS of the segment's
     * elements (torchdiffeq's mixed norm for tuple states).  segment_ends holds
     * n_segments increasing ends, at most n; NULL means one segment.  Elements
     * after the last end are left out of the norm (torchdiffeq's seminorm,
     * which leaves out the parameter adjoints of the adjoint system). */
    const size_t *segment_ends;
    size_t n_segments;
    /* Width in bytes of the SIMD vectors torch sums with on this CPU (32 for
     * AVX2, 64 for AVX-512; 0 means 32).  Only the rounding of stage sums
     * depends on it: matching it makes qode's steps bit-identical to
     * torchdiffeq's. */
    int simd_bytes;
} qode_problem;

typedef struct {
    double min_step;          /* >= 0 */
    double max_step;          /* > 0, may be INFINITY */
    double first_step;        /* > 0, or 0 to select it as torchdiffeq does */
    double safety, ifactor, dfactor;
    long long max_num_steps;  /* step attempts allowed between two output times */
    const double *step_t;     /* times to step on exactly (user time, any order) */
    size_t n_step_t;
    const double *jump_t;     /* discontinuities of f to step on exactly */
    size_t n_jump_t;
} qode_adaptive_options;

/* torchdiffeq's defaults: min 0, max inf, safety 0.9, ifactor 10, dfactor 0.2,
 * max_num_steps 2**31 - 1, no step_t / jump_t. */
void qode_adaptive_options_default(qode_adaptive_options *options);

typedef enum { QODE_INTERP_LINEAR = 0, QODE_INTERP_CUBIC = 1 } qode_interp;

typedef struct {
    qode_interp interp;
    int perturb;              /* evaluate f just after t0 / just before t1 */
} qode_fixed_options;

/* Counters and, on failure, a message naming what went wrong and when. */
typedef struct {
    long long nfe;            /* evaluations of f */
    long long n_accepted;
    long long n_rejected;
    char message[320];
} qode_solve_info;

/* Accepted step boundaries of an adaptive solve, kept for a backward pass:
 * times t[i] (user time), states y[i] and the derivative f[i] that the next
 * step starts from (n elements each; in internal time, i.e. multiplied by
 * `direction`, as the solver integrates it).  fresh[i] is 1 when f[i] was evaluated
 * at (t[i], y[i]) (the start, and after a jump_t), 0 when it is the previous
 * step's last stage, as torchdiffeq carries it over. */
typedef struct {
    size_t n_points;
    size_t capacity;
    size_t n;
    qode_dtype dtype;
    double *t;
    void *y;
    void *f;
    unsigned char *fresh;
} qode_trajectory;

void qode_trajectory_init(qode_trajectory *trajectory);
void qode_trajectory_free(qode_trajectory *trajectory);

/* Solves from y0 at t[0] and writes y(t[i]) to y_out + i*n for i < n_t.
 * `t` must be strictly monotonic in `direction`.  `record` may be NULL. */
qode_status qode_solve_adaptive(const qode_problem *problem, const qode_tableau *tableau,
                                const qode_adaptive_options *options, const void *y0,
                                const double *t, size_t n_t, void *y_out,
                                qode_trajectory *record, qode_solve_info *info);

/* Solves from y0 at t0 in `direction` until problem->event changes sign; the
 * event time is located by bisection on the dense output to within
 * `event_tol` and written to *t_event, the state there to y_event. */
qode_status qode_solve_adaptive_event(const qode_problem *problem, const qode_tableau *tableau,
                                      const qode_adaptive_options *options, const void *y0,
                                      double t0, double event_tol, double *t_event,
                                      void *y_event, qode_trajectory *record,
                                      qode_solve_info *info);

/* Steps on `grid` (user time, grid[0] == t[0], grid[n_grid-1] == t[n_t-1]) and
 * interpolates the outputs at t. */
qode_status qode_solve_fixed(const qode_problem *problem, const qode_tableau *tableau,
                             const qode_fixed_options *options, const void *y0,
                             const double *grid, size_t n_grid, const double *t, size_t n_t,
                             void *y_out, qode_solve_info *info);

/* Steps of size step_size from t0 until problem->event changes sign (at most
 * max_steps steps, torchdiffeq uses 20000), then bisects as above. */
qode_status qode_solve_fixed_event(const qode_problem *problem, const qode_tableau *tableau,
                                   const qode_fixed_options *options, const void *y0,
                                   double t0, double step_size, long long max_steps,
                                   double event_tol, double *t_event, void *y_event,
                                   qode_solve_info *info);

/* Backward pass of qode_solve_adaptive (discrete adjoint): walks the
 * recorded accepted steps in reverse, recomputing each step's stages and
 * calling problem->vjp once per stage.  grad_out holds dL/dy(t[i]) for the
 * n_t outputs; writes dL/dy0 to grad_y0 and dL/dt[i] to grad_t (step sizes are
 * not differentiated, as in torchdiffeq).  `record` is the forward solve's. */
qode_status qode_backward_adaptive(const qode_problem *problem, const qode_tableau *tableau,
                                   const qode_trajectory *record, const double *t, size_t n_t,
                                   const void *grad_out, void *grad_y0, double *grad_t,
                                   qode_solve_info *info);

/* Backward pass of qode_solve_fixed (states on the grid are recomputed first),
 * as backpropagation through torchdiffeq's fixed-grid solver: grad_out holds
 * dL/dy(t[i]) for the n_t outputs; writes dL/dy0 to grad_y0.  Time gradients
 * (user time) are split by where the time enters: grad_t[i] gets output i's
 * own part (through its interpolation weights; none at a grid node with
 * linear interpolation, where the node's state is returned as is), and
 * grad_grid[g] node g's part (through the step sizes, the stage times and the
 * interpolation over the steps it bounds).  The caller maps grid gradients to
 * whatever the grid was built from; when the grid is t itself, grad_grid may
 * be grad_t (both arrays are zeroed first and only added to).  Either may be
 * NULL when not wanted. */
qode_status qode_backward_fixed(const qode_problem *problem, const qode_tableau *tableau,
                                const qode_fixed_options *options, const void *y0,
                                const double *grid, size_t n_grid, const double *t, size_t n_t,
                                const void *grad_out, void *grad_y0, double *grad_t,
                                double *grad_grid, qode_solve_info *info);

#endif /* QODE_SOLVER_H */

/* Runge-Kutta methods as data (Butcher tableaus).
 *
 * One generic stepper (rk_step.c) runs every method; a new method is a new
 * table in tableaus.c, not a new loop.  Stage 0 is k0 = f(t0, y0).
 */
#ifndef QODE_TABLEAU_H
#define QODE_TABLEAU_H

#define QODE_MAX_STAGES 14

typedef struct {
    const char *name;
    int n_stages;        /* s, including stage 0 */
    int order;           /* order used by the step-size controller (torchdiffeq's `order`) */
    int adaptive;        /* 1: has an error estimate and a midpoint interpolant */
    const double *c;     /* s nodes, c[0] = 0 */
    const double *a;     /* s*s row-major, strictly lower triangular */
    const double *b;     /* s weights of the propagated solution */
    const double *b_err; /* s weights of the error estimate (adaptive only) */
    const double *b_mid; /* s weights of y(t0 + dt/2), for the quartic interpolant (adaptive only) */
} qode_tableau;

/* The method called `name`, or NULL if there is none. */
const qode_tableau *qode_tableau_find(const char *name);

/* NULL-terminated list of every method (for error messages and tests). */
extern const qode_tableau *const qode_all_tableaus[];

/* 1 when y1 equals the input of the last stage (b == last row of a and
 * b[s-1] == 0), so that the stepper can reuse it instead of recomputing. */
int qode_tableau_solution_is_last_stage(const qode_tableau *tab);

#endif /* QODE_TABLEAU_H */

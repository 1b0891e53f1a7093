/* Dense output: the polynomials torchdiffeq evaluates between step ends. */
#ifndef QODE_DENSE_OUTPUT_H
#define QODE_DENSE_OUTPUT_H

#include "solver/rk_work.h"

/* Fits the quartic through y0, y1, y(mid) with slopes f0, f1 of the step just
 * taken (w->y0, w->y1, w->k[0], w->k[last], stage weights b_mid) into
 * w->interp. */
void qode_quartic_fit(qode_rk_work *w, double dt);

/* Evaluates w->interp at internal time s in [s0, s1] into out. */
void qode_quartic_eval(const qode_rk_work *w, double s0, double s1, double s, void *out);

/* Linear interpolation between (s0, y0) and (s1, y1). */
void qode_linear_eval(const qode_rk_work *w, double s0, double s1, const void *y0,
                      const void *y1, double s, void *out);

/* Cubic Hermite interpolation with end slopes f0, f1. */
void qode_hermite_eval(const qode_rk_work *w, double s0, double s1, const void *y0,
                       const void *f0, const void *y1, const void *f1, double s, void *out);


/* One step's dense output, whichever interpolant the method uses. */
typedef enum { QODE_DENSE_QUARTIC, QODE_DENSE_LINEAR, QODE_DENSE_HERMITE } qode_dense_kind;

typedef struct {
    qode_dense_kind kind;
    double s0, s1;
    const void *y0, *f0, *y1, *f1; /* unused by QODE_DENSE_QUARTIC (reads w->interp) */
} qode_dense_segment;

void qode_dense_eval(const qode_rk_work *w, const qode_dense_segment *segment, double s,
                     void *out);

#endif /* QODE_DENSE_OUTPUT_H */

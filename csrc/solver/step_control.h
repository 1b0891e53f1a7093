/* Step-size selection, exactly as torchdiffeq 0.2.5 does it. */
#ifndef QODE_STEP_CONTROL_H
#define QODE_STEP_CONTROL_H

#include "solver/rk_work.h"

/* Hairer, Norsett & Wanner, Solving ODEs I, Sec. II.4: an initial step from
 * y0 = w->y0 and f0 = w->k[0] at internal time s0, for a method of the given
 * order.  Costs one evaluation of f. */
qode_status qode_initial_step(qode_rk_work *w, double s0, int order, double *dt);

/* The integral controller: the next step after a step of size dt whose
 * error ratio was `error_ratio`, clamped by nothing (callers clamp).  A NaN
 * ratio gives a NaN step, as in torchdiffeq. */
double qode_next_step(double dt, double error_ratio, double safety, double ifactor,
                      double dfactor, int order);

#endif /* QODE_STEP_CONTROL_H */

/* Locating an event inside a step, as torchdiffeq's find_event does. */
#ifndef QODE_EVENTS_H
#define QODE_EVENTS_H

#include "solver/dense_output.h"

/* -1, 0 or +1 (torch.sign). */
static inline int qode_sign(double x)
{
    return (x > 0) - (x < 0);
}

/* The event function at internal time s; a NaN value is an error. */
qode_status qode_event_value(qode_rk_work *w, double s, const void *y, double *value);

/* Bisects the step's dense output for the sign change of the event function
 * (sign0 at segment->s0, another sign at segment->s1) with
 * ceil(log2((s1 - s0) / tol)) halvings; writes the midpoint of the final
 * bracket to *s_event and the state there to y_event.  Uses w->y_stage. */
qode_status qode_locate_event(qode_rk_work *w, const qode_dense_segment *segment, int sign0,
                              double tol, double *s_event, void *y_event);

#endif /* QODE_EVENTS_H */

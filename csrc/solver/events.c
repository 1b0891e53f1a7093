#include "solver/events.h"

#include <math.h>

qode_status qode_event_value(qode_rk_work *w, double s, const void *y, double *value)
{
    qode_status status = qode_work_event(w, s, y, value);
    if (status != QODE_OK)
        return status;
    if (isnan(*value))
        return qode_fail(w->info, QODE_ERR_NONFINITE, "the event function returned NaN at t=%.17g",
                         qode_user_time(w, s));
    return QODE_OK;
}

qode_status qode_locate_event(qode_rk_work *w, const qode_dense_segment *segment, int sign0,
                              double tol, double *s_event, void *y_event)
{
    double s0 = segment->s0, s1 = segment->s1;
    double halvings = ceil(log((s1 - s0) / tol) / log(2.0));
    long long n_halvings = halvings > 0 ? (long long)halvings : 0;
    for (long long i = 0; i < n_halvings; i++) {
        double s_mid = (s1 + s0) / 2.0;
        double value;
        qode_dense_eval(w, segment, s_mid, w->y_stage);
        qode_status status = qode_event_value(w, s_mid, w->y_stage, &value);
        if (status != QODE_OK)
            return status;
        if (qode_sign(value) == sign0)
            s0 = s_mid;
        else
            s1 = s_mid;
    }
    *s_event = (s0 + s1) / 2.0;
    qode_dense_eval(w, segment, *s_event, y_event);
    return QODE_OK;
}

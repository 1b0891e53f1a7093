#include "solver/step_control.h"

#include <math.h>

#include "solver/vec_ops.h"

qode_status qode_initial_step(qode_rk_work *w, double s0, int order, double *dt)
{
    qode_status status;
    double d0, d1, d2;
    if ((status = qode_work_scaled_norm(w, w->y0, w->y0, NULL, &d0)) != QODE_OK)
        return status;
    if ((status = qode_work_scaled_norm(w, w->k[0], w->y0, NULL, &d1)) != QODE_OK)
        return status;

    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    if (!w->is_double)
        h0 = (float)h0;  /* torchdiffeq keeps h0 in the state's precision */

    /* y1 = y0 + h0 * f0 goes to y_stage, f1 to k[1]. */
    qode_vec_lincomb(w->y_stage, w->y0, w->k, &h0, 1, w->nr, w->is_double, w->lanes);
    if ((status = qode_work_eval(w, s0 + h0, QODE_AT, w->y_stage, w->k[1])) != QODE_OK)
        return status;
    qode_vec_sub(w->err, w->k[1], w->k[0], w->nr, w->is_double);
    if ((status = qode_work_scaled_norm(w, w->err, w->y0, NULL, &d2)) != QODE_OK)
        return status;
    d2 = fabs(d2 / h0);

    double h1;
    if (d1 <= 1e-15 && d2 <= 1e-15)
        h1 = fmax(1e-6, h0 * 1e-3);
    else
        h1 = pow(0.01 / fmax(d1, d2), 1.0 / (double)(order + 1));
    *dt = fmin(100 * h0, h1);
    return QODE_OK;
}

double qode_next_step(double dt, double error_ratio, double safety, double ifactor,
                      double dfactor, int order)
{
    if (error_ratio == 0.0)
        return dt * ifactor;
    if (isnan(error_ratio))
        return NAN;
    if (error_ratio < 1.0)
        dfactor = 1.0;
    double factor = fmin(ifactor, fmax(safety / pow(error_ratio, 1.0 / (double)order), dfactor));
    return dt * factor;
}

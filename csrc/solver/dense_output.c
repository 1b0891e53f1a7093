#include "solver/dense_output.h"

#include <string.h>

#include "solver/vec_ops.h"

void qode_quartic_fit(qode_rk_work *w, double dt_)
{
    const qode_tableau *tab = w->tableau;
    int last = tab->n_stages - 1;
    double coef[QODE_MAX_STAGES];
    for (int j = 0; j < tab->n_stages; j++)
        coef[j] = dt_ * tab->b_mid[j];
    /* y_mid goes to interp[4] first and is overwritten last. */
    qode_vec_lincomb(w->interp[4], w->y0, w->k, coef, tab->n_stages, w->nr, w->is_double, w->lanes);
    QODE_DISPATCH_REAL(w->is_double, {
        const real *y0 = w->y0, *y1 = w->y1, *f0 = w->k[0], *f1 = w->k[last];
        real *e = w->interp[0], *d = w->interp[1], *c = w->interp[2], *b = w->interp[3];
        real *a = w->interp[4];
        real dt = (real)dt_;
        for (size_t i = 0; i < w->nr; i++) {
            real ym = a[i];
            a[i] = 2 * dt * (f1[i] - f0[i]) - 8 * (y1[i] + y0[i]) + 16 * ym;
            b[i] = dt * (5 * f0[i] - 3 * f1[i]) + 18 * y0[i] + 14 * y1[i] - 32 * ym;
            c[i] = dt * (f1[i] - 4 * f0[i]) - 11 * y0[i] - 5 * y1[i] + 16 * ym;
            d[i] = dt * f0[i];
            e[i] = y0[i];
        }
    });
}

void qode_quartic_eval(const qode_rk_work *w, double s0, double s1, double s, void *out)
{
    double x_ = (s - s0) / (s1 - s0);
    QODE_DISPATCH_REAL(w->is_double, {
        const real *e = w->interp[0], *d = w->interp[1], *c = w->interp[2];
        const real *b = w->interp[3], *a = w->interp[4];
        real *o = out;
        real x = (real)x_, x2 = x * x, x3 = x2 * x, x4 = x3 * x;
        for (size_t i = 0; i < w->nr; i++) {
            real total = e[i] + x * d[i];
            total = total + x2 * c[i];
            total = total + x3 * b[i];
            o[i] = total + x4 * a[i];
        }
    });
}

void qode_linear_eval(const qode_rk_work *w, double s0, double s1, const void *y0_,
                      const void *y1_, double s, void *out)
{
    if (s == s0) {
        memcpy(out, y0_, w->state_bytes);
        return;
    }
    if (s == s1) {
        memcpy(out, y1_, w->state_bytes);
        return;
    }
    double slope_ = (s - s0) / (s1 - s0);
    QODE_DISPATCH_REAL(w->is_double, {
        const real *y0 = y0_, *y1 = y1_;
        real *o = out;
        real slope = (real)slope_;
        for (size_t i = 0; i < w->nr; i++)
            o[i] = y0[i] + slope * (y1[i] - y0[i]);
    });
}

void qode_hermite_eval(const qode_rk_work *w, double s0, double s1, const void *y0_,
                       const void *f0_, const void *y1_, const void *f1_, double s, void *out)
{
    double h = (s - s0) / (s1 - s0);
    double dt_ = s1 - s0;
    double h00_ = (1 + 2 * h) * (1 - h) * (1 - h);
    double h10_ = h * (1 - h) * (1 - h);
    double h01_ = h * h * (3 - 2 * h);
    double h11_ = h * h * (h - 1);
    QODE_DISPATCH_REAL(w->is_double, {
        const real *y0 = y0_, *f0 = f0_, *y1 = y1_, *f1 = f1_;
        real *o = out;
        real h00 = (real)h00_, h10dt = (real)(h10_ * dt_), h01 = (real)h01_;
        real h11dt = (real)(h11_ * dt_);
        for (size_t i = 0; i < w->nr; i++)
            o[i] = h00 * y0[i] + h10dt * f0[i] + h01 * y1[i] + h11dt * f1[i];
    });
}

void qode_dense_eval(const qode_rk_work *w, const qode_dense_segment *seg, double s, void *out)
{
    switch (seg->kind) {
    case QODE_DENSE_QUARTIC:
        qode_quartic_eval(w, seg->s0, seg->s1, s, out);
        break;
    case QODE_DENSE_LINEAR:
        qode_linear_eval(w, seg->s0, seg->s1, seg->y0, seg->y1, s, out);
        break;
    case QODE_DENSE_HERMITE:
        qode_hermite_eval(w, seg->s0, seg->s1, seg->y0, seg->f0, seg->y1, seg->f1, s, out);
        break;
    }
}

#include "solver/vec_ops.h"

#include <math.h>
#include <string.h>

void qode_vec_lincomb(void *out, const void *base, void *const *k, const double *coef, int m,
                      size_t nr, int is_double)
{
    QODE_DISPATCH_REAL(is_double, {
        real c[QODE_MAX_STAGES];
        const real *kk[QODE_MAX_STAGES];
        int used = 0;
        for (int j = 0; j < m; j++) {
            if (coef[j] != 0.0) {
                c[used] = (real)coef[j];
                kk[used] = (const real *)k[j];
                used++;
            }
        }
        real *o = (real *)out;
        const real *b = (const real *)base;
        for (size_t i = 0; i < nr; i++) {
            real acc = 0;
            for (int j = 0; j < used; j++)
                acc += kk[j][i] * c[j];
            o[i] = b != NULL ? b[i] + acc : acc;
        }
    });
}

void qode_vec_scale(void *x, double s, size_t nr, int is_double)
{
    QODE_DISPATCH_REAL(is_double, {
        real *v = (real *)x;
        real f = (real)s;
        for (size_t i = 0; i < nr; i++)
            v[i] *= f;
    });
}

void qode_vec_sub(void *out, const void *a, const void *b, size_t nr, int is_double)
{
    QODE_DISPATCH_REAL(is_double, {
        real *o = (real *)out;
        const real *x = (const real *)a;
        const real *y = (const real *)b;
        for (size_t i = 0; i < nr; i++)
            o[i] = x[i] - y[i];
    });
}

int qode_vec_all_finite(const void *x, size_t nr, int is_double)
{
    QODE_DISPATCH_REAL(is_double, {
        const real *v = (const real *)x;
        for (size_t i = 0; i < nr; i++)
            if (!isfinite(v[i]))
                return 0;
    });
    return 1;
}

/* |element i| for width 1 (real) or 2 (complex). */
#define ELEMENT_ABS(p, i, w) ((w) == 1 ? fabs((double)(p)[i]) : hypot((double)(p)[2 * (i)], (double)(p)[2 * (i) + 1]))

static double tolerance(const qode_problem *pr, size_t i, double scale)
{
    return pr->atol[i * pr->atol_stride] + pr->rtol[i * pr->rtol_stride] * scale;
}

void qode_scaled_vector(const qode_problem *pr, void *out, const void *v, const void *ya,
                        const void *yb)
{
    int w = qode_dtype_is_complex(pr->dtype) ? 2 : 1;
    QODE_DISPATCH_REAL(qode_dtype_is_double(pr->dtype), {
        const real *pv = (const real *)v, *pa = (const real *)ya, *pb = (const real *)yb;
        real *po = (real *)out;
        for (size_t i = 0; i < pr->n; i++) {
            double scale = ELEMENT_ABS(pa, i, w);
            if (pb != NULL)
                scale = fmax(scale, ELEMENT_ABS(pb, i, w));
            real tol = (real)tolerance(pr, i, scale);
            for (int c = 0; c < w; c++)
                po[w * i + c] = pv[w * i + c] / tol;
        }
    });
}

double qode_scaled_rms_norm(const qode_problem *pr, const void *v, const void *ya,
                            const void *yb)
{
    int w = qode_dtype_is_complex(pr->dtype) ? 2 : 1;
    size_t one_segment = pr->n;
    const size_t *ends = pr->segment_ends != NULL ? pr->segment_ends : &one_segment;
    size_t n_segments = pr->segment_ends != NULL ? pr->n_segments : 1;
    double result = 0.0;
    size_t start = 0;
    for (size_t s = 0; s < n_segments; s++) {
        double sum = 0.0;
        size_t end = ends[s];
        QODE_DISPATCH_REAL(qode_dtype_is_double(pr->dtype), {
            const real *pv = (const real *)v, *pa = (const real *)ya, *pb = (const real *)yb;
            for (size_t i = start; i < end; i++) {
                double scale = ELEMENT_ABS(pa, i, w);
                if (pb != NULL)
                    scale = fmax(scale, ELEMENT_ABS(pb, i, w));
                double tol = tolerance(pr, i, scale);
                double x = ELEMENT_ABS(pv, i, w) / tol;
                sum += x * x;
            }
        });
        /* An empty segment has norm 0 (torchdiffeq: mean of nothing is nan,
         * but empty tuple members cannot make a step fail). */
        double rms = end > start ? sqrt(sum / (double)(end - start)) : 0.0;
        /* fmax would drop a NaN; keep it so that non-finite errors surface. */
        if (isnan(rms) || rms > result)
            result = rms;
        if (isnan(result))
            return result;
        start = end;
    }
    return result;
}

#include "solver/vec_ops.h"

#include <math.h>
#include <string.h>

/* Sums terms[0..n-1] in the order of ATen's CPU sum over a short contiguous
 * dimension, so that stage combinations round exactly as in torchdiffeq:
 * with W SIMD lanes and n >= W, lane l accumulates terms l, l+W, ... of the
 * whole vectors, the leftover tail is summed first and the lanes are then
 * added in order; with n < W, four interleaved partial sums are combined. */
#define TORCH_ORDER_SUM(real, terms, n, lanes, result)                          \
    do {                                                                       \
        real lane_[QODE_MAX_STAGES] = {0};                                     \
        real total_ = 0;                                                       \
        if ((n) >= (lanes)) {                                                  \
            int whole_ = (n) / (lanes) * (lanes);                              \
            for (int j_ = 0; j_ < whole_; j_++)                                \
                lane_[j_ % (lanes)] += (terms)[j_];                            \
            for (int j_ = whole_; j_ < (n); j_++)                              \
                total_ += (terms)[j_];                                         \
            for (int l_ = 0; l_ < (lanes); l_++)                               \
                total_ += lane_[l_];                                           \
        } else {                                                               \
            int whole_ = (n) / 4 * 4;                                          \
            for (int j_ = 0; j_ < whole_; j_++)                                \
                lane_[j_ % 4] += (terms)[j_];                                  \
            for (int j_ = whole_; j_ < (n); j_++)                              \
                lane_[0] += (terms)[j_];                                       \
            total_ = lane_[0];                                                 \
            for (int l_ = 1; l_ < 4; l_++)                                     \
                total_ += lane_[l_];                                           \
        }                                                                      \
        (result) = total_;                                                     \
    } while (0)

void qode_vec_lincomb(void *out, const void *base, void *const *k, const double *coef, int m,
                      size_t nr, int is_double, int lanes)
{
    /* More lanes than terms selects torch's short-sum branch, whatever the width. */
    if (lanes < 1 || lanes > QODE_MAX_STAGES)
        lanes = QODE_MAX_STAGES + 1;
    QODE_DISPATCH_REAL(is_double, {
        real c[QODE_MAX_STAGES];
        const real *kk[QODE_MAX_STAGES];
        int nonzero = 0;
        for (int j = 0; j < m; j++) {
            c[j] = (real)coef[j];
            kk[j] = (const real *)k[j];
            nonzero += coef[j] != 0.0;
        }
        real *o = (real *)out;
        const real *b = (const real *)base;
        for (size_t i = 0; i < nr; i++) {
            real acc;
            if (nonzero == 1 && m == 1) {
                acc = kk[0][i] * c[0];
            } else {
                real terms[QODE_MAX_STAGES] = {0};
                /* A zero coefficient adds an exact zero; keep its slot so the
                 * summation order stays torch's, but skip the load. */
                for (int j = 0; j < m; j++)
                    terms[j] = c[j] != 0 ? kk[j][i] * c[j] : 0;
                TORCH_ORDER_SUM(real, terms, m, lanes, acc);
            }
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

void qode_vec_axpy(void *y, double a, const void *x, size_t nr, int is_double)
{
    QODE_DISPATCH_REAL(is_double, {
        real *py = (real *)y;
        const real *px = (const real *)x;
        real f = (real)a;
        for (size_t i = 0; i < nr; i++)
            py[i] += f * px[i];
    });
}

double qode_vec_dot(const void *a, const void *b, size_t nr, int is_double)
{
    double sum = 0.0;
    QODE_DISPATCH_REAL(is_double, {
        const real *pa = (const real *)a, *pb = (const real *)b;
        for (size_t i = 0; i < nr; i++)
            sum += (double)pa[i] * (double)pb[i];
    });
    return sum;
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
                /* torchdiffeq forms the tolerance and the ratio in the
                 * state's precision; round them the same way. */
                real tol = (real)tolerance(pr, i, scale);
                double x = (real)(ELEMENT_ABS(pv, i, w) / tol);
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

#include "solver/vec_ops.h"

#include <math.h>
#include <string.h>

/* Elements handled together by qode_vec_lincomb: the partial sums of a block
 * live on the stack and every inner loop runs over contiguous elements, so
 * the compiler vectorises it. */
#define LINCOMB_BLOCK 128

/* out = base + sum_j k[j] * coef[j], summed in the order of ATen's CPU sum
 * over a short contiguous dimension, so that stage combinations round exactly
 * as in torchdiffeq.  With W SIMD lanes and m >= W terms, lane l accumulates
 * terms l, l+W, ... of the whole vectors, the tail terms are summed first and
 * the lanes are then added to them in order; with m < W, four interleaved
 * partial sums are combined, the tail going to the first.  A zero
 * coefficient adds an exact zero, so its term is skipped without changing the
 * rounding. */
void qode_vec_lincomb(void *out, const void *base, void *const *k, const double *coef, int m,
                      size_t nr, int is_double, int lanes)
{
    /* More lanes than terms selects torch's short-sum branch, whatever the width. */
    if (lanes < 1 || lanes > QODE_MAX_STAGES)
        lanes = QODE_MAX_STAGES + 1;
    int vector_branch = m >= lanes;
    int n_partials = vector_branch ? lanes : 4;
    int whole = vector_branch ? m / lanes * lanes : m / 4 * 4;
    QODE_DISPATCH_REAL(is_double, {
        real c[QODE_MAX_STAGES];
        for (int j = 0; j < m; j++)
            c[j] = (real)coef[j];
        real *o = (real *)out;
        const real *b = (const real *)base;
        for (size_t start = 0; start < nr; start += LINCOMB_BLOCK) {
            size_t len = nr - start < LINCOMB_BLOCK ? nr - start : LINCOMB_BLOCK;
            real partial[QODE_MAX_STAGES][LINCOMB_BLOCK];
            real tail[LINCOMB_BLOCK];
            for (int l = 0; l < n_partials; l++)
                for (size_t e = 0; e < len; e++)
                    partial[l][e] = 0;
            for (size_t e = 0; e < len; e++)
                tail[e] = 0;
            for (int j = 0; j < m; j++) {
                if (c[j] == 0)
                    continue;
                const real *kj = (const real *)k[j] + start;
                real cj = c[j];
                /* Tail terms go to their own sum (vector branch) or to the
                 * first partial sum (short branch). */
                real *acc = j < whole ? partial[j % n_partials] : (vector_branch ? tail : partial[0]);
                for (size_t e = 0; e < len; e++)
                    acc[e] += kj[e] * cj;
            }
            for (size_t e = 0; e < len; e++) {
                real total = vector_branch ? tail[e] : partial[0][e];
                for (int l = vector_branch ? 0 : 1; l < n_partials; l++)
                    total += partial[l][e];
                o[start + e] = b != NULL ? b[start + e] + total : total;
            }
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

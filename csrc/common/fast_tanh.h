/* A branch-free tanh (double and float) that compilers can vectorise.
 *
 * The social interaction kernel evaluates tanh N^2 * H times and a native MLP
 * field batch * hidden times per evaluation; libm's tanh is a scalar call with
 * branches (about 25 ns), while this version is straight-line arithmetic so
 * the loops over hidden units vectorise.
 *
 * tanh|x| = (1 - t) / (1 + t) with t = exp(-2|x|).  exp(y), y in [-40, 0], is
 * computed as 2^k * exp(r), k = round(y / ln 2), |r| <= ln(2)/2, with a
 * degree-13 Taylor polynomial (truncation error < 1e-17 relative) and ln 2
 * split in two parts so that r is exact to rounding.  For |x| >= 20,
 * t < 5e-18 and the result rounds to +-1.  The absolute error is a few units
 * of 1e-16 (near x = 0 the relative error grows as 1e-16/|x| because of the
 * cancellation in 1 - t; absolute accuracy is what the sums need).
 */
#ifndef QODE_COMMON_FAST_TANH_H
#define QODE_COMMON_FAST_TANH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* tanh(ax) for 0 <= ax <= 20 (the clamp is the callers' job: GCC vectorises
 * the arithmetic only when the clamp sits in a loop of its own). */
static inline double qode_tanh_clamped(double ax)
{
    const double log2e = 1.4426950408889634;
    const double ln2_hi = 6.93147180369123816490e-01; /* ln 2, high 32 bits */
    const double ln2_lo = 1.90821492927058770002e-10; /* ln 2 - ln2_hi */
    const double round_magic = 6755399441055744.0;    /* 1.5 * 2^52 */

    double y = -2.0 * ax;                              /* in [-40, 0] */
    double shifted = y * log2e + round_magic;          /* k in the low mantissa bits */
    double k = shifted - round_magic;                  /* round(y / ln 2), in [-58, 0] */
    double r = (y - k * ln2_hi) - k * ln2_lo;

    double p = 1.0 / 6227020800.0;                     /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;

    /* 2^k: the low bits of `shifted` hold k as a two's complement integer;
     * adding 1023 and shifting into the exponent field builds the double. */
    uint64_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits = (bits + 1023u) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);

    double t = p * scale;
    return (1.0 - t) / (1.0 + t);
}

static inline double qode_fast_tanh(double x)
{
    double ax = fabs(x);
    return copysign(qode_tanh_clamped(ax < 20.0 ? ax : 20.0), x);
}

/* out[i] = tanh(in[i]) for n elements, vectorised; out must not alias in. */
static inline void qode_fast_tanh_array(double *restrict out, const double *restrict in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double ax = fabs(in[i]);
        out[i] = ax < 20.0 ? ax : 20.0;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = copysign(qode_tanh_clamped(out[i]), in[i]);
}



/* The same construction in single precision: exp(r) by a degree-7 Taylor
 * polynomial (truncation error < 1e-8 relative), |x| clamped at 9 (where
 * 1 - tanh < 3e-8 rounds to 1 in float). */
static inline float qode_tanhf_clamped(float ax)
{
    const float log2e = 1.44269504f;
    const float ln2_hi = 0.693145752f;   /* ln 2, 16 significant bits */
    const float ln2_lo = 1.42860677e-06f; /* ln 2 - ln2_hi */
    const float round_magic = 12582912.0f; /* 1.5 * 2^23 */

    float y = -2.0f * ax;                  /* in [-18, 0] */
    float shifted = y * log2e + round_magic;
    float k = shifted - round_magic;       /* in [-26, 0] */
    float r = (y - k * ln2_hi) - k * ln2_lo;

    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;

    uint32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits = (bits + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);

    float t = p * scale;
    return (1.0f - t) / (1.0f + t);
}

static inline float qode_fast_tanhf(float x)
{
    float ax = fabsf(x);
    return copysignf(qode_tanhf_clamped(ax < 9.0f ? ax : 9.0f), x);
}

static inline void qode_fast_tanhf_array(float *restrict out, const float *restrict in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float ax = fabsf(in[i]);
        out[i] = ax < 9.0f ? ax : 9.0f;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = copysignf(qode_tanhf_clamped(out[i]), in[i]);
}


#endif /* QODE_COMMON_FAST_TANH_H */

/* The branch-free sin/cos and tanh of csrc/common against libm.
 *
 * Both replace libm in hot loops (rotation matrices of the quantum path, the
 * social kernel and native MLP fields), so they must agree with libm to a few
 * units in the last place over the whole range callers pass, including the
 * quadrant boundaries of the sin/cos reduction, the far-argument fallback and
 * the clamp of tanh.
 *
 * tests/test_c_core.py also builds this file as tiled.c is built (-O3 with
 * fused multiply-adds, QODE_FAST_MATH_CONTRACTED defined), where only sin/cos
 * is used: tanh is compiled without contraction in the core.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "common/fast_sincos.h"
#include "common/fast_tanh.h"

static const double PI = 3.14159265358979323846;

/* A reproducible uniform double in [lo, hi) (64-bit LCG, top 53 bits). */
static double uniform(uint64_t *state, double lo, double hi)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * ((double)(*state >> 11) / 9007199254740992.0);
}

/* Largest |fast - libm| of sin and cos over n samples in [lo, hi). */
static double sincos_worst_error(double lo, double hi, int n, uint64_t seed)
{
    enum { CHUNK = 64 };
    double x[CHUNK], s[CHUNK], c[CHUNK];
    double worst = 0.0;
    for (int done = 0; done < n; done += CHUNK) {
        for (int i = 0; i < CHUNK; i++)
            x[i] = uniform(&seed, lo, hi);
        qode_sincos_array(x, s, c, CHUNK);
        for (int i = 0; i < CHUNK; i++) {
            worst = fmax(worst, fabs(s[i] - sin(x[i])));
            worst = fmax(worst, fabs(c[i] - cos(x[i])));
        }
    }
    return worst;
}

static void test_sincos_random_ranges(void)
{
    /* angles of rotation gates: pi * tanh(.) and trainable angles */
    CHECK(sincos_worst_error(-4.0, 4.0, 200000, 1) <= 4e-16);
    CHECK(sincos_worst_error(-100.0, 100.0, 200000, 2) <= 4e-16);
    /* the end of the fast range, where k * pio2 parts must stay exact */
    CHECK(sincos_worst_error(9e4, 1e5, 100000, 3) <= 4e-16);
    /* tiny arguments: sin x = x to rounding */
    CHECK(sincos_worst_error(-1e-8, 1e-8, 10000, 4) <= 1e-22);
}

static void test_sincos_quadrant_boundaries(void)
{
    /* near multiples of pi/4 the rounding of k flips and the quadrant logic
     * swaps sin and cos; both sides of every boundary must be right */
    double worst = 0.0;
    for (int m = -400; m <= 400; m++) {
        double centre = m * (PI / 4.0);
        for (int ulp = -3; ulp <= 3; ulp++) {
            double x = centre;
            for (int j = 0; j < (ulp < 0 ? -ulp : ulp); j++)
                x = nextafter(x, ulp < 0 ? -INFINITY : INFINITY);
            double s, c;
            qode_sincos_array(&x, &s, &c, 1);
            worst = fmax(worst, fmax(fabs(s - sin(x)), fabs(c - cos(x))));
        }
    }
    CHECK_MSG(worst <= 4e-16, "worst error %.3g near multiples of pi/4", worst);
}

static void test_sincos_exact_values(void)
{
    double x[4] = {0.0, -0.0, PI / 2.0, PI};
    double s[4], c[4];
    qode_sincos_array(x, s, c, 4);
    CHECK(s[0] == 0.0 && c[0] == 1.0);
    CHECK(c[1] == 1.0 && fabs(s[1]) == 0.0);
    CHECK_NEAR(s[2], 1.0, 1e-16);
    CHECK_NEAR(c[2], cos(PI / 2.0), 1e-16);
    CHECK_NEAR(s[3], sin(PI), 1e-16);
    CHECK_NEAR(c[3], -1.0, 1e-16);
}

static void test_sincos_far_arguments_use_libm(void)
{
    /* one far argument sends the whole array to libm: exact agreement */
    double x[3] = {0.3, 3e7, -1e300};
    double s[3], c[3];
    qode_sincos_array(x, s, c, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(s[i] == sin(x[i]) && c[i] == cos(x[i]), "x = %.17g", x[i]);
    }
}

#ifndef QODE_FAST_MATH_CONTRACTED
static void test_tanh_double(void)
{
    uint64_t seed = 7;
    double worst = 0.0;
    for (int i = 0; i < 400000; i++) {
        double x = uniform(&seed, -25.0, 25.0);
        worst = fmax(worst, fabs(qode_fast_tanh(x) - tanh(x)));
    }
    CHECK_MSG(worst <= 4e-16, "worst tanh error %.3g on [-25, 25]", worst);

    /* the array form clamps in a loop of its own; same answers */
    double in[6] = {-1e300, -30.0, -1e-12, 0.0, 0.75, 40.0};
    double out[6];
    qode_fast_tanh_array(out, in, 6);
    for (int i = 0; i < 6; i++)
        CHECK_MSG(fabs(out[i] - tanh(in[i])) <= 4e-16, "tanh(%g) = %.17g", in[i], out[i]);
    CHECK(out[3] == 0.0);
    CHECK(out[0] == -1.0 && out[5] == 1.0);
}

static void test_tanh_float(void)
{
    uint64_t seed = 11;
    double worst = 0.0;
    for (int i = 0; i < 400000; i++) {
        float x = (float)uniform(&seed, -12.0, 12.0);
        worst = fmax(worst, fabs((double)qode_fast_tanhf(x) - tanh((double)x)));
    }
    CHECK_MSG(worst <= 4.0 * FLT_EPSILON, "worst tanhf error %.3g on [-12, 12]", worst);

    float in[4] = {-50.0f, -0.5f, 0.0f, 3.0f};
    float out[4];
    qode_fast_tanhf_array(out, in, 4);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(fabs((double)out[i] - tanh((double)in[i])) <= 4.0 * FLT_EPSILON,
                  "tanhf(%g) = %.9g", (double)in[i], (double)out[i]);
}
#endif

int main(void)
{
    test_sincos_random_ranges();
    test_sincos_quadrant_boundaries();
    test_sincos_exact_values();
    test_sincos_far_arguments_use_libm();
#ifndef QODE_FAST_MATH_CONTRACTED
    test_tanh_double();
    test_tanh_float();
#endif
    return check_summary();
}

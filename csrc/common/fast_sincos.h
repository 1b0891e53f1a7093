/* sin and cos of a short array, branch-free so that compilers vectorise it.
 *
 * The tiled quantum path turns every data angle into a rotation matrix, a
 * sin/cos pair per angle and circuit; libm's sincos is a scalar call of
 * about 20 ns, which at 4 qubits costs more than the state arithmetic.
 *
 * x = k pi/2 + r with k = round(x 2/pi) and |r| <= pi/4.  pi/2 is split in
 * three parts (the first two of 33 significant bits, so that k * part is
 * exact for |k| < 2^20), which keeps r accurate to rounding.  sin r and cos r
 * are Taylor polynomials of degree 17 and 18 (truncation error below 1e-18
 * on |r| <= pi/4), and the quadrant k mod 4 swaps and negates them.  Errors
 * are a few units in the last place; arguments beyond 1e5 in magnitude go to
 * libm, where the three-part reduction would lose accuracy.
 */
#ifndef QODE_COMMON_FAST_SINCOS_H
#define QODE_COMMON_FAST_SINCOS_H

#include <math.h>

#define QODE_SINCOS_FAST_LIMIT 1e5

/* sin and cos of x for |x| <= QODE_SINCOS_FAST_LIMIT. */
static inline void qode_sincos_reduced(double x, double *s, double *c)
{
    const double two_over_pi = 0.63661977236758134308;
    const double pio2_1 = 1.57079632673412561417e+00; /* first 33 bits of pi/2 */
    const double pio2_2 = 6.07710050630396597660e-11; /* next 33 bits */
    const double pio2_3 = 2.02226624879595063154e-21; /* the rest */
    const double round_magic = 6755399441055744.0;    /* 1.5 * 2^52 */

    double k = (x * two_over_pi + round_magic) - round_magic; /* round(x 2/pi) */
    double r = ((x - k * pio2_1) - k * pio2_2) - k * pio2_3;
    double r2 = r * r;

    double ps = -1.0 / 355687428096000.0;  /* -1/17! */
    ps = ps * r2 + 1.0 / 1307674368000.0;  /* 1/15! */
    ps = ps * r2 - 1.0 / 6227020800.0;     /* 1/13! */
    ps = ps * r2 + 1.0 / 39916800.0;       /* 1/11! */
    ps = ps * r2 - 1.0 / 362880.0;         /* 1/9! */
    ps = ps * r2 + 1.0 / 5040.0;           /* 1/7! */
    ps = ps * r2 - 1.0 / 120.0;
    ps = ps * r2 + 1.0 / 6.0;
    double sin_r = r - r * r2 * ps;        /* r - r^3/3! + ... (ps holds 1/3! - r^2/5! + ...) */

    double pc = 1.0 / 6402373705728000.0;  /* 1/18! */
    pc = pc * r2 - 1.0 / 20922789888000.0; /* 1/16! */
    pc = pc * r2 + 1.0 / 87178291200.0;    /* 1/14! */
    pc = pc * r2 - 1.0 / 479001600.0;      /* 1/12! */
    pc = pc * r2 + 1.0 / 3628800.0;        /* 1/10! */
    pc = pc * r2 - 1.0 / 40320.0;          /* 1/8! */
    pc = pc * r2 + 1.0 / 720.0;            /* 1/6! */
    pc = pc * r2 - 1.0 / 24.0;
    pc = pc * r2 + 0.5;
    double cos_r = 1.0 - r2 * pc;

    /* quadrant q = k mod 4: (sin, cos) = (s, c), (c, -s), (-s, -c), (-c, s);
     * in floating point throughout, so that it vectorises without integer
     * conversions */
    /* floor(k / 4) = round(k / 4 - 3/8) for integer k (no ties), and
     * rounding by the magic constant vectorises where floor() may not */
    double q = k - 4.0 * ((k * 0.25 - 0.375 + round_magic) - round_magic);
    double swap = q - 2.0 * ((q * 0.5 - 0.25 + round_magic) - round_magic); /* 1 for odd q */
    double sin_sign = q >= 2.0 ? -1.0 : 1.0;
    double cos_sign = (q - 1.5) * (q - 1.5) < 0.5 ? -1.0 : 1.0; /* q = 1 or 2 */
    *s = sin_sign * (swap * cos_r + (1.0 - swap) * sin_r);
    *c = cos_sign * (swap * sin_r + (1.0 - swap) * cos_r);
}

/* s[i] = sin(x[i]), c[i] = cos(x[i]) for i < n (any finite x). */
static inline void qode_sincos_array(const double *x, double *s, double *c, int n)
{
    int far = 0;
    for (int i = 0; i < n; i++)
        far |= !(fabs(x[i]) <= QODE_SINCOS_FAST_LIMIT);
    if (far) {
        for (int i = 0; i < n; i++) {
            s[i] = sin(x[i]);
            c[i] = cos(x[i]);
        }
        return;
    }
    for (int i = 0; i < n; i++)
        qode_sincos_reduced(x[i], &s[i], &c[i]);
}

#endif /* QODE_COMMON_FAST_SINCOS_H */

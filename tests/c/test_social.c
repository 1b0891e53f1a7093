/* C-level tests of the social interaction kernels (csrc/social), run by the
 * project's C test harness under AddressSanitizer / UBSan.
 *
 * A naive C reference evaluates k(i, j) for every pair with libm's tanh;
 * the kernels must match it, their VJP must match central finite
 * differences of the forward pass in every input, and bad arguments must
 * give the documented status codes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "social/social.h"

#include "check.h"


/* A small deterministic generator (no global state). */
static double uniform(unsigned long long *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*state >> 11) / 9007199254740992.0;
}

enum { I_H, I_MASK, I_AGGR, I_W1, I_B1, I_W2, I_B2, I_GOALS, I_GW, I_OBST, I_OW, I_SELF, N_IN };

typedef struct {
    qode_social_config cfg;
    size_t sizes[N_IN];
    double *data[N_IN];
} problem;

static void problem_sizes(problem *p)
{
    const qode_social_config *c = &p->cfg;
    size_t n = c->batch * c->agents, D = c->dim, H = c->hidden;
    size_t sizes[N_IN] = {n * D, n, n, H * 2 * D, H, D * H, D, n * c->n_goals * D,
                          n * c->n_goals, n * c->n_obstacles * D, n * c->n_obstacles, n * D};
    memcpy(p->sizes, sizes, sizeof sizes);
}

static problem make_problem(size_t B, size_t N, size_t D, size_t H, size_t G, size_t O,
                            unsigned long long seed)
{
    problem p;
    memset(&p, 0, sizeof p);
    p.cfg.batch = B;
    p.cfg.agents = N;
    p.cfg.dim = D;
    p.cfg.hidden = H;
    p.cfg.n_goals = G;
    p.cfg.n_obstacles = O;
    p.cfg.eps = 0.05;
    p.cfg.beta1 = 0.9;
    p.cfg.beta2 = 1.1;
    p.cfg.num_threads = 1;
    problem_sizes(&p);
    unsigned long long state = seed;
    for (int a = 0; a < N_IN; a++) {
        p.data[a] = calloc(p.sizes[a] > 0 ? p.sizes[a] : 1, sizeof(double));
        for (size_t e = 0; e < p.sizes[a]; e++)
            p.data[a][e] = 2.0 * uniform(&state) - 1.0;
    }
    for (size_t e = 0; e < p.sizes[I_MASK]; e++)
        p.data[I_MASK][e] = (e % 5 == 3) ? 0.0 : 1.0; /* some absent agents */
    for (size_t e = 0; e < p.sizes[I_AGGR]; e++)
        p.data[I_AGGR][e] = fabs(p.data[I_AGGR][e]);
    return p;
}

static void free_problem(problem *p)
{
    for (int a = 0; a < N_IN; a++)
        free(p->data[a]);
}

static qode_social_inputs inputs_of(const problem *p, double *const data[N_IN])
{
    qode_social_inputs in = {data[I_H], data[I_MASK], data[I_AGGR], data[I_W1], data[I_B1],
                             data[I_W2], data[I_B2],
                             p->cfg.n_goals ? data[I_GOALS] : NULL,
                             p->cfg.n_goals ? data[I_GW] : NULL,
                             p->cfg.n_obstacles ? data[I_OBST] : NULL,
                             p->cfg.n_obstacles ? data[I_OW] : NULL, data[I_SELF]};
    return in;
}

/* The naive reference: every pair's k from its concatenated states. */
static void reference(const problem *p, double *out)
{
    const qode_social_config *c = &p->cfg;
    const size_t N = c->agents, D = c->dim, H = c->hidden, G = c->n_goals, O = c->n_obstacles;
    double *const *x = p->data;
    double hidden[64];
    for (size_t b = 0; b < c->batch; b++)
        for (size_t i = 0; i < N; i++) {
            size_t ai = b * N + i;
            double *f = out + ai * D;
            for (size_t d = 0; d < D; d++)
                f[d] = 0.0;
            if (x[I_MASK][ai] == 0.0)
                continue;
            for (size_t j = 0; j < N; j++) {
                size_t aj = b * N + j;
                if (j == i || x[I_MASK][aj] == 0.0)
                    continue;
                double r2 = 0.0;
                for (size_t d = 0; d < D; d++) {
                    double e = x[I_H][ai * D + d] - x[I_H][aj * D + d];
                    r2 += e * e;
                }
                double r = sqrt(r2), s = 1.0;
                if (c->radius > 0.0) {
                    if (r >= c->radius)
                        continue;
                    double onset = c->radius - c->cutoff_width;
                    if (c->cutoff_width > 0.0 && r > onset) {
                        double t = (r - onset) / c->cutoff_width;
                        s = 1.0 - t * t * (3.0 - 2.0 * t);
                    }
                }
                double weight = c->beta1 * x[I_AGGR][ai] * s / (r + c->eps);
                for (size_t k = 0; k < H; k++) {
                    double z = x[I_B1][k];
                    for (size_t d = 0; d < D; d++)
                        z += x[I_W1][k * 2 * D + d] * x[I_H][ai * D + d]
                             + x[I_W1][k * 2 * D + D + d] * x[I_H][aj * D + d];
                    hidden[k] = tanh(z);
                }
                for (size_t d = 0; d < D; d++) {
                    double kd = x[I_B2][d];
                    for (size_t k = 0; k < H; k++)
                        kd += x[I_W2][d * H + k] * hidden[k];
                    f[d] += weight * kd;
                }
            }
            for (size_t d = 0; d < D; d++) {
                double hd = x[I_H][ai * D + d];
                f[d] += c->beta2 * x[I_SELF][ai * D + d];
                for (size_t g = 0; g < G; g++)
                    f[d] -= x[I_GW][ai * G + g] * (hd - x[I_GOALS][(ai * G + g) * D + d]);
                for (size_t o = 0; o < O; o++)
                    f[d] += x[I_OW][ai * O + o] * (hd - x[I_OBST][(ai * O + o) * D + d]);
            }
        }
}

static double max_abs_diff(const double *a, const double *b, size_t n)
{
    double m = 0.0;
    for (size_t e = 0; e < n; e++)
        m = fmax(m, fabs(a[e] - b[e]));
    return m;
}

static void test_forward_f64(size_t B, size_t N, size_t D, size_t H, size_t G, size_t O,
                             double radius, double width, int threads)
{
    problem p = make_problem(B, N, D, H, G, O, 7 + N + D);
    p.cfg.radius = radius;
    p.cfg.cutoff_width = width;
    p.cfg.num_threads = threads;
    size_t n = p.sizes[I_H];
    double *out = calloc(n, sizeof(double)), *ref = calloc(n, sizeof(double));
    qode_social_inputs in = inputs_of(&p, p.data);
    const char *detail = NULL;
    qode_status st = qode_social_forward(&p.cfg, QODE_FLOAT64, &in, out, &detail);
    reference(&p, ref);
    double diff = max_abs_diff(out, ref, n);
    CHECK_MSG(st == QODE_OK && diff < 1e-12,
          "forward f64 B=%zu N=%zu D=%zu H=%zu radius=%g width=%g threads=%d: status %d diff %g",
          B, N, D, H, radius, width, threads, (int)st, diff);
    free(out);
    free(ref);
    free_problem(&p);
}

static void test_forward_f32(void)
{
    problem p = make_problem(2, 7, 3, 5, 1, 1, 99);
    size_t total = 0;
    float *f32[N_IN];
    for (int a = 0; a < N_IN; a++) {
        f32[a] = calloc(p.sizes[a] > 0 ? p.sizes[a] : 1, sizeof(float));
        for (size_t e = 0; e < p.sizes[a]; e++) {
            f32[a][e] = (float)p.data[a][e];
            p.data[a][e] = f32[a][e]; /* the reference sees the rounded inputs */
        }
        total += p.sizes[a];
    }
    size_t n = p.sizes[I_H];
    float *out = calloc(n, sizeof(float));
    double *ref = calloc(n, sizeof(double)), *out64 = calloc(n, sizeof(double));
    qode_social_inputs in = {f32[I_H], f32[I_MASK], f32[I_AGGR], f32[I_W1], f32[I_B1], f32[I_W2],
                             f32[I_B2], f32[I_GOALS], f32[I_GW], f32[I_OBST], f32[I_OW],
                             f32[I_SELF]};
    qode_status st = qode_social_forward(&p.cfg, QODE_FLOAT32, &in, out, NULL);
    reference(&p, ref);
    for (size_t e = 0; e < n; e++)
        out64[e] = out[e];
    double diff = max_abs_diff(out64, ref, n);
    CHECK_MSG(st == QODE_OK && diff < 1e-4 && total > 0, "forward f32: status %d diff %g", (int)st, diff);
    for (int a = 0; a < N_IN; a++)
        free(f32[a]);
    free(out);
    free(ref);
    free(out64);
    free_problem(&p);
}

/* <weights, F> for the current inputs. */
static double weighted_forward(problem *p, const double *weights)
{
    size_t n = p->sizes[I_H];
    double *out = calloc(n, sizeof(double));
    qode_social_inputs in = inputs_of(p, p->data);
    qode_social_forward(&p->cfg, QODE_FLOAT64, &in, out, NULL);
    double s = 0.0;
    for (size_t e = 0; e < n; e++)
        s += weights[e] * out[e];
    free(out);
    return s;
}

/* Each gradient against central differences along a random direction. */
static void test_backward_finite_differences(double radius, double width, int coincident,
                                             int threads)
{
    problem p = make_problem(2, 6, 3, 4, 2, 1, 1234 + (unsigned long long)coincident);
    p.cfg.radius = radius;
    p.cfg.cutoff_width = width;
    p.cfg.num_threads = threads;
    if (coincident) /* agents 0 and 1 of scene 0 at the same point */
        for (size_t d = 0; d < 3; d++)
            p.data[I_H][3 + d] = p.data[I_H][d];
    size_t n = p.sizes[I_H];
    unsigned long long state = 555;
    double *weights = calloc(n, sizeof(double));
    for (size_t e = 0; e < n; e++)
        weights[e] = 2.0 * uniform(&state) - 1.0;
    double *grad[N_IN];
    for (int a = 0; a < N_IN; a++)
        grad[a] = calloc(p.sizes[a] > 0 ? p.sizes[a] : 1, sizeof(double));
    qode_social_grads gr = {grad[I_H], grad[I_AGGR], grad[I_W1], grad[I_B1], grad[I_W2],
                            grad[I_B2], grad[I_GOALS], grad[I_GW], grad[I_OBST], grad[I_OW],
                            grad[I_SELF], 0.0, 0.0};
    qode_social_inputs in = inputs_of(&p, p.data);
    const char *detail = NULL;
    qode_status st = qode_social_backward(&p.cfg, QODE_FLOAT64, &in, weights, &gr, &detail);
    CHECK_MSG(st == QODE_OK, "backward status %d (%s)", (int)st, detail ? detail : "");

    const double step = 1e-6;
    for (int a = 0; a < N_IN; a++) {
        if (a == I_MASK)
            continue;
        double *dir = calloc(p.sizes[a] > 0 ? p.sizes[a] : 1, sizeof(double));
        double analytic = 0.0;
        for (size_t e = 0; e < p.sizes[a]; e++) {
            dir[e] = 2.0 * uniform(&state) - 1.0;
            /* At coincident points ||.|| is not differentiable: move the
             * pair together so the difference quotient is defined. */
            if (coincident && a == I_H && e < 6)
                dir[e] = 0.3;
            analytic += dir[e] * grad[a][e];
        }
        for (size_t e = 0; e < p.sizes[a]; e++) p.data[a][e] += step * dir[e];
        double plus = weighted_forward(&p, weights);
        for (size_t e = 0; e < p.sizes[a]; e++) p.data[a][e] -= 2.0 * step * dir[e];
        double minus = weighted_forward(&p, weights);
        for (size_t e = 0; e < p.sizes[a]; e++) p.data[a][e] += step * dir[e];
        double numeric = (plus - minus) / (2.0 * step);
        double err = fabs(numeric - analytic) / fmax(1.0, fabs(numeric));
        CHECK_MSG(err < 1e-7, "VJP input %d (radius %g, coincident %d, threads %d): analytic %.12g "
              "numeric %.12g", a, radius, coincident, threads, analytic, numeric);
        free(dir);
    }
    double betas[2] = {gr.beta1, gr.beta2};
    double *targets[2] = {&p.cfg.beta1, &p.cfg.beta2};
    for (int k = 0; k < 2; k++) {
        *targets[k] += step;
        double plus = weighted_forward(&p, weights);
        *targets[k] -= 2.0 * step;
        double minus = weighted_forward(&p, weights);
        *targets[k] += step;
        double numeric = (plus - minus) / (2.0 * step);
        CHECK_MSG(fabs(numeric - betas[k]) < 1e-7 * fmax(1.0, fabs(numeric)),
              "VJP beta%d: analytic %.12g numeric %.12g", k + 1, betas[k], numeric);
    }
    for (size_t e = 0; e < n; e++)
        CHECK_MSG(isfinite(grad[I_H][e]), "dh finite");
    for (int a = 0; a < N_IN; a++)
        free(grad[a]);
    free(weights);
    free_problem(&p);
}

static void test_all_coincident_finite(void)
{
    problem p = make_problem(1, 5, 4, 3, 0, 0, 42);
    for (size_t e = 0; e < p.sizes[I_H]; e++)
        p.data[I_H][e] = 0.25;
    size_t n = p.sizes[I_H];
    double *out = calloc(n, sizeof(double)), *ref = calloc(n, sizeof(double));
    double *ones = calloc(n, sizeof(double));
    for (size_t e = 0; e < n; e++)
        ones[e] = 1.0;
    double *grad[N_IN];
    for (int a = 0; a < N_IN; a++)
        grad[a] = calloc(p.sizes[a] > 0 ? p.sizes[a] : 1, sizeof(double));
    qode_social_grads gr = {grad[I_H], grad[I_AGGR], grad[I_W1], grad[I_B1], grad[I_W2],
                            grad[I_B2], NULL, NULL, NULL, NULL, grad[I_SELF], 0.0, 0.0};
    qode_social_inputs in = inputs_of(&p, p.data);
    qode_status st1 = qode_social_forward(&p.cfg, QODE_FLOAT64, &in, out, NULL);
    qode_status st2 = qode_social_backward(&p.cfg, QODE_FLOAT64, &in, ones, &gr, NULL);
    reference(&p, ref);
    int finite = 1;
    for (size_t e = 0; e < n; e++)
        finite &= isfinite(out[e]) && isfinite(grad[I_H][e]);
    CHECK_MSG(st1 == QODE_OK && st2 == QODE_OK && finite && max_abs_diff(out, ref, n) < 1e-11,
          "coincident agents: finite values and gradients");
    for (int a = 0; a < N_IN; a++)
        free(grad[a]);
    free(out);
    free(ref);
    free(ones);
    free_problem(&p);
}

/* A NULL mask means every agent is present. */
static void test_null_mask(void)
{
    problem p = make_problem(2, 6, 3, 4, 1, 1, 77);
    for (size_t e = 0; e < p.sizes[I_MASK]; e++)
        p.data[I_MASK][e] = 1.0;
    size_t n = p.sizes[I_H];
    double *with_mask = calloc(n, sizeof(double)), *without = calloc(n, sizeof(double));
    qode_social_inputs in = inputs_of(&p, p.data);
    qode_status st1 = qode_social_forward(&p.cfg, QODE_FLOAT64, &in, with_mask, NULL);
    in.mask = NULL;
    qode_status st2 = qode_social_forward(&p.cfg, QODE_FLOAT64, &in, without, NULL);
    CHECK_MSG(st1 == QODE_OK && st2 == QODE_OK && max_abs_diff(with_mask, without, n) == 0.0,
          "NULL mask equals an all-ones mask");
    free(with_mask);
    free(without);
    free_problem(&p);
}

static void test_errors(void)
{
    problem p = make_problem(1, 4, 2, 3, 1, 1, 5);
    double out[8];
    const char *detail = NULL;
    qode_social_inputs in = inputs_of(&p, p.data);

    p.cfg.eps = 0.0;
    CHECK_MSG(qode_social_forward(&p.cfg, QODE_FLOAT64, &in, out, &detail) == QODE_ERR_INVALID_ARGUMENT
          && detail && strstr(detail, "eps"), "eps = 0 rejected");
    p.cfg.eps = 0.05;
    p.cfg.radius = 1.0;
    p.cfg.cutoff_width = 2.0;
    CHECK_MSG(qode_social_forward(&p.cfg, QODE_FLOAT64, &in, out, &detail) == QODE_ERR_INVALID_ARGUMENT,
          "cutoff_width > radius rejected");
    p.cfg.radius = 0.0;
    p.cfg.cutoff_width = 0.0;
    CHECK_MSG(qode_social_forward(&p.cfg, QODE_COMPLEX128, &in, out, &detail)
          == QODE_ERR_INVALID_ARGUMENT, "complex dtype rejected");
    p.data[I_H][3] = NAN;
    CHECK_MSG(qode_social_forward(&p.cfg, QODE_FLOAT64, &in, out, &detail) == QODE_ERR_NONFINITE
          && detail && strstr(detail, "h contains"), "NaN in h rejected");
    p.data[I_H][3] = 0.5;
    p.data[I_MASK][0] = 0.5;
    CHECK_MSG(qode_social_forward(&p.cfg, QODE_FLOAT64, &in, out, &detail) == QODE_ERR_INVALID_ARGUMENT
          && detail && strstr(detail, "mask"), "mask 0.5 rejected");
    p.data[I_MASK][0] = 1.0;
    in.goals = NULL;
    CHECK_MSG(qode_social_forward(&p.cfg, QODE_FLOAT64, &in, out, &detail) == QODE_ERR_INVALID_ARGUMENT,
          "missing goals rejected");
    in = inputs_of(&p, p.data);
    p.cfg.hidden = 0;
    CHECK_MSG(qode_social_forward(&p.cfg, QODE_FLOAT64, &in, out, &detail) == QODE_ERR_SHAPE,
          "hidden = 0 rejected");
    p.cfg.hidden = 3;
    p.cfg.batch = (size_t)1 << 62;
    CHECK_MSG(qode_social_forward(&p.cfg, QODE_FLOAT64, &in, out, &detail) == QODE_ERR_NO_MEMORY,
          "overflowing sizes rejected");
    p.cfg.batch = 1;
    CHECK_MSG(qode_social_forward(&p.cfg, QODE_FLOAT64, &in, out, &detail) == QODE_OK,
          "valid call after errors");
    free_problem(&p);
}

int main(void)
{
    test_forward_f64(2, 5, 3, 4, 2, 1, 0.0, 0.0, 1);
    test_forward_f64(1, 1, 2, 3, 1, 0, 0.0, 0.0, 1);
    test_forward_f64(3, 33, 5, 7, 0, 2, 0.0, 0.0, 2);
    test_forward_f64(2, 80, 2, 3, 0, 0, 0.4, 0.0, 1);  /* cell list, D = 2 */
    test_forward_f64(2, 80, 1, 3, 0, 0, 0.2, 0.1, 2);  /* cell list, D = 1, smooth */
    test_forward_f64(1, 60, 6, 3, 1, 1, 1.5, 0.5, 3);  /* cells on 2 of 6 dims */
    test_forward_f32();
    test_backward_finite_differences(0.0, 0.0, 0, 1);
    test_backward_finite_differences(0.0, 0.0, 0, 3);
    test_backward_finite_differences(1.2, 0.5, 0, 2);
    test_backward_finite_differences(0.0, 0.0, 1, 1);
    test_all_coincident_finite();
    test_null_mask();
    test_errors();
    return check_summary();
}

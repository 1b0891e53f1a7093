/* The native MLP field and the continuous adjoint's augmented system.
 *
 * The field is compared with a plain triple loop written here (row-major,
 * libm tanh), its VJP with central finite differences of the field, and the
 * augmented system with the field and VJP called separately.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fields/mlp.h"
#include "solver/adjoint_dynamics.h"

#define BATCH 5
#define WIDTH 3
#define HIDDEN 7

/* Two layers: WIDTH (+ t) -> HIDDEN -> WIDTH. */
typedef struct {
    double w1[HIDDEN * (WIDTH + 1)], b1[HIDDEN], w2[WIDTH * HIDDEN], b2[WIDTH];
    size_t widths[3];
    const void *weights[2], *biases[2];
    qode_mlp mlp;
} net;

static double pseudo_random(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return ((*state >> 8) & 0xffff) / 32768.0 - 1.0;
}

static void net_init(net *n, int time_input, qode_activation act, unsigned seed)
{
    memset(n, 0, sizeof(*n));
    for (size_t i = 0; i < sizeof(n->w1) / sizeof(double); i++)
        n->w1[i] = pseudo_random(&seed);
    for (size_t i = 0; i < HIDDEN; i++)
        n->b1[i] = 0.5 * pseudo_random(&seed);
    for (size_t i = 0; i < WIDTH * HIDDEN; i++)
        n->w2[i] = pseudo_random(&seed);
    for (size_t i = 0; i < WIDTH; i++)
        n->b2[i] = 0.5 * pseudo_random(&seed);
    n->widths[0] = WIDTH;
    n->widths[1] = HIDDEN;
    n->widths[2] = WIDTH;
    n->weights[0] = n->w1;
    n->weights[1] = n->w2;
    n->biases[0] = n->b1;
    n->biases[1] = n->b2;
    qode_mlp m = {QODE_FLOAT64, BATCH, 2, n->widths, time_input, act, n->weights, n->biases,
                  NULL, NULL};
    n->mlp = m;
    n->mlp.work = calloc(1, qode_mlp_work_bytes(&n->mlp));
}

static double activation(qode_activation act, double z)
{
    switch (act) {
    case QODE_ACT_TANH: return tanh(z);
    case QODE_ACT_RELU: return z > 0 ? z : 0;
    case QODE_ACT_SOFTPLUS: return z > 20 ? z : log1p(exp(z));
    case QODE_ACT_SIGMOID: return 1 / (1 + exp(-z));
    default: return z;
    }
}

static void reference_rhs(const net *n, double t, const double *y, double *out)
{
    int ti = n->mlp.time_input;
    for (int b = 0; b < BATCH; b++) {
        double h[HIDDEN];
        for (int j = 0; j < HIDDEN; j++) {
            double z = n->b1[j];
            for (int k = 0; k < WIDTH; k++)
                z += n->w1[j * (WIDTH + ti) + k] * y[b * WIDTH + k];
            if (ti)
                z += n->w1[j * (WIDTH + 1) + WIDTH] * t;
            h[j] = activation(n->mlp.activation, z);
        }
        for (int j = 0; j < WIDTH; j++) {
            double z = n->b2[j];
            for (int k = 0; k < HIDDEN; k++)
                z += n->w2[j * HIDDEN + k] * h[k];
            out[b * WIDTH + j] = z;
        }
    }
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void test_rhs_against_reference(qode_activation act, int time_input)
{
    net n;
    net_init(&n, time_input, act, 7u + (unsigned)act);
    CHECK_INT_EQ(qode_mlp_check(&n.mlp, NULL, 0), QODE_OK);
    double y[BATCH * WIDTH], got[BATCH * WIDTH], expected[BATCH * WIDTH];
    unsigned seed = 99;
    for (int i = 0; i < BATCH * WIDTH; i++)
        y[i] = 2 * pseudo_random(&seed);
    CHECK_INT_EQ(qode_mlp_rhs(&n.mlp, 0.3, y, got), 0);
    reference_rhs(&n, 0.3, y, expected);
    for (int i = 0; i < BATCH * WIDTH; i++)
        CHECK_NEAR(got[i], expected[i], 1e-13);
    free(n.mlp.work);
}

/* v . f(t, y) along one coordinate, for finite differences. */
static double projected(net *n, double t, const double *y, const double *v)
{
    double f[BATCH * WIDTH];
    qode_mlp_rhs(&n->mlp, t, y, f);
    return dot(f, v, BATCH * WIDTH);
}

static void test_vjp_against_finite_differences(qode_activation act)
{
    net n;
    net_init(&n, 1, act, 3u + (unsigned)act);
    size_t n_params = qode_mlp_n_params(&n.mlp);
    CHECK_INT_EQ(n_params, HIDDEN * (WIDTH + 1) + WIDTH * HIDDEN + HIDDEN + WIDTH);
    double y[BATCH * WIDTH], v[BATCH * WIDTH], y_bar[BATCH * WIDTH], f_out[BATCH * WIDTH];
    double *p_bar = calloc(n_params, sizeof(double));
    unsigned seed = 5;
    for (int i = 0; i < BATCH * WIDTH; i++) {
        y[i] = pseudo_random(&seed);
        v[i] = pseudo_random(&seed);
    }
    double t = 0.4, t_bar = 0, h = 1e-6;
    CHECK_INT_EQ(qode_mlp_field_vjp(&n.mlp, t, y, v, f_out, y_bar, &t_bar, p_bar), 0);
    double f_ref[BATCH * WIDTH];
    reference_rhs(&n, t, y, f_ref);
    for (int i = 0; i < BATCH * WIDTH; i++)
        CHECK_NEAR(f_out[i], f_ref[i], 1e-13);
    for (int i = 0; i < BATCH * WIDTH; i++) {
        double saved = y[i];
        y[i] = saved + h;
        double up = projected(&n, t, y, v);
        y[i] = saved - h;
        double down = projected(&n, t, y, v);
        y[i] = saved;
        CHECK_NEAR(y_bar[i], (up - down) / (2 * h), 1e-7);
    }
    CHECK_NEAR(t_bar, (projected(&n, t + h, y, v) - projected(&n, t - h, y, v)) / (2 * h), 1e-7);
    /* Parameters in the flat order: w1, w2, b1, b2. */
    double *params[] = {n.w1, n.w2, n.b1, n.b2};
    size_t counts[] = {HIDDEN * (WIDTH + 1), WIDTH * HIDDEN, HIDDEN, WIDTH};
    size_t at = 0;
    for (int g = 0; g < 4; g++) {
        for (size_t i = 0; i < counts[g]; i++, at++) {
            double saved = params[g][i];
            params[g][i] = saved + h;
            double up = projected(&n, t, y, v);
            params[g][i] = saved - h;
            double down = projected(&n, t, y, v);
            params[g][i] = saved;
            CHECK_NEAR(p_bar[at], (up - down) / (2 * h), 1e-7);
        }
    }
    /* The VJP accumulates: a second call doubles the parameter gradient. */
    double first = p_bar[0];
    qode_mlp_field_vjp(&n.mlp, t, y, v, NULL, y_bar, &t_bar, p_bar);
    CHECK_NEAR(p_bar[0], 2 * first, 1e-14);
    free(p_bar);
    free(n.mlp.work);
}

static void test_float32_matches_float64(void)
{
    net n;
    net_init(&n, 0, QODE_ACT_TANH, 11u);
    float w1[HIDDEN * WIDTH], b1[HIDDEN], w2[WIDTH * HIDDEN], b2[WIDTH];
    for (int j = 0; j < HIDDEN; j++) {
        for (int k = 0; k < WIDTH; k++)
            w1[j * WIDTH + k] = (float)n.w1[j * WIDTH + k];
        b1[j] = (float)n.b1[j];
    }
    for (int i = 0; i < WIDTH * HIDDEN; i++)
        w2[i] = (float)n.w2[i];
    for (int i = 0; i < WIDTH; i++)
        b2[i] = (float)n.b2[i];
    const void *weights[2] = {w1, w2}, *biases[2] = {b1, b2};
    qode_mlp m = {QODE_FLOAT32, BATCH, 2, n.widths, 0, QODE_ACT_TANH, weights, biases, NULL, NULL};
    m.work = calloc(1, qode_mlp_work_bytes(&m));
    float y[BATCH * WIDTH], out[BATCH * WIDTH];
    double y64[BATCH * WIDTH], out64[BATCH * WIDTH];
    unsigned seed = 21;
    for (int i = 0; i < BATCH * WIDTH; i++)
        y64[i] = y[i] = (float)pseudo_random(&seed);
    qode_mlp_rhs(&m, 0.0, y, out);
    reference_rhs(&n, 0.0, y64, out64);
    for (int i = 0; i < BATCH * WIDTH; i++)
        CHECK_NEAR(out[i], out64[i], 1e-5);
    free(m.work);
    free(n.mlp.work);
}

static void test_check_rejects_bad_descriptions(void)
{
    size_t widths[3] = {3, 4, 2};
    double w[12] = {0};
    const void *weights[2] = {w, w};
    qode_mlp m = {QODE_FLOAT64, 1, 2, widths, 0, QODE_ACT_TANH, weights, NULL, NULL, NULL};
    char message[128];
    CHECK_INT_EQ(qode_mlp_check(&m, message, sizeof(message)), QODE_ERR_INVALID_ARGUMENT);
    CHECK(strstr(message, "maps the state to itself") != NULL);
    widths[2] = 3;
    m.activation = QODE_ACT_COUNT;
    CHECK_INT_EQ(qode_mlp_check(&m, message, sizeof(message)), QODE_ERR_INVALID_ARGUMENT);
    m.activation = QODE_ACT_TANH;
    m.dtype = QODE_COMPLEX128;
    CHECK_INT_EQ(qode_mlp_check(&m, message, sizeof(message)), QODE_ERR_INVALID_ARGUMENT);
    m.dtype = QODE_FLOAT64;
    m.n_layers = 0;
    CHECK_INT_EQ(qode_mlp_check(&m, NULL, 0), QODE_ERR_INVALID_ARGUMENT);
}

static void test_adjoint_dynamics(void)
{
    net n;
    net_init(&n, 1, QODE_ACT_TANH, 13u);
    size_t state = BATCH * WIDTH, n_params = qode_mlp_n_params(&n.mlp);
    double minus_a[BATCH * WIDTH];
    qode_adjoint_dynamics d = {QODE_FLOAT64, state, n_params, qode_mlp_field_vjp, &n.mlp,
                               minus_a};
    size_t size = qode_adjoint_state_size(&d);
    CHECK_INT_EQ(size, 1 + 2 * state + n_params);
    double *aug = calloc(size, sizeof(double)), *daug = calloc(size, sizeof(double));
    unsigned seed = 17;
    for (size_t i = 0; i < size; i++)
        aug[i] = pseudo_random(&seed);
    for (size_t i = 0; i < size; i++)
        daug[i] = 1e300;  /* must all be overwritten */
    CHECK_INT_EQ(qode_adjoint_dynamics_rhs(&d, 0.2, aug, daug), 0);
    double f[BATCH * WIDTH], y_bar[BATCH * WIDTH], v[BATCH * WIDTH], t_bar = 0;
    double *p_bar = calloc(n_params, sizeof(double));
    for (size_t i = 0; i < state; i++)
        v[i] = -aug[1 + state + i];
    qode_mlp_field_vjp(&n.mlp, 0.2, aug + 1, v, f, y_bar, &t_bar, p_bar);
    CHECK_NEAR(daug[0], t_bar, 1e-14);
    for (size_t i = 0; i < state; i++) {
        CHECK_NEAR(daug[1 + i], f[i], 1e-14);
        CHECK_NEAR(daug[1 + state + i], y_bar[i], 1e-14);
    }
    for (size_t i = 0; i < n_params; i++)
        CHECK_NEAR(daug[1 + 2 * state + i], p_bar[i], 1e-14);
    free(p_bar);
    free(aug);
    free(daug);
    free(n.mlp.work);
}

int main(void)
{
    for (int act = 0; act < QODE_ACT_COUNT; act++) {
        test_rhs_against_reference((qode_activation)act, 0);
        test_rhs_against_reference((qode_activation)act, 1);
        test_vjp_against_finite_differences((qode_activation)act);
    }
    test_float32_matches_float64();
    test_check_rejects_bad_descriptions();
    test_adjoint_dynamics();
    return check_summary();
}

/* Direct tests of the quantum C core (no Python), run under ASan/UBSan by the
 * project's harness.  Prints "N passed, N failed" and returns nonzero on any
 * failure. */
#define _POSIX_C_SOURCE 200809L /* fork, waitpid */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cpus.h"
#include "quantum/parallel.h"
#include "quantum/simulate.h"

#include "check.h"


static qode_circuit make_circuit(int n, qode_op *ops, int n_ops, qode_param_ref *refs,
                                 int n_refs, int n_data, int n_trainable)
{
    qode_circuit c;
    memset(&c, 0, sizeof c);
    c.n_qubits = n;
    c.ops = ops;
    c.n_ops = n_ops;
    c.refs = refs;
    c.n_refs = n_refs;
    c.n_data = n_data;
    c.n_trainable = n_trainable;
    return c;
}

static qode_op op1(int kind, int w0, int w1, int w2, int param_start)
{
    qode_op o = {kind, {w0, w1, w2}, param_start, 0};
    return o;
}

/* RY(theta)|0>: <Z> = cos(theta), <X> = sin(theta). */
static void test_single_rotation(void)
{
    qode_op ops[] = {op1(QODE_GATE_RY, 0, 0, 0, 0)};
    qode_param_ref refs[] = {{QODE_PARAM_DATA, 0, 0.0}};
    qode_circuit c = make_circuit(1, ops, 1, refs, 1, 1, 0);
    double data[3] = {0.3, -1.2, 2.5};
    double states[3 * 4];
    char msg[256];
    qode_status st = qode_qsim_run(&c, QODE_COMPLEX128, 3, data, NULL, states, 1, msg, sizeof msg);
    CHECK_MSG(st == QODE_OK, "run failed: %s", msg);
    int64_t start[] = {0, 1, 2};
    uint64_t xm[] = {0, 1}, zm[] = {1, 0};
    double coeff[] = {1.0, 1.0};
    qode_observables obs = {2, start, xm, zm, coeff};
    double ev[6];
    st = qode_qsim_expval(&obs, QODE_COMPLEX128, 1, 3, states, ev, 1, msg, sizeof msg);
    CHECK_MSG(st == QODE_OK, "expval failed: %s", msg);
    for (int b = 0; b < 3; b++) {
        CHECK_MSG(fabs(ev[2 * b] - cos(data[b])) < 1e-14, "<Z> %g vs %g", ev[2 * b], cos(data[b]));
        CHECK_MSG(fabs(ev[2 * b + 1] - sin(data[b])) < 1e-14, "<X> %g vs %g", ev[2 * b + 1], sin(data[b]));
    }
    /* d<Z>/dtheta = -sin(theta) by the adjoint VJP */
    double gexp[6] = {1, 0, 1, 0, 1, 0}, gdata[3];
    st = qode_qsim_adjoint_vjp(&c, QODE_COMPLEX128, 3, data, NULL, states, NULL, &obs, gexp, NULL,
                               gdata, NULL, 1, msg, sizeof msg);
    CHECK_MSG(st == QODE_OK, "vjp failed: %s", msg);
    for (int b = 0; b < 3; b++)
        CHECK_MSG(fabs(gdata[b] + sin(data[b])) < 1e-14, "grad %g vs %g", gdata[b], -sin(data[b]));
}

/* H(0) CNOT(0,1): Bell state; wire 0 is the most significant bit. */
static void test_bell_and_wire_order(void)
{
    qode_op ops[] = {op1(QODE_GATE_H, 0, 0, 0, 0), op1(QODE_GATE_CNOT, 0, 1, 0, 0)};
    qode_circuit c = make_circuit(2, ops, 2, NULL, 0, 0, 0);
    double states[8], p[4];
    char msg[256];
    CHECK_MSG(qode_qsim_run(&c, QODE_COMPLEX128, 1, NULL, NULL, states, 1, msg, sizeof msg) == QODE_OK,
          "%s", msg);
    CHECK_MSG(qode_qsim_probs(QODE_COMPLEX128, 2, 1, states, p, 1, msg, sizeof msg) == QODE_OK, "%s", msg);
    CHECK_MSG(fabs(p[0] - 0.5) < 1e-15 && p[1] == 0 && p[2] == 0 && fabs(p[3] - 0.5) < 1e-15,
          "bell probs %g %g %g %g", p[0], p[1], p[2], p[3]);
    /* X on wire 0 of 2 qubits gives |10> = index 2 */
    qode_op x0[] = {op1(QODE_GATE_X, 0, 0, 0, 0)};
    c = make_circuit(2, x0, 1, NULL, 0, 0, 0);
    qode_qsim_run(&c, QODE_COMPLEX128, 1, NULL, NULL, states, 1, msg, sizeof msg);
    qode_qsim_probs(QODE_COMPLEX128, 2, 1, states, p, 1, msg, sizeof msg);
    CHECK_MSG(p[2] == 1.0, "X on wire 0 should give index 2, probs %g %g %g %g", p[0], p[1], p[2], p[3]);
}

/* A circuit over every parametrised gate; adjoint gradients against central
 * finite differences, complex64 against complex128, threads against one. */
static void test_adjoint_against_finite_differences(void)
{
    enum { N = 3, B = 40 };
    qode_op ops[] = {
        op1(QODE_GATE_H, 0, 0, 0, 0),       op1(QODE_GATE_RX, 1, 0, 0, 0),
        op1(QODE_GATE_RY, 2, 0, 0, 1),      op1(QODE_GATE_ROT, 0, 0, 0, 2),
        op1(QODE_GATE_CRX, 0, 1, 0, 5),     op1(QODE_GATE_U3, 2, 0, 0, 6),
        op1(QODE_GATE_ISINGYY, 2, 0, 0, 9), op1(QODE_GATE_CRZ, 1, 2, 0, 10),
        op1(QODE_GATE_PHASE, 1, 0, 0, 11),  op1(QODE_GATE_ISINGXX, 0, 1, 0, 12),
        op1(QODE_GATE_TOFFOLI, 2, 0, 1, 0), op1(QODE_GATE_CRY, 2, 0, 0, 13),
        op1(QODE_GATE_ISINGZZ, 1, 2, 0, 14), op1(QODE_GATE_SX, 1, 0, 0, 0),
        op1(QODE_GATE_RZ, 0, 0, 0, 15),     op1(QODE_GATE_SWAP, 0, 2, 0, 0),
    };
    qode_param_ref refs[16];
    for (int i = 0; i < 16; i++) {
        refs[i].source = (i % 3 == 2) ? QODE_PARAM_TRAINABLE : QODE_PARAM_DATA;
        refs[i].index = (i % 3 == 2) ? i % 4 : i % 3;
        refs[i].value = 0.0;
    }
    refs[7].source = QODE_PARAM_CONSTANT;
    refs[7].value = 0.77;
    qode_circuit c = make_circuit(N, ops, 16, refs, 16, 3, 4);
    double *data = malloc(sizeof(double) * B * 3);
    double trainable[4] = {0.4, -1.1, 2.0, 0.9};
    for (int i = 0; i < B * 3; i++)
        data[i] = sin(1.7 * i + 0.3) * 3.0;
    size_t dim = 1u << N;
    double *states = malloc(sizeof(double) * 2 * dim * B);
    float *states32 = malloc(sizeof(float) * 2 * dim * B);
    char msg[256];
    CHECK_MSG(qode_qsim_run(&c, QODE_COMPLEX128, B, data, trainable, states, 2, msg, sizeof msg) == QODE_OK,
          "%s", msg);
    CHECK_MSG(qode_qsim_run(&c, QODE_COMPLEX64, B, data, trainable, states32, 1, msg, sizeof msg) == QODE_OK,
          "%s", msg);
    double worst = 0;
    for (size_t i = 0; i < 2 * dim * B; i++)
        worst = fmax(worst, fabs(states[i] - states32[i]));
    CHECK_MSG(worst < 1e-5, "complex64 differs from complex128 by %g", worst);
    /* the batch ran on the tiled path; one circuit at a time runs the per-state kernels */
    CHECK_MSG(qode_qsim_uses_tiles(N, B) && !qode_qsim_uses_tiles(N, 1), "path selection");
    worst = 0;
    for (int b = 0; b < B; b++) {
        double single[2 * 8];
        qode_qsim_run(&c, QODE_COMPLEX128, 1, data + 3 * b, trainable, single, 1, msg, sizeof msg);
        for (size_t i = 0; i < 2 * dim; i++)
            worst = fmax(worst, fabs(single[i] - states[2 * dim * b + i]));
    }
    CHECK_MSG(worst < 1e-13, "tiled and per-state paths differ by %g", worst);

    /* L = sum_b sum_k g_bk <O_k>: Z on wire 0, X0 Y2 */
    int64_t start[] = {0, 1, 2};
    uint64_t xm[] = {0, 4 | 1}, zm[] = {4, 1};
    double coeff[] = {1.0, 0.5};
    qode_observables obs = {2, start, xm, zm, coeff};
    double *g = malloc(sizeof(double) * B * 2);
    for (int i = 0; i < B * 2; i++)
        g[i] = cos(0.9 * i);
    double *gdata = malloc(sizeof(double) * B * 3), gtrain[4];
    CHECK_MSG(qode_qsim_adjoint_vjp(&c, QODE_COMPLEX128, B, data, trainable, states, NULL, &obs,
                                    g, NULL, gdata, gtrain, 2, msg, sizeof msg) == QODE_OK,
              "%s", msg);

    double *ev = malloc(sizeof(double) * B * 2);
    const double h = 1e-6;
    /* loss(batch row b) with data perturbed */
    for (int b = 0; b < 3; b++) {
        for (int j = 0; j < 3; j++) {
            double loss[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                double saved = data[b * 3 + j];
                data[b * 3 + j] = saved + (sgn ? -h : h);
                qode_qsim_run(&c, QODE_COMPLEX128, B, data, trainable, states, 1, msg, sizeof msg);
                qode_qsim_expval(&obs, QODE_COMPLEX128, N, B, states, ev, 1, msg, sizeof msg);
                loss[sgn] = g[2 * b] * ev[2 * b] + g[2 * b + 1] * ev[2 * b + 1];
                data[b * 3 + j] = saved;
            }
            double fd = (loss[0] - loss[1]) / (2 * h);
            CHECK_MSG(fabs(fd - gdata[b * 3 + j]) < 1e-7, "data grad [%d,%d]: adjoint %.12g fd %.12g",
                  b, j, gdata[b * 3 + j], fd);
        }
    }
    for (int j = 0; j < 4; j++) {
        double loss[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            double saved = trainable[j];
            trainable[j] = saved + (sgn ? -h : h);
            qode_qsim_run(&c, QODE_COMPLEX128, B, data, trainable, states, 1, msg, sizeof msg);
            qode_qsim_expval(&obs, QODE_COMPLEX128, N, B, states, ev, 1, msg, sizeof msg);
            loss[sgn] = 0;
            for (int i = 0; i < 2 * B; i++)
                loss[sgn] += g[i] * ev[i];
            trainable[j] = saved;
        }
        double fd = (loss[0] - loss[1]) / (2 * h);
        CHECK_MSG(fabs(fd - gtrain[j]) < 1e-6, "trainable grad %d: adjoint %.12g fd %.12g", j,
              gtrain[j], fd);
    }
    /* complex64 adjoint close to complex128 */
    double *gdata32 = malloc(sizeof(double) * B * 3), gtrain32[4];
    CHECK_MSG(qode_qsim_adjoint_vjp(&c, QODE_COMPLEX64, B, data, trainable, states32, NULL, &obs,
                                    g, NULL, gdata32, gtrain32, 1, msg, sizeof msg) == QODE_OK,
              "%s", msg);
    worst = 0;
    for (int i = 0; i < B * 3; i++)
        worst = fmax(worst, fabs(gdata32[i] - gdata[i]));
    CHECK_MSG(worst < 1e-4, "complex64 data gradients differ by %g", worst);
    free(data); free(states); free(states32); free(g); free(gdata); free(ev); free(gdata32);
}

static void test_validation_errors(void)
{
    char msg[256];
    double states[64];
    qode_op bad_wire[] = {op1(QODE_GATE_H, 4, 0, 0, 0)};
    qode_circuit c = make_circuit(2, bad_wire, 1, NULL, 0, 0, 0);
    CHECK_MSG(qode_qsim_run(&c, QODE_COMPLEX128, 1, NULL, NULL, states, 1, msg, sizeof msg) ==
          QODE_ERR_INVALID_ARGUMENT && strstr(msg, "wire 4 out of range") != NULL, "msg: %s", msg);
    qode_op repeated[] = {op1(QODE_GATE_SWAP, 1, 1, 0, 0)};
    c = make_circuit(2, repeated, 1, NULL, 0, 0, 0);
    CHECK_MSG(qode_qsim_run(&c, QODE_COMPLEX128, 1, NULL, NULL, states, 1, msg, sizeof msg) ==
          QODE_ERR_INVALID_ARGUMENT && strstr(msg, "repeated") != NULL, "msg: %s", msg);
    qode_op rx[] = {op1(QODE_GATE_RX, 0, 0, 0, 0)};
    qode_param_ref ref[] = {{QODE_PARAM_DATA, 0, 0}};
    c = make_circuit(1, rx, 1, ref, 1, 1, 0);
    double nan_data[1] = {NAN};
    CHECK_MSG(qode_qsim_run(&c, QODE_COMPLEX128, 1, nan_data, NULL, states, 1, msg, sizeof msg) ==
          QODE_ERR_NONFINITE, "NaN angle accepted");
    size_t bytes;
    CHECK_MSG(qode_qstate_bytes(70, 1, QODE_COMPLEX128, &bytes, msg, sizeof msg) == QODE_ERR_NO_MEMORY &&
          strstr(msg, "bytes") != NULL, "huge state accepted: %s", msg);
    CHECK_MSG(qode_qstate_bytes(10, 3, QODE_COMPLEX64, &bytes, msg, sizeof msg) == QODE_OK &&
          bytes == 3 * 1024 * 8, "bytes %zu", bytes);
}

static void test_sampling_reproducible(void)
{
    qode_op ops[] = {op1(QODE_GATE_H, 0, 0, 0, 0), op1(QODE_GATE_H, 1, 0, 0, 0)};
    qode_circuit c = make_circuit(2, ops, 2, NULL, 0, 0, 0);
    double states[8 * 4];
    char msg[256];
    qode_qsim_run(&c, QODE_COMPLEX128, 1, NULL, NULL, states, 1, msg, sizeof msg);
    int64_t a[4000], b[4000];
    CHECK_MSG(qode_qsim_sample(QODE_COMPLEX128, 2, 1, states, 4000, 42, a, 1, msg, sizeof msg) == QODE_OK,
          "%s", msg);
    qode_qsim_sample(QODE_COMPLEX128, 2, 1, states, 4000, 42, b, 1, msg, sizeof msg);
    CHECK_MSG(memcmp(a, b, sizeof a) == 0, "same seed, different samples");
    int counts[4] = {0};
    for (int i = 0; i < 4000; i++)
        counts[a[i]]++;
    for (int k = 0; k < 4; k++) /* 1000 +- 5 sigma (sigma ~ 27) */
        CHECK_MSG(abs(counts[k] - 1000) < 140, "count[%d] = %d", k, counts[k]);
}

enum { THREAD_N = 4, THREAD_B = 3000 };

/* The circuit of the thread tests, large enough (with THREAD_B rows) to
 * start threads: RY(data) and RX(weight) on every wire, then a CNOT ring. */
static qode_circuit thread_test_circuit(qode_op *ops, qode_param_ref *refs)
{
    enum { N = THREAD_N };
    int k = 0;
    for (int q = 0; q < N; q++) {
        ops[k++] = op1(QODE_GATE_RY, q, 0, 0, q);
        refs[q].source = QODE_PARAM_DATA; refs[q].index = q; refs[q].value = 0;
    }
    for (int q = 0; q < N; q++) {
        ops[k++] = op1(QODE_GATE_RX, q, 0, 0, N + q);
        refs[N + q].source = QODE_PARAM_TRAINABLE; refs[N + q].index = q; refs[N + q].value = 0;
    }
    for (int q = 0; q < N; q++)
        ops[k++] = op1(QODE_GATE_CNOT, q, (q + 1) % N, 0, 0);
    return make_circuit(N, ops, k, refs, 2 * N, N, N);
}

/* <Z> of every wire of the thread tests. */
static qode_observables thread_test_observables(int64_t *start, uint64_t *xm, uint64_t *zm,
                                                double *coeff)
{
    enum { N = THREAD_N };
    for (int q = 0; q <= N; q++)
        start[q] = q;
    for (int q = 0; q < N; q++) {
        xm[q] = 0; zm[q] = (uint64_t)1 << (N - 1 - q); coeff[q] = 1.0;
    }
    qode_observables obs = {N, start, xm, zm, coeff};
    return obs;
}

/* Threaded results equal single-threaded ones. */
static void test_threads_match_single_thread(void)
{
    enum { N = THREAD_N, B = THREAD_B };
    qode_op ops[3 * N];
    qode_param_ref refs[2 * N];
    qode_circuit c = thread_test_circuit(ops, refs);
    double *data = malloc(sizeof(double) * B * N), w[N] = {0.1, 0.2, 0.3, 0.4};
    for (int i = 0; i < B * N; i++)
        data[i] = cos(0.37 * i);
    size_t dim = 1u << N;
    double *s1 = malloc(sizeof(double) * 2 * dim * B), *s2 = malloc(sizeof(double) * 2 * dim * B);
    char msg[256];
    qode_qsim_run(&c, QODE_COMPLEX128, B, data, w, s1, 1, msg, sizeof msg);
    CHECK_MSG(qode_qsim_run(&c, QODE_COMPLEX128, B, data, w, s2, 2, msg, sizeof msg) == QODE_OK, "%s", msg);
    CHECK_MSG(memcmp(s1, s2, sizeof(double) * 2 * dim * B) == 0, "threaded states differ");
    int64_t start[N + 1];
    uint64_t xm[N], zm[N];
    double coeff[N];
    qode_observables obs = thread_test_observables(start, xm, zm, coeff);
    double *g = malloc(sizeof(double) * B * N), *gd1 = malloc(sizeof(double) * B * N),
           *gd2 = malloc(sizeof(double) * B * N), gw1[N], gw2[N];
    for (int i = 0; i < B * N; i++)
        g[i] = sin(0.11 * i);
    qode_qsim_adjoint_vjp(&c, QODE_COMPLEX128, B, data, w, s1, NULL, &obs, g, NULL, gd1, gw1, 1,
                          msg, sizeof msg);
    CHECK_MSG(qode_qsim_adjoint_vjp(&c, QODE_COMPLEX128, B, data, w, s1, NULL, &obs, g, NULL, gd2,
                                    gw2, 2, msg, sizeof msg) == QODE_OK, "%s", msg);
    CHECK_MSG(memcmp(gd1, gd2, sizeof(double) * B * N) == 0, "threaded data gradients differ");
    for (int q = 0; q < N; q++)
        CHECK_MSG(fabs(gw1[q] - gw2[q]) < 1e-10 * (1 + fabs(gw1[q])), "trainable grad %d", q);
    free(data); free(s1); free(s2); free(g); free(gd1); free(gd2);
}

/* The worker pool: with threads, the summed trainable gradients are the
 * same bits on every run (chunks are summed in order, whichever thread ran
 * them), many jobs in a row all complete, and a child process forked after
 * the workers started (which has none of them) still runs threaded jobs. */
static void test_thread_pool_repeatable_and_fork_safe(void)
{
    enum { N = THREAD_N, B = THREAD_B };
    qode_op ops[3 * N];
    qode_param_ref refs[2 * N];
    qode_circuit c = thread_test_circuit(ops, refs);
    int64_t start[N + 1];
    uint64_t xm[N], zm[N];
    double coeff[N];
    qode_observables obs = thread_test_observables(start, xm, zm, coeff);
    double *data = malloc(sizeof(double) * B * N), *g = malloc(sizeof(double) * B * N);
    double *gd = malloc(sizeof(double) * B * N), w[N] = {0.3, -0.2, 0.7, 1.1}, first[N], gw[N];
    for (int i = 0; i < B * N; i++) {
        data[i] = cos(0.29 * i);
        g[i] = sin(0.13 * i);
    }
    char msg[256];
    for (int rep = 0; rep < 50; rep++) {
        CHECK_MSG(qode_qsim_adjoint_vjp(&c, QODE_COMPLEX128, B, data, w, NULL, NULL, &obs, g, NULL,
                                        gd, rep == 0 ? first : gw, 3, msg, sizeof msg) == QODE_OK,
                  "%s", msg);
        if (rep > 0)
            CHECK_MSG(memcmp(first, gw, sizeof gw) == 0, "run %d: trainable gradients differ", rep);
    }
    fflush(NULL);
    pid_t child = fork();
    CHECK_MSG(child >= 0, "fork failed");
    if (child == 0) {
        int ok = qode_qsim_adjoint_vjp(&c, QODE_COMPLEX128, B, data, w, NULL, NULL, &obs, g, NULL,
                                       gd, gw, 3, msg, sizeof msg) == QODE_OK &&
                 memcmp(first, gw, sizeof gw) == 0;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK_MSG(waitpid(child, &status, 0) == child, "waitpid failed");
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "threaded job in a forked child failed (status %d)", status);
    free(data); free(g); free(gd);
}

/* Seed 002's VQC (RY data encoding, RX RY RZ weights, CNOT ring) with a
 * trainable CRZ and IsingXX, a constant H and a Toffoli: on a batch it runs
 * the dense mode of the tiled path (tiled_dense.h); one circuit at a time it
 * runs the plain state kernels.  Read-outs (Z and an X word) and the VJP
 * must agree, over a batch that leaves a partial tile and chunk and is
 * large enough to run on two threads. */
static void test_dense_mode_matches_single_circuits(void)
{
    enum { N = 4, LAYERS = 2, B = 1100, MAXOPS = 64, OBS = 5 };
    qode_op ops[MAXOPS];
    qode_param_ref refs[MAXOPS];
    int n_ops = 0, n_refs = 0, n_w = 0;
#define REF(src, idx, val) (refs[n_refs] = (qode_param_ref){src, idx, val}, n_refs++)
    for (int w = 0; w < N; w++) {
        ops[n_ops++] = op1(QODE_GATE_RY, w, 0, 0, n_refs);
        REF(QODE_PARAM_DATA, w, 0.0);
    }
    ops[n_ops++] = op1(QODE_GATE_H, 1, 0, 0, 0);
    for (int layer = 0; layer < LAYERS; layer++) {
        for (int w = 0; w < N; w++) {
            int kinds[3] = {QODE_GATE_RX, QODE_GATE_RY, QODE_GATE_RZ};
            for (int k = 0; k < 3; k++) {
                ops[n_ops++] = op1(kinds[k], w, 0, 0, n_refs);
                REF(QODE_PARAM_TRAINABLE, n_w++, 0.0);
            }
        }
        for (int w = 0; w < N; w++)
            ops[n_ops++] = op1(QODE_GATE_CNOT, w, (w + 1) % N, 0, 0);
    }
    ops[n_ops++] = op1(QODE_GATE_CRZ, 0, 2, 0, n_refs);
    REF(QODE_PARAM_TRAINABLE, n_w++, 0.0);
    ops[n_ops++] = op1(QODE_GATE_ISINGXX, 1, 3, 0, n_refs);
    REF(QODE_PARAM_TRAINABLE, 0, 0.0); /* a weight used twice */
    ops[n_ops++] = op1(QODE_GATE_TOFFOLI, 0, 1, 3, 0);
#undef REF
    qode_circuit c = make_circuit(N, ops, n_ops, refs, n_refs, N, n_w);
    double data[B * N], trainable[MAXOPS], g[B * OBS];
    for (int i = 0; i < B * N; i++)
        data[i] = 2.5 * sin(0.37 * i + 0.1);
    for (int i = 0; i < n_w; i++)
        trainable[i] = cos(1.3 * i) * 2.0;
    for (int i = 0; i < B * OBS; i++)
        g[i] = sin(0.71 * i);
    int64_t start[OBS + 1] = {0, 1, 2, 3, 4, 6};
    uint64_t xm[6] = {0, 0, 0, 0, 0, 0x9}, zm[6] = {8, 4, 2, 1, 0x6, 0x1};
    double coeff[6] = {1.0, 1.0, 1.0, 1.0, 0.5, -0.25};
    qode_observables obs = {OBS, start, xm, zm, coeff};
    char msg[256];
    CHECK_MSG(qode_qsim_path(&c, trainable, &obs, B) == QODE_PATH_DENSE,
              "the batch should run in dense mode");
    CHECK_MSG(qode_qsim_path(&c, trainable, &obs, 1) == QODE_PATH_ROWS, "one circuit runs alone");
    double ev[B * OBS], gdata[B * N], gtrain[MAXOPS];
    CHECK_MSG(qode_qsim_forward(&c, QODE_COMPLEX128, B, data, trainable, &obs, ev, NULL, NULL,
                                NULL, NULL, 2, msg, sizeof msg) == QODE_OK, "%s", msg);
    CHECK_MSG(qode_qsim_adjoint_vjp(&c, QODE_COMPLEX128, B, data, trainable, NULL, NULL, &obs, g,
                                    NULL, gdata, gtrain, 2, msg, sizeof msg) == QODE_OK, "%s", msg);
    /* the forward record (U psi kept for the adjoint) changes no bit */
    size_t record_doubles = qode_qsim_record_doubles(N, B);
    CHECK_MSG(record_doubles == (size_t)(B + 7) / 8 * 3 * 8 * 16, "record of %zu doubles",
              record_doubles);
    double *record = malloc(sizeof(double) * record_doubles);
    double ev_r[B * OBS], gdata_r[B * N], gtrain_r[MAXOPS];
    int recorded = 0;
    CHECK(record != NULL);
    CHECK_MSG(qode_qsim_forward(&c, QODE_COMPLEX128, B, data, trainable, &obs, ev_r, NULL, NULL,
                                record, &recorded, 2, msg, sizeof msg) == QODE_OK, "%s", msg);
    CHECK_MSG(recorded == 1, "the dense rotation encoding should keep a record");
    CHECK_MSG(qode_qsim_adjoint_vjp(&c, QODE_COMPLEX128, B, data, trainable, NULL, record, &obs,
                                    g, NULL, gdata_r, gtrain_r, 2, msg, sizeof msg) == QODE_OK,
              "%s", msg);
    CHECK(memcmp(ev_r, ev, sizeof ev) == 0);
    CHECK(memcmp(gdata_r, gdata, sizeof gdata) == 0);
    CHECK(memcmp(gtrain_r, gtrain, sizeof(double) * n_w) == 0);
    free(record);
    double sum_train[MAXOPS] = {0}, worst = 0.0;
    for (int b = 0; b < B; b++) {
        double ev1[OBS], gd1[N], gt1[MAXOPS];
        qode_qsim_forward(&c, QODE_COMPLEX128, 1, data + N * b, trainable, &obs, ev1, NULL, NULL,
                          NULL, NULL, 1, msg, sizeof msg);
        qode_qsim_adjoint_vjp(&c, QODE_COMPLEX128, 1, data + N * b, trainable, NULL, NULL, &obs,
                              g + OBS * b, NULL, gd1, gt1, 1, msg, sizeof msg);
        for (int k = 0; k < OBS; k++)
            worst = fmax(worst, fabs(ev1[k] - ev[OBS * b + k]));
        for (int j = 0; j < N; j++)
            worst = fmax(worst, fabs(gd1[j] - gdata[N * b + j]));
        for (int i = 0; i < n_w; i++)
            sum_train[i] += gt1[i];
    }
    for (int i = 0; i < n_w; i++)
        worst = fmax(worst, fabs(sum_train[i] - gtrain[i]));
    CHECK_MSG(worst < 1e-12, "dense batch and single circuits differ by %g", worst);
}

/* The CPU count is asked once and kept; automatic thread counts follow it. */
static void test_cpu_count_and_automatic_threads(void)
{
    long system = sysconf(_SC_NPROCESSORS_ONLN);
    int cpus = qode_online_cpus();
    CHECK_MSG(cpus >= 1 && (system < 1 || cpus == system), "%d CPUs, the system says %ld", cpus,
              system);
    CHECK_MSG(qode_online_cpus() == cpus, "the CPU count changed between calls");
    int expected = cpus < 64 ? cpus : 64;
    CHECK_MSG(qode_qbatch_threads(0, 1000000, 1e6) == expected, "automatic threads: %d, not %d",
              qode_qbatch_threads(0, 1000000, 1e6), expected);
    CHECK_MSG(qode_qbatch_threads(0, 3, 1.0) == 1, "small work stays on one thread");
    CHECK_MSG(qode_qbatch_threads(5, 3, 1e9) == 3, "never more threads than items");
}

int main(void)
{
    test_cpu_count_and_automatic_threads();
    test_threads_match_single_thread();
    test_thread_pool_repeatable_and_fork_safe();
    test_single_rotation();
    test_bell_and_wire_order();
    test_adjoint_against_finite_differences();
    test_dense_mode_matches_single_circuits();
    test_validation_errors();
    test_sampling_reproducible();
    return check_summary();
}

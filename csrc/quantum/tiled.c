/* The tiled path for small circuits: forward pass, read-outs and adjoint
 * sweep of QODE_TILE_LANES circuits at a time (see tiled.h), driving the
 * state passes of tile_kernels.c along a schedule (tiled_schedule.c), with
 * the block algebra of tiled_blocks.c and the prefix of tiled_prefix.c.
 *
 * The per-lane 2x2 algebra (lane2.h) is fused-multiply-add friendly like
 * the kernels; see tile_kernels.c for why this file allows GCC to contract,
 * unlike the rest of the build (the solver). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/simd.h"
#include "quantum/lane2.h"
#include "quantum/mat2.h"
#include "quantum/tile_kernels.h"
#include "quantum/tiled.h"
#include "quantum/tiled_blocks.h"
#include "quantum/tiled_dense.h"
#include "quantum/tiled_prefix.h"

/* ---- forward and read-outs ------------------------------------------------- */

/* Applies a multi-qubit step (an op) to the tile state in place. */
static void apply_op(const qode_tile_job *job, const qode_tile_step *st, double *state)
{
    const qode_circuit *c = job->c;
    qode_prepared_gate scratch[L];
    const qode_gate_matrix *g[L];
    for (int l = 0; l < L; l++)
        g[l] = &qode_prepared_op(c, job->prepared, st->op, qode_tile_lane_row(job, l),
                                 job->trainable, 0, &scratch[l])->forward;
    qode_tile_apply(state, state + ((size_t)L << c->n_qubits), c->n_qubits, g);
}

/* The first step from t on that is not a prefix block (or main_end). */
static int32_t next_main_step(const qode_tile_schedule *s, int32_t t)
{
    while (t < s->main_end && s->steps[t].prefix)
        t++;
    return t;
}

/* Where the forward pass keeps the state before step t: the step's
 * checkpoint slot when it has one, otherwise `state`. */
static double *state_home(const qode_tile_schedule *s, int32_t t, double *state,
                          double *checkpoints, size_t plane)
{
    if (t < s->main_end && checkpoints != NULL && s->steps[t].checkpoint >= 0)
        return checkpoints + (size_t)s->steps[t].checkpoint * 2 * plane;
    return state;
}

/* The forward pass into `state` (a tile state: re plane, then im plane).
 * When `checkpoints` is not NULL it leaves the state before each step that
 * has a checkpoint slot in that slot: the step before writes its result
 * there directly (blocks and permutations are applied out of place), so
 * nothing is copied for it.  `cols` and `prefix_record` (may be NULL): for
 * qode_tile_prefix_columns, left holding what it wrote; `other`: one more
 * tile state. */
static void forward_pass(const qode_tile_job *job, double *state, double *cols,
                         double *prefix_record, double *checkpoints, double *other)
{
    const qode_tile_schedule *s = job->sched;
    int n = job->c->n_qubits;
    size_t plane = (size_t)L << n, dim = (size_t)1 << n;
    qode_tile_prefix_columns(job, cols, prefix_record);
    int32_t t = next_main_step(s, 0);
    double *cur = state_home(s, t, state, checkpoints, plane);
    qode_tile_product_state(cur, cur + plane, n, cols);
    while (t < s->main_end) {
        const qode_tile_step *st = &s->steps[t];
        int32_t next = next_main_step(s, t + 1);
        double *want = state_home(s, next, state, checkpoints, plane);
        if (st->permutation) { /* a gather never runs in place */
            double *out = want != cur ? want : other;
            qode_tile_gather(cur, cur + plane, s->perms + st->start, dim, out, out + plane);
            cur = out;
        } else if (st->op < 0) { /* a block: in place only where cur is not a checkpoint */
            lane2 mats;
            qode_tile_block_product(job, st, &mats);
            qode_tile_apply_2x2_to(cur, cur + plane, n, n - 1 - st->wire, &mats, want,
                                   want + plane);
            cur = want;
        } else { /* an op runs in place: on a copy when cur must stay (a checkpoint) */
            if (want != cur) {
                memcpy(want, cur, sizeof(double) * 2 * plane);
                cur = want;
            }
            apply_op(job, st, cur);
        }
        t = next;
    }
    if (cur != state)
        memcpy(state, cur, sizeof(double) * 2 * plane);
}

/* The forward pass of a dense schedule: the product state psi into the
 * plane `psi`, U psi into `state`. */
static void dense_forward(const qode_tile_job *job, double *state, double *cols,
                          double *prefix_record, double *psi)
{
    const qode_tile_schedule *s = job->sched;
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n;
    if (s->rotations != NULL)
        qode_tile_rotation_columns(job, cols);
    else
        qode_tile_prefix_columns(job, cols, prefix_record);
    qode_tile_product_state_real(psi, n, cols); /* psi is real: only its re plane */
    qode_tile_matmul(s->dense_u, 2 * dim, dim, psi, state); /* the im plane follows re */
}

size_t qode_tile_record_tile_doubles(int n)
{
    return (size_t)3 * L << n; /* psi, then U psi's re and im planes */
}

size_t qode_tile_record_doubles(const qode_tile_schedule *s, int n, int fold)
{
    return fold && s->dense && s->rotations != NULL ? qode_tile_record_tile_doubles(n) : 0;
}

void qode_tile_record_forward(const qode_tile_job *job, double *record, double *work)
{
    size_t plane = (size_t)L << job->c->n_qubits;
    dense_forward(job, record + plane, work, NULL, record);
}

void qode_tile_forward(const qode_tile_job *job, double *state, double *work)
{
    int n = job->c->n_qubits;
    if (job->sched->dense)
        dense_forward(job, state, work, NULL, work + (size_t)4 * n * L);
    else
        forward_pass(job, state, work, NULL, NULL, work + (size_t)4 * n * L);
}

/* Observables whose terms are all Z words (no X or Y) and few enough are
 * read and seeded in one pass over the state instead of one per term. */
static int diagonal_observables(const qode_observables *obs)
{
    int64_t terms = obs->term_start[obs->n_obs];
    if (terms > QODE_TILE_DIAG_MAX_TERMS)
        return 0;
    for (int64_t t = 0; t < terms; t++)
        if (obs->x_mask[t] != 0)
            return 0;
    return 1;
}

void qode_tile_readout(const qode_tile_job *job, const double *re, const double *im,
                       double *expval, double *probs, void *states, qode_dtype dtype)
{
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n;
    const qode_tile_schedule *s = job->sched;
    const qode_observables *obs = &s->obs;
    if (expval != NULL && s->obs_matrix != NULL) { /* M |psi|^2 */
        double p[L << QODE_TILE_OBS_MATRIX_MAX_QUBITS], v[QODE_TILE_OBS_MATRIX_MAX_OBS * L];
        qode_tile_abs2(re, im, n, p);
        qode_tile_matmul(s->obs_matrix, (size_t)s->obs_rows, dim, p, v);
        for (int l = 0; l < job->valid; l++)
            for (int32_t k = 0; k < obs->n_obs; k++)
                expval[(size_t)(job->b0 + l) * obs->n_obs + k] = v[k * L + l];
    } else if (expval != NULL && obs->n_obs > 0 && diagonal_observables(obs)) {
        double v[QODE_TILE_DIAG_MAX_TERMS * L];
        qode_tile_z_expvals(re, im, n, obs->z_mask, obs->term_start[obs->n_obs], v);
        for (int32_t k = 0; k < obs->n_obs; k++) {
            double total[L] = {0};
            for (int64_t t = obs->term_start[k]; t < obs->term_start[k + 1]; t++)
                for (int l = 0; l < L; l++)
                    total[l] += obs->coeff[t] * v[t * L + l];
            for (int l = 0; l < job->valid; l++)
                expval[(size_t)(job->b0 + l) * obs->n_obs + k] = total[l];
        }
    } else if (expval != NULL && obs->n_obs > 0) {
        double v[L];
        for (int32_t k = 0; k < obs->n_obs; k++) {
            double total[L] = {0};
            for (int64_t t = obs->term_start[k]; t < obs->term_start[k + 1]; t++) {
                qode_tile_pauli_expval(re, im, n, obs->x_mask[t], obs->z_mask[t], v);
                for (int l = 0; l < L; l++)
                    total[l] += obs->coeff[t] * v[l];
            }
            for (int l = 0; l < job->valid; l++)
                expval[(size_t)(job->b0 + l) * obs->n_obs + k] = total[l];
        }
    }
    if (probs != NULL) {
        for (int l = 0; l < job->valid; l++) {
            double *p = probs + (size_t)(job->b0 + l) * dim;
            for (size_t i = 0; i < dim; i++)
                p[i] = re[i * L + l] * re[i * L + l] + im[i * L + l] * im[i * L + l];
        }
    }
    if (states != NULL) {
        for (int l = 0; l < job->valid; l++) {
            size_t row = (size_t)(job->b0 + l) * dim;
            if (dtype == QODE_COMPLEX128) {
                double *s = (double *)states + 2 * row;
                for (size_t i = 0; i < dim; i++) {
                    s[2 * i] = re[i * L + l];
                    s[2 * i + 1] = im[i * L + l];
                }
            } else {
                float *s = (float *)states + 2 * row;
                for (size_t i = 0; i < dim; i++) {
                    s[2 * i] = (float)re[i * L + l];
                    s[2 * i + 1] = (float)im[i * L + l];
                }
            }
        }
    }
}

/* ---- adjoint ----------------------------------------------------------------- */

/* lam from the upstream gradients and the final state (re, im).  Returns 1
 * when lam = d phi for a real plane d that it also wrote to `diag` (only
 * when asked, diag not NULL: expectation values alone, through the
 * observable matrix), else 0. */
static int seed_lambda(const qode_tile_job *job, const double *grad_expval,
                       const double *grad_probs, const double *re, const double *im,
                       double *lr, double *li, double *diag)
{
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n;
    const qode_observables *obs = &job->sched->obs;
    const qode_tile_schedule *s = job->sched;
    int seeded = obs->n_obs > 0 && grad_expval != NULL;
    int matrix = seeded && s->obs_matrix != NULL;
    int diagonal = seeded && !matrix && diagonal_observables(obs);
    if (!matrix && !diagonal) { /* a diagonal seed writes every entry */
        memset(lr, 0, sizeof(double) * dim * L);
        memset(li, 0, sizeof(double) * dim * L);
    }
    if (matrix) { /* lam = (M^T g) psi */
        double g[QODE_TILE_OBS_MATRIX_MAX_OBS * L], d[L << QODE_TILE_OBS_MATRIX_MAX_QUBITS];
        for (int32_t k = 0; k < s->obs_rows; k++)
            for (int l = 0; l < L; l++)
                g[k * L + l] = k < obs->n_obs && l < job->valid
                                   ? grad_expval[(size_t)(job->b0 + l) * obs->n_obs + k]
                                   : 0.0;
        qode_tile_matmul(s->obs_matrix_t, dim, (size_t)s->obs_rows, g, d);
        qode_tile_scale(d, re, im, n, lr, li);
        if (diag != NULL && grad_probs == NULL) {
            memcpy(diag, d, sizeof(double) * dim * L);
            return 1;
        }
    } else if (diagonal) {
        double w[QODE_TILE_DIAG_MAX_TERMS * L];
        for (int32_t k = 0; k < obs->n_obs; k++)
            for (int64_t t = obs->term_start[k]; t < obs->term_start[k + 1]; t++)
                for (int l = 0; l < L; l++)
                    w[t * L + l] = l < job->valid ? grad_expval[(size_t)(job->b0 + l) * obs->n_obs + k] *
                                                        obs->coeff[t]
                                                  : 0.0;
        qode_tile_z_seed(lr, li, re, im, n, obs->z_mask, obs->term_start[obs->n_obs], w);
    } else if (obs->n_obs > 0 && grad_expval != NULL) {
        for (int32_t k = 0; k < obs->n_obs; k++) {
            for (int64_t t = obs->term_start[k]; t < obs->term_start[k + 1]; t++) {
                double wr[L], wi[L];
                int ny = __builtin_popcountll(obs->x_mask[t] & obs->z_mask[t]) & 3;
                int any = 0;
                for (int l = 0; l < L; l++) {
                    double w = l < job->valid
                                   ? grad_expval[(size_t)(job->b0 + l) * obs->n_obs + k] * obs->coeff[t]
                                   : 0.0;
                    any |= (w != 0.0);
                    /* w i^{#Y} */
                    wr[l] = ny == 0 ? w : ny == 2 ? -w : 0.0;
                    wi[l] = ny == 1 ? w : ny == 3 ? -w : 0.0;
                }
                if (any)
                    qode_tile_add_pauli(lr, li, re, im, n, obs->x_mask[t], obs->z_mask[t], wr, wi);
            }
        }
    }
    if (grad_probs != NULL) {
        for (int l = 0; l < job->valid; l++) {
            const double *h = grad_probs + (size_t)(job->b0 + l) * dim;
            for (size_t i = 0; i < dim; i++) {
                lr[i * L + l] += h[i] * re[i * L + l];
                li[i * L + l] += h[i] * im[i * L + l];
            }
        }
    }
    return 0;
}

/* Where the adjoint sweep keeps its states (see qode_tile_work_doubles). */
typedef struct {
    double *pr, *pi;     /* the forward state (un-applied step by step without checkpoints) */
    double *lr, *li;     /* lambda */
    double *xr, *xi;     /* scratch of the prefix contractions */
    double *checkpoints; /* n_checkpoints stored states */
    double *mats;        /* block_mats */
    double *cols;        /* prefix columns */
    double *prefix_record; /* what the prefix adjoint needs of the forward pass */
} adjoint_work;

static adjoint_work adjoint_layout(const qode_tile_schedule *s, int n, double *work)
{
    size_t plane = (size_t)L << n;
    adjoint_work a;
    a.pr = work;
    a.pi = a.pr + plane;
    a.lr = a.pi + plane;
    a.li = a.lr + plane;
    a.xr = a.li + plane;
    a.xi = a.xr + plane;
    a.checkpoints = a.xi + plane;
    a.cols = a.checkpoints + (size_t)s->n_checkpoints * 2 * plane;
    a.mats = a.cols + (size_t)4 * n * L;
    a.prefix_record = a.mats + qode_tile_block_scratch_doubles(s);
    return a;
}

/* The state before step st: its checkpoint, or pr/pi after un-applying the
 * step (inv: per-lane inverse for a block, NULL for a multi-qubit op). */
static void state_before(const qode_tile_job *job, const qode_tile_step *st,
                         const adjoint_work *w, const lane2 *inv, const double **phr,
                         const double **phi)
{
    size_t plane = (size_t)L << job->c->n_qubits;
    if (st->checkpoint >= 0) {
        *phr = w->checkpoints + (size_t)st->checkpoint * 2 * plane;
        *phi = *phr + plane;
        return;
    }
    *phr = w->pr;
    *phi = w->pi;
    if (job->sched->n_checkpoints > 0)
        return; /* checkpoint mode: a step without one has nothing to differentiate */
    if (inv != NULL) {
        qode_tile_apply_2x2(w->pr, w->pi, job->c->n_qubits, job->c->n_qubits - 1 - st->wire,
                            inv);
        return;
    }
    qode_prepared_gate scratch[L];
    const qode_gate_matrix *g[L];
    for (int l = 0; l < L; l++)
        g[l] = &qode_prepared_op(job->c, job->prepared, st->op, qode_tile_lane_row(job, l),
                                 job->trainable, 1, &scratch[l])->inverse;
    qode_tile_apply(w->pr, w->pi, job->c->n_qubits, g);
}

/* The trainable gradients of a block that reads no data: one segment (a
 * run of shared ops), the same matrix in every lane, so they need only the
 * reduced matrix summed over the tile's circuits; `left` (a 2x2, or NULL)
 * multiplies that sum from the left first (see last_layer_adjoint). */
SIMD_CLONES
static void shared_block_gradients(const qode_tile_job *job, const qode_tile_step *st,
                                   const lane2 *red, const double *left,
                                   double *grad_trainable)
{
    const qode_tile_segment *seg = &job->sched->segments[st->seg_start];
    if (seg->grad_count == 0)
        return;
    vec4 acc[8] = {0};
    for (int v = 0; v < NV; v++) {
        vec4 keep;
        qode_valid_lanes(job->valid, v, &keep);
        for (int k = 0; k < 8; k++)
            acc[k] += keep * LD(red->e[k] + 4 * v);
    }
    if (left != NULL) {
        vec4 sum[8]; /* entry (i, j) of left sum: over k of left(i, k) sum(k, j) */
        memcpy(sum, acc, sizeof sum);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
                vec4 re = SPLAT(0.0), im = SPLAT(0.0);
                for (int k = 0; k < 2; k++) {
                    vec4 lr = SPLAT(left[2 * (2 * i + k)]), li = SPLAT(left[2 * (2 * i + k) + 1]);
                    vec4 sr = sum[2 * (2 * k + j)], si = sum[2 * (2 * k + j) + 1];
                    re += lr * sr - li * si;
                    im += lr * si + li * sr;
                }
                acc[2 * (2 * i + j)] = re;
                acc[2 * (2 * i + j) + 1] = im;
            }
    }
    qode_tile_shared_run_gradients(job, seg, acc, grad_trainable);
}

/* The adjoint step of a block: gradients from the reduced matrix of (phi
 * before, lam after), then lam <- B^+ lam when update_lambda.  A block that
 * reads no data has B^+ from its one shared segment and no lane matrices. */
static void block_adjoint(const qode_tile_job *job, const qode_tile_step *st,
                          const adjoint_work *w, int update_lambda, double *grad_data,
                          double *grad_trainable)
{
    int n = job->c->n_qubits;
    lane2 inv, red;
    qode_block_mats bm = qode_tile_block_scratch(st, w->mats);
    if (st->shared) {
        double dagger[8];
        mat2_dagger(job->sched->segments[st->seg_start].m, dagger);
        lane2_broadcast(dagger, &inv);
    } else {
        qode_tile_block_lane_matrices(job, st, &bm, &inv);
    }
    const double *phr, *phi;
    state_before(job, st, w, &inv, &phr, &phi);
    qode_tile_reduced(w->lr, w->li, phr, phi, n, n - 1 - st->wire, update_lambda ? &inv : NULL,
                      &red);
    if (st->shared)
        shared_block_gradients(job, st, &red, NULL, grad_trainable);
    else
        qode_tile_block_gradients(job, st, &bm, &red, grad_data, grad_trainable);
}

/* The adjoint step of a multi-qubit op. */
static void op_adjoint(const qode_tile_job *job, const qode_tile_step *st,
                       const adjoint_work *w, int update_lambda, double *grad_data,
                       double *grad_trainable)
{
    const qode_circuit *c = job->c;
    int n = c->n_qubits;
    const qode_op *op = &c->ops[st->op];
    qode_prepared_gate scratch[L];
    const qode_prepared_gate *pg[L];
    const qode_gate_matrix *g[L];
    for (int l = 0; l < L; l++)
        pg[l] = qode_prepared_op(c, job->prepared, st->op, qode_tile_lane_row(job, l),
                                 job->trainable, 1, &scratch[l]);
    const double *phr, *phi;
    state_before(job, st, w, NULL, &phr, &phi);
    int np = qode_gate_params(op->kind);
    for (int j = 0; j < np; j++) {
        const qode_param_ref *r = &c->refs[op->param_start + j];
        if (r->source == QODE_PARAM_CONSTANT)
            continue;
        double acc[L] = {0};
        for (int l = 0; l < L; l++)
            g[l] = &pg[l]->derivative[j];
        qode_tile_inner(w->lr, w->li, phr, phi, n, g, acc);
        for (int l = 0; l < job->valid; l++)
            qode_tile_add_gradient(job, r, l, 2.0 * acc[l], grad_data, grad_trainable);
    }
    if (update_lambda) {
        for (int l = 0; l < L; l++)
            g[l] = &pg[l]->inverse;
        qode_tile_apply(w->lr, w->li, n, g);
    }
}

/* Un-applies a permutation step: lam (and phi with move_state) gathered
 * with the inverse table through x; lam and x trade places. */
static void permutation_adjoint(const qode_tile_job *job, const qode_tile_step *st,
                                adjoint_work *w, int move_state)
{
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n, plane = (size_t)L << n;
    const int32_t *inverse = job->sched->perms + st->start + dim;
    if (move_state) {
        qode_tile_gather(w->pr, w->pi, inverse, dim, w->xr, w->xi);
        memcpy(w->pr, w->xr, sizeof(double) * plane);
        memcpy(w->pi, w->xi, sizeof(double) * plane);
    }
    qode_tile_gather(w->lr, w->li, inverse, dim, w->xr, w->xi);
    double *tr = w->lr, *ti = w->li;
    w->lr = w->xr; w->li = w->xi;
    w->xr = tr; w->xi = ti;
}

/* The adjoint of the last layer (tiled.h), phi holding the final state and
 * lam the final lam.  Its blocks commute (distinct wires), so for each
 * block B, with R the reduced matrix of these two states on its wire, B^+ R
 * is that of the state before B and lam after it (the other blocks act on
 * the wires traced out): one reduce pass per block, where the sweep step by
 * step would also need the state before each block, stored by the forward
 * pass or un-applied.  With `diag`, lam = d phi for the real plane d in xr
 * (seed_lambda), and the reduce passes read d instead of lam and skip the
 * diagonal (qode_tile_reduced_offdiag).  Then lam is moved back through the
 * layer when update_lambda, and phi when update_state. */
static void last_layer_adjoint(const qode_tile_job *job, const adjoint_work *w, int diag,
                               int update_lambda, int update_state, double *grad_trainable)
{
    const qode_tile_schedule *s = job->sched;
    int n = job->c->n_qubits;
    double dagger[QODE_TILE_MAX_QUBITS][8]; /* B^+ by wire (one block per wire) */
    for (int32_t t = s->last_layer; t < s->main_end; t++) {
        const qode_tile_step *st = &s->steps[t];
        if (st->prefix)
            continue;
        lane2 red;
        if (diag)
            qode_tile_reduced_offdiag(w->pr, w->pi, w->xr, n, n - 1 - st->wire, &red);
        else
            qode_tile_reduced(w->lr, w->li, w->pr, w->pi, n, n - 1 - st->wire, NULL, &red);
        mat2_dagger(s->segments[st->seg_start].m, dagger[st->wire]);
        shared_block_gradients(job, st, &red, dagger[st->wire], grad_trainable);
    }
    if (!update_lambda && !update_state)
        return;
    for (int32_t t = s->last_layer; t < s->main_end; t++) {
        const qode_tile_step *st = &s->steps[t];
        if (st->prefix)
            continue;
        lane2 inv;
        lane2_broadcast(dagger[st->wire], &inv);
        if (update_lambda)
            qode_tile_apply_2x2(w->lr, w->li, n, n - 1 - st->wire, &inv);
        if (update_state)
            qode_tile_apply_2x2(w->pr, w->pi, n, n - 1 - st->wire, &inv);
    }
}

/* ---- adjoint of a dense schedule (tiled_dense.h) ----------------------------- */

/* Its work space: psi and lam of QODE_TILE_DENSE_GROUP tiles (`stage`,
 * one slot per tile: a psi plane, then lam's re and im planes), phi (then
 * mu), a tile state of scratch, the prefix columns and record (none with
 * wire rotations), and the chunk's sums of C (four lanes per entry).
 * dense_parts places them (in doubles from the start) and returns the
 * total, for both dense_layout and qode_tile_work_doubles. */
typedef struct {
    double *stage;
    size_t slot;
    double *phi, *scratch;
    double *cols;
    double *prefix_record;
    double *c_sums;
} dense_work;

typedef struct {
    size_t slot, phi, scratch, cols, prefix_record, c_sums;
} dense_offsets;

static size_t dense_parts(const qode_tile_schedule *s, int n, dense_offsets *o)
{
    size_t plane = (size_t)L << n;
    o->slot = 3 * plane;
    o->phi = QODE_TILE_DENSE_GROUP * o->slot;
    o->scratch = o->phi + 2 * plane;
    o->cols = o->scratch + 2 * plane;
    o->prefix_record = o->cols + (size_t)4 * n * L;
    o->c_sums = o->prefix_record + (s->rotations ? 0 : qode_tile_prefix_record_doubles(s));
    return o->c_sums + 4 * qode_tile_chunk_doubles(s, n);
}

size_t qode_tile_dense_work_doubles(const qode_tile_schedule *s, int n)
{
    dense_offsets o;
    return dense_parts(s, n, &o);
}

static dense_work dense_layout(const qode_tile_schedule *s, int n, double *work)
{
    dense_offsets o;
    dense_parts(s, n, &o);
    dense_work d = {work, o.slot, work + o.phi, work + o.scratch, work + o.cols,
                    work + o.prefix_record, work + o.c_sums};
    return d;
}

void qode_tile_chunk_finish(const qode_tile_schedule *s, int n_qubits, int64_t tiles,
                            double *work, double *out)
{
    if (!s->dense)
        return;
    dense_work d = dense_layout(s, n_qubits, work);
    int left = (int)(tiles % QODE_TILE_DENSE_GROUP); /* staged, not yet summed */
    if (left > 0)
        qode_tile_dense_accumulate(d.stage, d.slot, left, n_qubits,
                                   tiles < QODE_TILE_DENSE_GROUP, d.c_sums);
    qode_tile_dense_reduce(d.c_sums, n_qubits, out);
}

/* psi from the prefix (or the record) and phi = U psi (or the record's),
 * lam seeded from phi, psi and lam staged in the tile's slot; a full group
 * of slots goes into the sums of C (lam is 0 in unused lanes: their seed
 * weights are 0).  Then the data gradients from mu = Re(U^+ lam) (psi is
 * real, so Im U^+ lam does not matter): by the wire rotations, or by the
 * prefix adjoint. */
static void dense_adjoint(const qode_tile_job *job, const double *grad_expval,
                          const double *grad_probs, const double *record, double *work,
                          double *grad_data, double *grad_trainable)
{
    const qode_tile_schedule *s = job->sched;
    int n = job->c->n_qubits;
    size_t plane = (size_t)L << n, dim = (size_t)1 << n;
    dense_work d = dense_layout(s, n, work);
    int slot = job->slot % QODE_TILE_DENSE_GROUP;
    double *psi = d.stage + slot * d.slot, *lr = psi + plane, *li = lr + plane;
    const double *phi = d.phi;
    if (record != NULL) {
        memcpy(psi, record, sizeof(double) * plane);
        phi = record + plane;
    } else {
        dense_forward(job, d.phi, d.cols, d.prefix_record, psi);
    }
    seed_lambda(job, grad_expval, grad_probs, phi, phi + plane, lr, li, NULL);
    if (slot == QODE_TILE_DENSE_GROUP - 1)
        qode_tile_dense_accumulate(d.stage, d.slot, QODE_TILE_DENSE_GROUP, n,
                                   job->slot < QODE_TILE_DENSE_GROUP, d.c_sums);
    if (s->n_prefix == 0)
        return;
    double *mu = d.phi, *t = d.phi + plane, *x = d.scratch;
    qode_tile_matmul(s->dense_w, dim, 2 * dim, lr, mu); /* li follows lr */
    if (s->rotations != NULL) {
        qode_tile_rotation_gradients(job, mu, psi, grad_data);
        return;
    }
    qode_tile_prefix_adjoint(job, 1, mu, mu, t, t, x, x, d.cols, d.prefix_record, grad_data,
                             grad_trainable);
}

/* The tile's rows of grad_data are contiguous: one memset, not one per lane
 * (a call per 4-double row cost about 10 us per 4096 circuits). */
static void clear_grad_data(const qode_tile_job *job, double *grad_data)
{
    size_t n_data = (size_t)job->c->n_data;
    if (n_data > 0)
        memset(grad_data + (size_t)job->b0 * n_data, 0, sizeof(double) * n_data * job->valid);
}

void qode_tile_adjoint(const qode_tile_job *job, const double *grad_expval,
                       const double *grad_probs, const double *record, double *work,
                       double *grad_data, double *grad_trainable)
{
    const qode_circuit *c = job->c;
    const qode_tile_schedule *s = job->sched;
    clear_grad_data(job, grad_data);
    if (s->dense) {
        dense_adjoint(job, grad_expval, grad_probs, record, work, grad_data, grad_trainable);
        return;
    }
    adjoint_work w = adjoint_layout(s, c->n_qubits, work);
    forward_pass(job, w.pr, w.cols, w.prefix_record,
                 s->n_checkpoints > 0 ? w.checkpoints : NULL, w.xr);
    /* With a last layer and lam = d phi, d goes into the scratch plane xr
     * (free until after the layer) for last_layer_adjoint. */
    int layer = s->last_layer < s->main_end;
    int diag = seed_lambda(job, grad_expval, grad_probs, w.pr, w.pi, w.lr, w.li,
                           layer ? w.xr : NULL);
    /* the first non-prefix step: lam need not move past it unless a prefix follows */
    int32_t first = 0;
    while (first < s->main_end && s->steps[first].prefix)
        first++;
    /* without checkpoints phi is moved back only as far as a step reads it */
    int unapply = s->n_checkpoints == 0;
    if (layer)
        last_layer_adjoint(job, &w, diag, s->last_layer > first || s->n_prefix > 0,
                           unapply && s->first_reader < s->last_layer, grad_trainable);
    for (int32_t t = s->last_layer - 1; t >= 0; t--) {
        const qode_tile_step *st = &s->steps[t];
        if (st->prefix)
            continue;
        int update = t > first || s->n_prefix > 0;
        if (st->permutation) {
            permutation_adjoint(job, st, &w, unapply && s->first_reader < t);
            continue;
        }
        if (st->op < 0)
            block_adjoint(job, st, &w, update, grad_data, grad_trainable);
        else
            op_adjoint(job, st, &w, update, grad_data, grad_trainable);
    }
    if (s->n_prefix > 0)
        qode_tile_prefix_adjoint(job, 0, w.lr, w.li, w.pr, w.pi, w.xr, w.xi, w.cols,
                                 w.prefix_record, grad_data, grad_trainable);
}

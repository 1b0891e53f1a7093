/* Tile kernels: QODE_TILE_LANES circuits updated together (see tiled.h).
 *
 * Every kernel copies the lanes of the amplitudes it reads into small local
 * arrays first, computes, then writes back: the loops over lanes then have no
 * possible aliasing and vectorise.  The kernels are compiled twice (AVX2/FMA
 * and baseline x86-64) and the right one is picked when the library loads. */
#include <string.h>

#include "quantum/tiled.h"

#define L QODE_TILE_LANES

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SIMD_CLONES
#endif

size_t qode_tile_state_doubles(int n)
{
    return (size_t)2 * L << n;
}

/* Gate matrices of the L lanes, entry-major: r[k][l], i[k][l] for entry k. */
typedef struct {
    double r[16][L];
    double i[16][L];
} lane_matrix;

static void load_lanes(const qode_gate_matrix *const *g, int entries, lane_matrix *m)
{
    for (int k = 0; k < entries; k++) {
        for (int l = 0; l < L; l++) {
            m->r[k][l] = g[l]->m[2 * k];
            m->i[k][l] = g[l]->m[2 * k + 1];
        }
    }
}

/* ---- enumeration of the touched indices ----------------------------------- */

/* Ascending bit positions a gate fixes (targets and controls). */
static int fixed_positions(const qode_gate_matrix *g, int pos[4])
{
    uint64_t fixed = g->ctrl_mask | ((uint64_t)1 << g->target);
    if (g->form == QODE_FORM_DENSE2)
        fixed |= (uint64_t)1 << g->target2;
    int np = 0;
    while (fixed != 0 && np < 4) {
        pos[np++] = __builtin_ctzll(fixed);
        fixed &= fixed - 1;
    }
    return np;
}

/* k-th index whose fixed bits are 0 (zeros inserted at ascending positions). */
static inline uint64_t spread(uint64_t k, const int *pos, int np)
{
    for (int j = 0; j < np; j++) {
        uint64_t low = k & (((uint64_t)1 << pos[j]) - 1);
        k = ((k >> pos[j]) << (pos[j] + 1)) | low;
    }
    return k;
}

/* ---- gate application ----------------------------------------------------- */

/* 2x2 (per lane) on the pairs (i, i + 2^target) with every control bit set. */
SIMD_CLONES
static void tile_pairs(double *re, double *im, int n, const qode_gate_matrix *g,
                       const lane_matrix *m, int real_matrix)
{
    int pos[4];
    int np = fixed_positions(g, pos);
    uint64_t stride = (uint64_t)1 << g->target, count = ((uint64_t)1 << n) >> np;
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i0 = spread(k, pos, np) | g->ctrl_mask, i1 = i0 + stride;
        double *r0 = re + i0 * L, *q0 = im + i0 * L, *r1 = re + i1 * L, *q1 = im + i1 * L;
        double ar[L], ai[L], br[L], bi[L], xr[L], xi[L], yr[L], yi[L];
        memcpy(ar, r0, sizeof ar); memcpy(ai, q0, sizeof ai);
        memcpy(br, r1, sizeof br); memcpy(bi, q1, sizeof bi);
        /* Results go to local arrays first: the lane loops then touch only
         * locals and the matrix, which the compiler can vectorise. */
        if (real_matrix) {
            for (int l = 0; l < L; l++) {
                xr[l] = m->r[0][l] * ar[l] + m->r[1][l] * br[l];
                xi[l] = m->r[0][l] * ai[l] + m->r[1][l] * bi[l];
                yr[l] = m->r[2][l] * ar[l] + m->r[3][l] * br[l];
                yi[l] = m->r[2][l] * ai[l] + m->r[3][l] * bi[l];
            }
        } else {
            for (int l = 0; l < L; l++) {
                xr[l] = m->r[0][l] * ar[l] - m->i[0][l] * ai[l] + m->r[1][l] * br[l] - m->i[1][l] * bi[l];
                xi[l] = m->r[0][l] * ai[l] + m->i[0][l] * ar[l] + m->r[1][l] * bi[l] + m->i[1][l] * br[l];
                yr[l] = m->r[2][l] * ar[l] - m->i[2][l] * ai[l] + m->r[3][l] * br[l] - m->i[3][l] * bi[l];
                yi[l] = m->r[2][l] * ai[l] + m->i[2][l] * ar[l] + m->r[3][l] * bi[l] + m->i[3][l] * br[l];
            }
        }
        memcpy(r0, xr, sizeof xr); memcpy(q0, xi, sizeof xi);
        memcpy(r1, yr, sizeof yr); memcpy(q1, yi, sizeof yi);
    }
}

/* diag(d0, d1) per lane on one target bit; d0 = 1 is skipped. */
SIMD_CLONES
static void tile_diag(double *re, double *im, int n, const qode_gate_matrix *g,
                      const lane_matrix *m, int first_is_one)
{
    uint64_t dim = (uint64_t)1 << n, stride = (uint64_t)1 << g->target;
    for (uint64_t i = 0; i < dim; i++) {
        int bit = (i & stride) != 0;
        if (!bit && first_is_one)
            continue;
        double *r = re + i * L, *q = im + i * L;
        const double *dr = m->r[bit], *di = m->i[bit];
        double ar[L], ai[L], xr[L], xi[L];
        memcpy(ar, r, sizeof ar); memcpy(ai, q, sizeof ai);
        for (int l = 0; l < L; l++) {
            xr[l] = dr[l] * ar[l] - di[l] * ai[l];
            xi[l] = dr[l] * ai[l] + di[l] * ar[l];
        }
        memcpy(r, xr, sizeof xr); memcpy(q, xi, sizeof xi);
    }
}

/* X on the target where all controls are 1: swaps whole lane rows. */
static void tile_flip(double *re, double *im, int n, const qode_gate_matrix *g)
{
    int pos[4];
    int np = fixed_positions(g, pos);
    uint64_t stride = (uint64_t)1 << g->target, count = ((uint64_t)1 << n) >> np;
    double tmp[L];
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i0 = spread(k, pos, np) | g->ctrl_mask, i1 = i0 + stride;
        memcpy(tmp, re + i0 * L, sizeof tmp);
        memcpy(re + i0 * L, re + i1 * L, sizeof tmp);
        memcpy(re + i1 * L, tmp, sizeof tmp);
        memcpy(tmp, im + i0 * L, sizeof tmp);
        memcpy(im + i0 * L, im + i1 * L, sizeof tmp);
        memcpy(im + i1 * L, tmp, sizeof tmp);
    }
}

/* 4x4 per lane on (first wire = hi bit, second wire = lo bit). */
SIMD_CLONES
static void tile_dense2(double *re, double *im, int n, const qode_gate_matrix *g,
                        const lane_matrix *m)
{
    int pos[4];
    int np = fixed_positions(g, pos);
    uint64_t hi = (uint64_t)1 << g->target, lo = (uint64_t)1 << g->target2;
    uint64_t count = ((uint64_t)1 << n) >> np;
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i0 = spread(k, pos, np);
        uint64_t idx[4] = {i0, i0 | lo, i0 | hi, i0 | hi | lo};
        double ar[4][L], ai[4][L];
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < L; l++) {
                ar[c][l] = re[idx[c] * L + l];
                ai[c][l] = im[idx[c] * L + l];
            }
        for (int r = 0; r < 4; r++) {
            double sr[L] = {0}, si[L] = {0};
            for (int c = 0; c < 4; c++) {
                const double *mr = m->r[4 * r + c], *mi = m->i[4 * r + c];
                for (int l = 0; l < L; l++) {
                    sr[l] += mr[l] * ar[c][l] - mi[l] * ai[c][l];
                    si[l] += mr[l] * ai[c][l] + mi[l] * ar[c][l];
                }
            }
            for (int l = 0; l < L; l++) {
                re[idx[r] * L + l] = sr[l];
                im[idx[r] * L + l] = si[l];
            }
        }
    }
}

static int all_imag_zero(const lane_matrix *m, int entries)
{
    for (int k = 0; k < entries; k++)
        for (int l = 0; l < L; l++)
            if (m->i[k][l] != 0.0)
                return 0;
    return 1;
}

/* Applies one gate, given per lane (all lanes share form and wires). */
static void tile_apply(double *re, double *im, int n, const qode_gate_matrix *const *g)
{
    lane_matrix m;
    switch (g[0]->form) {
    case QODE_FORM_FLIP:
        tile_flip(re, im, n, g[0]);
        return;
    case QODE_FORM_DIAG1: {
        load_lanes(g, 2, &m);
        int first_is_one = 1;
        for (int l = 0; l < L; l++)
            first_is_one &= (m.r[0][l] == 1.0 && m.i[0][l] == 0.0);
        tile_diag(re, im, n, g[0], &m, first_is_one);
        return;
    }
    case QODE_FORM_DENSE1:
    case QODE_FORM_CTRL1:
        load_lanes(g, 4, &m);
        tile_pairs(re, im, n, g[0], &m, all_imag_zero(&m, 4));
        return;
    case QODE_FORM_DENSE2:
        load_lanes(g, 16, &m);
        tile_dense2(re, im, n, g[0], &m);
        return;
    }
}

/* ---- forward and read-outs ------------------------------------------------- */

static const double *lane_row(const qode_tile_job *job, int l)
{
    if (job->c->n_data == 0)
        return NULL;
    int64_t b = job->b0 + (l < job->valid ? l : 0);
    return job->data + (size_t)b * job->c->n_data;
}

void qode_tile_forward(const qode_tile_job *job, double *re, double *im)
{
    const qode_circuit *c = job->c;
    int n = c->n_qubits;
    size_t dim = (size_t)1 << n;
    memset(re, 0, sizeof(double) * dim * L);
    memset(im, 0, sizeof(double) * dim * L);
    for (int l = 0; l < L; l++)
        re[l] = 1.0;
    qode_prepared_gate scratch[L];
    const qode_gate_matrix *g[L];
    for (int32_t k = 0; k < c->n_ops; k++) {
        for (int l = 0; l < L; l++)
            g[l] = &qode_prepared_op(c, job->prepared, k, lane_row(job, l), job->trainable, 0,
                                     &scratch[l])->forward;
        tile_apply(re, im, n, g);
    }
}

/* v[l] = <psi_l| P |psi_l> for the Pauli word (x, z). */
SIMD_CLONES
static void tile_pauli_expval(const double *re, const double *im, int n, uint64_t x,
                              uint64_t z, double *v)
{
    uint64_t dim = (uint64_t)1 << n;
    double sr[L] = {0}, si[L] = {0};
    for (uint64_t i = 0; i < dim; i++) {
        uint64_t j = i ^ x;
        double sign = __builtin_parityll(i & z) ? -1.0 : 1.0;
        const double *ri = re + i * L, *qi = im + i * L, *rj = re + j * L, *qj = im + j * L;
        for (int l = 0; l < L; l++) {
            /* conj(psi_j) psi_i */
            sr[l] += sign * (rj[l] * ri[l] + qj[l] * qi[l]);
            si[l] += sign * (rj[l] * qi[l] - qj[l] * ri[l]);
        }
    }
    int ny = __builtin_popcountll(x & z) & 3;
    for (int l = 0; l < L; l++)
        v[l] = ny == 0 ? sr[l] : ny == 1 ? -si[l] : ny == 2 ? -sr[l] : si[l];
}

void qode_tile_readout(const qode_tile_job *job, const double *re, const double *im,
                       const qode_observables *obs, double *expval, double *probs,
                       void *states, qode_dtype dtype)
{
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n;
    if (expval != NULL && obs != NULL) {
        double v[L];
        for (int32_t k = 0; k < obs->n_obs; k++) {
            double total[L] = {0};
            for (int64_t t = obs->term_start[k]; t < obs->term_start[k + 1]; t++) {
                tile_pauli_expval(re, im, n, obs->x_mask[t], obs->z_mask[t], v);
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

/* lam += w P psi per lane, w = (wr, wi) complex per lane (already times i^{#Y}). */
SIMD_CLONES
static void tile_add_pauli(double *lr, double *li, const double *re, const double *im, int n,
                           uint64_t x, uint64_t z, const double *wr, const double *wi)
{
    uint64_t dim = (uint64_t)1 << n;
    for (uint64_t i = 0; i < dim; i++) {
        uint64_t j = i ^ x;
        double sign = __builtin_parityll(i & z) ? -1.0 : 1.0;
        const double *ri = re + i * L, *qi = im + i * L;
        double *rj = lr + j * L, *qj = li + j * L;
        double xr[L], xi[L], pr[L], pq[L];
        memcpy(pr, ri, sizeof pr); memcpy(pq, qi, sizeof pq);
        memcpy(xr, rj, sizeof xr); memcpy(xi, qj, sizeof xi);
        for (int l = 0; l < L; l++) {
            xr[l] += sign * (wr[l] * pr[l] - wi[l] * pq[l]);
            xi[l] += sign * (wr[l] * pq[l] + wi[l] * pr[l]);
        }
        memcpy(rj, xr, sizeof xr); memcpy(qj, xi, sizeof xi);
    }
}

/* acc[l] += Re <lam_l| G_l |phi_l> for a derivative matrix (pair forms: the
 * CTRL1 derivative is zero where a control is 0, so only control=1 pairs). */
SIMD_CLONES
static void tile_inner_pairs(const double *lr, const double *li, const double *re,
                             const double *im, int n, const qode_gate_matrix *g,
                             const lane_matrix *m, double *acc)
{
    int pos[4];
    int np = fixed_positions(g, pos);
    uint64_t stride = (uint64_t)1 << g->target, count = ((uint64_t)1 << n) >> np;
    double s[L] = {0};
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i0 = spread(k, pos, np) | g->ctrl_mask, i1 = i0 + stride;
        const double *ar = re + i0 * L, *ai = im + i0 * L, *br = re + i1 * L, *bi = im + i1 * L;
        const double *l0r = lr + i0 * L, *l0i = li + i0 * L, *l1r = lr + i1 * L, *l1i = li + i1 * L;
        for (int l = 0; l < L; l++) {
            double g0r = m->r[0][l] * ar[l] - m->i[0][l] * ai[l] + m->r[1][l] * br[l] - m->i[1][l] * bi[l];
            double g0i = m->r[0][l] * ai[l] + m->i[0][l] * ar[l] + m->r[1][l] * bi[l] + m->i[1][l] * br[l];
            double g1r = m->r[2][l] * ar[l] - m->i[2][l] * ai[l] + m->r[3][l] * br[l] - m->i[3][l] * bi[l];
            double g1i = m->r[2][l] * ai[l] + m->i[2][l] * ar[l] + m->r[3][l] * bi[l] + m->i[3][l] * br[l];
            s[l] += l0r[l] * g0r + l0i[l] * g0i + l1r[l] * g1r + l1i[l] * g1i;
        }
    }
    for (int l = 0; l < L; l++)
        acc[l] += s[l];
}

SIMD_CLONES
static void tile_inner_dense2(const double *lr, const double *li, const double *re,
                              const double *im, int n, const qode_gate_matrix *g,
                              const lane_matrix *m, double *acc)
{
    int pos[4];
    int np = fixed_positions(g, pos);
    uint64_t hi = (uint64_t)1 << g->target, lo = (uint64_t)1 << g->target2;
    uint64_t count = ((uint64_t)1 << n) >> np;
    double s[L] = {0};
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i0 = spread(k, pos, np);
        uint64_t idx[4] = {i0, i0 | lo, i0 | hi, i0 | hi | lo};
        for (int r = 0; r < 4; r++) {
            double gr[L] = {0}, gi[L] = {0};
            for (int c = 0; c < 4; c++) {
                const double *mr = m->r[4 * r + c], *mi = m->i[4 * r + c];
                const double *pr = re + idx[c] * L, *pi = im + idx[c] * L;
                for (int l = 0; l < L; l++) {
                    gr[l] += mr[l] * pr[l] - mi[l] * pi[l];
                    gi[l] += mr[l] * pi[l] + mi[l] * pr[l];
                }
            }
            const double *xr = lr + idx[r] * L, *xi = li + idx[r] * L;
            for (int l = 0; l < L; l++)
                s[l] += xr[l] * gr[l] + xi[l] * gi[l];
        }
    }
    for (int l = 0; l < L; l++)
        acc[l] += s[l];
}

static void tile_inner(const double *lr, const double *li, const double *re, const double *im,
                       int n, const qode_gate_matrix *const *g, double *acc)
{
    lane_matrix m;
    if (g[0]->form == QODE_FORM_DENSE2) {
        load_lanes(g, 16, &m);
        tile_inner_dense2(lr, li, re, im, n, g[0], &m, acc);
        return;
    }
    if (g[0]->form == QODE_FORM_DIAG1) {
        /* diag(d0, d1) as the 2x2 [[d0, 0], [0, d1]] */
        for (int l = 0; l < L; l++) {
            m.r[0][l] = g[l]->m[0]; m.i[0][l] = g[l]->m[1];
            m.r[1][l] = 0; m.i[1][l] = 0;
            m.r[2][l] = 0; m.i[2][l] = 0;
            m.r[3][l] = g[l]->m[2]; m.i[3][l] = g[l]->m[3];
        }
    } else {
        load_lanes(g, 4, &m);
    }
    tile_inner_pairs(lr, li, re, im, n, g[0], &m, acc);
}

static void seed_lambda(const qode_tile_job *job, const qode_observables *obs,
                        const double *grad_expval, const double *grad_probs, const double *re,
                        const double *im, double *lr, double *li)
{
    int n = job->c->n_qubits;
    size_t dim = (size_t)1 << n;
    memset(lr, 0, sizeof(double) * dim * L);
    memset(li, 0, sizeof(double) * dim * L);
    if (obs != NULL && grad_expval != NULL) {
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
                    tile_add_pauli(lr, li, re, im, n, obs->x_mask[t], obs->z_mask[t], wr, wi);
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
}

void qode_tile_adjoint(const qode_tile_job *job, const qode_observables *obs,
                       const double *grad_expval, const double *grad_probs, double *work,
                       double *grad_data, double *grad_trainable)
{
    const qode_circuit *c = job->c;
    int n = c->n_qubits;
    size_t dim = (size_t)1 << n;
    double *pr = work, *pi = work + dim * L, *lr = work + 2 * dim * L, *li = work + 3 * dim * L;
    qode_tile_forward(job, pr, pi);
    seed_lambda(job, obs, grad_expval, grad_probs, pr, pi, lr, li);
    if (c->n_data > 0)
        for (int l = 0; l < job->valid; l++)
            memset(grad_data + (size_t)(job->b0 + l) * c->n_data, 0, sizeof(double) * c->n_data);

    qode_prepared_gate scratch[L];
    const qode_prepared_gate *pg[L];
    const qode_gate_matrix *g[L];
    for (int32_t k = c->n_ops - 1; k >= 0; k--) {
        const qode_op *op = &c->ops[k];
        for (int l = 0; l < L; l++)
            pg[l] = qode_prepared_op(c, job->prepared, k, lane_row(job, l), job->trainable, 1,
                                     &scratch[l]);
        for (int l = 0; l < L; l++)
            g[l] = &pg[l]->inverse;
        tile_apply(pr, pi, n, g); /* phi <- U_k^+ phi */
        int np = qode_gate_params(op->kind);
        for (int j = 0; j < np; j++) {
            const qode_param_ref *r = &c->refs[op->param_start + j];
            if (r->source == QODE_PARAM_CONSTANT)
                continue;
            double acc[L] = {0};
            for (int l = 0; l < L; l++)
                g[l] = &pg[l]->derivative[j];
            tile_inner(lr, li, pr, pi, n, g, acc);
            for (int l = 0; l < job->valid; l++) {
                if (r->source == QODE_PARAM_DATA)
                    grad_data[(size_t)(job->b0 + l) * c->n_data + r->index] += 2.0 * acc[l];
                else
                    grad_trainable[r->index] += 2.0 * acc[l];
            }
        }
        if (k > 0) {
            for (int l = 0; l < L; l++)
                g[l] = &pg[l]->inverse;
            tile_apply(lr, li, n, g); /* lam <- U_k^+ lam */
        }
    }
}

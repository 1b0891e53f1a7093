/* State-vector kernels, written once for both precisions.
 *
 * kernels.c includes this file twice, with REAL = double / SUFFIX = _c128 and
 * REAL = float / SUFFIX = _c64.  A state of n qubits is 2^n complex numbers
 * stored as interleaved (re, im) REALs.  Gate matrices arrive in double and are
 * rounded to REAL once per call, outside the loops.  Sums (expectations, inner
 * products) accumulate in double in both precisions.
 *
 * Every loop walks the basis indices that a gate family actually touches:
 * pairs (i, i | 2^t) for one-qubit gates, only the control=1 half (quarter)
 * for controlled gates, quadruples for two-qubit gates.
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SUFFIX)

/* Applies the 2x2 matrix m to the amplitude pair at indices i0, i1. */
#define MUL2(s, i0, i1, m)                                                        \
    do {                                                                          \
        REAL ar = s[2 * (i0)], ai = s[2 * (i0) + 1];                              \
        REAL br = s[2 * (i1)], bi = s[2 * (i1) + 1];                              \
        s[2 * (i0)] = m[0] * ar - m[1] * ai + m[2] * br - m[3] * bi;              \
        s[2 * (i0) + 1] = m[0] * ai + m[1] * ar + m[2] * bi + m[3] * br;          \
        s[2 * (i1)] = m[4] * ar - m[5] * ai + m[6] * br - m[7] * bi;              \
        s[2 * (i1) + 1] = m[4] * ai + m[5] * ar + m[6] * bi + m[7] * br;          \
    } while (0)

static void FN(apply_dense1)(REAL *s, uint64_t dim, int t, const double *md)
{
    REAL m[8];
    for (int k = 0; k < 8; k++)
        m[k] = (REAL)md[k];
    uint64_t stride = (uint64_t)1 << t;
    for (uint64_t base = 0; base < dim; base += 2 * stride)
        for (uint64_t i = base; i < base + stride; i++)
            MUL2(s, i, i + stride, m);
}

static void FN(apply_diag1)(REAL *s, uint64_t dim, int t, const double *md)
{
    REAL d0r = (REAL)md[0], d0i = (REAL)md[1], d1r = (REAL)md[2], d1i = (REAL)md[3];
    uint64_t stride = (uint64_t)1 << t;
    int first_is_one = (md[0] == 1.0 && md[1] == 0.0); /* Z, S, T, PhaseShift */
    for (uint64_t base = 0; base < dim; base += 2 * stride) {
        if (!first_is_one) {
            for (uint64_t i = base; i < base + stride; i++) {
                REAL ar = s[2 * i], ai = s[2 * i + 1];
                s[2 * i] = d0r * ar - d0i * ai;
                s[2 * i + 1] = d0r * ai + d0i * ar;
            }
        }
        for (uint64_t i = base + stride; i < base + 2 * stride; i++) {
            REAL ar = s[2 * i], ai = s[2 * i + 1];
            s[2 * i] = d1r * ar - d1i * ai;
            s[2 * i + 1] = d1r * ai + d1i * ar;
        }
    }
}

/* Loops over the indices with the target bit 0 and every control bit 1.  The
 * bits below the lowest fixed bit pass through `spread` unchanged, so those
 * indices come in contiguous runs of 2^pos[0]; each run is one inner loop. */
static void FN(apply_ctrl1)(REAL *s, uint64_t dim, const qode_gate_matrix *g)
{
    REAL m[8];
    for (int k = 0; k < 8; k++)
        m[k] = (REAL)g->m[k];
    int pos[4];
    int np = qode_gate_fixed_positions(g, pos);
    uint64_t stride = (uint64_t)1 << g->target, run = (uint64_t)1 << pos[0];
    uint64_t count = dim >> np;
    for (uint64_t k = 0; k < count; k += run) {
        uint64_t i = spread(k, pos, np) | g->ctrl_mask;
        for (uint64_t j = i; j < i + run; j++)
            MUL2(s, j, j + stride, m);
    }
}

static void FN(apply_flip)(REAL *s, uint64_t dim, const qode_gate_matrix *g)
{
    int pos[4];
    int np = qode_gate_fixed_positions(g, pos);
    uint64_t stride = (uint64_t)1 << g->target, run = (uint64_t)1 << pos[0];
    uint64_t count = dim >> np;
    for (uint64_t k = 0; k < count; k += run) {
        uint64_t i = spread(k, pos, np) | g->ctrl_mask;
        REAL *a = s + 2 * i, *b = s + 2 * (i + stride);
        for (uint64_t j = 0; j < 2 * run; j++) {
            REAL tmp = a[j];
            a[j] = b[j];
            b[j] = tmp;
        }
    }
}

static void FN(apply_dense2)(REAL *s, uint64_t dim, const qode_gate_matrix *g)
{
    REAL m[32];
    for (int k = 0; k < 32; k++)
        m[k] = (REAL)g->m[k];
    int pos[4];
    int np = qode_gate_fixed_positions(g, pos);
    uint64_t hi = (uint64_t)1 << g->target, lo = (uint64_t)1 << g->target2;
    uint64_t count = dim >> np;
    for (uint64_t k = 0; k < count; k++) {
        uint64_t i0 = spread(k, pos, np);
        uint64_t idx[4] = {i0, i0 | lo, i0 | hi, i0 | hi | lo};
        REAL ar[4], ai[4];
        for (int c = 0; c < 4; c++) {
            ar[c] = s[2 * idx[c]];
            ai[c] = s[2 * idx[c] + 1];
        }
        for (int r = 0; r < 4; r++) {
            REAL re = 0, im = 0;
            for (int c = 0; c < 4; c++) {
                REAL mr = m[2 * (4 * r + c)], mi = m[2 * (4 * r + c) + 1];
                re += mr * ar[c] - mi * ai[c];
                im += mr * ai[c] + mi * ar[c];
            }
            s[2 * idx[r]] = re;
            s[2 * idx[r] + 1] = im;
        }
    }
}

static void FN(apply_gate)(REAL *s, int n, const qode_gate_matrix *g)
{
    uint64_t dim = (uint64_t)1 << n;
    switch (g->form) {
    case QODE_FORM_DENSE1: FN(apply_dense1)(s, dim, g->target, g->m); return;
    case QODE_FORM_DIAG1: FN(apply_diag1)(s, dim, g->target, g->m); return;
    case QODE_FORM_CTRL1: FN(apply_ctrl1)(s, dim, g); return;
    case QODE_FORM_FLIP: FN(apply_flip)(s, dim, g); return;
    case QODE_FORM_DENSE2: FN(apply_dense2)(s, dim, g); return;
    }
}

/* <lam| G |phi> for a derivative matrix G (see gates.h: CTRL1 is zero on the
 * control=0 part).  Result in (re, im). */
static void FN(inner_gate)(const REAL *lam, const REAL *phi, int n, const qode_gate_matrix *g,
                           double *out_re, double *out_im)
{
    uint64_t dim = (uint64_t)1 << n;
    double re = 0, im = 0;
    const double *m = g->m;
    if (g->form == QODE_FORM_DENSE2) {
        int pos[4];
        int np = qode_gate_fixed_positions(g, pos);
        uint64_t hi = (uint64_t)1 << g->target, lo = (uint64_t)1 << g->target2;
        for (uint64_t k = 0; k < (dim >> np); k++) {
            uint64_t i0 = spread(k, pos, np);
            uint64_t idx[4] = {i0, i0 | lo, i0 | hi, i0 | hi | lo};
            for (int r = 0; r < 4; r++) {
                double gr = 0, gi = 0; /* (G phi)_r */
                for (int c = 0; c < 4; c++) {
                    double mr = m[2 * (4 * r + c)], mi = m[2 * (4 * r + c) + 1];
                    double pr = phi[2 * idx[c]], pi = phi[2 * idx[c] + 1];
                    gr += mr * pr - mi * pi;
                    gi += mr * pi + mi * pr;
                }
                double lr = lam[2 * idx[r]], li = lam[2 * idx[r] + 1];
                re += lr * gr + li * gi;
                im += lr * gi - li * gr;
            }
        }
    } else {
        /* One-qubit forms: a 2x2 (DIAG1 spread into one) on target pairs. */
        double mm[8] = {0};
        if (g->form == QODE_FORM_DIAG1) {
            mm[0] = m[0]; mm[1] = m[1]; mm[6] = m[2]; mm[7] = m[3];
        } else {
            for (int k = 0; k < 8; k++)
                mm[k] = m[k];
        }
        int pos[4];
        int np = qode_gate_fixed_positions(g, pos);
        uint64_t stride = (uint64_t)1 << g->target;
        uint64_t ctrl = g->ctrl_mask; /* 0 for DENSE1 / DIAG1 */
        for (uint64_t k = 0; k < (dim >> np); k++) {
            uint64_t i0 = spread(k, pos, np) | ctrl, i1 = i0 + stride;
            double ar = phi[2 * i0], ai = phi[2 * i0 + 1];
            double br = phi[2 * i1], bi = phi[2 * i1 + 1];
            double g0r = mm[0] * ar - mm[1] * ai + mm[2] * br - mm[3] * bi;
            double g0i = mm[0] * ai + mm[1] * ar + mm[2] * bi + mm[3] * br;
            double g1r = mm[4] * ar - mm[5] * ai + mm[6] * br - mm[7] * bi;
            double g1i = mm[4] * ai + mm[5] * ar + mm[6] * bi + mm[7] * br;
            double l0r = lam[2 * i0], l0i = lam[2 * i0 + 1];
            double l1r = lam[2 * i1], l1i = lam[2 * i1 + 1];
            re += l0r * g0r + l0i * g0i + l1r * g1r + l1i * g1i;
            im += l0r * g0i - l0i * g0r + l1r * g1i - l1i * g1r;
        }
    }
    *out_re = re;
    *out_im = im;
}

/* Re <psi| P |psi> for the Pauli word (x_mask, z_mask). */
static double FN(expval_pauli)(const REAL *s, int n, uint64_t x, uint64_t z)
{
    uint64_t dim = (uint64_t)1 << n;
    double re = 0, im = 0;
    if (x == 0) {
        for (uint64_t i = 0; i < dim; i++) {
            double p = (double)s[2 * i] * s[2 * i] + (double)s[2 * i + 1] * s[2 * i + 1];
            re += (parity(i & z) ? -p : p);
        }
        return re;
    }
    for (uint64_t i = 0; i < dim; i++) {
        uint64_t j = i ^ x;
        /* conj(s_j) s_i */
        double pr = (double)s[2 * j] * s[2 * i] + (double)s[2 * j + 1] * s[2 * i + 1];
        double pi = (double)s[2 * j] * s[2 * i + 1] - (double)s[2 * j + 1] * s[2 * i];
        if (parity(i & z)) {
            pr = -pr;
            pi = -pi;
        }
        re += pr;
        im += pi;
    }
    /* times i^{#Y}: only the real part survives for a Hermitian word. */
    switch (popcount64(x & z) & 3) {
    case 0: return re;
    case 1: return -im;
    case 2: return -re;
    default: return im;
    }
}

/* out += w * P s  (out and s distinct). */
static void FN(add_pauli)(REAL *out, const REAL *s, int n, uint64_t x, uint64_t z, double w)
{
    uint64_t dim = (uint64_t)1 << n;
    /* w * i^{#Y} as a complex factor (cr, ci). */
    double cr = w, ci = 0;
    switch (popcount64(x & z) & 3) {
    case 1: cr = 0; ci = w; break;
    case 2: cr = -w; break;
    case 3: cr = 0; ci = -w; break;
    default: break;
    }
    REAL fr = (REAL)cr, fi = (REAL)ci;
    for (uint64_t i = 0; i < dim; i++) {
        REAL sr = s[2 * i], si = s[2 * i + 1];
        REAL vr = fr * sr - fi * si, vi = fr * si + fi * sr;
        uint64_t j = i ^ x;
        if (parity(i & z)) {
            out[2 * j] -= vr;
            out[2 * j + 1] -= vi;
        } else {
            out[2 * j] += vr;
            out[2 * j + 1] += vi;
        }
    }
}

static void FN(probabilities)(const REAL *s, int n, double *p)
{
    uint64_t dim = (uint64_t)1 << n;
    for (uint64_t i = 0; i < dim; i++)
        p[i] = (double)s[2 * i] * s[2 * i] + (double)s[2 * i + 1] * s[2 * i + 1];
}

#undef MUL2
#undef FN
#undef CAT
#undef CAT_

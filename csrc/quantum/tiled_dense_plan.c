/* The per-call side of the dense mode (see tiled_dense.h): whether a
 * schedule runs dense, the matrix U, the wire rotations of a simple
 * encoding, and the gradients of the angles inside U from C.  All of it
 * works on dim x dim matrices (as states of 2n qubits, with the scalar
 * kernels of kernels.h); its cost does not grow with the batch. */
#include <stdlib.h>
#include <string.h>

#include "quantum/kernels.h"
#include "quantum/mat2.h"
#include "quantum/tiled_dense.h"

/* A segment with real matrices keeps a real vector real.  A data op other
 * than a rotation has its matrix only per circuit, so it does not count. */
static int segment_is_real(const qode_tile_segment *seg)
{
    if (seg->data_op >= 0 && !seg->rotation)
        return 0;
    for (int k = 0; k < 4; k++) {
        if (seg->m[2 * k + 1] != 0.0)
            return 0;
        if (seg->data_op >= 0 && seg->m_pi[2 * k + 1] != 0.0)
            return 0;
    }
    return 1;
}

/* The segments of prefix block st up to its last data segment: its head. */
static int32_t head_segments(const qode_tile_schedule *s, const qode_tile_step *st)
{
    int32_t head = 0;
    for (int32_t j = 0; j < st->seg_count; j++)
        if (s->segments[st->seg_start + j].data_op >= 0)
            head = j + 1;
    return head;
}

/* 1 when the schedule may run dense and U psi costs no more than the steps
 * it replaces done one by one on the tile: a fused block or an op about 8
 * real multiply-adds per amplitude (4 complex ones per amplitude pair), a
 * permutation one copy; U psi for a real psi 2 dim^2. */
static int dense_pays(const qode_circuit *c, const qode_prepared_gate *prepared,
                      const qode_tile_schedule *s)
{
    int n = c->n_qubits;
    if (n < 2 || n > QODE_TILE_DENSE_MAX_QUBITS) /* (the passes take rows 4 at a time) */
        return 0;
    double dim = (double)((size_t)1 << n), stepwise = 0.0;
    for (int32_t t = 0; t < s->main_end; t++) {
        const qode_tile_step *st = &s->steps[t];
        if (st->prefix) {
            int32_t head = head_segments(s, st);
            for (int32_t j = 0; j < head; j++)
                if (!segment_is_real(&s->segments[st->seg_start + j]))
                    return 0;
        } else if (st->permutation) {
            stepwise += dim;
        } else if (st->op < 0) {
            if (!st->shared)
                return 0;
            stepwise += 8.0 * dim;
        } else {
            if (prepared[st->op].uses_data)
                return 0;
            stepwise += 8.0 * dim;
        }
    }
    return 2.0 * dim * dim <= stepwise;
}

/* The steps of U in the order they act: the prefix tails (each the first
 * thing on its wire after the head, so before everything else there), then
 * every other step up to main_end.  Returns how many; their step indices
 * go to `out`. */
static int32_t factor_steps(const qode_tile_schedule *s, int32_t *out)
{
    int32_t count = 0;
    for (int32_t t = 0; t < s->main_end; t++)
        if (s->steps[t].prefix && s->steps[t].tail)
            out[count++] = t;
    for (int32_t t = 0; t < s->main_end; t++)
        if (!s->steps[t].prefix)
            out[count++] = t;
    return count;
}

/* The one segment of a factor that is a one-qubit matrix: a prefix tail
 * (right after the head) or a shared block. */
static const qode_tile_segment *factor_segment(const qode_tile_schedule *s,
                                               const qode_tile_step *st)
{
    return &s->segments[st->seg_start + (st->prefix ? st->seg_count : 0)];
}

/* The factors act on the rows of dim x dim matrices (U, and the matrices
 * of the gradient sweep), held row-major as interleaved complex numbers:
 * entry (r, i) at r dim + i, the amplitudes of a state of 2n qubits whose
 * high n bits are the row.  A gate on the rows is the same gate with its
 * bit positions moved up by n, so that one call of the state kernels
 * updates every column at once. */
static void move_to_rows(int n, qode_gate_matrix *g)
{
    g->target += n;
    g->target2 += n;
    g->ctrl_mask <<= n;
}

static void one_qubit_gate(int n, int wire, const double *m, qode_gate_matrix *g)
{
    memset(g, 0, sizeof *g);
    g->form = QODE_FORM_DENSE1;
    g->target = n - 1 - wire;
    memcpy(g->m, m, 8 * sizeof(double));
    move_to_rows(n, g);
}

/* rows <- F rows, or F^+ rows when `inverse` (needs inverses in
 * `prepared`), for factor step st; `spare`: dim^2 complex of scratch. */
static void apply_factor(const qode_circuit *c, const qode_prepared_gate *prepared,
                         const qode_tile_schedule *s, const qode_tile_step *st, int inverse,
                         double *rows, double *spare)
{
    int n = c->n_qubits;
    size_t dim = (size_t)1 << n;
    if (st->permutation) { /* row j <- row src[j] */
        const int32_t *src = s->perms + st->start + (inverse ? dim : 0);
        for (size_t j = 0; j < dim; j++)
            memcpy(spare + 2 * j * dim, rows + 2 * (size_t)src[j] * dim,
                   sizeof(double) * 2 * dim);
        memcpy(rows, spare, sizeof(double) * 2 * dim * dim);
        return;
    }
    qode_gate_matrix g;
    if (st->op >= 0) {
        const qode_prepared_gate *pg = &prepared[st->op];
        g = inverse ? pg->inverse : pg->forward;
        move_to_rows(n, &g);
    } else {
        double m[8];
        const qode_tile_segment *seg = factor_segment(s, st);
        if (inverse)
            mat2_dagger(seg->m, m);
        else
            memcpy(m, seg->m, sizeof m);
        one_qubit_gate(n, st->wire, m, &g);
    }
    qode_qstate_apply(rows, QODE_COMPLEX128, 2 * n, &g);
}

/* U = every factor applied to the identity; dense_u gets its planes. */
static int build_u(const qode_circuit *c, const qode_prepared_gate *prepared,
                   qode_tile_schedule *s)
{
    size_t dim = (size_t)1 << c->n_qubits;
    double *rows = calloc(4 * dim * dim, sizeof(double));
    if (rows == NULL)
        return 0;
    double *spare = rows + 2 * dim * dim;
    for (size_t i = 0; i < dim; i++)
        rows[2 * (i * dim + i)] = 1.0;
    for (int32_t k = 0; k < s->n_dense_factors; k++)
        apply_factor(c, prepared, s, &s->steps[s->dense_factors[k]], 0, rows, spare);
    double *ur = s->dense_u, *ui = ur + dim * dim;
    for (size_t k = 0; k < dim * dim; k++) {
        ur[k] = rows[2 * k];
        ui[k] = rows[2 * k + 1];
    }
    for (size_t j = 0; j < dim; j++)
        for (size_t i = 0; i < dim; i++) {
            s->dense_w[j * 2 * dim + i] = ur[i * dim + j];
            s->dense_w[j * 2 * dim + dim + i] = ui[i * dim + j];
        }
    free(rows);
    return 1;
}

/* The wire rotations (tiled.h) when every prefix head is one real data
 * rotation whose columns a = U(0)|0>, b = U(pi)|0> are independent (then
 * v = c a + s b and dv/dt = (c b - s a) / 2 = K v / 2 with K = A J A^-1,
 * A = (a b), J = ((0, -1), (1, 0))); 1 also when not (nothing set), 0
 * when out of memory. */
static int plan_rotations(const qode_circuit *c, qode_tile_schedule *s)
{
    int n = c->n_qubits;
    for (int32_t t = 0; t < s->main_end; t++) {
        const qode_tile_step *st = &s->steps[t];
        if (!st->prefix || st->seg_count == 0)
            continue;
        const qode_tile_segment *seg = &s->segments[st->seg_start];
        if (st->seg_count != 1 || !seg->rotation) /* (real: dense_pays checked) */
            return 1;
        if (seg->m[0] * seg->m_pi[4] - seg->m[4] * seg->m_pi[0] == 0.0)
            return 1;
    }
    s->rotations = malloc(sizeof(qode_tile_wire_rotation) * (size_t)n);
    if (s->rotations == NULL)
        return 0;
    for (int w = 0; w < n; w++)
        s->rotations[w].column = -1;
    for (int32_t t = 0; t < s->main_end; t++) {
        const qode_tile_step *st = &s->steps[t];
        if (!st->prefix || st->seg_count == 0)
            continue;
        const qode_tile_segment *seg = &s->segments[st->seg_start];
        qode_tile_wire_rotation *r = &s->rotations[st->wire];
        r->column = seg->column;
        r->a[0] = seg->m[0];    /* re of entries (0, 0) and (1, 0) */
        r->a[1] = seg->m[4];
        r->b[0] = seg->m_pi[0];
        r->b[1] = seg->m_pi[4];
        double det = r->a[0] * r->b[1] - r->b[0] * r->a[1];
        double ai[4] = {r->b[1] / det, -r->b[0] / det, -r->a[1] / det, r->a[0] / det}; /* A^-1 */
        double aj[4] = {r->b[0], -r->a[0], r->b[1], -r->a[1]};                      /* A J */
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
                r->k[2 * i + j] = aj[2 * i] * ai[j] + aj[2 * i + 1] * ai[2 + j];
    }
    return 1;
}

int qode_tile_dense_plan(const qode_circuit *c, const qode_prepared_gate *prepared,
                         qode_tile_schedule *s)
{
    if (!dense_pays(c, prepared, s))
        return 1;
    size_t dim = (size_t)1 << c->n_qubits;
    s->dense_u = malloc(sizeof(double) * 2 * dim * dim);
    s->dense_w = malloc(sizeof(double) * 2 * dim * dim);
    s->dense_factors = malloc(sizeof(int32_t) * (size_t)(s->main_end > 0 ? s->main_end : 1));
    if (s->dense_u == NULL || s->dense_w == NULL || s->dense_factors == NULL)
        return 0;
    for (int32_t t = 0; t < s->main_end; t++) {
        qode_tile_step *st = &s->steps[t];
        if (!st->prefix)
            continue;
        int32_t head = head_segments(s, st);
        st->tail = head < st->seg_count; /* then one shared run: runs are maximal */
        st->seg_count = head;
    }
    s->dense = 1;
    s->n_dense_factors = factor_steps(s, s->dense_factors);
    return plan_rotations(c, s) && build_u(c, prepared, s);
}

/* Q[b][a] = sum over the amplitude pairs of bit t of phi_b conj(lam_a),
 * as a mat2, so that <lam| (1 x A x 1) |phi> = sum_ab A_ab Q[b][a] for any
 * 2x2 A on that bit (mat2_trace_re): one pass for all angles of a run. */
static void reduced_matrix(const double *lam, const double *phi, int bits, int t, double *q)
{
    size_t dim = (size_t)1 << bits, stride = (size_t)1 << t;
    memset(q, 0, 8 * sizeof(double));
    for (size_t base = 0; base < dim; base += 2 * stride)
        for (size_t i = base; i < base + stride; i++) {
            const double *p[2] = {phi + 2 * i, phi + 2 * (i + stride)};
            const double *l[2] = {lam + 2 * i, lam + 2 * (i + stride)};
            for (int b = 0; b < 2; b++)
                for (int a = 0; a < 2; a++) {
                    q[2 * (2 * b + a)] += p[b][0] * l[a][0] + p[b][1] * l[a][1];
                    q[2 * (2 * b + a) + 1] += p[b][1] * l[a][0] - p[b][0] * l[a][1];
                }
        }
}

/* Adds 2 Re <lam| dF/dt |phi> (summed over the columns) for every
 * trainable angle t of factor st. */
static void factor_gradients(const qode_circuit *c, const qode_prepared_gate *prepared,
                             const qode_tile_schedule *s, const qode_tile_step *st,
                             const double *lam, const double *phi, double *grad_trainable)
{
    int n = c->n_qubits;
    double re, im;
    if (st->permutation)
        return;
    if (st->op >= 0) {
        const qode_op *op = &c->ops[st->op];
        for (int p = 0; p < qode_gate_params(op->kind); p++) {
            const qode_param_ref *r = &c->refs[op->param_start + p];
            if (r->source != QODE_PARAM_TRAINABLE)
                continue;
            qode_gate_matrix d = prepared[st->op].derivative[p];
            move_to_rows(n, &d);
            qode_qstate_inner(lam, phi, QODE_COMPLEX128, 2 * n, &d, &re, &im);
            grad_trainable[r->index] += 2.0 * re;
        }
        return;
    }
    const qode_tile_segment *seg = factor_segment(s, st);
    if (seg->grad_count == 0)
        return;
    double q[8];
    reduced_matrix(lam, phi, 2 * n, n + (n - 1 - st->wire), q);
    for (int32_t k = 0; k < seg->grad_count; k++) { /* A = (run after) dU (run before) */
        const qode_tile_shared_grad *g = &s->grads[seg->grad_start + k];
        grad_trainable[g->index] += 2.0 * mat2_trace_re(g->a, q);
    }
}

/* 2 Re Tr(dU C) = sum_i 2 Re <c_i| dU |e_i> with c_i the conjugate of row i
 * of C: the adjoint method for dim "circuits" that start in e_i (and end in
 * column i of U) with lambda c_i at the end, all at once as the columns of
 * Phi (= U at the start) and Lam (= C^+). */
int qode_tile_dense_gradients(const qode_circuit *c, const qode_prepared_gate *prepared,
                              const qode_tile_schedule *s, const double *cmat,
                              double *grad_trainable)
{
    size_t dim = (size_t)1 << c->n_qubits, entries = dim * dim;
    double *phi = malloc(sizeof(double) * 6 * entries);
    if (phi == NULL)
        return 0;
    double *lam = phi + 2 * entries, *spare = lam + 2 * entries;
    const double *ur = s->dense_u, *ui = ur + entries;
    for (size_t k = 0; k < entries; k++) {
        phi[2 * k] = ur[k];
        phi[2 * k + 1] = ui[k];
    }
    for (size_t y = 0; y < dim; y++)
        for (size_t i = 0; i < dim; i++) {
            lam[2 * (y * dim + i)] = cmat[2 * (i * dim + y)];
            lam[2 * (y * dim + i) + 1] = -cmat[2 * (i * dim + y) + 1];
        }
    for (int32_t k = s->n_dense_factors - 1; k >= 0; k--) {
        const qode_tile_step *st = &s->steps[s->dense_factors[k]];
        apply_factor(c, prepared, s, st, 1, phi, spare);
        factor_gradients(c, prepared, s, st, lam, phi, grad_trainable);
        if (k > 0)
            apply_factor(c, prepared, s, st, 1, lam, spare);
    }
    free(phi);
    return 1;
}

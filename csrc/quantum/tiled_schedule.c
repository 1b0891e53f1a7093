/* The schedule of the tiled path (see tiled.h): fused one-qubit blocks, the
 * product-state prefix, trailing gates folded into the read-out, and the
 * checkpoints of the adjoint sweep.  Built once per call, shared by all
 * threads (read-only while they run). */
#include <stdlib.h>
#include <string.h>

#include "quantum/mat2.h"
#include "quantum/tiled.h"

/* Per-thread bound on the adjoint's stored forward states; beyond it the
 * sweep un-applies gates to the forward state instead. */
#define CHECKPOINT_BYTES ((size_t)8 << 20)

static void segments_of_block(const qode_circuit *c, const qode_prepared_gate *prepared,
                              int with_derivatives, qode_tile_schedule *s, qode_tile_step *st,
                              int32_t *n_segments, int32_t *n_grads)
{
    const int32_t *ops = s->block_ops + st->start;
    st->seg_start = *n_segments;
    st->shared = 1;
    int32_t j = 0;
    while (j < st->count) {
        qode_tile_segment *seg = &s->segments[(*n_segments)++];
        if (prepared[ops[j]].uses_data) {
            const qode_op *op = &c->ops[ops[j]];
            seg->data_op = ops[j];
            seg->grad_start = seg->grad_count = 0;
            seg->rotation = op->kind == QODE_GATE_RX || op->kind == QODE_GATE_RY ||
                            op->kind == QODE_GATE_RZ;
            if (seg->rotation) {
                qode_gate_matrix g;
                double angles[3] = {0.0, 0.0, 0.0};
                seg->column = c->refs[op->param_start].index;
                qode_gate_build(c, op, angles, &g);
                mat2_of_gate(&g, seg->m);
                angles[0] = 3.14159265358979323846;
                qode_gate_build(c, op, angles, &g);
                mat2_of_gate(&g, seg->m_pi);
            }
            st->shared = 0;
            j++;
            continue;
        }
        int32_t end = j;
        while (end < st->count && !prepared[ops[end]].uses_data)
            end++;
        seg->data_op = -1;
        seg->rotation = 0;
        mat2_identity(seg->m);
        for (int32_t q = j; q < end; q++) {
            double u[8];
            mat2_of_gate(&prepared[ops[q]].forward, u);
            mat2_lmul(u, seg->m);
        }
        seg->grad_start = *n_grads;
        seg->grad_count = 0;
        if (with_derivatives) {
            /* A = (ops after q) dU_q (ops before q), all within the run */
            double before[8];
            mat2_identity(before);
            for (int32_t q = j; q < end; q++) {
                const qode_op *op = &c->ops[ops[q]];
                double after[8], u[8], tmp[8];
                mat2_identity(after);
                for (int32_t r = q + 1; r < end; r++) {
                    mat2_of_gate(&prepared[ops[r]].forward, u);
                    mat2_lmul(u, after);
                }
                for (int p = 0; p < qode_gate_params(op->kind); p++) {
                    const qode_param_ref *ref = &c->refs[op->param_start + p];
                    if (ref->source != QODE_PARAM_TRAINABLE)
                        continue;
                    qode_tile_shared_grad *g = &s->grads[(*n_grads)++];
                    double d[8];
                    mat2_of_gate(&prepared[ops[q]].derivative[p], d);
                    mat2_mul(d, before, tmp);
                    mat2_mul(after, tmp, g->a);
                    g->index = ref->index;
                    seg->grad_count++;
                }
                mat2_of_gate(&prepared[ops[q]].forward, u);
                mat2_lmul(u, before);
            }
        }
        j = end;
    }
    st->seg_count = *n_segments - st->seg_start;
}

/* Steps as the circuit runs: a multi-qubit op, or the block of one-qubit ops
 * that piled up on a wire since a multi-qubit op last touched it. */
static int build_steps(const qode_circuit *c, qode_tile_schedule *s, size_t ops)
{
    int n = c->n_qubits;
    int32_t *pending = malloc(sizeof(int32_t) * ops * (size_t)n); /* per wire: op list */
    int32_t *n_pending = calloc((size_t)n, sizeof(int32_t));
    char *touched = calloc((size_t)n, 1); /* wire already had a step */
    if (pending == NULL || n_pending == NULL || touched == NULL) {
        free(pending);
        free(n_pending);
        free(touched);
        return 0;
    }
    int32_t used = 0;
    for (int32_t k = 0; k <= c->n_ops; k++) {
        int nw = k < c->n_ops ? qode_gate_wires(c->ops[k].kind) : 0;
        if (nw == 1) {
            int w = c->ops[k].wires[0];
            pending[(size_t)w * ops + n_pending[w]++] = k;
            continue;
        }
        /* flush the blocks of this op's wires (of every wire at the end) */
        for (int j = 0; j < (k < c->n_ops ? nw : n); j++) {
            int w = k < c->n_ops ? c->ops[k].wires[j] : j;
            if (n_pending[w] > 0) {
                qode_tile_step st = {-1, w, used, n_pending[w], 0, 0, 0, !touched[w], -1};
                memcpy(s->block_ops + used, pending + (size_t)w * ops,
                       sizeof(int32_t) * n_pending[w]);
                used += n_pending[w];
                if (n_pending[w] > s->max_block)
                    s->max_block = n_pending[w];
                s->steps[s->n_steps++] = st;
                n_pending[w] = 0;
            }
            touched[w] = 1;
        }
        if (k < c->n_ops) {
            qode_tile_step st = {k, -1, 0, 0, 0, 0, 0, 0, -1};
            s->steps[s->n_steps++] = st;
        }
    }
    free(pending);
    free(n_pending);
    free(touched);
    return 1;
}

/* Trailing CNOT, SWAP and CZ gates are folded into Z-type observables:
 * <psi| G^+ O G |psi> with G^+ Z_S G again a Z word (CNOT(c, t) adds c to a
 * word that holds t, SWAP exchanges the two bits, CZ is diagonal).  Sets
 * main_end and s->obs. */
static int fold_observables(const qode_circuit *c, const qode_observables *obs, int fold,
                            qode_tile_schedule *s)
{
    s->main_end = s->n_steps;
    if (obs == NULL)
        return 1;
    s->obs = *obs;
    int64_t terms = obs->term_start[obs->n_obs];
    for (int64_t t = 0; t < terms && fold; t++)
        fold = obs->x_mask[t] == 0;
    if (!fold)
        return 1;
    int32_t end = s->n_steps;
    while (end > 0 && s->steps[end - 1].op >= 0) {
        int kind = c->ops[s->steps[end - 1].op].kind;
        if (kind != QODE_GATE_CNOT && kind != QODE_GATE_SWAP && kind != QODE_GATE_CZ)
            break;
        end--;
    }
    if (end == s->n_steps)
        return 1;
    s->folded_z = malloc(sizeof(uint64_t) * (size_t)(terms > 0 ? terms : 1));
    if (s->folded_z == NULL)
        return 0;
    int n = c->n_qubits;
    for (int64_t t = 0; t < terms; t++) {
        uint64_t z = obs->z_mask[t];
        for (int32_t k = s->n_steps - 1; k >= end; k--) {
            const qode_op *op = &c->ops[s->steps[k].op];
            uint64_t a = (uint64_t)1 << (n - 1 - op->wires[0]);
            uint64_t b = (uint64_t)1 << (n - 1 - op->wires[1]);
            if (op->kind == QODE_GATE_CNOT && (z & b))
                z ^= a;
            else if (op->kind == QODE_GATE_SWAP && ((z & a) != 0) != ((z & b) != 0))
                z ^= a | b;
        }
        s->folded_z[t] = z;
    }
    s->obs.z_mask = s->folded_z;
    s->main_end = end;
    return 1;
}

/* The adjoint reads the state before every block and every op with a
 * differentiable angle; stored in the forward pass when they fit. */
static void assign_checkpoints(const qode_circuit *c, qode_tile_schedule *s)
{
    int32_t count = 0;
    for (int32_t t = 0; t < s->main_end; t++) {
        qode_tile_step *st = &s->steps[t];
        int needs = !st->prefix;
        if (st->op >= 0) {
            const qode_op *op = &c->ops[st->op];
            needs = 0;
            for (int p = 0; p < qode_gate_params(op->kind); p++)
                needs |= c->refs[op->param_start + p].source != QODE_PARAM_CONSTANT;
        }
        st->checkpoint = needs ? count++ : -1;
    }
    size_t bytes = sizeof(double) * qode_tile_state_doubles(c->n_qubits) * (size_t)count;
    if (bytes > CHECKPOINT_BYTES) {
        for (int32_t t = 0; t < s->main_end; t++)
            s->steps[t].checkpoint = -1;
        count = 0;
    }
    s->n_checkpoints = count;
}

qode_tile_schedule *qode_tile_schedule_new(const qode_circuit *c,
                                           const qode_prepared_gate *prepared,
                                           int with_derivatives, const qode_observables *obs,
                                           int fold)
{
    size_t ops = c->n_ops > 0 ? (size_t)c->n_ops : 1;
    qode_tile_schedule *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->steps = calloc(2 * ops + (size_t)c->n_qubits, sizeof(qode_tile_step));
    s->block_ops = malloc(sizeof(int32_t) * ops);
    s->segments = calloc(ops, sizeof(qode_tile_segment));
    s->grads = calloc(3 * ops, sizeof(qode_tile_shared_grad));
    if (s->steps == NULL || s->block_ops == NULL || s->segments == NULL || s->grads == NULL ||
        !build_steps(c, s, ops) || !fold_observables(c, obs, fold, s)) {
        qode_tile_schedule_free(s);
        return NULL;
    }
    int32_t n_segments = 0, n_grads = 0;
    for (int32_t t = 0; t < s->n_steps; t++) {
        if (s->steps[t].op < 0)
            segments_of_block(c, prepared, with_derivatives, s, &s->steps[t], &n_segments,
                              &n_grads);
        s->n_prefix += s->steps[t].prefix;
    }
    if (with_derivatives)
        assign_checkpoints(c, s);
    return s;
}

void qode_tile_schedule_free(qode_tile_schedule *s)
{
    if (s == NULL)
        return;
    free(s->steps);
    free(s->block_ops);
    free(s->segments);
    free(s->grads);
    free(s->folded_z);
    free(s);
}

size_t qode_tile_state_doubles(int n)
{
    return (size_t)2 * QODE_TILE_LANES << n;
}

size_t qode_tile_work_doubles(const qode_tile_schedule *s, int n, int adjoint)
{
    /* per block segment and lane: V, S (8 doubles each) and up to 3 derivatives */
    size_t block = (size_t)5 * (s->max_block > 0 ? s->max_block : 1) * QODE_TILE_LANES * 8;
    size_t prefix_columns = (size_t)4 * n * QODE_TILE_LANES;
    size_t states = adjoint ? 3 + (size_t)s->n_checkpoints : 1;
    return states * qode_tile_state_doubles(n) + block + prefix_columns;
}

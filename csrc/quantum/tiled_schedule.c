/* The schedule of the tiled path (see tiled.h): fused one-qubit blocks, the
 * product-state prefix, trailing gates folded into the read-out, and the
 * checkpoints of the adjoint sweep.  Built once per call, shared by all
 * threads (read-only while they run). */
#include <stdlib.h>
#include <string.h>

#include "quantum/mat2.h"
#include "quantum/tiled.h"
#include "quantum/tiled_dense.h"
#include "quantum/tiled_prefix.h"

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
                qode_tile_step st = {-1, w, used, n_pending[w], 0, 0, 0, !touched[w], -1, 0, 0};
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
            qode_tile_step st = {k, -1, 0, 0, 0, 0, 0, 0, -1, 0, 0};
            s->steps[s->n_steps++] = st;
        }
    }
    free(pending);
    free(n_pending);
    free(touched);
    return 1;
}

/* Wires a step touches, as a bit mask over wire numbers. */
static uint64_t step_wires(const qode_circuit *c, const qode_tile_step *st)
{
    if (st->op < 0)
        return (uint64_t)1 << st->wire;
    uint64_t mask = 0;
    for (int j = 0; j < qode_gate_wires(c->ops[st->op].kind); j++)
        mask |= (uint64_t)1 << c->ops[st->op].wires[j];
    return mask;
}

/* Moves every block as early as it may go: right after the last step on its
 * wire.  build_steps leaves a block where the next gate on its wire needed
 * it, which interleaves the blocks of one layer with the CNOT ring after it;
 * moved up, they leave the ring a contiguous run (and the one-qubit gates of
 * the first layer all join the prefix). */
static void hoist_blocks(const qode_circuit *c, qode_tile_schedule *s)
{
    for (int32_t t = 1; t < s->n_steps; t++) {
        if (s->steps[t].op >= 0)
            continue;
        uint64_t wire = (uint64_t)1 << s->steps[t].wire;
        int32_t to = t;
        while (to > 0 && !(step_wires(c, &s->steps[to - 1]) & wire))
            to--;
        qode_tile_step block = s->steps[t];
        memmove(&s->steps[to + 1], &s->steps[to], sizeof(qode_tile_step) * (size_t)(t - to));
        s->steps[to] = block;
    }
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

/* The observable matrix (see tiled.h) when the observables are diagonal
 * (after folding) and small enough; returns 0 when out of memory. */
static int build_obs_matrix(const qode_circuit *c, qode_tile_schedule *s)
{
    const qode_observables *obs = &s->obs;
    int n = c->n_qubits;
    if (obs->n_obs == 0 || obs->n_obs > QODE_TILE_OBS_MATRIX_MAX_OBS || n < 2 ||
        n > QODE_TILE_OBS_MATRIX_MAX_QUBITS)
        return 1;
    for (int64_t t = 0; t < obs->term_start[obs->n_obs]; t++)
        if (obs->x_mask[t] != 0)
            return 1;
    size_t dim = (size_t)1 << n, rows = ((size_t)obs->n_obs + 3) / 4 * 4;
    s->obs_matrix = calloc(rows * dim, sizeof(double));
    s->obs_matrix_t = calloc(rows * dim, sizeof(double));
    if (s->obs_matrix == NULL || s->obs_matrix_t == NULL)
        return 0;
    for (int32_t k = 0; k < obs->n_obs; k++)
        for (int64_t t = obs->term_start[k]; t < obs->term_start[k + 1]; t++)
            for (size_t i = 0; i < dim; i++) {
                double v = __builtin_parityll(i & obs->z_mask[t]) ? -obs->coeff[t] : obs->coeff[t];
                s->obs_matrix[k * dim + i] += v;
                s->obs_matrix_t[i * rows + k] += v;
            }
    s->obs_rows = (int32_t)rows;
    return 1;
}

static int is_permutation_gate(int kind)
{
    return kind == QODE_GATE_CNOT || kind == QODE_GATE_TOFFOLI || kind == QODE_GATE_SWAP;
}

/* Where op (a permutation gate) sends basis index i. */
static uint64_t permute_index(const qode_op *op, int n, uint64_t i)
{
    uint64_t bit[3];
    for (int j = 0; j < qode_gate_wires(op->kind); j++)
        bit[j] = (uint64_t)1 << (n - 1 - op->wires[j]);
    switch (op->kind) {
    case QODE_GATE_CNOT:
        return (i & bit[0]) ? i ^ bit[1] : i;
    case QODE_GATE_TOFFOLI:
        return ((i & bit[0]) && (i & bit[1])) ? i ^ bit[2] : i;
    default: /* SWAP */
        return ((i & bit[0]) != 0) != ((i & bit[1]) != 0) ? i ^ bit[0] ^ bit[1] : i;
    }
}

/* Merges permutation gates in steps [0, main_end) into permutation steps
 * (steps from main_end on are folded and stay as they are).  A group starts
 * at a permutation gate and takes in every later permutation gate that can
 * move back to it: one whose wires no step it would pass (a step not in the
 * group) touches.  Groups of one gate stay plain steps. */
static int merge_permutations(const qode_circuit *c, qode_tile_schedule *s)
{
    int n = c->n_qubits;
    size_t dim = (size_t)1 << n;
    int32_t old_end = s->main_end, count = s->n_steps;
    uint64_t all = n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
    qode_tile_step *in = malloc(sizeof(qode_tile_step) * (size_t)(count > 0 ? count : 1));
    char *used = calloc((size_t)(count > 0 ? count : 1), 1);
    int32_t *group = malloc(sizeof(int32_t) * (size_t)(count > 0 ? count : 1));
    int32_t *tables = malloc(sizeof(int32_t) * 2 * dim * (size_t)(count / 2 + 1));
    if (in == NULL || used == NULL || group == NULL || tables == NULL) {
        free(in); free(used); free(group); free(tables);
        return 0;
    }
    memcpy(in, s->steps, sizeof(qode_tile_step) * (size_t)count);
    int32_t out = 0, n_tables = 0, new_end = 0;
    for (int32_t t = 0; t < count; t++) {
        if (t == old_end)
            new_end = out;
        if (used[t])
            continue;
        int is_perm = t < old_end && in[t].op >= 0 && is_permutation_gate(c->ops[in[t].op].kind);
        int32_t size = 0;
        if (is_perm) {
            uint64_t blocked = 0;
            group[size++] = t;
            for (int32_t k = t + 1; k < old_end && blocked != all; k++) {
                if (used[k])
                    continue;
                uint64_t wires = step_wires(c, &in[k]);
                if (in[k].op >= 0 && is_permutation_gate(c->ops[in[k].op].kind) &&
                    !(wires & blocked))
                    group[size++] = k;
                else
                    blocked |= wires;
            }
        }
        if (size < 2) {
            s->steps[out++] = in[t];
            continue;
        }
        int32_t *src = tables + (size_t)n_tables * 2 * dim, *inverse = src + dim;
        for (uint64_t i = 0; i < dim; i++) { /* sigma(i): i through every gate of the group */
            uint64_t j = i;
            for (int32_t g = 0; g < size; g++)
                j = permute_index(&c->ops[in[group[g]].op], n, j);
            src[j] = (int32_t)i;
            inverse[i] = (int32_t)j;
        }
        for (int32_t g = 0; g < size; g++)
            used[group[g]] = 1;
        qode_tile_step st = {-1, -1, n_tables * 2 * (int32_t)dim, size, 0, 0, 0, 0, -1, 1, 0};
        s->steps[out++] = st;
        n_tables++;
    }
    s->main_end = old_end == count ? out : new_end;
    s->n_steps = out;
    s->n_permutations = n_tables;
    s->perms = tables;
    free(in);
    free(used);
    free(group);
    return 1;
}

_Static_assert(QODE_TILE_MAX_QUBITS <= 64, "find_last_layer keeps its wires in 64 bits");

/* The last layer (tiled.h): walking back from main_end over shared blocks
 * on wires not yet seen (prefix blocks are part of the product state and
 * do not count).  Then the first step before it whose adjoint reads the
 * state (the layer's blocks read the final state instead). */
static void find_last_layer(qode_tile_schedule *s)
{
    uint64_t seen = 0; /* wires (at most QODE_TILE_MAX_QUBITS <= 64) */
    s->last_layer = s->main_end;
    for (int32_t t = s->main_end - 1; t >= 0; t--) {
        const qode_tile_step *st = &s->steps[t];
        if (st->prefix)
            continue;
        if (st->op >= 0 || st->permutation || !st->shared || (seen >> st->wire & 1))
            break;
        seen |= (uint64_t)1 << st->wire;
        s->last_layer = t;
    }
    s->first_reader = s->main_end;
    for (int32_t t = 0; t < s->last_layer; t++)
        if (!s->steps[t].prefix && !s->steps[t].permutation) {
            s->first_reader = t;
            break;
        }
}

/* The adjoint reads the state before every block and every op with a
 * differentiable angle, except in the last layer; stored in the forward
 * pass when they fit. */
static void assign_checkpoints(const qode_circuit *c, qode_tile_schedule *s)
{
    int32_t count = 0;
    for (int32_t t = 0; t < s->main_end; t++) {
        qode_tile_step *st = &s->steps[t];
        int needs = !st->prefix && !st->permutation && t < s->last_layer;
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
        !build_steps(c, s, ops)) {
        qode_tile_schedule_free(s);
        return NULL;
    }
    hoist_blocks(c, s);
    if (!fold_observables(c, obs, fold, s) || !merge_permutations(c, s) ||
        !build_obs_matrix(c, s)) {
        qode_tile_schedule_free(s);
        return NULL;
    }
    int32_t n_segments = 0, n_grads = 0;
    for (int32_t t = 0; t < s->n_steps; t++) {
        if (s->steps[t].op < 0 && !s->steps[t].permutation)
            segments_of_block(c, prepared, with_derivatives, s, &s->steps[t], &n_segments,
                              &n_grads);
        s->n_prefix += s->steps[t].prefix;
    }
    if (!qode_tile_dense_plan(c, prepared, s)) {
        qode_tile_schedule_free(s);
        return NULL;
    }
    s->last_layer = s->first_reader = s->main_end;
    if (with_derivatives && !s->dense) {
        find_last_layer(s);
        assign_checkpoints(c, s);
    }
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
    free(s->perms);
    free(s->obs_matrix);
    free(s->obs_matrix_t);
    free(s->rotations);
    free(s->dense_u);
    free(s->dense_w);
    free(s->dense_factors);
    free(s);
}

size_t qode_tile_state_doubles(int n)
{
    return (size_t)2 * QODE_TILE_LANES << n;
}

size_t qode_tile_block_scratch_doubles(const qode_tile_schedule *s)
{
    /* per block segment and lane: V, S (8 doubles each) and up to 3 derivatives */
    return (size_t)5 * (s->max_block > 0 ? s->max_block : 1) * QODE_TILE_LANES * 8;
}

size_t qode_tile_work_doubles(const qode_tile_schedule *s, int n, int adjoint)
{
    size_t prefix_columns = (size_t)4 * n * QODE_TILE_LANES;
    size_t tile = qode_tile_state_doubles(n);
    if (s->dense) /* forward: the prefix columns, psi and the state */
        return adjoint ? qode_tile_dense_work_doubles(s, n) : 2 * tile + prefix_columns;
    /* forward: the state, and the other half of a gather for permutations */
    size_t states = adjoint ? 3 + (size_t)s->n_checkpoints : 1 + (s->n_permutations > 0);
    size_t doubles = states * tile + qode_tile_block_scratch_doubles(s) + prefix_columns;
    if (adjoint)
        doubles += qode_tile_prefix_record_doubles(s);
    return doubles;
}

size_t qode_tile_chunk_doubles(const qode_tile_schedule *s, int n)
{
    return s->dense ? (size_t)2 << (2 * n) : 0;
}

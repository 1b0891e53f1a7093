/* The gate catalogue: names, arities and matrices (PennyLane's definitions).
 *
 * Rotation-type gates U(t) = exp(-i t G / 2) with G^2 = 1 (RX, RY, RZ, the
 * controlled rotations on their control=1 block, the Ising gates, and each
 * angle of Rot and the theta of U3) have dU/dt = -i G U(t) / 2 = U(t + pi) / 2,
 * so their derivative is built by the same code at a shifted angle.  Only
 * PhaseShift and the phi / delta angles of U3 need formulas of their own.
 */
#include <math.h>
#include <string.h>

#include "quantum/gates.h"

typedef struct {
    const char *name;
    int wires;
    int params;
} gate_info;

static const gate_info GATES[QODE_GATE_COUNT] = {
    [QODE_GATE_H] = {"Hadamard", 1, 0},
    [QODE_GATE_X] = {"PauliX", 1, 0},
    [QODE_GATE_Y] = {"PauliY", 1, 0},
    [QODE_GATE_Z] = {"PauliZ", 1, 0},
    [QODE_GATE_S] = {"S", 1, 0},
    [QODE_GATE_T] = {"T", 1, 0},
    [QODE_GATE_SX] = {"SX", 1, 0},
    [QODE_GATE_RX] = {"RX", 1, 1},
    [QODE_GATE_RY] = {"RY", 1, 1},
    [QODE_GATE_RZ] = {"RZ", 1, 1},
    [QODE_GATE_PHASE] = {"PhaseShift", 1, 1},
    [QODE_GATE_ROT] = {"Rot", 1, 3},
    [QODE_GATE_U3] = {"U3", 1, 3},
    [QODE_GATE_CNOT] = {"CNOT", 2, 0},
    [QODE_GATE_CZ] = {"CZ", 2, 0},
    [QODE_GATE_SWAP] = {"SWAP", 2, 0},
    [QODE_GATE_CRX] = {"CRX", 2, 1},
    [QODE_GATE_CRY] = {"CRY", 2, 1},
    [QODE_GATE_CRZ] = {"CRZ", 2, 1},
    [QODE_GATE_ISINGXX] = {"IsingXX", 2, 1},
    [QODE_GATE_ISINGYY] = {"IsingYY", 2, 1},
    [QODE_GATE_ISINGZZ] = {"IsingZZ", 2, 1},
    [QODE_GATE_TOFFOLI] = {"Toffoli", 3, 0},
    [QODE_GATE_UNITARY1] = {"QubitUnitary", 1, 0},
    [QODE_GATE_UNITARY2] = {"QubitUnitary", 2, 0},
};

int qode_gate_wires(int kind)
{
    return (kind >= 0 && kind < QODE_GATE_COUNT) ? GATES[kind].wires : 0;
}

int qode_gate_params(int kind)
{
    return (kind >= 0 && kind < QODE_GATE_COUNT) ? GATES[kind].params : 0;
}

const char *qode_gate_name(int kind)
{
    return (kind >= 0 && kind < QODE_GATE_COUNT) ? GATES[kind].name : "?";
}

/* Bit of the basis index that holds wire w (wire 0 = most significant). */
static int wire_bit(const qode_circuit *c, int wire)
{
    return c->n_qubits - 1 - wire;
}

static void set(qode_gate_matrix *g, int k, double re, double im)
{
    g->m[2 * k] = re;
    g->m[2 * k + 1] = im;
}

static void set_polar(qode_gate_matrix *g, int k, double r, double phase)
{
    set(g, k, r * cos(phase), r * sin(phase));
}

/* 2x2 matrices (row-major, entries k = 0..3) of the one-qubit rotations. */
static void matrix_rx(qode_gate_matrix *g, double t)
{
    double c = cos(t / 2), s = sin(t / 2);
    set(g, 0, c, 0); set(g, 1, 0, -s);
    set(g, 2, 0, -s); set(g, 3, c, 0);
}

static void matrix_ry(qode_gate_matrix *g, double t)
{
    double c = cos(t / 2), s = sin(t / 2);
    set(g, 0, c, 0); set(g, 1, -s, 0);
    set(g, 2, s, 0); set(g, 3, c, 0);
}

static void matrix_rz(qode_gate_matrix *g, double t)
{
    set_polar(g, 0, 1, -t / 2); set(g, 1, 0, 0);
    set(g, 2, 0, 0); set_polar(g, 3, 1, t / 2);
}

/* Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi). */
static void matrix_rot(qode_gate_matrix *g, double phi, double theta, double omega)
{
    double c = cos(theta / 2), s = sin(theta / 2);
    set_polar(g, 0, c, -(phi + omega) / 2);
    set_polar(g, 1, -s, (phi - omega) / 2);
    set_polar(g, 2, s, -(phi - omega) / 2);
    set_polar(g, 3, c, (phi + omega) / 2);
}

/* U3(theta, phi, delta) = [[c, -e^{i delta} s], [e^{i phi} s, e^{i(phi+delta)} c]]. */
static void matrix_u3(qode_gate_matrix *g, double theta, double phi, double delta)
{
    double c = cos(theta / 2), s = sin(theta / 2);
    set(g, 0, c, 0);
    set_polar(g, 1, -s, delta);
    set_polar(g, 2, s, phi);
    set_polar(g, 3, c, phi + delta);
}

/* 4x4 Ising matrices, entries k = 4 * row + col. */
static void matrix_ising(qode_gate_matrix *g, int kind, double t)
{
    double c = cos(t / 2), s = sin(t / 2);
    memset(g->m, 0, sizeof(g->m));
    if (kind == QODE_GATE_ISINGZZ) {
        set_polar(g, 0, 1, -t / 2);
        set_polar(g, 5, 1, t / 2);
        set_polar(g, 10, 1, t / 2);
        set_polar(g, 15, 1, -t / 2);
        return;
    }
    /* XX: anti-diagonal all -i s; YY: corners +i s, inner anti-diagonal -i s. */
    double corner = (kind == QODE_GATE_ISINGXX) ? -s : s;
    set(g, 0, c, 0); set(g, 5, c, 0); set(g, 10, c, 0); set(g, 15, c, 0);
    set(g, 3, 0, corner); set(g, 12, 0, corner);
    set(g, 6, 0, -s); set(g, 9, 0, -s);
}

static void form_one_qubit(const qode_circuit *c, const qode_op *op, int form,
                           qode_gate_matrix *g)
{
    g->form = form;
    g->target = wire_bit(c, op->wires[0]);
    g->target2 = -1;
    g->ctrl_mask = 0;
}

static void form_controlled(const qode_circuit *c, const qode_op *op, int form,
                            int n_controls, qode_gate_matrix *g)
{
    g->form = form;
    g->ctrl_mask = 0;
    for (int k = 0; k < n_controls; k++)
        g->ctrl_mask |= (uint64_t)1 << wire_bit(c, op->wires[k]);
    g->target = wire_bit(c, op->wires[n_controls]);
    g->target2 = -1;
}

static void form_two_qubit(const qode_circuit *c, const qode_op *op, qode_gate_matrix *g)
{
    g->form = QODE_FORM_DENSE2;
    g->target = wire_bit(c, op->wires[0]);
    g->target2 = wire_bit(c, op->wires[1]);
    g->ctrl_mask = 0;
}

void qode_gate_build(const qode_circuit *c, const qode_op *op, const double *a,
                     qode_gate_matrix *g)
{
    const double r2 = 0.70710678118654752440;
    /* One-qubit forms use 8 doubles; the two-qubit ones clear all 32 below. */
    memset(g->m, 0, (qode_gate_wires(op->kind) == 1 ? 8 : 32) * sizeof(double));
    switch (op->kind) {
    case QODE_GATE_H:
        form_one_qubit(c, op, QODE_FORM_DENSE1, g);
        set(g, 0, r2, 0); set(g, 1, r2, 0); set(g, 2, r2, 0); set(g, 3, -r2, 0);
        return;
    case QODE_GATE_X:
        form_controlled(c, op, QODE_FORM_FLIP, 0, g);
        set(g, 1, 1, 0); set(g, 2, 1, 0);
        return;
    case QODE_GATE_Y:
        form_one_qubit(c, op, QODE_FORM_DENSE1, g);
        set(g, 1, 0, -1); set(g, 2, 0, 1);
        return;
    case QODE_GATE_Z:
        form_one_qubit(c, op, QODE_FORM_DIAG1, g);
        set(g, 0, 1, 0); set(g, 1, -1, 0);
        return;
    case QODE_GATE_S:
        form_one_qubit(c, op, QODE_FORM_DIAG1, g);
        set(g, 0, 1, 0); set(g, 1, 0, 1);
        return;
    case QODE_GATE_T:
        form_one_qubit(c, op, QODE_FORM_DIAG1, g);
        set(g, 0, 1, 0); set(g, 1, r2, r2);
        return;
    case QODE_GATE_SX:
        form_one_qubit(c, op, QODE_FORM_DENSE1, g);
        set(g, 0, 0.5, 0.5); set(g, 1, 0.5, -0.5);
        set(g, 2, 0.5, -0.5); set(g, 3, 0.5, 0.5);
        return;
    case QODE_GATE_RX:
        form_one_qubit(c, op, QODE_FORM_DENSE1, g);
        matrix_rx(g, a[0]);
        return;
    case QODE_GATE_RY:
        form_one_qubit(c, op, QODE_FORM_DENSE1, g);
        matrix_ry(g, a[0]);
        return;
    case QODE_GATE_RZ:
        /* DIAG1 keeps only the two diagonal entries: d0 = m[0..1], d1 = m[2..3]. */
        form_one_qubit(c, op, QODE_FORM_DIAG1, g);
        set_polar(g, 0, 1, -a[0] / 2); set_polar(g, 1, 1, a[0] / 2);
        return;
    case QODE_GATE_PHASE:
        form_one_qubit(c, op, QODE_FORM_DIAG1, g);
        set(g, 0, 1, 0); set_polar(g, 1, 1, a[0]);
        return;
    case QODE_GATE_ROT:
        form_one_qubit(c, op, QODE_FORM_DENSE1, g);
        matrix_rot(g, a[0], a[1], a[2]);
        return;
    case QODE_GATE_U3:
        form_one_qubit(c, op, QODE_FORM_DENSE1, g);
        matrix_u3(g, a[0], a[1], a[2]);
        return;
    case QODE_GATE_CNOT:
        form_controlled(c, op, QODE_FORM_FLIP, 1, g);
        set(g, 1, 1, 0); set(g, 2, 1, 0);
        return;
    case QODE_GATE_CZ:
        form_controlled(c, op, QODE_FORM_CTRL1, 1, g);
        set(g, 0, 1, 0); set(g, 3, -1, 0);
        return;
    case QODE_GATE_SWAP:
        form_two_qubit(c, op, g);
        set(g, 0, 1, 0); set(g, 6, 1, 0); set(g, 9, 1, 0); set(g, 15, 1, 0);
        return;
    case QODE_GATE_CRX:
        form_controlled(c, op, QODE_FORM_CTRL1, 1, g);
        matrix_rx(g, a[0]);
        return;
    case QODE_GATE_CRY:
        form_controlled(c, op, QODE_FORM_CTRL1, 1, g);
        matrix_ry(g, a[0]);
        return;
    case QODE_GATE_CRZ:
        form_controlled(c, op, QODE_FORM_CTRL1, 1, g);
        matrix_rz(g, a[0]);
        return;
    case QODE_GATE_ISINGXX:
    case QODE_GATE_ISINGYY:
    case QODE_GATE_ISINGZZ:
        form_two_qubit(c, op, g);
        matrix_ising(g, op->kind, a[0]);
        return;
    case QODE_GATE_TOFFOLI:
        form_controlled(c, op, QODE_FORM_FLIP, 2, g);
        set(g, 1, 1, 0); set(g, 2, 1, 0);
        return;
    case QODE_GATE_UNITARY1:
        form_one_qubit(c, op, QODE_FORM_DENSE1, g);
        memcpy(g->m, c->matrices + 2 * (size_t)op->matrix_offset, 8 * sizeof(double));
        return;
    case QODE_GATE_UNITARY2:
        form_two_qubit(c, op, g);
        memcpy(g->m, c->matrices + 2 * (size_t)op->matrix_offset, 32 * sizeof(double));
        return;
    default:
        /* Unreachable after qode_circuit_validate; an identity keeps it harmless. */
        form_one_qubit(c, op, QODE_FORM_DIAG1, g);
        set(g, 0, 1, 0); set(g, 1, 1, 0);
        return;
    }
}

static void scale(qode_gate_matrix *g, double factor)
{
    for (int k = 0; k < 32; k++)
        g->m[k] *= factor;
}

/* Multiplies complex entry k by i. */
static void times_i(qode_gate_matrix *g, int k)
{
    double re = g->m[2 * k], im = g->m[2 * k + 1];
    g->m[2 * k] = -im;
    g->m[2 * k + 1] = re;
}

void qode_gate_derivative(const qode_circuit *c, const qode_op *op, const double *a,
                          int which, qode_gate_matrix *g)
{
    double shifted[3] = {a[0], a[1], a[2]};
    int n = qode_gate_params(op->kind);
    for (int k = n; k < 3; k++)
        shifted[k] = 0.0;
    if (op->kind == QODE_GATE_PHASE) {
        /* d/dphi diag(1, e^{i phi}) = diag(0, i e^{i phi}). */
        qode_gate_build(c, op, shifted, g);
        set(g, 0, 0, 0);
        times_i(g, 1);
        return;
    }
    if (op->kind == QODE_GATE_U3 && which > 0) {
        /* phi multiplies row 1 by e^{i phi}, delta column 1 by e^{i delta}. */
        qode_gate_build(c, op, shifted, g);
        if (which == 1) {
            set(g, 0, 0, 0); set(g, 1, 0, 0);
            times_i(g, 2); times_i(g, 3);
        } else {
            set(g, 0, 0, 0); set(g, 2, 0, 0);
            times_i(g, 1); times_i(g, 3);
        }
        return;
    }
    /* Rotation type: dU/dt = U(t + pi) / 2. */
    shifted[which] += 3.14159265358979323846;
    qode_gate_build(c, op, shifted, g);
    scale(g, 0.5);
}

static void conj_transpose(double *m, int dim)
{
    for (int r = 0; r < dim; r++) {
        for (int col = r; col < dim; col++) {
            int a = r * dim + col, b = col * dim + r;
            double are = m[2 * a], aim = m[2 * a + 1];
            double bre = m[2 * b], bim = m[2 * b + 1];
            m[2 * a] = bre; m[2 * a + 1] = -bim;
            m[2 * b] = are; m[2 * b + 1] = -aim;
        }
    }
}

void qode_gate_dagger(qode_gate_matrix *g)
{
    switch (g->form) {
    case QODE_FORM_DENSE1:
    case QODE_FORM_CTRL1:
        conj_transpose(g->m, 2);
        return;
    case QODE_FORM_DIAG1:
        g->m[1] = -g->m[1];
        g->m[3] = -g->m[3];
        return;
    case QODE_FORM_FLIP:
        return; /* self-inverse */
    case QODE_FORM_DENSE2:
        conj_transpose(g->m, 4);
        return;
    }
}

void qode_op_angles(const qode_circuit *c, const qode_op *op, const double *data_row,
                    const double *trainable, double *angles)
{
    int n = qode_gate_params(op->kind);
    for (int k = 0; k < n; k++) {
        const qode_param_ref *r = &c->refs[op->param_start + k];
        if (r->source == QODE_PARAM_DATA)
            angles[k] = data_row[r->index];
        else if (r->source == QODE_PARAM_TRAINABLE)
            angles[k] = trainable[r->index];
        else
            angles[k] = r->value;
    }
    for (int k = n; k < 3; k++)
        angles[k] = 0.0;
}

int qode_op_uses_data(const qode_circuit *c, const qode_op *op)
{
    int n = qode_gate_params(op->kind);
    for (int k = 0; k < n; k++)
        if (c->refs[op->param_start + k].source == QODE_PARAM_DATA)
            return 1;
    return 0;
}

int qode_gate_fixed_positions(const qode_gate_matrix *g, int pos[4])
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

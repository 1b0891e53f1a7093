/* Batched state-vector simulation of quantum circuits: the circuit as data.
 *
 * Wire convention (identical to PennyLane's): for n qubits, wire 0 is the MOST
 * significant bit of a basis-state index.  The amplitude of |b_0 b_1 ... b_{n-1}>
 * (b_w the value of wire w) sits at index sum_w b_w * 2^(n-1-w).  A two-qubit
 * matrix on wires (a, b) is indexed by 2*b_a + b_b (first wire most significant).
 *
 * A circuit is a list of ops.  Each op names a gate kind, its wires and, for
 * parametrised gates, where each angle comes from (a `qode_param_ref`):
 *   - QODE_PARAM_DATA:      column `index` of the per-circuit data matrix
 *                           (B rows, one per circuit in the batch),
 *   - QODE_PARAM_TRAINABLE: entry `index` of the shared trainable vector,
 *   - QODE_PARAM_CONSTANT:  the fixed number `value`.
 * B circuits of one structure run in one call; only their data rows differ.
 * Arbitrary unitaries (QODE_GATE_UNITARY1 / UNITARY2) take their matrix,
 * constant and shared by the batch, from `matrices` at `matrix_offset` (counted
 * in complex entries, row-major, interleaved real/imaginary doubles).
 *
 * All angles are doubles whatever the precision of the state, so that the
 * complex64 and complex128 simulations see the same circuit.
 */
#ifndef QODE_QUANTUM_CIRCUIT_H
#define QODE_QUANTUM_CIRCUIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/dtype.h"
#include "common/status.h"

typedef enum {
    QODE_GATE_H = 0,
    QODE_GATE_X,
    QODE_GATE_Y,
    QODE_GATE_Z,
    QODE_GATE_S,
    QODE_GATE_T,
    QODE_GATE_SX,
    QODE_GATE_RX,
    QODE_GATE_RY,
    QODE_GATE_RZ,
    QODE_GATE_PHASE,    /* PhaseShift(phi) = diag(1, e^{i phi}) */
    QODE_GATE_ROT,      /* Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi) */
    QODE_GATE_U3,       /* U3(theta, phi, delta) */
    QODE_GATE_CNOT,     /* wires: control, target */
    QODE_GATE_CZ,
    QODE_GATE_SWAP,
    QODE_GATE_CRX,      /* wires: control, target */
    QODE_GATE_CRY,
    QODE_GATE_CRZ,
    QODE_GATE_ISINGXX,
    QODE_GATE_ISINGYY,
    QODE_GATE_ISINGZZ,
    QODE_GATE_TOFFOLI,  /* wires: control, control, target */
    QODE_GATE_UNITARY1, /* any 2x2 unitary, constant */
    QODE_GATE_UNITARY2, /* any 4x4 unitary, constant */
    QODE_GATE_COUNT
} qode_gate_kind;

typedef enum {
    QODE_PARAM_DATA = 0,
    QODE_PARAM_TRAINABLE = 1,
    QODE_PARAM_CONSTANT = 2
} qode_param_source;

typedef struct {
    int32_t source;  /* a qode_param_source */
    int32_t index;   /* data column or trainable entry; unused for constants */
    double value;    /* the constant; unused otherwise */
} qode_param_ref;

typedef struct {
    int32_t kind;          /* a qode_gate_kind */
    int32_t wires[3];      /* the first qode_gate_wires(kind) are used */
    int32_t param_start;   /* first of qode_gate_params(kind) refs in `refs` */
    int32_t matrix_offset; /* UNITARY1/2 only: first complex entry in `matrices` */
} qode_op;

typedef struct {
    int32_t n_qubits;
    int32_t n_ops;
    const qode_op *ops;
    int32_t n_refs;
    const qode_param_ref *refs;
    int64_t n_matrix_entries;   /* complex entries in `matrices` */
    const double *matrices;     /* interleaved complex, may be NULL if unused */
    int32_t n_data;             /* columns of the per-circuit data matrix */
    int32_t n_trainable;        /* length of the shared trainable vector */
} qode_circuit;

/* Observables: `n_obs` weighted sums of Pauli words.  Observable k is the sum
 * of terms term_start[k] .. term_start[k+1]-1; term t is
 * coeff[t] * P_t, where the Pauli word P_t is given by two bit masks over
 * basis-index bits (bit n-1-w for wire w): x_mask has a 1 where the word has X
 * or Y, z_mask where it has Z or Y.  Then
 *   P |i> = i^{#Y} (-1)^{popcount(i & z_mask)} |i ^ x_mask>. */
typedef struct {
    int32_t n_obs;
    const int64_t *term_start; /* n_obs + 1 entries, term_start[0] == 0 */
    const uint64_t *x_mask;
    const uint64_t *z_mask;
    const double *coeff;
} qode_observables;

/* Number of wires and of angle parameters of a gate kind (0 if unknown). */
int qode_gate_wires(int kind);
int qode_gate_params(int kind);
/* Human-readable gate name ("RX", "CNOT", ...), "?" if unknown. */
const char *qode_gate_name(int kind);

/* Checks the structure of a circuit: qubit count, gate kinds, wires in range
 * and distinct, parameter references in range, unitary matrices present.
 * On failure writes a sentence into msg (if msg != NULL). */
qode_status qode_circuit_validate(const qode_circuit *c, char *msg, size_t msg_len);

/* Checks observables against n_qubits (masks in range, offsets monotone). */
qode_status qode_observables_validate(const qode_observables *obs, int32_t n_qubits,
                                      char *msg, size_t msg_len);

/* Checks that every angle the circuit reads (data of all `batch` rows,
 * trainable vector, constants) is finite. */
qode_status qode_circuit_check_params(const qode_circuit *c, int64_t batch,
                                      const double *data, const double *trainable,
                                      char *msg, size_t msg_len);

/* Bytes needed for `batch` state vectors of n qubits of the given complex
 * dtype.  Returns QODE_ERR_NO_MEMORY (with a message naming the size) on
 * overflow of size_t. */
qode_status qode_qstate_bytes(int32_t n_qubits, int64_t batch, qode_dtype dtype,
                             size_t *bytes, char *msg, size_t msg_len);

#endif /* QODE_QUANTUM_CIRCUIT_H */

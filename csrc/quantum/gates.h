/* Gate matrices in the few shapes the state kernels understand.
 *
 * Every gate of the catalogue (circuit.h) is lowered to one of these forms,
 * each with its own bit-index loop in kernels_impl.h:
 *   DENSE1: a 2x2 matrix on one target bit;
 *   DIAG1:  diag(d0, d1) on one target bit (phase multiplies only);
 *   CTRL1:  a 2x2 matrix on the target bit, applied only where every control
 *           bit is 1 (the control=0 part is left alone);
 *   FLIP:   X on the target where every control bit is 1 (X, CNOT, Toffoli:
 *           a swap of amplitudes, no arithmetic);
 *   DENSE2: a 4x4 matrix on two bits (hi = first wire, lo = second wire).
 * Matrices are row-major, interleaved complex doubles.
 *
 * A derivative dU/dtheta uses the same forms with one difference for CTRL1 and
 * FLIP: the derivative is ZERO on the control=0 part (the constant identity
 * there has no derivative); adjoint.c accounts for that when it forms
 * <lambda| dU |phi>.
 */
#ifndef QODE_QUANTUM_GATES_H
#define QODE_QUANTUM_GATES_H

#include <stdint.h>

#include "quantum/circuit.h"

typedef enum {
    QODE_FORM_DENSE1 = 0,
    QODE_FORM_DIAG1,
    QODE_FORM_CTRL1,
    QODE_FORM_FLIP,
    QODE_FORM_DENSE2
} qode_gate_form;

typedef struct {
    int form;           /* a qode_gate_form */
    int target;         /* bit index of the target (DENSE2: bit of first wire) */
    int target2;        /* DENSE2: bit of the second wire */
    uint64_t ctrl_mask; /* CTRL1 / FLIP: bits that must all be 1 */
    double m[32];       /* DENSE1/CTRL1: 4 complex; DIAG1: 2; DENSE2: 16 */
} qode_gate_matrix;

/* The matrix of op `op` of circuit `c` with angles `angles` (its
 * qode_gate_params(kind) angles, already resolved from their sources). */
void qode_gate_build(const qode_circuit *c, const qode_op *op, const double *angles,
                     qode_gate_matrix *out);

/* The derivative of that matrix with respect to angle `which`. */
void qode_gate_derivative(const qode_circuit *c, const qode_op *op, const double *angles,
                          int which, qode_gate_matrix *out);

/* Replaces g by its conjugate transpose (the inverse of a unitary gate). */
void qode_gate_dagger(qode_gate_matrix *g);

/* The bit positions a gate fixes (targets and controls), ascending, in pos;
 * returns how many (at most 4). */
int qode_gate_fixed_positions(const qode_gate_matrix *g, int pos[4]);

/* Resolves the angles of `op` for circuit row `data_row` (may be NULL when the
 * circuit has no data columns). */
void qode_op_angles(const qode_circuit *c, const qode_op *op, const double *data_row,
                    const double *trainable, double *angles);

/* 1 if any angle of op comes from the per-circuit data. */
int qode_op_uses_data(const qode_circuit *c, const qode_op *op);

#endif /* QODE_QUANTUM_GATES_H */

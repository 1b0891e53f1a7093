/* Gate matrices that the whole batch shares, computed once per call.
 *
 * An op whose angles are all trainable or constant has the same matrix in
 * every circuit of the batch; its matrix, inverse and derivatives are built
 * once here instead of once per circuit.  Ops that read data are rebuilt per
 * circuit (a few sin/cos), by qode_prepared_op. */
#ifndef QODE_QUANTUM_PREPARE_H
#define QODE_QUANTUM_PREPARE_H

#include "quantum/gates.h"

typedef struct {
    int uses_data;
    qode_gate_matrix forward;
    qode_gate_matrix inverse;
    qode_gate_matrix derivative[3];
} qode_prepared_gate;

/* Allocates and fills one entry per op (NULL when out of memory).  The
 * derivatives are built only when with_derivatives is nonzero. */
qode_prepared_gate *qode_prepare_gates(const qode_circuit *c, const double *trainable,
                                       int with_derivatives);

/* The matrices of op k for the circuit with data row `data_row`: either the
 * shared entry, or `scratch` filled for this circuit.  mode: 0 = forward only,
 * 1 = inverse and derivatives. */
const qode_prepared_gate *qode_prepared_op(const qode_circuit *c, const qode_prepared_gate *p,
                                           int k, const double *data_row,
                                           const double *trainable, int mode,
                                           qode_prepared_gate *scratch);

#endif /* QODE_QUANTUM_PREPARE_H */

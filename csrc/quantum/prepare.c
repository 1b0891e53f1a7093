#include <stdlib.h>

#include "quantum/prepare.h"

static void fill(const qode_circuit *c, const qode_op *op, const double *data_row,
                 const double *trainable, int with_derivatives, qode_prepared_gate *g)
{
    double angles[3];
    qode_op_angles(c, op, data_row, trainable, angles);
    qode_gate_build(c, op, angles, &g->forward);
    if (!with_derivatives)
        return;
    g->inverse = g->forward;
    qode_gate_dagger(&g->inverse);
    int np = qode_gate_params(op->kind);
    for (int j = 0; j < np; j++)
        if (c->refs[op->param_start + j].source != QODE_PARAM_CONSTANT)
            qode_gate_derivative(c, op, angles, j, &g->derivative[j]);
}

qode_prepared_gate *qode_prepare_gates(const qode_circuit *c, const double *trainable,
                                       int with_derivatives)
{
    size_t n = c->n_ops > 0 ? (size_t)c->n_ops : 1;
    qode_prepared_gate *p = calloc(n, sizeof *p);
    if (p == NULL)
        return NULL;
    for (int32_t k = 0; k < c->n_ops; k++) {
        p[k].uses_data = qode_op_uses_data(c, &c->ops[k]);
        if (!p[k].uses_data)
            fill(c, &c->ops[k], NULL, trainable, with_derivatives, &p[k]);
    }
    return p;
}

const qode_prepared_gate *qode_prepared_op(const qode_circuit *c, const qode_prepared_gate *p,
                                           int k, const double *data_row,
                                           const double *trainable, int mode,
                                           qode_prepared_gate *scratch)
{
    if (!p[k].uses_data)
        return &p[k];
    fill(c, &c->ops[k], data_row, trainable, mode, scratch);
    scratch->uses_data = 1;
    return scratch;
}

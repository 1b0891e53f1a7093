/* Validation of circuits, observables and angles, and the memory estimate.
 * Every entry point of the simulator runs these first, so the kernels can
 * trust wires, indices and sizes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "quantum/circuit.h"

/* 2^62 amplitudes is far beyond any memory; it also keeps masks in uint64. */
#define QODE_MAX_QUBITS 62

static void say(char *msg, size_t len, const char *text)
{
    if (msg != NULL && len > 0)
        snprintf(msg, len, "%s", text);
}

qode_status qode_circuit_validate(const qode_circuit *c, char *msg, size_t len)
{
    char buf[256];
    if (c->n_qubits < 1 || c->n_qubits > QODE_MAX_QUBITS) {
        snprintf(buf, sizeof buf, "n_qubits must be between 1 and %d, got %d",
                 QODE_MAX_QUBITS, (int)c->n_qubits);
        say(msg, len, buf);
        return QODE_ERR_INVALID_ARGUMENT;
    }
    if (c->n_ops < 0 || c->n_refs < 0 || c->n_data < 0 || c->n_trainable < 0 ||
        c->n_matrix_entries < 0) {
        say(msg, len, "negative sizes in the circuit description");
        return QODE_ERR_INVALID_ARGUMENT;
    }
    for (int32_t i = 0; i < c->n_ops; i++) {
        const qode_op *op = &c->ops[i];
        int nw = qode_gate_wires(op->kind);
        if (nw == 0) {
            snprintf(buf, sizeof buf, "op %d: unknown gate kind %d", (int)i, (int)op->kind);
            say(msg, len, buf);
            return QODE_ERR_INVALID_ARGUMENT;
        }
        for (int k = 0; k < nw; k++) {
            if (op->wires[k] < 0 || op->wires[k] >= c->n_qubits) {
                snprintf(buf, sizeof buf, "op %d (%s): wire %d out of range for %d qubits",
                         (int)i, qode_gate_name(op->kind), (int)op->wires[k],
                         (int)c->n_qubits);
                say(msg, len, buf);
                return QODE_ERR_INVALID_ARGUMENT;
            }
            for (int j = 0; j < k; j++) {
                if (op->wires[j] == op->wires[k]) {
                    snprintf(buf, sizeof buf, "op %d (%s): wire %d repeated; the wires of a "
                             "multi-qubit gate must be distinct",
                             (int)i, qode_gate_name(op->kind), (int)op->wires[k]);
                    say(msg, len, buf);
                    return QODE_ERR_INVALID_ARGUMENT;
                }
            }
        }
        int np = qode_gate_params(op->kind);
        if (np > 0 && (op->param_start < 0 || op->param_start > c->n_refs - np)) {
            snprintf(buf, sizeof buf, "op %d (%s): parameter references %d..%d out of range "
                     "(%d references)", (int)i, qode_gate_name(op->kind),
                     (int)op->param_start, (int)op->param_start + np - 1, (int)c->n_refs);
            say(msg, len, buf);
            return QODE_ERR_INVALID_ARGUMENT;
        }
        for (int k = 0; k < np; k++) {
            const qode_param_ref *r = &c->refs[op->param_start + k];
            int32_t limit = r->source == QODE_PARAM_DATA ? c->n_data : c->n_trainable;
            if (r->source != QODE_PARAM_CONSTANT &&
                ((r->source != QODE_PARAM_DATA && r->source != QODE_PARAM_TRAINABLE) ||
                 r->index < 0 || r->index >= limit)) {
                snprintf(buf, sizeof buf, "op %d (%s): parameter %d refers to %s index %d, "
                         "but there are %d", (int)i, qode_gate_name(op->kind), k,
                         r->source == QODE_PARAM_DATA ? "data column" : "trainable",
                         (int)r->index, (int)limit);
                say(msg, len, buf);
                return QODE_ERR_INVALID_ARGUMENT;
            }
        }
        if (op->kind == QODE_GATE_UNITARY1 || op->kind == QODE_GATE_UNITARY2) {
            int64_t entries = op->kind == QODE_GATE_UNITARY1 ? 4 : 16;
            if (c->matrices == NULL || op->matrix_offset < 0 ||
                op->matrix_offset > c->n_matrix_entries - entries) {
                snprintf(buf, sizeof buf, "op %d (QubitUnitary): matrix offset %d out of range",
                         (int)i, (int)op->matrix_offset);
                say(msg, len, buf);
                return QODE_ERR_INVALID_ARGUMENT;
            }
        }
    }
    return QODE_OK;
}

qode_status qode_observables_validate(const qode_observables *obs, int32_t n_qubits,
                                      char *msg, size_t len)
{
    char buf[200];
    if (obs->n_obs < 0 || obs->term_start[0] != 0) {
        say(msg, len, "observables: term offsets must start at 0");
        return QODE_ERR_INVALID_ARGUMENT;
    }
    uint64_t allowed = (n_qubits >= 64) ? ~(uint64_t)0 : (((uint64_t)1 << n_qubits) - 1);
    for (int32_t k = 0; k < obs->n_obs; k++) {
        if (obs->term_start[k + 1] < obs->term_start[k]) {
            say(msg, len, "observables: term offsets must not decrease");
            return QODE_ERR_INVALID_ARGUMENT;
        }
        for (int64_t t = obs->term_start[k]; t < obs->term_start[k + 1]; t++) {
            if ((obs->x_mask[t] | obs->z_mask[t]) & ~allowed) {
                snprintf(buf, sizeof buf, "observable %d acts on a wire beyond the %d qubits "
                         "of the circuit", (int)k, (int)n_qubits);
                say(msg, len, buf);
                return QODE_ERR_INVALID_ARGUMENT;
            }
            if (!isfinite(obs->coeff[t])) {
                snprintf(buf, sizeof buf, "observable %d has a non-finite coefficient", (int)k);
                say(msg, len, buf);
                return QODE_ERR_NONFINITE;
            }
        }
    }
    return QODE_OK;
}

/* The index of the first NaN or infinity in x[0..count), or count.  A
 * double is not finite when its exponent bits are all ones, and only then
 * does adding 1 to its exponent carry into the top bit.  Or-ing that over a
 * block (no compare, no early exit) vectorises: a batch of data is checked
 * on every call.  Only a block with a hit is searched value by value. */
static int64_t first_nonfinite(const double *x, int64_t count)
{
    const uint64_t exponent = 0x7FF0000000000000ull, one = 1ull << 52;
    for (int64_t start = 0; start < count; start += 1024) {
        int64_t end = count - start < 1024 ? count : start + 1024;
        uint64_t carry = 0;
        for (int64_t i = start; i < end; i++) {
            uint64_t bits;
            memcpy(&bits, &x[i], sizeof bits);
            carry |= (bits & exponent) + one;
        }
        if (carry >> 63)
            for (int64_t i = start; i < end; i++)
                if (!isfinite(x[i]))
                    return i;
    }
    return count;
}

qode_status qode_circuit_check_params(const qode_circuit *c, int64_t batch,
                                      const double *data, const double *trainable,
                                      char *msg, size_t len)
{
    char buf[200];
    int64_t values = batch * (int64_t)c->n_data, i = first_nonfinite(data, values);
    if (i < values) {
        snprintf(buf, sizeof buf, "non-finite angle %g in the data of circuit %lld, "
                 "column %lld", data[i], (long long)(i / c->n_data),
                 (long long)(i % c->n_data));
        say(msg, len, buf);
        return QODE_ERR_NONFINITE;
    }
    for (int32_t i = 0; i < c->n_trainable; i++) {
        if (!isfinite(trainable[i])) {
            snprintf(buf, sizeof buf, "non-finite trainable angle %g at index %d",
                     trainable[i], (int)i);
            say(msg, len, buf);
            return QODE_ERR_NONFINITE;
        }
    }
    for (int32_t i = 0; i < c->n_refs; i++) {
        if (c->refs[i].source == QODE_PARAM_CONSTANT && !isfinite(c->refs[i].value)) {
            snprintf(buf, sizeof buf, "non-finite constant angle %g", c->refs[i].value);
            say(msg, len, buf);
            return QODE_ERR_NONFINITE;
        }
    }
    for (int64_t i = 0; i < 2 * c->n_matrix_entries; i++) {
        if (!isfinite(c->matrices[i])) {
            say(msg, len, "non-finite entry in a QubitUnitary matrix");
            return QODE_ERR_NONFINITE;
        }
    }
    return QODE_OK;
}

qode_status qode_qstate_bytes(int32_t n_qubits, int64_t batch, qode_dtype dtype,
                             size_t *bytes, char *msg, size_t len)
{
    char buf[256];
    size_t elem = qode_dtype_size(dtype);
    /* Computed in long double so the message can name sizes beyond size_t
     * (ldexpl, exact for a power of two: powl cost a microsecond per call). */
    long double need = ldexpl((long double)elem * (long double)(batch < 1 ? 1 : batch),
                              n_qubits);
    if (n_qubits >= 63 || need > (long double)SIZE_MAX / 4) {
        snprintf(buf, sizeof buf, "%lld state vectors of %d qubits need %.4Lg bytes, more "
                 "than can be addressed", (long long)batch, (int)n_qubits, need);
        say(msg, len, buf);
        return QODE_ERR_NO_MEMORY;
    }
    *bytes = (size_t)need;
    return QODE_OK;
}

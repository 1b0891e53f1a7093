/* Shared declarations of the CPython binding (`qode._C`).
 *
 * Only files under csrc/binding/ include Python or NumPy headers.  Each domain
 * (solver, quantum, social, qode) has one binding file that exports a
 * NULL-terminated PyMethodDef table; module.c adds all of them to the module.
 */
#ifndef QODE_BINDING_H
#define QODE_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* One NumPy C-API table shared by every binding file (see module.c). */
#define PY_ARRAY_UNIQUE_SYMBOL qode_ARRAY_API
#ifndef QODE_BINDING_MAIN
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "common/dtype.h"
#include "common/status.h"

/* Method tables of the domains. */
extern PyMethodDef qode_solver_methods[];
extern PyMethodDef qode_social_methods[];
extern PyMethodDef qode_quantum_methods[];
extern PyMethodDef qode_field_methods[];

/* Sets a Python exception for a failed core status unless one is already set
 * (a callback that raised keeps its own exception).  `detail` may be NULL.
 * Always returns NULL so callers can `return qode_raise_status(...)`. */
PyObject *qode_raise_status(qode_status status, const char *detail);

/* Maps a NumPy type number to a qode dtype; returns -1 if unsupported. */
int qode_dtype_from_numpy(int type_num);

/* Maps a qode dtype to its NumPy type number. */
int qode_numpy_type(qode_dtype dtype);

/* A read-only view of a contiguous CPU buffer borrowed from a NumPy array or
 * a DLPack capsule.  `owner` keeps the memory alive; release with
 * qode_buffer_release. */
typedef struct {
    const void *data;
    Py_ssize_t size;  /* number of elements */
    qode_dtype dtype;
    PyObject *owner;
} qode_buffer;

/* Borrows `obj` (an ndarray or a "dltensor" capsule) as a contiguous buffer.
 * Non-contiguous arrays are copied.  `what` names the object in error
 * messages.  Returns 0 on success, -1 with a Python exception set. */
int qode_buffer_from_object(PyObject *obj, const char *what, qode_buffer *out);
void qode_buffer_release(qode_buffer *buffer);

/* A native vector field parsed from its Python description (field_binding.c):
 * an MLP field, or (kind "adjoint") the continuous-adjoint augmented system of
 * one.  The solver reaches it through qode_native_rhs / qode_native_vjp /
 * qode_native_poll with the struct itself as the callback context. */
#include "fields/mlp.h"
#include "solver/adjoint_dynamics.h"

typedef struct {
    qode_mlp mlp;
    size_t widths[QODE_MLP_MAX_LAYERS + 1];
    const void *weights[QODE_MLP_MAX_LAYERS];
    const void *biases[QODE_MLP_MAX_LAYERS];
    qode_adjoint_dynamics adjoint;
    int is_adjoint;
    PyObject *owned[2 * QODE_MLP_MAX_LAYERS + 1];  /* arrays kept alive while in use */
    size_t n_owned;
    double last_poll;  /* seconds, for qode_native_poll */
} qode_native_field;

/* Parses a description for a state of `n_state` elements of `dtype`; the
 * arrays it names are borrowed (not copied).  Returns 0, or -1 with an
 * exception set (and nothing to free). */
int qode_native_field_parse(PyObject *spec, qode_dtype dtype, size_t n_state,
                            qode_native_field *field);
void qode_native_field_free(qode_native_field *field);
/* The solver callbacks of a parsed field (ctx = the qode_native_field). */
int qode_native_rhs(void *ctx, double t, const void *y, void *dydt);
int qode_native_vjp(void *ctx, double t, const void *y, const void *v, void *y_bar,
                    double *t_bar);
/* A qode_interrupt_fn for solves that run without the GIL. */
int qode_native_poll(void *ctx);

#endif /* QODE_BINDING_H */

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

#endif /* QODE_BINDING_H */

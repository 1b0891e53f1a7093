/* Binding of the native vector fields (csrc/fields/).
 *
 * Python describes a native field with a tuple (see qode/fields.py):
 *   ("mlp", batch, widths, activation, time_input, weights, biases, grads)
 * where the arrays are zero-copy NumPy views of the module's parameters and
 * `grads` is one flat gradient accumulator (weights, then biases) or None;
 * or ("adjoint", mlp_description) for the MLP's continuous-adjoint system.  The
 * solver then calls the C field directly, with the GIL released, and
 * `field_rhs` / `field_vjp` evaluate it once (for the module's own forward
 * and backward outside a solve).
 */
#include "binding/binding.h"

#include <string.h>
#include <time.h>

#include "fields/mlp.h"

static double seconds_now(void)
{
    struct timespec now;
    timespec_get(&now, TIME_UTC);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* Borrows one array of `count` elements of the state's type; with `writeable`
 * it must be writeable (a gradient accumulator). */
static int borrow(qode_native_field *f, PyObject *obj, int type_num, size_t count, int writeable,
                  const char *what, void **data)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "native field: %s must be a NumPy array", what);
        return -1;
    }
    PyArrayObject *array = (PyArrayObject *)obj;
    if (PyArray_TYPE(array) != type_num || !PyArray_IS_C_CONTIGUOUS(array) ||
        (size_t)PyArray_SIZE(array) != count || (writeable && !PyArray_ISWRITEABLE(array))) {
        PyErr_Format(PyExc_ValueError,
                     "native field: %s must be a contiguous%s array of %zu elements of the "
                     "state's dtype",
                     what, writeable ? " writeable" : "", count);
        return -1;
    }
    if (f->n_owned == sizeof(f->owned) / sizeof(f->owned[0])) {
        PyErr_SetString(PyExc_ValueError, "native field: too many arrays");
        return -1;
    }
    Py_INCREF(obj);
    f->owned[f->n_owned++] = obj;
    *data = PyArray_DATA(array);
    return 0;
}

/* Item `layer` of a tuple of per-layer arrays. */
static PyObject *layer_item(PyObject *sequence, size_t layer, size_t n_layers, const char *what)
{
    if (!PyTuple_Check(sequence) || (size_t)PyTuple_GET_SIZE(sequence) != n_layers) {
        PyErr_Format(PyExc_ValueError, "native field: %s must be a tuple of %zu arrays", what,
                     n_layers);
        return NULL;
    }
    return PyTuple_GET_ITEM(sequence, layer);
}

static int parse_widths(PyObject *obj, qode_native_field *f, size_t *n_layers)
{
    PyArrayObject *widths = (PyArrayObject *)PyArray_FROMANY(obj, NPY_INT64, 1, 1,
                                                             NPY_ARRAY_C_CONTIGUOUS);
    if (widths == NULL)
        return -1;
    Py_ssize_t n_widths = PyArray_SIZE(widths);
    const int64_t *data = PyArray_DATA(widths);
    int bad = n_widths < 2 || n_widths > QODE_MLP_MAX_LAYERS + 1;
    for (Py_ssize_t l = 0; !bad && l < n_widths; l++) {
        bad = data[l] <= 0;
        f->widths[l] = bad ? 0 : (size_t)data[l];
    }
    Py_DECREF(widths);
    if (bad) {
        PyErr_Format(PyExc_ValueError, "native field: 2 to %d positive widths are needed",
                     QODE_MLP_MAX_LAYERS + 1);
        return -1;
    }
    *n_layers = (size_t)n_widths - 1;
    return 0;
}

/* ("mlp", batch, widths, activation, time_input, weights, biases, grads). */
static int parse_mlp(PyObject *spec, qode_dtype dtype, qode_native_field *f)
{
    const char *kind = NULL;
    Py_ssize_t batch = 0;
    int activation = 0, time_input = 0;
    PyObject *widths, *weights, *biases, *grads;
    if (!PyArg_ParseTuple(spec, "snOiiOOO", &kind, &batch, &widths, &activation, &time_input,
                          &weights, &biases, &grads))
        return -1;
    qode_mlp *m = &f->mlp;
    if (batch < 0 || parse_widths(widths, f, &m->n_layers) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "native field: the batch must be >= 0");
        return -1;
    }
    m->dtype = dtype;
    m->batch = (size_t)batch;
    m->widths = f->widths;
    m->time_input = time_input != 0;
    m->activation = (qode_activation)activation;
    m->weights = f->weights;
    m->biases = biases == Py_None ? NULL : f->biases;
    int type_num = qode_numpy_type(dtype);
    for (size_t l = 0; l < m->n_layers; l++) {
        size_t n_out = f->widths[l + 1];
        size_t n_weights = n_out * (f->widths[l] + (l == 0 ? (size_t)m->time_input : 0));
        PyObject *w = layer_item(weights, l, m->n_layers, "weights");
        if (w == NULL || borrow(f, w, type_num, n_weights, 0, "a weight", (void **)&f->weights[l]) < 0)
            return -1;
        if (biases != Py_None) {
            PyObject *b = layer_item(biases, l, m->n_layers, "biases");
            if (b == NULL || borrow(f, b, type_num, n_out, 0, "a bias", (void **)&f->biases[l]) < 0)
                return -1;
        }
    }
    char message[256] = "";
    if (qode_mlp_check(m, message, sizeof(message)) != QODE_OK) {
        PyErr_Format(PyExc_ValueError, "native field: %s", message);
        return -1;
    }
    if (grads != Py_None &&
        borrow(f, grads, type_num, qode_mlp_n_params(m), 1, "the gradient accumulator",
               &m->grads) < 0)
        return -1;
    return 0;
}

int qode_native_field_parse(PyObject *spec, qode_dtype dtype, size_t n_state,
                            qode_native_field *f)
{
    memset(f, 0, sizeof(*f));
    if (dtype != QODE_FLOAT32 && dtype != QODE_FLOAT64) {
        PyErr_SetString(PyExc_TypeError, "native fields take float32 or float64 states");
        return -1;
    }
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 2 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(spec, 0))) {
        PyErr_SetString(PyExc_TypeError, "native must be a field description tuple");
        return -1;
    }
    const char *kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0));
    PyObject *mlp_spec = spec;
    f->is_adjoint = kind != NULL && strcmp(kind, "adjoint") == 0;
    if (f->is_adjoint)
        mlp_spec = PyTuple_GET_ITEM(spec, 1);
    if (kind == NULL || (!f->is_adjoint && strcmp(kind, "mlp") != 0)) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "unknown native field kind '%s'", kind);
        goto error;
    }
    if (!PyTuple_Check(mlp_spec) || parse_mlp(mlp_spec, dtype, f) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "native must be a field description tuple");
        goto error;
    }
    qode_mlp *m = &f->mlp;
    size_t n = qode_mlp_state_size(m);
    if (f->is_adjoint) {
        qode_adjoint_dynamics *d = &f->adjoint;
        d->dtype = dtype;
        d->n = n;
        d->n_params = qode_mlp_n_params(m);
        d->field_vjp = qode_mlp_field_vjp;
        d->field_ctx = m;
    }
    size_t expected = f->is_adjoint ? qode_adjoint_state_size(&f->adjoint) : n;
    if (expected != n_state) {
        PyErr_Format(PyExc_ValueError,
                     "native field: the state has %zu elements where the field expects %zu",
                     n_state, expected);
        goto error;
    }
    size_t scratch = f->is_adjoint ? n * qode_dtype_size(dtype) : 0;
    m->work = PyMem_Calloc(1, qode_mlp_work_bytes(m) + scratch + 1);
    if (m->work == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    if (f->is_adjoint)  /* -a goes after the MLP's own work space */
        f->adjoint.minus_a = (char *)m->work + qode_mlp_work_bytes(m);
    f->last_poll = seconds_now();
    return 0;
error:
    qode_native_field_free(f);
    return -1;
}

void qode_native_field_free(qode_native_field *f)
{
    for (size_t i = 0; i < f->n_owned; i++)
        Py_DECREF(f->owned[i]);
    f->n_owned = 0;
    PyMem_Free(f->mlp.work);
    f->mlp.work = NULL;
}

int qode_native_rhs(void *ctx, double t, const void *y, void *dydt)
{
    qode_native_field *f = ctx;
    if (f->is_adjoint)
        return qode_adjoint_dynamics_rhs(&f->adjoint, t, y, dydt);
    return qode_mlp_rhs(&f->mlp, t, y, dydt);
}

int qode_native_vjp(void *ctx, double t, const void *y, const void *v, void *y_bar,
                    double *t_bar)
{
    qode_native_field *f = ctx;
    if (f->is_adjoint)
        return -1;  /* backpropagating through the adjoint solve is not offered */
    return qode_mlp_vjp(&f->mlp, t, y, v, y_bar, t_bar);
}

/* Runs without the GIL: takes it to look for Ctrl-C at most every 0.2 s, so
 * that a long native solve can be interrupted without slowing every step. */
int qode_native_poll(void *ctx)
{
    qode_native_field *f = ctx;
    double now = seconds_now();
    if (now - f->last_poll < 0.2)
        return 0;
    f->last_poll = now;
    PyGILState_STATE gil = PyGILState_Ensure();
    int status = PyErr_CheckSignals();
    PyGILState_Release(gil);
    return status;
}

/* Parses native=..., t=..., y=... (and v=... for the VJP). */
static int field_call_args(PyObject *kwargs, int with_v, qode_native_field *f, double *t,
                           PyArrayObject **y, PyArrayObject **v)
{
    PyObject *spec = kwargs ? PyDict_GetItemString(kwargs, "native") : NULL;
    PyObject *t_obj = kwargs ? PyDict_GetItemString(kwargs, "t") : NULL;
    PyObject *y_obj = kwargs ? PyDict_GetItemString(kwargs, "y") : NULL;
    PyObject *v_obj = kwargs && with_v ? PyDict_GetItemString(kwargs, "v") : NULL;
    if (spec == NULL || t_obj == NULL || y_obj == NULL || (with_v && v_obj == NULL)) {
        PyErr_SetString(PyExc_TypeError, with_v ? "field_vjp needs native, t, y and v"
                                                : "field_rhs needs native, t and y");
        return -1;
    }
    *t = PyFloat_AsDouble(t_obj);
    if (PyErr_Occurred())
        return -1;
    *y = (PyArrayObject *)PyArray_FROM_OF(y_obj, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (*y == NULL)
        return -1;
    int dtype = qode_dtype_from_numpy(PyArray_TYPE(*y));
    if (dtype < 0) {
        PyErr_SetString(PyExc_TypeError, "native fields take float32 or float64 states");
        return -1;
    }
    if (with_v) {
        *v = (PyArrayObject *)PyArray_FROM_OTF(v_obj, PyArray_TYPE(*y),
                                               NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
        if (*v == NULL)
            return -1;
        if (PyArray_SIZE(*v) != PyArray_SIZE(*y)) {
            PyErr_SetString(PyExc_ValueError, "v must have as many elements as y");
            return -1;
        }
    }
    return qode_native_field_parse(spec, (qode_dtype)dtype, (size_t)PyArray_SIZE(*y), f);
}

static PyObject *field_rhs(PyObject *self, PyObject *args, PyObject *kwargs)
{
    qode_native_field f;
    PyArrayObject *y = NULL;
    double t = 0.0;
    memset(&f, 0, sizeof(f));
    PyObject *out = NULL;
    if (field_call_args(kwargs, 0, &f, &t, &y, NULL) == 0) {
        out = PyArray_NewLikeArray(y, NPY_CORDER, NULL, 0);
        if (out != NULL) {
            Py_BEGIN_ALLOW_THREADS
            qode_native_rhs(&f, t, PyArray_DATA(y), PyArray_DATA((PyArrayObject *)out));
            Py_END_ALLOW_THREADS
        }
        qode_native_field_free(&f);
    }
    Py_XDECREF(y);
    return out;
}

static PyObject *field_vjp(PyObject *self, PyObject *args, PyObject *kwargs)
{
    qode_native_field f;
    PyArrayObject *y = NULL, *v = NULL;
    double t = 0.0, t_bar = 0.0;
    memset(&f, 0, sizeof(f));
    PyObject *result = NULL;
    if (field_call_args(kwargs, 1, &f, &t, &y, &v) == 0) {
        PyObject *y_bar = PyArray_NewLikeArray(y, NPY_CORDER, NULL, 0);
        int status = 0;
        if (y_bar != NULL) {
            Py_BEGIN_ALLOW_THREADS
            status = qode_native_vjp(&f, t, PyArray_DATA(y), PyArray_DATA(v),
                                     PyArray_DATA((PyArrayObject *)y_bar), &t_bar);
            Py_END_ALLOW_THREADS
            if (status != 0) {
                PyErr_SetString(PyExc_ValueError, "this native field has no VJP");
                Py_CLEAR(y_bar);
            }
        }
        if (y_bar != NULL)
            result = Py_BuildValue("(Nd)", y_bar, t_bar);
        qode_native_field_free(&f);
    }
    Py_XDECREF(y);
    Py_XDECREF(v);
    return result;
}

PyMethodDef qode_field_methods[] = {
    {"field_rhs", (PyCFunction)(void (*)(void))field_rhs, METH_VARARGS | METH_KEYWORDS,
     "field_rhs(native=, t=, y=) -> f(t, y) of a native field."},
    {"field_vjp", (PyCFunction)(void (*)(void))field_vjp, METH_VARARGS | METH_KEYWORDS,
     "field_vjp(native=, t=, y=, v=) -> (y_bar, t_bar); adds parameter gradients to the "
     "field's gradient arrays."},
    {NULL, NULL, 0, NULL},
};

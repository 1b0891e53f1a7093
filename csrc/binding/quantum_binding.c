/* Python binding of the batched quantum simulator (csrc/quantum/).
 *
 * The Python side (python/qode/quantum/) packs a circuit as a tuple
 *   spec = (n_qubits, ops, refs, ref_values, matrices, n_data, n_trainable)
 *     ops        int32 (n_ops, 6): kind, wire0, wire1, wire2, param_start, matrix_offset
 *     refs       int32 (n_refs, 2): source, index
 *     ref_values float64 (n_refs,): constants
 *     matrices   complex128 (n_entries,): QubitUnitary matrices, row-major
 * and observables as
 *   obs = (term_start int64 (n_obs+1,), x_mask uint64, z_mask uint64, coeff float64).
 * Arrays are converted (copied only if needed) to C-contiguous NumPy arrays of
 * the expected type; the C core is then called with the GIL released.
 */
#include "binding/binding.h"

#include <unistd.h>
#include "quantum/simulate.h"

#define MSG_LEN 512

/* Like qode_raise_status, but a non-finite angle or coefficient is bad input
 * here (ValueError), not a numerical failure during a solve. */
static PyObject *raise_quantum(qode_status status, const char *msg)
{
    if (status == QODE_ERR_NONFINITE && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, msg);
        return NULL;
    }
    return qode_raise_status(status, msg);
}

/* A C-contiguous array of `type` from any array-like, or NULL with an error
 * naming `what`.  ndim < 0 accepts any rank. */
static PyArrayObject *as_array(PyObject *obj, int type, int ndim, const char *what)
{
    PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(
        obj, type, 0, 0, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    if (a == NULL) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s could not be converted to a numeric array", what);
        return NULL;
    }
    if (ndim >= 0 && PyArray_NDIM(a) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must have %d dimension(s), got %d", what, ndim,
                     PyArray_NDIM(a));
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

/* The circuit spec and the arrays that back it. */
typedef struct {
    qode_circuit c;
    PyArrayObject *ops_a, *refs_a, *values_a, *matrices_a;
    qode_op *ops;
    qode_param_ref *refs;
} circuit_view;

static void circuit_release(circuit_view *v)
{
    Py_CLEAR(v->ops_a);
    Py_CLEAR(v->refs_a);
    Py_CLEAR(v->values_a);
    Py_CLEAR(v->matrices_a);
    PyMem_Free(v->ops);
    PyMem_Free(v->refs);
    v->ops = NULL;
    v->refs = NULL;
}

static int circuit_from_spec(PyObject *spec, circuit_view *v)
{
    memset(v, 0, sizeof *v);
    PyObject *ops, *refs, *values, *matrices;
    int n_qubits, n_data, n_trainable;
    if (!PyArg_ParseTuple(spec, "iOOOOii;circuit spec", &n_qubits, &ops, &refs, &values,
                          &matrices, &n_data, &n_trainable))
        return -1;
    v->ops_a = as_array(ops, NPY_INT32, 2, "circuit ops");
    v->refs_a = as_array(refs, NPY_INT32, 2, "circuit parameter references");
    v->values_a = as_array(values, NPY_FLOAT64, 1, "circuit constants");
    v->matrices_a = as_array(matrices, NPY_COMPLEX128, 1, "circuit unitary matrices");
    if (!v->ops_a || !v->refs_a || !v->values_a || !v->matrices_a)
        goto fail;
    if (PyArray_DIM(v->ops_a, 1) != 6 || PyArray_DIM(v->refs_a, 1) != 2 ||
        PyArray_DIM(v->values_a, 0) != PyArray_DIM(v->refs_a, 0)) {
        PyErr_SetString(PyExc_ValueError, "malformed circuit spec (ops must be (n, 6), refs "
                        "(m, 2), ref_values (m,))");
        goto fail;
    }
    npy_intp n_ops = PyArray_DIM(v->ops_a, 0), n_refs = PyArray_DIM(v->refs_a, 0);
    v->ops = PyMem_Calloc(n_ops > 0 ? n_ops : 1, sizeof(qode_op));
    v->refs = PyMem_Calloc(n_refs > 0 ? n_refs : 1, sizeof(qode_param_ref));
    if (v->ops == NULL || v->refs == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    const int32_t *o = PyArray_DATA(v->ops_a);
    for (npy_intp i = 0; i < n_ops; i++) {
        v->ops[i].kind = o[6 * i];
        v->ops[i].wires[0] = o[6 * i + 1];
        v->ops[i].wires[1] = o[6 * i + 2];
        v->ops[i].wires[2] = o[6 * i + 3];
        v->ops[i].param_start = o[6 * i + 4];
        v->ops[i].matrix_offset = o[6 * i + 5];
    }
    const int32_t *r = PyArray_DATA(v->refs_a);
    const double *val = PyArray_DATA(v->values_a);
    for (npy_intp i = 0; i < n_refs; i++) {
        v->refs[i].source = r[2 * i];
        v->refs[i].index = r[2 * i + 1];
        v->refs[i].value = val[i];
    }
    v->c.n_qubits = n_qubits;
    v->c.n_ops = (int32_t)n_ops;
    v->c.ops = v->ops;
    v->c.n_refs = (int32_t)n_refs;
    v->c.refs = v->refs;
    v->c.n_matrix_entries = PyArray_DIM(v->matrices_a, 0);
    v->c.matrices = PyArray_DATA(v->matrices_a);
    v->c.n_data = n_data;
    v->c.n_trainable = n_trainable;
    return 0;
fail:
    circuit_release(v);
    return -1;
}

typedef struct {
    qode_observables o;
    PyArrayObject *start_a, *x_a, *z_a, *coeff_a;
} obs_view;

static void obs_release(obs_view *v)
{
    Py_CLEAR(v->start_a);
    Py_CLEAR(v->x_a);
    Py_CLEAR(v->z_a);
    Py_CLEAR(v->coeff_a);
}

static int obs_from_spec(PyObject *spec, obs_view *v)
{
    memset(v, 0, sizeof *v);
    PyObject *start, *x, *z, *coeff;
    if (!PyArg_ParseTuple(spec, "OOOO;observables spec", &start, &x, &z, &coeff))
        return -1;
    v->start_a = as_array(start, NPY_INT64, 1, "observable term offsets");
    v->x_a = as_array(x, NPY_UINT64, 1, "observable x masks");
    v->z_a = as_array(z, NPY_UINT64, 1, "observable z masks");
    v->coeff_a = as_array(coeff, NPY_FLOAT64, 1, "observable coefficients");
    if (!v->start_a || !v->x_a || !v->z_a || !v->coeff_a)
        goto fail;
    npy_intp n_terms = PyArray_DIM(v->coeff_a, 0);
    npy_intp n_obs = PyArray_DIM(v->start_a, 0) - 1;
    const int64_t *s = PyArray_DATA(v->start_a);
    if (n_obs < 0 || PyArray_DIM(v->x_a, 0) != n_terms || PyArray_DIM(v->z_a, 0) != n_terms ||
        s[n_obs] != n_terms) {
        PyErr_SetString(PyExc_ValueError, "malformed observables spec");
        goto fail;
    }
    v->o.n_obs = (int32_t)n_obs;
    v->o.term_start = s;
    v->o.x_mask = PyArray_DATA(v->x_a);
    v->o.z_mask = PyArray_DATA(v->z_a);
    v->o.coeff = PyArray_DATA(v->coeff_a);
    return 0;
fail:
    obs_release(v);
    return -1;
}

/* Physical memory of this machine in bytes (0 if unknown).  Asked once: the
 * query is a system call, noticeable next to a small batch of circuits (the
 * GIL is held here, so the cache needs no lock). */
static double physical_memory(void)
{
    static double bytes = -1.0;
    if (bytes < 0.0) {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
        bytes = (pages > 0 && page > 0) ? (double)pages * (double)page : 0.0;
    }
    return bytes;
}

/* A new (batch, 2^n) complex array, or a MemoryError naming the bytes. */
static PyArrayObject *new_states(int n_qubits, npy_intp batch, qode_dtype dtype,
                                 double extra_bytes)
{
    char msg[MSG_LEN];
    size_t bytes;
    qode_status st = qode_qstate_bytes(n_qubits, batch, dtype, &bytes, msg, sizeof msg);
    if (st != QODE_OK) {
        raise_quantum(st, msg);
        return NULL;
    }
    double need = (double)bytes + extra_bytes, have = physical_memory();
    if (have > 0 && need > have) {
        /* PyErr_Format has no floating-point conversions: format here. */
        char text[MSG_LEN];
        snprintf(text, sizeof text, "simulating %d qubits for %lld circuit(s) needs %.0f bytes "
                 "(%.3g GiB) of state vectors, more than the %.0f bytes (%.3g GiB) of memory "
                 "of this machine", n_qubits, (long long)batch, need, need / 1073741824.0,
                 have, have / 1073741824.0);
        PyErr_SetString(PyExc_MemoryError, text);
        return NULL;
    }
    npy_intp dims[2] = {batch, (npy_intp)1 << n_qubits};
    PyArrayObject *a = (PyArrayObject *)PyArray_SimpleNew(2, dims, qode_numpy_type(dtype));
    if (a == NULL) {
        PyErr_Clear();
        PyErr_Format(PyExc_MemoryError, "could not allocate %zu bytes for %zd state "
                     "vector(s) of %d qubits", bytes, batch, n_qubits);
    }
    return a;
}

/* Checks data (batch, n_data) and trainable (n_trainable,) against the circuit. */
static int params_from_objects(const circuit_view *v, PyObject *data, PyObject *trainable,
                               PyArrayObject **data_a, PyArrayObject **train_a)
{
    *data_a = as_array(data, NPY_FLOAT64, 2, "data parameters");
    *train_a = as_array(trainable, NPY_FLOAT64, 1, "trainable parameters");
    if (*data_a == NULL || *train_a == NULL)
        goto fail;
    if (PyArray_DIM(*data_a, 1) != v->c.n_data) {
        PyErr_Format(PyExc_ValueError, "data parameters must have shape (batch, %d), got "
                     "(%zd, %zd)", (int)v->c.n_data, PyArray_DIM(*data_a, 0),
                     PyArray_DIM(*data_a, 1));
        goto fail;
    }
    if (PyArray_DIM(*train_a, 0) != v->c.n_trainable) {
        PyErr_Format(PyExc_ValueError, "trainable parameters must have shape (%d,), got (%zd,)",
                     (int)v->c.n_trainable, PyArray_DIM(*train_a, 0));
        goto fail;
    }
    return 0;
fail:
    Py_CLEAR(*data_a);
    Py_CLEAR(*train_a);
    return -1;
}

/* params_from_objects, then the circuit's own checks (wires, kinds),
 * raised as the Python exception they name. */
static int checked_params(const circuit_view *v, PyObject *data, PyObject *trainable,
                          PyArrayObject **data_a, PyArrayObject **train_a)
{
    if (params_from_objects(v, data, trainable, data_a, train_a) < 0)
        return -1;
    char msg[MSG_LEN] = "";
    qode_status st = qode_circuit_validate(&v->c, msg, sizeof msg);
    if (st == QODE_OK)
        return 0;
    raise_quantum(st, msg);
    Py_CLEAR(*data_a);
    Py_CLEAR(*train_a);
    return -1;
}

/* Reads a (batch, 2^n) complex64/complex128 array of states. */
static PyArrayObject *states_from_object(PyObject *obj, int *n_qubits, qode_dtype *dtype)
{
    if (!PyArray_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "states must be a NumPy array");
        return NULL;
    }
    int type = PyArray_TYPE((PyArrayObject *)obj);
    if (type != NPY_COMPLEX64 && type != NPY_COMPLEX128) {
        PyErr_SetString(PyExc_TypeError, "states must be complex64 or complex128");
        return NULL;
    }
    PyArrayObject *a = as_array(obj, type, 2, "states");
    if (a == NULL)
        return NULL;
    npy_intp dim = PyArray_DIM(a, 1);
    int n = 0;
    while (n < 62 && ((npy_intp)1 << n) < dim)
        n++;
    if (dim < 2 || ((npy_intp)1 << n) != dim) {
        PyErr_Format(PyExc_ValueError, "states must have shape (batch, 2^n), got second "
                     "dimension %zd", dim);
        Py_DECREF(a);
        return NULL;
    }
    *n_qubits = n;
    *dtype = (qode_dtype)qode_dtype_from_numpy(type);
    return a;
}

static PyObject *py_qsim_run(PyObject *self, PyObject *args)
{
    PyObject *spec, *data, *trainable;
    int dtype_code, n_threads;
    if (!PyArg_ParseTuple(args, "OOOii", &spec, &data, &trainable, &dtype_code, &n_threads))
        return NULL;
    if (dtype_code != QODE_COMPLEX64 && dtype_code != QODE_COMPLEX128) {
        PyErr_SetString(PyExc_ValueError, "dtype must be complex64 or complex128");
        return NULL;
    }
    circuit_view v;
    if (circuit_from_spec(spec, &v) < 0)
        return NULL;
    PyArrayObject *data_a = NULL, *train_a = NULL, *states = NULL;
    if (checked_params(&v, data, trainable, &data_a, &train_a) < 0)
        goto done;
    char msg[MSG_LEN] = "";
    qode_status st;
    npy_intp batch = PyArray_DIM(data_a, 0);
    states = new_states(v.c.n_qubits, batch, (qode_dtype)dtype_code, 0.0);
    if (states == NULL)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    st = qode_qsim_run(&v.c, (qode_dtype)dtype_code, batch, PyArray_DATA(data_a),
                       PyArray_DATA(train_a), PyArray_DATA(states), n_threads, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    if (st != QODE_OK) {
        Py_CLEAR(states);
        raise_quantum(st, msg);
    }
done:
    Py_XDECREF(data_a);
    Py_XDECREF(train_a);
    circuit_release(&v);
    return (PyObject *)states;
}

static PyObject *py_qsim_expval(PyObject *self, PyObject *args)
{
    PyObject *obs_spec, *states_obj;
    int n_threads;
    if (!PyArg_ParseTuple(args, "OOi", &obs_spec, &states_obj, &n_threads))
        return NULL;
    int n;
    qode_dtype dtype;
    PyArrayObject *states = states_from_object(states_obj, &n, &dtype);
    if (states == NULL)
        return NULL;
    obs_view ov;
    if (obs_from_spec(obs_spec, &ov) < 0) {
        Py_DECREF(states);
        return NULL;
    }
    npy_intp dims[2] = {PyArray_DIM(states, 0), ov.o.n_obs};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT64);
    if (out != NULL) {
        char msg[MSG_LEN] = "";
        qode_status st;
        Py_BEGIN_ALLOW_THREADS
        st = qode_qsim_expval(&ov.o, dtype, n, dims[0], PyArray_DATA(states),
                              PyArray_DATA(out), n_threads, msg, sizeof msg);
        Py_END_ALLOW_THREADS
        if (st != QODE_OK) {
            Py_CLEAR(out);
            raise_quantum(st, msg);
        }
    }
    obs_release(&ov);
    Py_DECREF(states);
    return (PyObject *)out;
}

static PyObject *py_qsim_probs(PyObject *self, PyObject *args)
{
    PyObject *states_obj;
    int n_threads;
    if (!PyArg_ParseTuple(args, "Oi", &states_obj, &n_threads))
        return NULL;
    int n;
    qode_dtype dtype;
    PyArrayObject *states = states_from_object(states_obj, &n, &dtype);
    if (states == NULL)
        return NULL;
    npy_intp dims[2] = {PyArray_DIM(states, 0), PyArray_DIM(states, 1)};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT64);
    if (out != NULL) {
        char msg[MSG_LEN] = "";
        qode_status st;
        Py_BEGIN_ALLOW_THREADS
        st = qode_qsim_probs(dtype, n, dims[0], PyArray_DATA(states), PyArray_DATA(out),
                             n_threads, msg, sizeof msg);
        Py_END_ALLOW_THREADS
        if (st != QODE_OK) {
            Py_CLEAR(out);
            raise_quantum(st, msg);
        }
    }
    Py_DECREF(states);
    return (PyObject *)out;
}

static PyObject *py_qsim_sample(PyObject *self, PyObject *args)
{
    PyObject *states_obj;
    long long shots;
    unsigned long long seed;
    int n_threads;
    if (!PyArg_ParseTuple(args, "OLKi", &states_obj, &shots, &seed, &n_threads))
        return NULL;
    if (shots < 0) {
        PyErr_Format(PyExc_ValueError, "shots must be >= 0, got %lld", shots);
        return NULL;
    }
    int n;
    qode_dtype dtype;
    PyArrayObject *states = states_from_object(states_obj, &n, &dtype);
    if (states == NULL)
        return NULL;
    npy_intp dims[2] = {PyArray_DIM(states, 0), (npy_intp)shots};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_INT64);
    if (out != NULL) {
        char msg[MSG_LEN] = "";
        qode_status st;
        Py_BEGIN_ALLOW_THREADS
        st = qode_qsim_sample(dtype, n, dims[0], PyArray_DATA(states), shots, seed,
                              PyArray_DATA(out), n_threads, msg, sizeof msg);
        Py_END_ALLOW_THREADS
        if (st != QODE_OK) {
            Py_CLEAR(out);
            raise_quantum(st, msg);
        }
    }
    Py_DECREF(states);
    return (PyObject *)out;
}

static PyObject *py_qsim_adjoint_vjp(PyObject *self, PyObject *args)
{
    PyObject *spec, *data, *trainable, *states_obj, *record_obj, *obs_spec, *gexp_obj,
        *gprob_obj;
    int dtype_code, n_threads;
    if (!PyArg_ParseTuple(args, "OOOiOOOOOi", &spec, &data, &trainable, &dtype_code,
                          &states_obj, &record_obj, &obs_spec, &gexp_obj, &gprob_obj,
                          &n_threads))
        return NULL;
    PyObject *result = NULL;
    circuit_view v;
    obs_view ov;
    int have_obs = 0;
    PyArrayObject *data_a = NULL, *train_a = NULL, *states = NULL, *record = NULL,
                  *gexp = NULL, *gprob = NULL, *gdata = NULL, *gtrain = NULL;
    memset(&ov, 0, sizeof ov);
    if (circuit_from_spec(spec, &v) < 0)
        return NULL;
    if (params_from_objects(&v, data, trainable, &data_a, &train_a) < 0)
        goto done;
    npy_intp batch = PyArray_DIM(data_a, 0);
    qode_dtype dtype = (qode_dtype)dtype_code;
    if (dtype_code != QODE_COMPLEX64 && dtype_code != QODE_COMPLEX128) {
        PyErr_SetString(PyExc_ValueError, "dtype must be complex64 or complex128");
        goto done;
    }
    if (states_obj != Py_None) {
        int n;
        states = states_from_object(states_obj, &n, &dtype);
        if (states == NULL)
            goto done;
        if (n != v.c.n_qubits || PyArray_DIM(states, 0) != batch) {
            PyErr_Format(PyExc_ValueError, "states must have shape (%zd, %lld) for this circuit",
                         batch, (long long)1 << v.c.n_qubits);
            goto done;
        }
    }
    if (record_obj != Py_None) {
        /* (its contents are the forward's business; its size is checked here,
         * so that no read passes its end) */
        record = as_array(record_obj, NPY_FLOAT64, 1, "forward record");
        if (record == NULL)
            goto done;
        size_t want = qode_qsim_record_doubles(v.c.n_qubits, batch);
        if ((size_t)PyArray_DIM(record, 0) != want || want == 0) {
            PyErr_Format(PyExc_ValueError, "the forward record must hold %zu doubles for %zd "
                         "circuits of %d qubits, got %zd", want, batch, (int)v.c.n_qubits,
                         PyArray_DIM(record, 0));
            goto done;
        }
    }
    if (obs_spec != Py_None) {
        if (obs_from_spec(obs_spec, &ov) < 0)
            goto done;
        have_obs = 1;
    }
    if (gexp_obj != Py_None) {
        gexp = as_array(gexp_obj, NPY_FLOAT64, 2, "gradient of the expectation values");
        if (gexp == NULL)
            goto done;
        if (!have_obs || PyArray_DIM(gexp, 0) != batch || PyArray_DIM(gexp, 1) != ov.o.n_obs) {
            PyErr_SetString(PyExc_ValueError, "gradient of the expectation values must have "
                            "shape (batch, n_observables)");
            goto done;
        }
    }
    if (gprob_obj != Py_None) {
        gprob = as_array(gprob_obj, NPY_FLOAT64, 2, "gradient of the probabilities");
        if (gprob == NULL)
            goto done;
        if (v.c.n_qubits > 62 || PyArray_DIM(gprob, 0) != batch ||
            PyArray_DIM(gprob, 1) != ((npy_intp)1 << v.c.n_qubits)) {
            PyErr_SetString(PyExc_ValueError, "gradient of the probabilities must have shape "
                            "(batch, 2^n_qubits)");
            goto done;
        }
    }
    npy_intp gd_dims[2] = {batch, v.c.n_data};
    npy_intp gt_dims[1] = {v.c.n_trainable};
    gdata = (PyArrayObject *)PyArray_SimpleNew(2, gd_dims, NPY_FLOAT64);
    gtrain = (PyArrayObject *)PyArray_SimpleNew(1, gt_dims, NPY_FLOAT64);
    if (gdata == NULL || gtrain == NULL)
        goto done;
    char msg[MSG_LEN] = "";
    qode_status st;
    Py_BEGIN_ALLOW_THREADS
    st = qode_qsim_adjoint_vjp(&v.c, dtype, batch, PyArray_DATA(data_a), PyArray_DATA(train_a),
                               states ? PyArray_DATA(states) : NULL,
                               record ? PyArray_DATA(record) : NULL, have_obs ? &ov.o : NULL,
                               gexp ? PyArray_DATA(gexp) : NULL,
                               gprob ? PyArray_DATA(gprob) : NULL, PyArray_DATA(gdata),
                               PyArray_DATA(gtrain), n_threads, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    if (st != QODE_OK) {
        raise_quantum(st, msg);
        goto done;
    }
    result = Py_BuildValue("OO", gdata, gtrain);
done:
    Py_XDECREF(data_a);
    Py_XDECREF(train_a);
    Py_XDECREF(states);
    Py_XDECREF(record);
    Py_XDECREF(gexp);
    Py_XDECREF(gprob);
    Py_XDECREF(gdata);
    Py_XDECREF(gtrain);
    if (have_obs)
        obs_release(&ov);
    circuit_release(&v);
    return result;
}

/* The largest forward record qsim_forward keeps (384 bytes per circuit at 4
 * qubits: about 2.8 million circuits per call). */
#define RECORD_MAX_BYTES ((size_t)1 << 30)

static PyObject *py_qsim_forward(PyObject *self, PyObject *args)
{
    PyObject *spec, *data, *trainable, *obs_spec;
    int dtype_code, want_probs, want_states, want_record, n_threads;
    if (!PyArg_ParseTuple(args, "OOOiOpppi", &spec, &data, &trainable, &dtype_code, &obs_spec,
                          &want_probs, &want_states, &want_record, &n_threads))
        return NULL;
    if (dtype_code != QODE_COMPLEX64 && dtype_code != QODE_COMPLEX128) {
        PyErr_SetString(PyExc_ValueError, "dtype must be complex64 or complex128");
        return NULL;
    }
    PyObject *result = NULL;
    circuit_view v;
    obs_view ov;
    int have_obs = 0;
    PyArrayObject *data_a = NULL, *train_a = NULL, *states = NULL, *ev = NULL, *pr = NULL,
                  *record = NULL;
    int recorded = 0;
    if (circuit_from_spec(spec, &v) < 0)
        return NULL;
    if (checked_params(&v, data, trainable, &data_a, &train_a) < 0)
        goto done;
    char msg[MSG_LEN] = "";
    qode_status st;
    npy_intp batch = PyArray_DIM(data_a, 0);
    /* A record is a speed-up, never a requirement: past RECORD_MAX_BYTES, or
     * when it cannot be allocated, the adjoint runs the forward pass again. */
    size_t record_doubles = want_record ? qode_qsim_record_doubles(v.c.n_qubits, batch) : 0;
    if (record_doubles > 0 && record_doubles <= RECORD_MAX_BYTES / sizeof(double)) {
        npy_intp dims[1] = {(npy_intp)record_doubles};
        if ((record = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_FLOAT64)) == NULL)
            PyErr_Clear();
    }
    if (!want_probs && !want_states) {
        /* read-outs only: the core still needs one state vector per thread */
        PyArrayObject *probe = new_states(v.c.n_qubits, 0, (qode_dtype)dtype_code, 0.0);
        if (probe == NULL)
            goto done;
        Py_DECREF(probe);
    }
    if (obs_spec != Py_None) {
        if (obs_from_spec(obs_spec, &ov) < 0)
            goto done;
        have_obs = 1;
        npy_intp dims[2] = {batch, ov.o.n_obs};
        if ((ev = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT64)) == NULL)
            goto done;
    }
    if (want_probs || want_states) {
        /* checks the size against memory and names the bytes if too large */
        states = new_states(v.c.n_qubits, want_states ? batch : 1, (qode_dtype)dtype_code,
                            want_probs ? 8.0 * (double)batch * (double)((npy_intp)1 << v.c.n_qubits)
                                       : 0.0);
        if (states == NULL)
            goto done;
        if (!want_states)
            Py_CLEAR(states);
    }
    if (want_probs) {
        npy_intp dims[2] = {batch, (npy_intp)1 << v.c.n_qubits};
        if ((pr = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT64)) == NULL)
            goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    st = qode_qsim_forward(&v.c, (qode_dtype)dtype_code, batch, PyArray_DATA(data_a),
                           PyArray_DATA(train_a), have_obs ? &ov.o : NULL,
                           ev ? PyArray_DATA(ev) : NULL, pr ? PyArray_DATA(pr) : NULL,
                           states ? PyArray_DATA(states) : NULL,
                           record ? PyArray_DATA(record) : NULL, record ? &recorded : NULL,
                           n_threads, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    if (st != QODE_OK) {
        raise_quantum(st, msg);
        goto done;
    }
    result = Py_BuildValue("OOOO", states ? (PyObject *)states : Py_None,
                           ev ? (PyObject *)ev : Py_None, pr ? (PyObject *)pr : Py_None,
                           recorded ? (PyObject *)record : Py_None);
done:
    Py_XDECREF(data_a);
    Py_XDECREF(train_a);
    Py_XDECREF(states);
    Py_XDECREF(ev);
    Py_XDECREF(pr);
    Py_XDECREF(record);
    if (have_obs)
        obs_release(&ov);
    circuit_release(&v);
    return result;
}

/* qsim_path(spec, trainable, obs_spec|None, batch) -> "rows" | "tiles" | "dense": the
 * path a differentiated batch takes (qode_qsim_path), for tests and diagnostics. */
static PyObject *py_qsim_path(PyObject *self, PyObject *args)
{
    PyObject *spec, *trainable, *obs_spec;
    Py_ssize_t batch;
    if (!PyArg_ParseTuple(args, "OOOn", &spec, &trainable, &obs_spec, &batch))
        return NULL;
    circuit_view v;
    obs_view ov;
    int have_obs = 0, path = -1;
    PyArrayObject *data_a = NULL, *train_a = NULL;
    PyObject *no_data = NULL, *result = NULL;
    if (circuit_from_spec(spec, &v) < 0)
        return NULL;
    npy_intp dims[2] = {1, v.c.n_data};
    if ((no_data = PyArray_ZEROS(2, dims, NPY_FLOAT64, 0)) == NULL ||
        checked_params(&v, no_data, trainable, &data_a, &train_a) < 0)
        goto done;
    if (obs_spec != Py_None) {
        if (obs_from_spec(obs_spec, &ov) < 0)
            goto done;
        have_obs = 1;
    }
    path = qode_qsim_path(&v.c, PyArray_DATA(train_a), have_obs ? &ov.o : NULL, batch);
    if (path < 0)
        PyErr_NoMemory();
    else
        result = PyUnicode_FromString(path == QODE_PATH_DENSE ? "dense"
                                      : path == QODE_PATH_TILES ? "tiles" : "rows");
done:
    Py_XDECREF(no_data);
    Py_XDECREF(data_a);
    Py_XDECREF(train_a);
    if (have_obs)
        obs_release(&ov);
    circuit_release(&v);
    return result;
}

PyMethodDef qode_quantum_methods[] = {
    {"qsim_forward", py_qsim_forward, METH_VARARGS,
     "qsim_forward(spec, data, trainable, dtype_code, obs_spec|None, want_probs, want_states, "
     "want_record, n_threads) -> (states|None, expval|None, probs|None, record|None): record "
     "is the forward record for qsim_adjoint_vjp, None where the circuit keeps none"},
    {"qsim_run", py_qsim_run, METH_VARARGS,
     "qsim_run(spec, data, trainable, dtype_code, n_threads) -> states (batch, 2^n)"},
    {"qsim_expval", py_qsim_expval, METH_VARARGS,
     "qsim_expval(obs_spec, states, n_threads) -> (batch, n_obs) float64"},
    {"qsim_probs", py_qsim_probs, METH_VARARGS,
     "qsim_probs(states, n_threads) -> (batch, 2^n) float64"},
    {"qsim_sample", py_qsim_sample, METH_VARARGS,
     "qsim_sample(states, shots, seed, n_threads) -> (batch, shots) int64 basis indices"},
    {"qsim_adjoint_vjp", py_qsim_adjoint_vjp, METH_VARARGS,
     "qsim_adjoint_vjp(spec, data, trainable, dtype_code, states|None, record|None, "
     "obs_spec|None, grad_expval|None, grad_probs|None, n_threads) -> (grad_data, "
     "grad_trainable); record from qsim_forward with the same arguments"},
    {"qsim_path", py_qsim_path, METH_VARARGS,
     "qsim_path(spec, trainable, obs_spec|None, batch) -> 'rows' | 'tiles' | 'dense'"},
    {NULL, NULL, 0, NULL},
};

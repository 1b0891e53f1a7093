/* Binding of the Runge-Kutta solvers: `_C.solve` and `_C.solve_event`.
 *
 * Python hands over flat 1-D arrays (the state, times, tolerances) and
 * callables.  Callables see the state through `y_stage`, an array the caller
 * allocated once (and usually wrapped as a torch tensor): before every call
 * the solver copies the relevant state into it, so no Python object is
 * created per evaluation except the time.  `rhs(t)` returns an ndarray or a
 * DLPack capsule holding f(t, y_stage); its size and dtype are checked here.
 *
 * A native field (`native=`, see field_binding.c) replaces rhs and vjp: the
 * solver then calls C directly and runs with the GIL released.
 */
#include "binding/binding.h"

#include <math.h>
#include <string.h>

#include "solver/solver.h"

typedef struct {
    PyObject *rhs, *event, *norm, *hook, *vjp;  /* borrowed */
    PyArrayObject *y_stage;
    void *stage_data;
    void *cotangent_data;  /* v_stage: the cotangent handed to vjp */
    size_t state_bytes;
    Py_ssize_t n;
    qode_dtype dtype;
} callback_context;

static void stage_in(callback_context *ctx, const void *y)
{
    if (y != ctx->stage_data)
        memcpy(ctx->stage_data, y, ctx->state_bytes);
}

static int copy_result(callback_context *ctx, PyObject *result, void *out, const char *what)
{
    qode_buffer buffer = {0};
    if (qode_buffer_from_object(result, what, &buffer) < 0)
        return -1;
    int ok = 0;
    if (buffer.dtype != ctx->dtype) {
        PyErr_Format(PyExc_TypeError, "%s has the wrong dtype: expected the dtype of y0", what);
    } else if (buffer.size != ctx->n) {
        PyErr_Format(PyExc_ValueError, "%s has %zd elements, but the state has %zd", what,
                     buffer.size, ctx->n);
    } else {
        memcpy(out, buffer.data, ctx->state_bytes);
        ok = 1;
    }
    qode_buffer_release(&buffer);
    return ok ? 0 : -1;
}

static int call_rhs(void *vctx, double t, const void *y, void *dydt)
{
    callback_context *ctx = vctx;
    stage_in(ctx, y);
    PyObject *t_obj = PyFloat_FromDouble(t);
    if (t_obj == NULL)
        return -1;
    PyObject *result = PyObject_CallOneArg(ctx->rhs, t_obj);
    Py_DECREF(t_obj);
    if (result == NULL)
        return -1;
    int status = copy_result(ctx, result, dydt, "the output of func");
    Py_DECREF(result);
    return status;
}

static int call_float(PyObject *fn, PyObject *args, double *value)
{
    PyObject *result = PyObject_CallObject(fn, args);
    if (result == NULL)
        return -1;
    *value = PyFloat_AsDouble(result);
    Py_DECREF(result);
    return (*value == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

static int call_event(void *vctx, double t, const void *y, double *value)
{
    callback_context *ctx = vctx;
    stage_in(ctx, y);
    PyObject *args = Py_BuildValue("(d)", t);
    if (args == NULL)
        return -1;
    int status = call_float(ctx->event, args, value);
    Py_DECREF(args);
    return status;
}

static int call_norm(void *vctx, const void *x, double *value)
{
    callback_context *ctx = vctx;
    stage_in(ctx, x);
    int status = call_float(ctx->norm, NULL, value);
    if (status == 0 && isnan(*value)) {
        PyErr_SetString(PyExc_ValueError, "the norm returned NaN");
        return -1;
    }
    return status;
}

static int call_hook(void *vctx, qode_hook_kind kind, double t0, const void *y0, double dt)
{
    callback_context *ctx = vctx;
    stage_in(ctx, y0);
    PyObject *result = PyObject_CallFunction(ctx->hook, "idd", (int)kind, t0, dt);
    Py_XDECREF(result);
    return result == NULL ? -1 : 0;
}

/* vjp(t) -> (y_bar, t_bar) with y in y_stage and the cotangent in v_stage. */
static int call_vjp(void *vctx, double t, const void *y, const void *v, void *y_bar,
                    double *t_bar)
{
    callback_context *ctx = vctx;
    stage_in(ctx, y);
    memcpy(ctx->cotangent_data, v, ctx->state_bytes);
    PyObject *result = PyObject_CallFunction(ctx->vjp, "d", t);
    if (result == NULL)
        return -1;
    int status = -1;
    if (!PyTuple_Check(result) || PyTuple_GET_SIZE(result) != 2) {
        PyErr_SetString(PyExc_TypeError, "vjp must return (y_bar, t_bar)");
    } else if (copy_result(ctx, PyTuple_GET_ITEM(result, 0), y_bar, "the VJP of func") == 0) {
        *t_bar = PyFloat_AsDouble(PyTuple_GET_ITEM(result, 1));
        status = (*t_bar == -1.0 && PyErr_Occurred()) ? -1 : 0;
    }
    Py_DECREF(result);
    return status;
}

static int check_signals(void *vctx)
{
    return PyErr_CheckSignals();
}

/* Borrows a 1-D float64 array (any contiguous float64 array, flattened). */
static int as_doubles(PyObject *obj, const char *name, PyArrayObject **out)
{
    *out = (PyArrayObject *)PyArray_FROMANY(obj, NPY_FLOAT64, 0, 1,
                                            NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (*out == NULL) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "%s must be a 1-D float64 array", name);
        return -1;
    }
    return 0;
}

/* Everything a solve call needs, parsed from the keyword arguments. */
typedef struct {
    const qode_tableau *tableau;
    qode_problem problem;
    qode_adaptive_options adaptive;
    qode_fixed_options fixed;
    callback_context ctx;
    PyArrayObject *y0, *rtol, *atol, *step_t, *jump_t, *grid, *segments;
    size_t *segment_ends;
    qode_native_field native;
    int has_native;  /* 1: no Python callbacks; the core runs without the GIL */
} solve_args;

static void solve_args_free(solve_args *a)
{
    if (a->has_native)
        qode_native_field_free(&a->native);
    a->has_native = 0;
    Py_XDECREF(a->y0);
    Py_XDECREF(a->rtol);
    Py_XDECREF(a->atol);
    Py_XDECREF(a->step_t);
    Py_XDECREF(a->jump_t);
    Py_XDECREF(a->grid);
    Py_XDECREF(a->segments);
    PyMem_Free(a->segment_ends);
}

static int tolerance_array(PyObject *obj, const char *name, Py_ssize_t n, PyArrayObject **arr,
                           const double **data, size_t *stride)
{
    if (as_doubles(obj, name, arr) < 0)
        return -1;
    Py_ssize_t size = PyArray_SIZE(*arr);
    if (size != 1 && size != n) {
        PyErr_Format(PyExc_ValueError, "%s must have 1 or %zd elements, got %zd", name, n, size);
        return -1;
    }
    *data = PyArray_DATA(*arr);
    *stride = size == 1 ? 0 : 1;
    return 0;
}

/* An optional 1-D float64 keyword argument (step_t, jump_t): borrows it into
 * *array and points *data / *n at it; absent or None leaves them unset. */
static int optional_times(PyObject *kwargs, const char *name, PyArrayObject **array,
                          const double **data, size_t *n)
{
    PyObject *obj = PyDict_GetItemString(kwargs, name);
    if (obj == NULL || obj == Py_None)
        return 0;
    if (as_doubles(obj, name, array) < 0)
        return -1;
    *data = PyArray_DATA(*array);
    *n = (size_t)PyArray_SIZE(*array);
    return 0;
}

static int parse_solve_args(PyObject *kwargs, solve_args *a)
{
    static const char *required[] = {"method", "y0", "y_stage", "rtol", "atol", "direction"};
    memset(a, 0, sizeof(*a));
    qode_adaptive_options_default(&a->adaptive);
    if (kwargs == NULL) {
        PyErr_SetString(PyExc_TypeError, "solve takes keyword arguments only");
        return -1;
    }
    PyObject *native = PyDict_GetItemString(kwargs, "native");
    if (native == Py_None)
        native = NULL;
    if (native == NULL && PyDict_GetItemString(kwargs, "rhs") == NULL) {
        PyErr_SetString(PyExc_TypeError, "missing keyword argument 'rhs'");
        return -1;
    }
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (PyDict_GetItemString(kwargs, required[i]) == NULL) {
            PyErr_Format(PyExc_TypeError, "missing keyword argument '%s'", required[i]);
            return -1;
        }
    }
    const char *method = PyUnicode_AsUTF8(PyDict_GetItemString(kwargs, "method"));
    if (method == NULL)
        return -1;
    a->tableau = qode_tableau_find(method);
    if (a->tableau == NULL) {
        PyErr_Format(PyExc_ValueError, "unknown method '%s'", method);
        return -1;
    }

    PyObject *y0 = PyDict_GetItemString(kwargs, "y0");
    PyObject *y_stage = PyDict_GetItemString(kwargs, "y_stage");
    if (!PyArray_Check(y0) || !PyArray_Check(y_stage)) {
        PyErr_SetString(PyExc_TypeError, "y0 and y_stage must be NumPy arrays");
        return -1;
    }
    a->y0 = (PyArrayObject *)PyArray_FROM_OF(y0, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (a->y0 == NULL)
        return -1;
    int dtype = qode_dtype_from_numpy(PyArray_TYPE(a->y0));
    if (dtype < 0) {
        PyErr_SetString(PyExc_TypeError, "y0 must be float32, float64, complex64 or complex128");
        return -1;
    }
    PyArrayObject *stage = (PyArrayObject *)y_stage;
    if (PyArray_TYPE(stage) != PyArray_TYPE(a->y0) || PyArray_SIZE(stage) != PyArray_SIZE(a->y0) ||
        !PyArray_IS_C_CONTIGUOUS(stage) || !PyArray_ISWRITEABLE(stage)) {
        PyErr_SetString(PyExc_ValueError,
                        "y_stage must be a writeable contiguous array like y0");
        return -1;
    }

    callback_context *ctx = &a->ctx;
    ctx->n = PyArray_SIZE(a->y0);
    ctx->dtype = (qode_dtype)dtype;
    ctx->state_bytes = (size_t)ctx->n * qode_dtype_size(ctx->dtype);
    ctx->y_stage = stage;
    ctx->stage_data = PyArray_DATA(stage);
    ctx->rhs = PyDict_GetItemString(kwargs, "rhs");
    ctx->event = PyDict_GetItemString(kwargs, "event");
    ctx->norm = PyDict_GetItemString(kwargs, "norm");
    ctx->hook = PyDict_GetItemString(kwargs, "hook");
    ctx->vjp = PyDict_GetItemString(kwargs, "vjp");
    if (ctx->vjp == Py_None) ctx->vjp = NULL;
    if (ctx->vjp != NULL) {
        PyObject *v_stage = PyDict_GetItemString(kwargs, "v_stage");
        if (v_stage == NULL || !PyArray_Check(v_stage) ||
            PyArray_TYPE((PyArrayObject *)v_stage) != PyArray_TYPE(a->y0) ||
            PyArray_SIZE((PyArrayObject *)v_stage) != PyArray_SIZE(a->y0) ||
            !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)v_stage)) {
            PyErr_SetString(PyExc_ValueError, "vjp needs a v_stage array like y0");
            return -1;
        }
        ctx->cotangent_data = PyArray_DATA((PyArrayObject *)v_stage);
    }
    if (ctx->event == Py_None) ctx->event = NULL;
    if (ctx->norm == Py_None) ctx->norm = NULL;
    if (ctx->hook == Py_None) ctx->hook = NULL;

    qode_problem *p = &a->problem;
    p->dtype = ctx->dtype;
    p->n = (size_t)ctx->n;
    p->direction = PyFloat_AsDouble(PyDict_GetItemString(kwargs, "direction"));
    if (PyErr_Occurred())
        return -1;
    p->ctx = ctx;
    p->rhs = call_rhs;
    p->event = ctx->event ? call_event : NULL;
    p->norm = ctx->norm ? call_norm : NULL;
    p->step_hook = ctx->hook ? call_hook : NULL;
    p->vjp = ctx->vjp ? call_vjp : NULL;
    p->interrupt = check_signals;
    if (native != NULL) {
        if (ctx->event != NULL || ctx->norm != NULL || ctx->hook != NULL || ctx->vjp != NULL) {
            PyErr_SetString(PyExc_ValueError,
                            "a native field runs without Python callbacks (event, norm, hook, vjp)");
            return -1;
        }
        if (qode_native_field_parse(native, ctx->dtype, (size_t)ctx->n, &a->native) < 0)
            return -1;
        a->has_native = 1;
        p->ctx = &a->native;
        p->rhs = qode_native_rhs;
        p->vjp = qode_native_vjp;
        p->interrupt = qode_native_poll;
    }
    if (tolerance_array(PyDict_GetItemString(kwargs, "rtol"), "rtol", ctx->n, &a->rtol, &p->rtol,
                        &p->rtol_stride) < 0 ||
        tolerance_array(PyDict_GetItemString(kwargs, "atol"), "atol", ctx->n, &a->atol, &p->atol,
                        &p->atol_stride) < 0)
        return -1;

    PyObject *simd = PyDict_GetItemString(kwargs, "simd_bytes");
    if (simd != NULL && simd != Py_None) {
        p->simd_bytes = (int)PyLong_AsLong(simd);
        if (PyErr_Occurred())
            return -1;
    }
    PyObject *segments = PyDict_GetItemString(kwargs, "segments");
    if (segments != NULL && segments != Py_None) {
        a->segments = (PyArrayObject *)PyArray_FROMANY(segments, NPY_INT64, 1, 1,
                                                       NPY_ARRAY_C_CONTIGUOUS);
        if (a->segments == NULL)
            return -1;
        Py_ssize_t n_seg = PyArray_SIZE(a->segments);
        a->segment_ends = PyMem_Malloc((n_seg > 0 ? n_seg : 1) * sizeof(size_t));
        if (a->segment_ends == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        const int64_t *ends = PyArray_DATA(a->segments);
        for (Py_ssize_t s = 0; s < n_seg; s++) {
            if (ends[s] < 0) {
                PyErr_SetString(PyExc_ValueError, "segment ends must be non-negative");
                return -1;
            }
            a->segment_ends[s] = (size_t)ends[s];
        }
        p->segment_ends = a->segment_ends;
        p->n_segments = (size_t)n_seg;
    }

    /* Adaptive options (ignored by fixed-grid methods). */
    struct { const char *name; double *field; } doubles[] = {
        {"min_step", &a->adaptive.min_step}, {"max_step", &a->adaptive.max_step},
        {"first_step", &a->adaptive.first_step}, {"safety", &a->adaptive.safety},
        {"ifactor", &a->adaptive.ifactor}, {"dfactor", &a->adaptive.dfactor},
    };
    for (size_t i = 0; i < sizeof(doubles) / sizeof(doubles[0]); i++) {
        PyObject *v = PyDict_GetItemString(kwargs, doubles[i].name);
        if (v != NULL && v != Py_None) {
            *doubles[i].field = PyFloat_AsDouble(v);
            if (PyErr_Occurred())
                return -1;
        }
    }
    PyObject *max_steps = PyDict_GetItemString(kwargs, "max_num_steps");
    if (max_steps != NULL && max_steps != Py_None) {
        a->adaptive.max_num_steps = PyLong_AsLongLong(max_steps);
        if (PyErr_Occurred())
            return -1;
    }
    if (optional_times(kwargs, "step_t", &a->step_t, &a->adaptive.step_t,
                       &a->adaptive.n_step_t) < 0 ||
        optional_times(kwargs, "jump_t", &a->jump_t, &a->adaptive.jump_t,
                       &a->adaptive.n_jump_t) < 0)
        return -1;

    /* Fixed-grid options. */
    PyObject *interp = PyDict_GetItemString(kwargs, "interp");
    if (interp != NULL && interp != Py_None) {
        const char *name = PyUnicode_AsUTF8(interp);
        if (name == NULL)
            return -1;
        if (strcmp(name, "linear") == 0) {
            a->fixed.interp = QODE_INTERP_LINEAR;
        } else if (strcmp(name, "cubic") == 0) {
            a->fixed.interp = QODE_INTERP_CUBIC;
        } else {
            PyErr_Format(PyExc_ValueError, "Unknown interpolation method %s", name);
            return -1;
        }
    }
    PyObject *perturb = PyDict_GetItemString(kwargs, "perturb");
    if (perturb != NULL) {
        int truth = PyObject_IsTrue(perturb);
        if (truth < 0)
            return -1;
        a->fixed.perturb = truth;
    }
    PyObject *grid = PyDict_GetItemString(kwargs, "grid");
    if (grid != NULL && grid != Py_None && as_doubles(grid, "grid", &a->grid) < 0)
        return -1;
    return 0;
}

static PyObject *info_dict(const qode_solve_info *info)
{
    return Py_BuildValue("{s:L,s:L,s:L}", "nfe", info->nfe, "n_accepted", info->n_accepted,
                         "n_rejected", info->n_rejected);
}

static PyObject *trajectory_arrays(const qode_trajectory *tr, qode_dtype dtype, size_t n)
{
    npy_intp t_dims[1] = {(npy_intp)tr->n_points};
    npy_intp y_dims[2] = {(npy_intp)tr->n_points, (npy_intp)n};
    PyObject *t = PyArray_SimpleNew(1, t_dims, NPY_FLOAT64);
    PyObject *y = PyArray_SimpleNew(2, y_dims, qode_numpy_type(dtype));
    PyObject *f = PyArray_SimpleNew(2, y_dims, qode_numpy_type(dtype));
    PyObject *fresh = PyArray_SimpleNew(1, t_dims, NPY_UINT8);
    if (t == NULL || y == NULL || f == NULL || fresh == NULL) {
        Py_XDECREF(t);
        Py_XDECREF(y);
        Py_XDECREF(f);
        Py_XDECREF(fresh);
        return NULL;
    }
    size_t bytes = tr->n_points * n * qode_dtype_size(dtype);
    if (tr->n_points > 0) {
        memcpy(PyArray_DATA((PyArrayObject *)t), tr->t, tr->n_points * sizeof(double));
        memcpy(PyArray_DATA((PyArrayObject *)y), tr->y, bytes);
        memcpy(PyArray_DATA((PyArrayObject *)f), tr->f, bytes);
        memcpy(PyArray_DATA((PyArrayObject *)fresh), tr->fresh, tr->n_points);
    }
    return Py_BuildValue("(NNNN)", t, y, f, fresh);
}

/* Builds the result dict: {"y": ..., "stats": ..., "trajectory": ...}. */
static PyObject *solve_result(PyObject *y, const qode_solve_info *info, qode_trajectory *record,
                              const solve_args *a)
{
    PyObject *stats = info_dict(info);
    PyObject *trajectory = Py_None;
    Py_INCREF(Py_None);
    if (record != NULL) {
        Py_DECREF(Py_None);
        trajectory = trajectory_arrays(record, a->problem.dtype, a->problem.n);
    }
    if (stats == NULL || trajectory == NULL) {
        Py_XDECREF(stats);
        Py_XDECREF(trajectory);
        Py_DECREF(y);
        return NULL;
    }
    return Py_BuildValue("{s:N,s:N,s:N}", "y", y, "stats", stats, "trajectory", trajectory);
}

static PyObject *fail(qode_status status, const qode_solve_info *info)
{
    if (status == QODE_ERR_STEP_UNDERFLOW || status == QODE_ERR_MAX_STEPS) {
        /* torchdiffeq raises AssertionError for these; keep that type so that
         * code written against it catches the same exception. */
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_AssertionError, info->message);
        return NULL;
    }
    if (status == QODE_ERR_NONFINITE && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_FloatingPointError, info->message);
        return NULL;
    }
    return qode_raise_status(status, info->message);
}

static int wants_record(PyObject *kwargs)
{
    PyObject *record = PyDict_GetItemString(kwargs, "record");
    return record != NULL && PyObject_IsTrue(record) == 1;
}

/* Parses the keyword arguments shared by solve, solve_event and backward;
 * on failure frees what was parsed and returns -1 with an exception set. */
static int begin_call(PyObject *args, PyObject *kwargs, solve_args *a)
{
    if (PyTuple_GET_SIZE(args) != 0) {
        memset(a, 0, sizeof(*a));
        PyErr_SetString(PyExc_TypeError, "qode._C solvers take keyword arguments only");
        return -1;
    }
    if (parse_solve_args(kwargs, a) < 0) {
        solve_args_free(a);
        return -1;
    }
    return 0;
}

static PyObject *solve(PyObject *self, PyObject *args, PyObject *kwargs)
{
    solve_args a;
    if (begin_call(args, kwargs, &a) < 0)
        return NULL;
    PyArrayObject *t = NULL;
    PyObject *t_obj = PyDict_GetItemString(kwargs, "t");
    if (t_obj == NULL || as_doubles(t_obj, "t", &t) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "missing keyword argument 't'");
        solve_args_free(&a);
        return NULL;
    }
    npy_intp dims[2] = {PyArray_SIZE(t), (npy_intp)a.problem.n};
    PyObject *y = PyArray_SimpleNew(2, dims, qode_numpy_type(a.problem.dtype));
    if (y == NULL) {
        Py_DECREF(t);
        solve_args_free(&a);
        return NULL;
    }
    qode_solve_info info;
    memset(&info, 0, sizeof(info));
    qode_trajectory record;
    qode_trajectory_init(&record);
    int recording = wants_record(kwargs);
    const double *t_data = PyArray_DATA(t);
    size_t n_t = (size_t)PyArray_SIZE(t);
    void *y_data = PyArray_DATA((PyArrayObject *)y);
    qode_status status;
    const double *grid = a.grid ? PyArray_DATA(a.grid) : t_data;
    size_t n_grid = a.grid ? (size_t)PyArray_SIZE(a.grid) : n_t;
    /* No Python API from here until the GIL is back. */
    PyThreadState *released = a.has_native ? PyEval_SaveThread() : NULL;
    if (a.tableau->adaptive)
        status = qode_solve_adaptive(&a.problem, a.tableau, &a.adaptive, PyArray_DATA(a.y0),
                                     t_data, n_t, y_data, recording ? &record : NULL, &info);
    else
        status = qode_solve_fixed(&a.problem, a.tableau, &a.fixed, PyArray_DATA(a.y0), grid,
                                  n_grid, t_data, n_t, y_data, &info);
    if (released != NULL)
        PyEval_RestoreThread(released);
    PyObject *result;
    if (status != QODE_OK) {
        Py_DECREF(y);
        result = fail(status, &info);
    } else {
        result = solve_result(y, &info, recording ? &record : NULL, &a);
    }
    qode_trajectory_free(&record);
    Py_DECREF(t);
    solve_args_free(&a);
    return result;
}

static PyObject *solve_event(PyObject *self, PyObject *args, PyObject *kwargs)
{
    solve_args a;
    if (begin_call(args, kwargs, &a) < 0)
        return NULL;
    double t0 = 0.0, event_tol = 0.0, step_size = 0.0;
    long long max_steps = 20000;
    PyObject *t0_obj = PyDict_GetItemString(kwargs, "t0");
    PyObject *tol_obj = PyDict_GetItemString(kwargs, "event_tol");
    PyObject *step_obj = PyDict_GetItemString(kwargs, "step_size");
    PyObject *max_obj = PyDict_GetItemString(kwargs, "max_event_steps");
    if (t0_obj == NULL || tol_obj == NULL || a.ctx.event == NULL) {
        PyErr_SetString(PyExc_TypeError, "solve_event needs t0, event_tol and event");
        solve_args_free(&a);
        return NULL;
    }
    t0 = PyFloat_AsDouble(t0_obj);
    event_tol = PyFloat_AsDouble(tol_obj);
    if (step_obj != NULL && step_obj != Py_None)
        step_size = PyFloat_AsDouble(step_obj);
    if (max_obj != NULL && max_obj != Py_None)
        max_steps = PyLong_AsLongLong(max_obj);
    if (PyErr_Occurred()) {
        solve_args_free(&a);
        return NULL;
    }
    npy_intp dims[1] = {(npy_intp)a.problem.n};
    PyObject *y = PyArray_SimpleNew(1, dims, qode_numpy_type(a.problem.dtype));
    if (y == NULL) {
        solve_args_free(&a);
        return NULL;
    }
    qode_solve_info info;
    memset(&info, 0, sizeof(info));
    qode_trajectory record;
    qode_trajectory_init(&record);
    int recording = wants_record(kwargs);
    double t_event = NAN;
    void *y_data = PyArray_DATA((PyArrayObject *)y);
    qode_status status;
    if (a.tableau->adaptive)
        status = qode_solve_adaptive_event(&a.problem, a.tableau, &a.adaptive, PyArray_DATA(a.y0),
                                           t0, event_tol, &t_event, y_data,
                                           recording ? &record : NULL, &info);
    else
        status = qode_solve_fixed_event(&a.problem, a.tableau, &a.fixed, PyArray_DATA(a.y0), t0,
                                        step_size, max_steps, event_tol, &t_event, y_data, &info);
    PyObject *result;
    if (status != QODE_OK) {
        Py_DECREF(y);
        result = fail(status, &info);
    } else {
        result = solve_result(y, &info, recording ? &record : NULL, &a);
        if (result != NULL) {
            PyObject *te = PyFloat_FromDouble(t_event);
            if (te == NULL || PyDict_SetItemString(result, "t_event", te) < 0)
                Py_CLEAR(result);
            Py_XDECREF(te);
        }
    }
    qode_trajectory_free(&record);
    solve_args_free(&a);
    return result;
}

/* Borrows record arrays from Python as a qode_trajectory (no copy). */
static int record_from_object(PyObject *obj, const solve_args *a, PyArrayObject *arrays[4],
                              qode_trajectory *tr)
{
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 4) {
        PyErr_SetString(PyExc_TypeError, "record must be the (t, y, f, fresh) of a forward solve");
        return -1;
    }
    int types[4] = {NPY_FLOAT64, qode_numpy_type(a->problem.dtype),
                    qode_numpy_type(a->problem.dtype), NPY_UINT8};
    for (int i = 0; i < 4; i++) {
        arrays[i] = (PyArrayObject *)PyArray_FROMANY(PyTuple_GET_ITEM(obj, i), types[i], 1, 2,
                                                     NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
        if (arrays[i] == NULL)
            return -1;
    }
    size_t n_points = (size_t)PyArray_DIM(arrays[0], 0);
    for (int i = 1; i < 4; i++) {
        if ((size_t)PyArray_DIM(arrays[i], 0) != n_points ||
            (i < 3 && (size_t)PyArray_SIZE(arrays[i]) != n_points * a->problem.n)) {
            PyErr_SetString(PyExc_ValueError, "record arrays have inconsistent sizes");
            return -1;
        }
    }
    qode_trajectory_init(tr);
    tr->n_points = tr->capacity = n_points;
    tr->n = a->problem.n;
    tr->dtype = a->problem.dtype;
    tr->t = PyArray_DATA(arrays[0]);
    tr->y = PyArray_DATA(arrays[1]);
    tr->f = PyArray_DATA(arrays[2]);
    tr->fresh = PyArray_DATA(arrays[3]);
    return 0;
}

static PyObject *backward(PyObject *self, PyObject *args, PyObject *kwargs)
{
    solve_args a;
    PyArrayObject *t = NULL, *grad_out = NULL, *record[4] = {NULL, NULL, NULL, NULL};
    PyObject *grad_y0 = NULL, *grad_t = NULL, *result = NULL;
    if (begin_call(args, kwargs, &a) < 0)
        return NULL;
    if (a.problem.vjp == NULL) {
        PyErr_SetString(PyExc_TypeError, "backward needs vjp and v_stage, or a native field");
        goto done;
    }
    PyObject *t_obj = PyDict_GetItemString(kwargs, "t");
    PyObject *g_obj = PyDict_GetItemString(kwargs, "grad_out");
    if (t_obj == NULL || g_obj == NULL) {
        PyErr_SetString(PyExc_TypeError, "backward needs t and grad_out");
        goto done;
    }
    if (as_doubles(t_obj, "t", &t) < 0)
        goto done;
    size_t n_t = (size_t)PyArray_SIZE(t);
    grad_out = (PyArrayObject *)PyArray_FROMANY(g_obj, qode_numpy_type(a.problem.dtype), 1, 2,
                                                NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (grad_out == NULL)
        goto done;
    if ((size_t)PyArray_SIZE(grad_out) != n_t * a.problem.n) {
        PyErr_SetString(PyExc_ValueError, "grad_out must hold len(t) states");
        goto done;
    }
    npy_intp y_dims[1] = {(npy_intp)a.problem.n}, t_dims[1] = {(npy_intp)n_t};
    grad_y0 = PyArray_ZEROS(1, y_dims, qode_numpy_type(a.problem.dtype), 0);
    grad_t = PyArray_ZEROS(1, t_dims, NPY_FLOAT64, 0);
    if (grad_y0 == NULL || grad_t == NULL)
        goto done;
    qode_solve_info info;
    memset(&info, 0, sizeof(info));
    qode_status status;
    qode_trajectory tr;
    if (a.tableau->adaptive) {
        PyObject *rec = PyDict_GetItemString(kwargs, "record");
        if (rec == NULL || record_from_object(rec, &a, record, &tr) < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "backward of an adaptive solve needs its record");
            goto done;
        }
    }
    const double *grid = a.grid ? PyArray_DATA(a.grid) : PyArray_DATA(t);
    size_t n_grid = a.grid ? (size_t)PyArray_SIZE(a.grid) : n_t;
    double *t_bar = PyArray_DATA((PyArrayObject *)grad_t);
    /* Gradients of the grid nodes (fixed grids): folded into grad_t when the
     * grid is t itself, else written to the caller's grad_grid array (if
     * given), since only the caller knows how its grid depends on t. */
    double *grid_bar = a.grid ? NULL : t_bar;
    PyObject *gg = PyDict_GetItemString(kwargs, "grad_grid");
    if (!a.tableau->adaptive && a.grid != NULL && gg != NULL && gg != Py_None) {
        PyArrayObject *arr = (PyArrayObject *)gg;
        if (!PyArray_Check(gg) || PyArray_TYPE(arr) != NPY_FLOAT64 ||
            !PyArray_IS_C_CONTIGUOUS(arr) || !PyArray_ISWRITEABLE(arr) ||
            (size_t)PyArray_SIZE(arr) != n_grid) {
            PyErr_SetString(PyExc_TypeError, "grad_grid must be a writable contiguous float64 "
                            "array with one element per grid point");
            goto done;
        }
        grid_bar = PyArray_DATA(arr);
    }
    /* No Python API from here until the GIL is back. */
    PyThreadState *released = a.has_native ? PyEval_SaveThread() : NULL;
    if (a.tableau->adaptive)
        status = qode_backward_adaptive(&a.problem, a.tableau, &tr, PyArray_DATA(t), n_t,
                                        PyArray_DATA(grad_out),
                                        PyArray_DATA((PyArrayObject *)grad_y0), t_bar, &info);
    else
        status = qode_backward_fixed(&a.problem, a.tableau, &a.fixed, PyArray_DATA(a.y0), grid,
                                     n_grid, PyArray_DATA(t), n_t, PyArray_DATA(grad_out),
                                     PyArray_DATA((PyArrayObject *)grad_y0), t_bar, grid_bar,
                                     &info);
    if (released != NULL)
        PyEval_RestoreThread(released);
    if (status != QODE_OK) {
        fail(status, &info);
        goto done;
    }
    result = Py_BuildValue("(OO)", grad_y0, grad_t);
done:
    Py_XDECREF(grad_y0);
    Py_XDECREF(grad_t);
    Py_XDECREF(t);
    Py_XDECREF(grad_out);
    for (int i = 0; i < 4; i++)
        Py_XDECREF(record[i]);
    solve_args_free(&a);
    return result;
}

static PyObject *method_names(PyObject *self, PyObject *unused)
{
    PyObject *adaptive = PyList_New(0), *fixed = PyList_New(0);
    if (adaptive == NULL || fixed == NULL)
        goto error;
    for (int i = 0; qode_all_tableaus[i] != NULL; i++) {
        PyObject *name = PyUnicode_FromString(qode_all_tableaus[i]->name);
        if (name == NULL)
            goto error;
        int rc = PyList_Append(qode_all_tableaus[i]->adaptive ? adaptive : fixed, name);
        Py_DECREF(name);
        if (rc < 0)
            goto error;
    }
    return Py_BuildValue("(NN)", adaptive, fixed);
error:
    Py_XDECREF(adaptive);
    Py_XDECREF(fixed);
    return NULL;
}

PyMethodDef qode_solver_methods[] = {
    {"solve", (PyCFunction)(void (*)(void))solve, METH_VARARGS | METH_KEYWORDS,
     "solve(**kwargs) -> dict: integrate to the output times t (see qode/_solve.py)."},
    {"solve_event", (PyCFunction)(void (*)(void))solve_event, METH_VARARGS | METH_KEYWORDS,
     "solve_event(**kwargs) -> dict: integrate until the event function changes sign."},
    {"backward", (PyCFunction)(void (*)(void))backward, METH_VARARGS | METH_KEYWORDS,
     "backward(**kwargs) -> (grad_y0, grad_t): discrete adjoint of a solve."},
    {"method_names", method_names, METH_NOARGS,
     "method_names() -> (adaptive, fixed): the names of the Runge-Kutta methods."},
    {NULL, NULL, 0, NULL},
};

/* Binding of the social interaction kernels (csrc/social/social.h).
 *
 *   social_forward(h, mask, aggressiveness, w1, b1, w2, b2,
 *                  goals, goal_weights, obstacles, obstacle_weights, self_term,
 *                  sizes, eps, radius, cutoff_width, beta1, beta2, num_threads)
 *       -> ndarray (B, N, D)
 *   social_backward(<the same arguments>, grad_out)
 *       -> (dh, daggressiveness, dw1, db1, dw2, db2, dgoals, dgoal_weights,
 *           dobstacles, dobstacle_weights, dself_term, dbeta1, dbeta2)
 *
 * Arrays are NumPy arrays or DLPack capsules of one dtype (float32 or
 * float64); mask/goals/goal_weights/obstacles/obstacle_weights/self_term may be
 * None (no mask: every agent present) (then G or O must be 0, or there is no self term).  `sizes` is
 * (B, N, D, H, G, O).  Gradients of absent optional inputs are None.  Shape
 * checks with readable messages live in qode.social; here only element
 * counts and dtypes are checked, so that no buffer is read past its end.
 */
#include "binding/binding.h"
#include "social/social.h"

enum {
    ARG_H, ARG_MASK, ARG_AGGR, ARG_W1, ARG_B1, ARG_W2, ARG_B2,
    ARG_GOALS, ARG_GOAL_W, ARG_OBST, ARG_OBST_W, ARG_SELF, N_ARRAYS
};

static const char *array_names[N_ARRAYS] = {
    "h", "mask", "aggressiveness", "w1", "b1", "w2", "b2",
    "goals", "goal_weights", "obstacles", "obstacle_weights", "self_term",
};

/* Non-finite inputs are the caller's error here (ValueError), not a failed
 * solve as the generic mapping assumes. */
static PyObject *raise_social_status(qode_status status, const char *detail)
{
    if (status == QODE_ERR_NONFINITE && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, detail != NULL ? detail : "social: NaN or Inf input");
        return NULL;
    }
    return qode_raise_status(status, detail);
}

/* Parsed arguments of both entry points. */
typedef struct {
    PyObject *objects[N_ARRAYS];
    qode_buffer buffers[N_ARRAYS];
    int borrowed[N_ARRAYS];
    qode_social_config config;
    qode_social_inputs inputs;
    qode_dtype dtype;
} social_args;

static void release_args(social_args *args)
{
    for (int a = 0; a < N_ARRAYS; a++)
        if (args->borrowed[a])
            qode_buffer_release(&args->buffers[a]);
}

/* Borrows every array and checks its dtype and element count. */
static int borrow_arrays(social_args *args)
{
    const qode_social_config *c = &args->config;
    const Py_ssize_t n = (Py_ssize_t)(c->batch * c->agents);
    const Py_ssize_t D = (Py_ssize_t)c->dim, H = (Py_ssize_t)c->hidden;
    const Py_ssize_t G = (Py_ssize_t)c->n_goals, O = (Py_ssize_t)c->n_obstacles;
    const Py_ssize_t expected[N_ARRAYS] = {
        n * D, n, n, H * 2 * D, H, D * H, D, n * G * D, n * G, n * O * D, n * O, n * D,
    };
    const void *data[N_ARRAYS] = {NULL};
    for (int a = 0; a < N_ARRAYS; a++) {
        PyObject *obj = args->objects[a];
        if (obj == Py_None) {
            int optional = (a == ARG_SELF) || (a == ARG_MASK) || ((a == ARG_GOALS || a == ARG_GOAL_W) && G == 0)
                           || ((a == ARG_OBST || a == ARG_OBST_W) && O == 0);
            if (!optional) {
                PyErr_Format(PyExc_ValueError, "social: %s is required", array_names[a]);
                return -1;
            }
            continue;
        }
        if (qode_buffer_from_object(obj, array_names[a], &args->buffers[a]) < 0)
            return -1;
        args->borrowed[a] = 1;
        const qode_buffer *buf = &args->buffers[a];
        if (a == ARG_H) {
            args->dtype = buf->dtype;
            if (buf->dtype != QODE_FLOAT32 && buf->dtype != QODE_FLOAT64) {
                PyErr_SetString(PyExc_TypeError, "social: h must be float32 or float64");
                return -1;
            }
        } else if (buf->dtype != args->dtype) {
            PyErr_Format(PyExc_TypeError, "social: %s has a different dtype from h",
                         array_names[a]);
            return -1;
        }
        if (buf->size != expected[a]) {
            PyErr_Format(PyExc_ValueError, "social: %s has %zd elements, expected %zd",
                         array_names[a], buf->size, expected[a]);
            return -1;
        }
        data[a] = buf->data;
    }
    qode_social_inputs *in = &args->inputs;
    in->h = data[ARG_H];
    in->mask = data[ARG_MASK];
    in->aggressiveness = data[ARG_AGGR];
    in->w1 = data[ARG_W1];
    in->b1 = data[ARG_B1];
    in->w2 = data[ARG_W2];
    in->b2 = data[ARG_B2];
    in->goals = data[ARG_GOALS];
    in->goal_weights = data[ARG_GOAL_W];
    in->obstacles = data[ARG_OBST];
    in->obstacle_weights = data[ARG_OBST_W];
    in->self_term = data[ARG_SELF];
    return 0;
}

/* Parses the common arguments; `grad_out` is NULL for the forward call. */
static int parse_args(PyObject *tuple, social_args *args, PyObject **grad_out)
{
    memset(args, 0, sizeof *args);
    Py_ssize_t sizes[6];
    qode_social_config *c = &args->config;
    PyObject **o = args->objects;
    int ok;
    if (grad_out == NULL)
        ok = PyArg_ParseTuple(tuple, "OOOOOOOOOOOO(nnnnnn)dddddi:social_forward",
                              &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                              &o[9], &o[10], &o[11], &sizes[0], &sizes[1], &sizes[2],
                              &sizes[3], &sizes[4], &sizes[5], &c->eps, &c->radius,
                              &c->cutoff_width, &c->beta1, &c->beta2, &c->num_threads);
    else
        ok = PyArg_ParseTuple(tuple, "OOOOOOOOOOOO(nnnnnn)dddddiO:social_backward",
                              &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                              &o[9], &o[10], &o[11], &sizes[0], &sizes[1], &sizes[2],
                              &sizes[3], &sizes[4], &sizes[5], &c->eps, &c->radius,
                              &c->cutoff_width, &c->beta1, &c->beta2, &c->num_threads,
                              grad_out);
    if (!ok)
        return -1;
    for (int s = 0; s < 6; s++) {
        /* Each size below 2^31 keeps every product of them in range. */
        if (sizes[s] < 0 || sizes[s] > 2147483647) {
            PyErr_SetString(PyExc_ValueError, "social: sizes must be in [0, 2^31)");
            return -1;
        }
    }
    double total = (double)sizes[0] * sizes[1] * sizes[2] * (1.0 + sizes[4] + sizes[5])
                   + (double)sizes[3] * sizes[2];
    if (total > 1e15) {
        PyErr_SetString(PyExc_MemoryError, "social: the problem is too large");
        return -1;
    }
    c->batch = (size_t)sizes[0];
    c->agents = (size_t)sizes[1];
    c->dim = (size_t)sizes[2];
    c->hidden = (size_t)sizes[3];
    c->n_goals = (size_t)sizes[4];
    c->n_obstacles = (size_t)sizes[5];
    if (c->agents == 0 || c->dim == 0 || c->hidden == 0) {
        PyErr_SetString(PyExc_ValueError, "social: N, D and H must be at least 1");
        return -1;
    }
    return borrow_arrays(args);
}

/* A new zeroed array of the call's dtype. */
static PyObject *new_array(const social_args *args, int ndim, npy_intp d0, npy_intp d1,
                           npy_intp d2, npy_intp d3)
{
    npy_intp dims[4] = {d0, d1, d2, d3};
    return PyArray_ZEROS(ndim, dims, qode_numpy_type(args->dtype), 0);
}

static PyObject *social_forward(PyObject *self, PyObject *tuple)
{
    social_args args;
    if (parse_args(tuple, &args, NULL) < 0) {
        release_args(&args);
        return NULL;
    }
    const qode_social_config *c = &args.config;
    PyObject *out = new_array(&args, 3, (npy_intp)c->batch, (npy_intp)c->agents,
                              (npy_intp)c->dim, 0);
    if (out == NULL) {
        release_args(&args);
        return NULL;
    }
    const char *detail = NULL;
    qode_status status;
    void *out_data = PyArray_DATA((PyArrayObject *)out);
    Py_BEGIN_ALLOW_THREADS
    status = qode_social_forward(c, args.dtype, &args.inputs, out_data, &detail);
    Py_END_ALLOW_THREADS
    release_args(&args);
    if (status != QODE_OK) {
        Py_DECREF(out);
        return raise_social_status(status, detail);
    }
    return out;
}

static PyObject *social_backward(PyObject *self, PyObject *tuple)
{
    social_args args;
    PyObject *grad_obj = NULL;
    if (parse_args(tuple, &args, &grad_obj) < 0) {
        release_args(&args);
        return NULL;
    }
    const qode_social_config *c = &args.config;
    const npy_intp B = (npy_intp)c->batch, N = (npy_intp)c->agents, D = (npy_intp)c->dim;
    const npy_intp H = (npy_intp)c->hidden, G = (npy_intp)c->n_goals;
    const npy_intp O = (npy_intp)c->n_obstacles;
    qode_buffer grad_buf;
    if (qode_buffer_from_object(grad_obj, "grad_out", &grad_buf) < 0) {
        release_args(&args);
        return NULL;
    }
    if (grad_buf.dtype != args.dtype || grad_buf.size != B * N * D) {
        PyErr_SetString(PyExc_ValueError, "social: grad_out must match h in dtype and size");
        qode_buffer_release(&grad_buf);
        release_args(&args);
        return NULL;
    }

    enum { N_GRADS = 11 };
    PyObject *g[N_GRADS] = {NULL};
    g[0] = new_array(&args, 3, B, N, D, 0);
    g[1] = new_array(&args, 2, B, N, 0, 0);
    g[2] = new_array(&args, 2, H, 2 * D, 0, 0);
    g[3] = new_array(&args, 1, H, 0, 0, 0);
    g[4] = new_array(&args, 2, D, H, 0, 0);
    g[5] = new_array(&args, 1, D, 0, 0, 0);
    g[6] = new_array(&args, 4, B, N, G, D);
    g[7] = new_array(&args, 3, B, N, G, 0);
    g[8] = new_array(&args, 4, B, N, O, D);
    g[9] = new_array(&args, 3, B, N, O, 0);
    g[10] = args.inputs.self_term != NULL ? new_array(&args, 3, B, N, D, 0)
                                          : (Py_INCREF(Py_None), Py_None);
    int failed = 0;
    for (int a = 0; a < N_GRADS; a++)
        failed |= g[a] == NULL;
    PyObject *result = NULL;
    if (!failed) {
        qode_social_grads grads;
        void *ptr[N_GRADS];
        for (int a = 0; a < N_GRADS; a++)
            ptr[a] = g[a] == Py_None ? NULL : PyArray_DATA((PyArrayObject *)g[a]);
        grads.h = ptr[0];
        grads.aggressiveness = ptr[1];
        grads.w1 = ptr[2];
        grads.b1 = ptr[3];
        grads.w2 = ptr[4];
        grads.b2 = ptr[5];
        grads.goals = G > 0 ? ptr[6] : NULL;
        grads.goal_weights = G > 0 ? ptr[7] : NULL;
        grads.obstacles = O > 0 ? ptr[8] : NULL;
        grads.obstacle_weights = O > 0 ? ptr[9] : NULL;
        grads.self_term = ptr[10];
        const char *detail = NULL;
        qode_status status;
        const void *grad_data = grad_buf.data;
        Py_BEGIN_ALLOW_THREADS
        status = qode_social_backward(c, args.dtype, &args.inputs, grad_data, &grads, &detail);
        Py_END_ALLOW_THREADS
        if (status != QODE_OK)
            raise_social_status(status, detail);
        else
            result = Py_BuildValue("(OOOOOOOOOOOdd)", g[0], g[1], g[2], g[3], g[4], g[5],
                                   g[6], g[7], g[8], g[9], g[10], grads.beta1, grads.beta2);
    }
    for (int a = 0; a < N_GRADS; a++)
        Py_XDECREF(g[a]);
    qode_buffer_release(&grad_buf);
    release_args(&args);
    return result;
}

PyMethodDef qode_social_methods[] = {
    {"social_forward", social_forward, METH_VARARGS,
     "Social ODE vector field (interaction + control terms); see qode.social."},
    {"social_backward", social_backward, METH_VARARGS,
     "Vector-Jacobian product of social_forward with respect to every input."},
    {NULL, NULL, 0, NULL},
};

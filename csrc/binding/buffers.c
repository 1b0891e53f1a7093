/* Conversions shared by all binding files: status codes to exceptions, and
 * borrowing NumPy arrays or DLPack capsules (zero-copy torch tensors) as
 * plain contiguous buffers. */
#include "binding/binding.h"
#include "binding/dlpack.h"

PyObject *qode_raise_status(qode_status status, const char *detail)
{
    if (PyErr_Occurred())
        return NULL;
    PyObject *type = PyExc_RuntimeError;
    if (status == QODE_ERR_INVALID_ARGUMENT || status == QODE_ERR_SHAPE)
        type = PyExc_ValueError;
    else if (status == QODE_ERR_NO_MEMORY)
        type = PyExc_MemoryError;
    if (detail != NULL && detail[0] != '\0')
        PyErr_SetString(type, detail);
    else
        PyErr_SetString(type, qode_status_message(status));
    return NULL;
}

int qode_dtype_from_numpy(int type_num)
{
    switch (type_num) {
    case NPY_FLOAT32: return QODE_FLOAT32;
    case NPY_FLOAT64: return QODE_FLOAT64;
    case NPY_COMPLEX64: return QODE_COMPLEX64;
    case NPY_COMPLEX128: return QODE_COMPLEX128;
    default: return -1;
    }
}

int qode_numpy_type(qode_dtype dtype)
{
    switch (dtype) {
    case QODE_FLOAT32: return NPY_FLOAT32;
    case QODE_FLOAT64: return NPY_FLOAT64;
    case QODE_COMPLEX64: return NPY_COMPLEX64;
    case QODE_COMPLEX128: return NPY_COMPLEX128;
    }
    return NPY_NOTYPE;
}

static const char *dl_dtype_name(qode_dl_dtype dt)
{
    if (dt.code == QODE_DL_FLOAT && dt.bits == 16) return "float16";
    if (dt.code == QODE_DL_BFLOAT) return "bfloat16";
    if (dt.code == QODE_DL_INT || dt.code == QODE_DL_UINT) return "an integer type";
    if (dt.code == QODE_DL_BOOL) return "bool";
    return "an unsupported type";
}

static int buffer_from_dlpack(PyObject *capsule, const char *what, qode_buffer *out)
{
    qode_dl_managed_tensor *managed = PyCapsule_GetPointer(capsule, "dltensor");
    if (managed == NULL)
        return -1;
    const qode_dl_tensor *t = &managed->dl_tensor;
    if (t->device.device_type != QODE_DL_CPU) {
        PyErr_Format(PyExc_ValueError,
                     "%s is on a non-CPU device (DLPack device type %d); the qode C core "
                     "works on CPU memory only, move the tensor with .cpu()",
                     what, (int)t->device.device_type);
        return -1;
    }
    int dtype = -1;
    if (t->dtype.lanes == 1) {
        if (t->dtype.code == QODE_DL_FLOAT && t->dtype.bits == 32) dtype = QODE_FLOAT32;
        if (t->dtype.code == QODE_DL_FLOAT && t->dtype.bits == 64) dtype = QODE_FLOAT64;
        if (t->dtype.code == QODE_DL_COMPLEX && t->dtype.bits == 64) dtype = QODE_COMPLEX64;
        if (t->dtype.code == QODE_DL_COMPLEX && t->dtype.bits == 128) dtype = QODE_COMPLEX128;
    }
    if (dtype < 0) {
        PyErr_Format(PyExc_TypeError, "%s has dtype %s; expected float32, float64, "
                     "complex64 or complex128", what, dl_dtype_name(t->dtype));
        return -1;
    }
    Py_ssize_t size = 1;
    int64_t expected_stride = 1;
    int contiguous = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->strides != NULL && t->shape[d] > 1 && t->strides[d] != expected_stride)
            contiguous = 0;
        expected_stride *= t->shape[d];
        size *= (Py_ssize_t)t->shape[d];
    }
    if (!contiguous) {
        PyErr_Format(PyExc_ValueError, "%s is not contiguous; call .contiguous() on it", what);
        return -1;
    }
    out->data = (const char *)t->data + t->byte_offset;
    out->size = size;
    out->dtype = (qode_dtype)dtype;
    Py_INCREF(capsule);
    out->owner = capsule;
    return 0;
}

int qode_buffer_from_object(PyObject *obj, const char *what, qode_buffer *out)
{
    if (PyCapsule_CheckExact(obj))
        return buffer_from_dlpack(obj, what, out);
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an array or tensor, got %s",
                     what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArrayObject *array = (PyArrayObject *)obj;
    int dtype = qode_dtype_from_numpy(PyArray_TYPE(array));
    if (dtype < 0) {
        PyErr_Format(PyExc_TypeError, "%s has dtype %s; expected float32, float64, "
                     "complex64 or complex128", what, PyArray_DESCR(array)->typeobj->tp_name);
        return -1;
    }
    PyArrayObject *contiguous = PyArray_GETCONTIGUOUS(array);
    if (contiguous == NULL)
        return -1;
    out->data = PyArray_DATA(contiguous);
    out->size = PyArray_SIZE(contiguous);
    out->dtype = (qode_dtype)dtype;
    out->owner = (PyObject *)contiguous;
    return 0;
}

void qode_buffer_release(qode_buffer *buffer)
{
    Py_CLEAR(buffer->owner);
    buffer->data = NULL;
}

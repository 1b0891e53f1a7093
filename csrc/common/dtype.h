/* Element types the C core understands.
 *
 * Complex numbers are stored as interleaved (real, imaginary) pairs, exactly as
 * C99 `double complex`, NumPy and PyTorch lay them out.  Kernels that only form
 * real linear combinations can therefore treat a complex array of n elements
 * as a real array of 2n elements of the matching real type.
 */
#ifndef QODE_DTYPE_H
#define QODE_DTYPE_H

#include <stddef.h>

typedef enum {
    QODE_FLOAT32 = 0,
    QODE_FLOAT64 = 1,
    QODE_COMPLEX64 = 2,
    QODE_COMPLEX128 = 3
} qode_dtype;

/* Bytes per element (a complex element counts as one element). */
static inline size_t qode_dtype_size(qode_dtype dtype)
{
    switch (dtype) {
    case QODE_FLOAT32: return 4;
    case QODE_FLOAT64: return 8;
    case QODE_COMPLEX64: return 8;
    case QODE_COMPLEX128: return 16;
    }
    return 0;
}

/* 1 for complex types, 0 for real ones. */
static inline int qode_dtype_is_complex(qode_dtype dtype)
{
    return dtype == QODE_COMPLEX64 || dtype == QODE_COMPLEX128;
}

/* 1 when the underlying real type is double, 0 when it is float. */
static inline int qode_dtype_is_double(qode_dtype dtype)
{
    return dtype == QODE_FLOAT64 || dtype == QODE_COMPLEX128;
}

#endif /* QODE_DTYPE_H */

/* The parts of the DLPack ABI (https://dmlc.github.io/dlpack) that qode reads.
 *
 * DLPack is a stable C struct layout that PyTorch, NumPy and JAX use to hand
 * each other tensors without copying.  qode only consumes "dltensor" capsules
 * produced by `torch.utils.dlpack.to_dlpack`, so only the legacy (unversioned)
 * DLManagedTensor is declared here.
 */
#ifndef QODE_DLPACK_H
#define QODE_DLPACK_H

#include <stdint.h>

enum { QODE_DL_CPU = 1 };
enum { QODE_DL_INT = 0, QODE_DL_UINT = 1, QODE_DL_FLOAT = 2, QODE_DL_BFLOAT = 4,
       QODE_DL_COMPLEX = 5, QODE_DL_BOOL = 6 };

typedef struct {
    int32_t device_type;
    int32_t device_id;
} qode_dl_device;

typedef struct {
    uint8_t code;
    uint8_t bits;
    uint16_t lanes;
} qode_dl_dtype;

typedef struct {
    void *data;
    qode_dl_device device;
    int32_t ndim;
    qode_dl_dtype dtype;
    int64_t *shape;
    int64_t *strides; /* in elements; NULL means compact row-major */
    uint64_t byte_offset;
} qode_dl_tensor;

typedef struct qode_dl_managed_tensor {
    qode_dl_tensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct qode_dl_managed_tensor *self);
} qode_dl_managed_tensor;

#endif /* QODE_DLPACK_H */

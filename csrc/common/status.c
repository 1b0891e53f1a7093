#include "common/status.h"

const char *qode_status_message(qode_status status)
{
    switch (status) {
    case QODE_OK: return "success";
    case QODE_ERR_INVALID_ARGUMENT: return "invalid argument";
    case QODE_ERR_SHAPE: return "array of the wrong shape";
    case QODE_ERR_NO_MEMORY: return "out of memory";
    case QODE_ERR_STEP_UNDERFLOW: return "underflow in dt";
    case QODE_ERR_MAX_STEPS: return "max_num_steps exceeded";
    case QODE_ERR_NONFINITE: return "non-finite values in the state";
    case QODE_ERR_EVENT_NOT_FOUND: return "event not found";
    case QODE_ERR_CALLBACK: return "a callback failed";
    }
    return "unknown status";
}

/* Status codes shared by every part of the C core.
 *
 * Every public entry point of the core returns one of these.  The binding
 * turns them into Python exceptions; C callers (and the C tests) check them
 * directly.  Codes are grouped so that the binding can pick the exception type
 * from the range alone.
 */
#ifndef QODE_STATUS_H
#define QODE_STATUS_H

typedef enum {
    QODE_OK = 0,

    /* Caller errors: bad arguments (-> ValueError). */
    QODE_ERR_INVALID_ARGUMENT = 1,
    QODE_ERR_SHAPE = 2,

    /* Resource errors (-> MemoryError). */
    QODE_ERR_NO_MEMORY = 10,

    /* Numerical failures during a solve (-> RuntimeError / AssertionError). */
    QODE_ERR_STEP_UNDERFLOW = 20,
    QODE_ERR_MAX_STEPS = 21,
    QODE_ERR_NONFINITE = 22,
    QODE_ERR_EVENT_NOT_FOUND = 23,

    /* A user callback failed; the callback owner holds the details (for the
     * Python binding: a pending Python exception). */
    QODE_ERR_CALLBACK = 30
} qode_status;

/* A short, static, human-readable description of a status code. */
const char *qode_status_message(qode_status status);

#endif /* QODE_STATUS_H */

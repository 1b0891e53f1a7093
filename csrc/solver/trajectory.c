/* Growable record of accepted step boundaries (for backward passes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "solver/solver.h"
#include "solver/trajectory.h"

void qode_trajectory_init(qode_trajectory *tr)
{
    memset(tr, 0, sizeof(*tr));
}

void qode_trajectory_free(qode_trajectory *tr)
{
    free(tr->t);
    free(tr->y);
    memset(tr, 0, sizeof(*tr));
}

qode_status qode_trajectory_append(qode_trajectory *tr, size_t n, qode_dtype dtype, double t,
                                   const void *y)
{
    size_t bytes = n * qode_dtype_size(dtype);
    if (tr->n_points == 0 && tr->capacity == 0) {
        tr->n = n;
        tr->dtype = dtype;
    }
    if (tr->n_points == tr->capacity) {
        /* Doubling keeps the amortised cost per step constant. */
        size_t capacity = tr->capacity == 0 ? 64 : 2 * tr->capacity;
        if (bytes != 0 && capacity > SIZE_MAX / bytes)
            return QODE_ERR_NO_MEMORY;
        double *t_new = realloc(tr->t, capacity * sizeof(double));
        if (t_new == NULL)
            return QODE_ERR_NO_MEMORY;
        tr->t = t_new;
        void *y_new = realloc(tr->y, capacity * bytes);
        if (y_new == NULL)
            return QODE_ERR_NO_MEMORY;
        tr->y = y_new;
        tr->capacity = capacity;
    }
    tr->t[tr->n_points] = t;
    memcpy((char *)tr->y + tr->n_points * bytes, y, bytes);
    tr->n_points++;
    return QODE_OK;
}

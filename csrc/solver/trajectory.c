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
    free(tr->f);
    free(tr->fresh);
    memset(tr, 0, sizeof(*tr));
}

/* Grows one array to `capacity` elements of `size` bytes. */
static int grow(void **array, size_t capacity, size_t size)
{
    void *bigger = realloc(*array, capacity * size);
    if (bigger == NULL)
        return -1;
    *array = bigger;
    return 0;
}

qode_status qode_trajectory_append(qode_trajectory *tr, size_t n, qode_dtype dtype, double t,
                                   const void *y, const void *f, int fresh)
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
        if (grow((void **)&tr->t, capacity, sizeof(double)) < 0 ||
            grow(&tr->y, capacity, bytes) < 0 || grow(&tr->f, capacity, bytes) < 0 ||
            grow((void **)&tr->fresh, capacity, 1) < 0)
            return QODE_ERR_NO_MEMORY;
        tr->capacity = capacity;
    }
    tr->t[tr->n_points] = t;
    memcpy((char *)tr->y + tr->n_points * bytes, y, bytes);
    memcpy((char *)tr->f + tr->n_points * bytes, f, bytes);
    tr->fresh[tr->n_points] = (unsigned char)(fresh != 0);
    tr->n_points++;
    return QODE_OK;
}

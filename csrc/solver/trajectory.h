/* Private to the solver: appending to a qode_trajectory. */
#ifndef QODE_TRAJECTORY_H
#define QODE_TRAJECTORY_H

#include "solver/solver.h"

qode_status qode_trajectory_append(qode_trajectory *trajectory, size_t n, qode_dtype dtype,
                                   double t, const void *y, const void *f, int fresh);

#endif /* QODE_TRAJECTORY_H */

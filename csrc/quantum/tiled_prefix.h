/* The product-state prefix of the tiled path (tiled_prefix.c).
 *
 * A block that is the first step on its wire acts on |0>, so only its
 * column B|0> matters: the forward pass builds the product state of these
 * columns directly, and the adjoint differentiates them as vectors (a
 * matrix times a vector per segment, instead of the 2x2 matrix products of
 * a general block).  See tiled.h for blocks and segments. */
#ifndef QODE_QUANTUM_TILED_PREFIX_H
#define QODE_QUANTUM_TILED_PREFIX_H

#include "quantum/tiled.h"

/* The column of every wire into cols[(4 * w + k) * L + l]: for lane l,
 * k = 0, 1 the re and im of the wire's |0> amplitude, k = 2, 3 of its |1>
 * amplitude; B_w |0> for a wire with a prefix block, |0> otherwise.  With
 * `record` not NULL (qode_tile_prefix_record_doubles of space), also keeps
 * what the adjoint needs: the vector after every segment, and the cos and
 * sin of every data rotation. */
void qode_tile_prefix_columns(const qode_tile_job *job, double *cols, double *record);

size_t qode_tile_prefix_record_doubles(const qode_tile_schedule *s);

/* Adds the gradients of all prefix blocks.  (lr, li): lam right after the
 * prefix (destroyed); (tr, ti) and (xr, xi): two more tile planes of
 * scratch; cols and record: from qode_tile_prefix_columns.  With `real`
 * (real columns, and only Re lam matters, as for a real product state),
 * only the re planes are read and written. */
void qode_tile_prefix_adjoint(const qode_tile_job *job, int real, double *lr, double *li,
                              double *tr, double *ti, double *xr, double *xi, const double *cols,
                              const double *record, double *grad_data, double *grad_trainable);

/* A dense schedule whose prefix heads are single real rotations
 * (sched->rotations, tiled.h) needs none of the above: its columns are
 * c a + s b (into cols, the layout of qode_tile_prefix_columns, imaginary
 * parts 0), and the gradient of a wire's angle is 2 mu . dpsi/dt for the
 * real product state psi and mu = Re(U^+ lam) (both tile planes), added to
 * the lane's data row. */
void qode_tile_rotation_columns(const qode_tile_job *job, double *cols);
void qode_tile_rotation_gradients(const qode_tile_job *job, const double *mu, const double *psi,
                                  double *grad_data);

#endif /* QODE_QUANTUM_TILED_PREFIX_H */

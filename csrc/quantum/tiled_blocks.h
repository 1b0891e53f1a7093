/* The per-lane 2x2 algebra of fused one-qubit blocks in the tiled path
 * (tiled_blocks.c), shared by tiled.c and tiled_prefix.c: the matrices of a
 * block's segments in every lane, their product, and the gradients of a
 * block's angles from a reduced matrix.  See tiled.h for blocks and
 * segments. */
#ifndef QODE_QUANTUM_TILED_BLOCKS_H
#define QODE_QUANTUM_TILED_BLOCKS_H

#include "quantum/lane2.h"
#include "quantum/tile_kernels.h"
#include "quantum/tiled.h"

/* The data row of lane l (lanes past job->valid repeat row b0); NULL when
 * the circuit reads no data. */
static inline const double *qode_tile_lane_row(const qode_tile_job *job, int l)
{
    if (job->c->n_data == 0)
        return NULL;
    int64_t b = job->b0 + (l < job->valid ? l : 0);
    return job->data + (size_t)b * job->c->n_data;
}

/* Adds `value` to the gradient of parameter r for lane l (a data column of
 * that lane's row, or a trainable weight, summed over lanes). */
static inline void qode_tile_add_gradient(const qode_tile_job *job, const qode_param_ref *r,
                                          int l, double value, double *grad_data,
                                          double *grad_trainable)
{
    if (r->source == QODE_PARAM_DATA)
        grad_data[(size_t)(job->b0 + l) * job->c->n_data + r->index] += value;
    else
        grad_trainable[r->index] += value;
}

/* The matrices of segment `seg` in every lane and, when dv != NULL, the
 * derivatives of a data op with respect to each of its angles (dv[p]). */
void qode_tile_segment_lanes(const qode_tile_job *job, const qode_tile_segment *seg, lane2 *v,
                             lane2 *dv);

/* The product of a block's segments in every lane. */
void qode_tile_block_product(const qode_tile_job *job, const qode_tile_step *st, lane2 *out);

/* The per-lane matrices of a block B = V_{m-1} ... V_0 (its segments): V_s,
 * the suffixes S_s = V_{m-1} ... V_{s+1}, and the derivatives dV_s of data
 * ops (3 per segment, one per angle), in `scratch` (5 m lane2). */
typedef struct {
    lane2 *v;
    lane2 *suffix;
    lane2 *dv;
} qode_block_mats;

qode_block_mats qode_tile_block_scratch(const qode_tile_step *st, double *scratch);

/* Fills bm for block st and returns B^+ in inv. */
void qode_tile_block_lane_matrices(const qode_tile_job *job, const qode_tile_step *st,
                                   const qode_block_mats *bm, lane2 *inv);

/* Adds the gradients of a block's angles, given R, the per-lane reduced
 * matrix of (phi before the block, lam after it) as qode_tile_reduced
 * gives it. */
void qode_tile_block_gradients(const qode_tile_job *job, const qode_tile_step *st,
                               const qode_block_mats *bm, const lane2 *red, double *grad_data,
                               double *grad_trainable);

/* Adds the gradients of the trainable angles of shared run `seg`, given X
 * summed over the tile's circuits as four-lane partial sums acc[k] (entry k
 * of X, interleaved as mat2): 2 Re Tr(A X) for each angle's A (tiled.h). */
void qode_tile_shared_run_gradients(const qode_tile_job *job, const qode_tile_segment *seg,
                                    const vec4 acc[8], double *grad_trainable);

#endif /* QODE_QUANTUM_TILED_BLOCKS_H */

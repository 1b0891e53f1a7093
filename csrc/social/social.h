/* The Social ODE vector field (Social ODE, Eq. 6-7, with control terms) and
 * its hand-written vector-Jacobian product.
 *
 * For B scenes of N agents with latent states h_i in R^D (agent i of scene b
 * at h[(b*N + i)*D]) the kernel computes, for every agent i,
 *
 *   F_i = m_i * ( beta1 * I_i + beta2 * f_i
 *                 - sum_g lambda_ig (h_i - g_ig) + sum_o lambda_io (h_i - o_io) )
 *
 *   I_i = a_i * sum_{j != i, m_j = 1} S(r_ij) / (r_ij + eps) * k(i, j),
 *   r_ij = ||h_i - h_j||_2
 *
 * k-network (the Social ODE interaction intensity, a one-hidden-layer MLP on
 * the pair's states):
 *
 *   k(i, j) = W2 tanh(W1 [h_i; h_j] + b1) + b2,   W1: H x 2D, b1: H,
 *                                                   W2: D x H,  b2: D
 *
 * (row-major, the torch.nn.Linear layout: W1[k][d] multiplies input d).
 *
 * - m_i in {0, 1} marks present agents; absent agents neither act nor move
 *   (their F_i is 0 and they are skipped as neighbours).
 * - f_i is an optional self-dynamics term f_theta(h_i) computed elsewhere
 *   (a torch MLP); NULL means 0.
 * - Goals g_ig (attractors) and obstacles o_io (repellers) are given per
 *   agent, G and O of them, with per-agent strengths lambda (shape B x N x G
 *   and B x N x O); callers broadcast shared goals.
 * - S(r) is the neighbour cutoff.  Without a radius (radius <= 0) S = 1 and
 *   every pair interacts.  With a radius R and cutoff width w:
 *     w == 0: S(r) = 1 if r < R else 0 (hard cutoff: F jumps by a bounded
 *             amount when a pair crosses r = R);
 *     w > 0:  S(r) = 1 for r <= R - w, 0 for r >= R, and the C^1 smoothstep
 *             1 - 3x^2 + 2x^3, x = (r - R + w) / w, in between (continuous
 *             field and gradient).
 *   Neighbours are found with a cell list on the first min(D, 2) coordinates
 *   (a projection never increases distances, so the cell list misses no
 *   pair within R); its cost is O(N) per scene when the agents are spread
 *   out in those coordinates, as for physical crowds (D = 2).
 * - Zero distance: r_ij = 0 gives the finite weight S(0) / eps, and the
 *   gradient of r at 0 is taken as the zero vector (the minimum-norm
 *   subgradient of the Euclidean norm at 0).  eps must be > 0.
 *
 * Cost: O(N^2 (H + D)) per scene (or O(N) neighbours per agent with a
 * radius), since sum_j c_ij k(i,j) = W2 (sum_j c_ij tanh(z_ij)) + b2 sum_j c_ij
 * lets W2 act once per agent instead of once per pair.  Work is split over
 * (scene, agent) with pthreads above a size threshold.
 *
 * float32 inputs are converted to float64, computed in float64 and the
 * results rounded back to float32.
 */
#ifndef QODE_SOCIAL_H
#define QODE_SOCIAL_H

#include <stddef.h>

#include "common/dtype.h"
#include "common/status.h"

typedef struct {
    size_t batch;        /* B, scenes */
    size_t agents;       /* N, agents per scene (>= 1) */
    size_t dim;          /* D, latent dimension (>= 1) */
    size_t hidden;       /* H, hidden width of the k-network (>= 1) */
    size_t n_goals;      /* G, attractors per agent (may be 0) */
    size_t n_obstacles;  /* O, repellers per agent (may be 0) */
    double eps;          /* > 0 */
    double radius;       /* <= 0: all pairs interact */
    double cutoff_width; /* 0: hard cutoff; in (0, radius]: smooth cutoff */
    double beta1;        /* weight of the interaction */
    double beta2;        /* weight of the self-dynamics term f */
    int num_threads;     /* 0: automatic (threads above a size threshold) */
} qode_social_config;

/* Inputs, all of the dtype passed to the entry points (float32 or float64),
 * contiguous, row-major.  goals/goal_weights may be NULL when G == 0, and
 * likewise for obstacles; self_term may be NULL. */
typedef struct {
    const void *h;                /* B*N*D */
    const void *mask;             /* B*N, values 0 or 1; NULL: all present */
    const void *aggressiveness;   /* B*N */
    const void *w1;               /* H*2D */
    const void *b1;               /* H */
    const void *w2;               /* D*H */
    const void *b2;               /* D */
    const void *goals;            /* B*N*G*D */
    const void *goal_weights;     /* B*N*G */
    const void *obstacles;        /* B*N*O*D */
    const void *obstacle_weights; /* B*N*O */
    const void *self_term;        /* B*N*D or NULL */
} qode_social_inputs;

/* Gradients of <grad_out, F> with respect to each input, same shapes and
 * dtype as the inputs (each required when the matching input is given;
 * self_term may be NULL when the input is).  The mask has no gradient. */
typedef struct {
    void *h;
    void *aggressiveness;
    void *w1;
    void *b1;
    void *w2;
    void *b2;
    void *goals;
    void *goal_weights;
    void *obstacles;
    void *obstacle_weights;
    void *self_term;
    double beta1;
    double beta2;
} qode_social_grads;

/* F (B*N*D, dtype `dtype`) into `out`.  On failure returns a status and, if
 * `detail` is not NULL, points it at a static message naming the problem. */
qode_status qode_social_forward(const qode_social_config *config, qode_dtype dtype,
                                const qode_social_inputs *inputs, void *out,
                                const char **detail);

/* The vector-Jacobian product: given grad_out (B*N*D), fills `grads`. */
qode_status qode_social_backward(const qode_social_config *config, qode_dtype dtype,
                                 const qode_social_inputs *inputs, const void *grad_out,
                                 qode_social_grads *grads, const char **detail);

#endif /* QODE_SOCIAL_H */

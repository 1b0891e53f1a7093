/* Declarations shared by the social kernel files (not part of the API). */
#ifndef QODE_SOCIAL_INTERNAL_H
#define QODE_SOCIAL_INTERNAL_H

#include <math.h>
#include <stddef.h>

#include "social/neighbours.h"
#include "social/social.h"

/* Scratch memory of one evaluation, carved out of one zeroed allocation.
 * Arrays typed void * hold elements of the call's real type; the per-worker
 * arrays have `workers` consecutive slices. */
typedef struct {
    int workers;
    int use_cells;
    void *u, *v;            /* B*N*H each */
    void *w1t, *w2t;        /* W1 transposed (2D x H), W2 transposed (H x D) */
    void *acc, *big_p, *s_tmp; /* workers * H */
    void *p_vec;            /* workers * D */
    void *du;               /* B*N*H (backward) */
    void *dv_private;       /* workers * B*N*H (backward) */
    void *dh_private;       /* workers * B*N*D (backward) */
    void *dw2_private;      /* workers * D*H (backward) */
    void *db2_private;      /* workers * D (backward) */
    double *dbeta_private;  /* workers * 2 (backward) */
    size_t *candidates;     /* workers * N */
    double *pair_scratch;   /* workers * 3N: r, c and dc/dr of one agent's pairs */
    qode_cell_list cells;
    void *block;            /* the allocation, freed by the caller */
} qode_social_workspace;

/* Weight c = S(r) / (r + eps) of a pair at distance r and its derivative
 * dc/dr (S is the cutoff of social.h; 1 without a radius). */
static inline double qode_social_pair_weight(const qode_social_config *cfg, double r,
                                             double *dcdr)
{
    double inv = 1.0 / (r + cfg->eps);
    double s = 1.0, ds = 0.0;
    if (cfg->radius > 0.0) {
        if (r >= cfg->radius) {
            *dcdr = 0.0;
            return 0.0;
        }
        double onset = cfg->radius - cfg->cutoff_width;
        if (cfg->cutoff_width > 0.0 && r > onset) {
            double x = (r - onset) / cfg->cutoff_width;
            s = 1.0 - x * x * (3.0 - 2.0 * x);
            ds = -6.0 * x * (1.0 - x) / cfg->cutoff_width;
        }
    }
    *dcdr = ds * inv - s * inv * inv;
    return s * inv;
}

#endif /* QODE_SOCIAL_INTERNAL_H */

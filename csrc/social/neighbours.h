/* Candidate neighbours of an agent: every present agent of its scene, or,
 * with a radius R, the agents in the 3 x 3 block of cells around it in a
 * uniform grid over the first min(D, 2) coordinates (cells at least R wide,
 * so no pair closer than R is missed; the kernels still check the full
 * D-dimensional distance). */
#ifndef QODE_SOCIAL_NEIGHBOURS_H
#define QODE_SOCIAL_NEIGHBOURS_H

#include <stddef.h>

typedef struct {
    size_t batch, agents;
    int projected_dims;   /* min(D, 2) */
    size_t max_cells;     /* cells per scene, at most 2N + 4 */
    /* Caller-filled inputs: */
    double *coords;       /* batch * agents * 2, projected coordinates */
    unsigned char *present; /* batch * agents, 1 for present agents */
    /* Built by qode_cell_list_build_scene: */
    size_t *present_list;   /* batch * agents: present agents of each scene */
    size_t *present_count;  /* batch */
    size_t *cell_start;     /* batch * (max_cells + 1) */
    size_t *cell_items;     /* batch * agents */
    size_t *agent_cell_x, *agent_cell_y; /* batch * agents */
    size_t *grid_nx, *grid_ny;           /* batch */
} qode_cell_list;

/* Bytes of workspace qode_cell_list_init needs; 0 on size overflow. */
size_t qode_cell_list_bytes(size_t batch, size_t agents);

/* Lays the arrays out in `memory` (qode_cell_list_bytes of it, aligned for
 * double). */
void qode_cell_list_init(qode_cell_list *list, size_t batch, size_t agents, int projected_dims,
                         void *memory);

/* Lists the present agents of scene b and, if radius > 0, bins them into
 * cells of width >= radius.  Reads coords and present of that scene. */
void qode_cell_list_build_scene(qode_cell_list *list, size_t b, double radius);

/* Writes the candidate neighbours j != i of agent i in scene b to `out`
 * (room for `agents` entries) and returns how many there are.  With
 * use_cells == 0 the candidates are all present agents but i. */
size_t qode_cell_list_candidates(const qode_cell_list *list, size_t b, size_t i, int use_cells,
                                 size_t *out);

#endif /* QODE_SOCIAL_NEIGHBOURS_H */

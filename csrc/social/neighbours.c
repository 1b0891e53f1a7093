#include "social/neighbours.h"

#include <math.h>
#include <stdint.h>

/* Number of size_t slots of each array, in the order they are laid out. */
static int slots(size_t batch, size_t agents, size_t *total)
{
    size_t max_cells = 2 * agents + 4;
    size_t per_scene = 5 * agents + (max_cells + 1) + 3;
    if (agents > SIZE_MAX / 8 || (batch != 0 && per_scene > SIZE_MAX / 16 / batch))
        return -1;
    *total = batch * per_scene;
    return 0;
}

size_t qode_cell_list_bytes(size_t batch, size_t agents)
{
    size_t total;
    if (slots(batch, agents, &total) != 0)
        return 0;
    /* coords (2 doubles per agent) + present bytes rounded up + size_t arrays */
    size_t coords = batch * agents * 2 * sizeof(double);
    size_t present = (batch * agents + 15) / 16 * 16;
    return coords + present + total * sizeof(size_t);
}

void qode_cell_list_init(qode_cell_list *list, size_t batch, size_t agents, int projected_dims,
                         void *memory)
{
    size_t n = batch * agents;
    list->batch = batch;
    list->agents = agents;
    list->projected_dims = projected_dims;
    list->max_cells = 2 * agents + 4;
    list->coords = memory;
    list->present = (unsigned char *)(list->coords + 2 * n);
    size_t *p = (size_t *)(list->present + (n + 15) / 16 * 16);
    list->present_list = p; p += n;
    list->present_count = p; p += batch;
    list->cell_start = p; p += batch * (list->max_cells + 1);
    list->cell_items = p; p += n;
    list->agent_cell_x = p; p += n;
    list->agent_cell_y = p; p += n;
    list->grid_nx = p; p += batch;
    list->grid_ny = p;
}

void qode_cell_list_build_scene(qode_cell_list *list, size_t b, double radius)
{
    const size_t n = list->agents;
    const unsigned char *present = list->present + b * n;
    const double *xy = list->coords + 2 * b * n;
    size_t *members = list->present_list + b * n;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (present[i])
            members[count++] = i;
    list->present_count[b] = count;
    if (radius <= 0.0 || count == 0)
        return;

    /* Bounding box of the present agents in the projected coordinates. */
    double lo[2] = {0.0, 0.0}, hi[2] = {0.0, 0.0};
    for (int d = 0; d < list->projected_dims; d++) {
        lo[d] = hi[d] = xy[2 * members[0] + d];
        for (size_t m = 1; m < count; m++) {
            double v = xy[2 * members[m] + d];
            lo[d] = v < lo[d] ? v : lo[d];
            hi[d] = v > hi[d] ? v : hi[d];
        }
    }
    /* Cells at least `radius` wide; widen them (doubling) until the grid has
     * at most max_cells cells, which keeps memory and time O(N). */
    double width = radius;
    double nx = 1.0, ny = 1.0;
    int finite_extent = isfinite(hi[0] - lo[0]) && isfinite(hi[1] - lo[1]);
    while (finite_extent) { /* an overflowing extent falls back to one cell */
        nx = floor((hi[0] - lo[0]) / width) + 1.0;
        ny = list->projected_dims > 1 ? floor((hi[1] - lo[1]) / width) + 1.0 : 1.0;
        if (nx * ny <= (double)list->max_cells)
            break;
        width *= 2.0;
    }
    size_t gx = (size_t)nx, gy = (size_t)ny;
    list->grid_nx[b] = gx;
    list->grid_ny[b] = gy;

    size_t *cx = list->agent_cell_x + b * n, *cy = list->agent_cell_y + b * n;
    size_t *start = list->cell_start + b * (list->max_cells + 1);
    size_t *items = list->cell_items + b * n;
    for (size_t c = 0; c <= gx * gy; c++)
        start[c] = 0;
    for (size_t m = 0; m < count; m++) {
        size_t i = members[m];
        size_t x = 0, y = 0;
        if (gx > 1)
            x = (size_t)floor((xy[2 * i] - lo[0]) / width);
        if (gy > 1)
            y = (size_t)floor((xy[2 * i + 1] - lo[1]) / width);
        cx[i] = x < gx ? x : gx - 1;
        cy[i] = y < gy ? y : gy - 1;
        start[cy[i] * gx + cx[i] + 1]++;
    }
    /* Counting sort: start[c] becomes the first slot of cell c. */
    for (size_t c = 0; c < gx * gy; c++)
        start[c + 1] += start[c];
    for (size_t m = 0; m < count; m++) {
        size_t i = members[m];
        size_t c = cy[i] * gx + cx[i];
        items[start[c]++] = i;
    }
    /* The fill advanced each start[c] to the end of cell c: shift back. */
    for (size_t c = gx * gy; c > 0; c--)
        start[c] = start[c - 1];
    start[0] = 0;
}

size_t qode_cell_list_candidates(const qode_cell_list *list, size_t b, size_t i, int use_cells,
                                 size_t *out)
{
    const size_t n = list->agents;
    size_t count = 0;
    if (!use_cells) {
        const size_t *members = list->present_list + b * n;
        for (size_t m = 0; m < list->present_count[b]; m++)
            if (members[m] != i)
                out[count++] = members[m];
        return count;
    }
    const size_t gx = list->grid_nx[b], gy = list->grid_ny[b];
    const size_t x = list->agent_cell_x[b * n + i], y = list->agent_cell_y[b * n + i];
    const size_t *start = list->cell_start + b * (list->max_cells + 1);
    const size_t *items = list->cell_items + b * n;
    size_t x0 = x > 0 ? x - 1 : 0, x1 = x + 1 < gx ? x + 1 : gx - 1;
    size_t y0 = y > 0 ? y - 1 : 0, y1 = y + 1 < gy ? y + 1 : gy - 1;
    for (size_t yy = y0; yy <= y1; yy++)
        for (size_t xx = x0; xx <= x1; xx++) {
            size_t c = yy * gx + xx;
            for (size_t s = start[c]; s < start[c + 1]; s++)
                if (items[s] != i)
                    out[count++] = items[s];
        }
    return count;
}

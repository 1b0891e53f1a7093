/* The tile passes of the dense mode (see tiled_dense.h) besides the matrix
 * products of qode_tile_matmul: the sums over lanes of psi lam^+.  A block
 * of the sums stays in registers while the staged tiles stream by, as in a
 * small matrix product.  Compiled like tile_kernels.c (fused multiply-adds
 * allowed; see there for why). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif
#include "common/simd.h"
#include "quantum/tile_kernels.h"
#include "quantum/tiled_dense.h"


/* GCC folds each lam load into both multiply-adds that use it, which makes
 * the loop below 10 loads for 8 multiply-adds.  A compiler barrier after the
 * loads (memory may change there, so nothing loaded before it may be loaded
 * again after it) keeps the six loaded vectors in registers: 6 loads, and
 * the loop ran 25-30% faster on its own (one thread, AVX2). */
#if defined(__GNUC__)
#define LOADS_DONE() __asm__ volatile("" ::: "memory")
#else
#define LOADS_DONE() ((void)0)
#endif

/* C_xy += psi_x conj(lam_y) (re += psi lr, im -= psi li) over all lanes of
 * `tiles` staged tiles: a 2 x 2 block of C (8 four-lane accumulators) stays
 * in registers while the tiles run, and goes to memory once per call (the
 * chunk's first call stores it: no pass to clear the sums first). */
SIMD_CLONES
void qode_tile_dense_accumulate(const double *stage, size_t slot, int tiles, int n, int first,
                                double *acc)
{
    size_t dim = (size_t)1 << n, plane = (size_t)L << n;
    for (size_t x = 0; x < dim; x += 2)
        for (size_t y = 0; y < dim; y += 2) {
            vec4 re[2][2], im[2][2];
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++)
                    re[a][b] = im[a][b] = SPLAT(0.0);
            for (int v = 0; v < NV; v++) { /* (lanes outside: fewer live registers) */
                /* rows x, x + 1 of psi and y, y + 1 of lam in the first slot */
                const double *p = stage + x * L + 4 * v, *r = stage + plane + y * L + 4 * v;
                const double *q = r + plane;
                for (size_t o = 0; o < (size_t)tiles * slot; o += slot) {
                    vec4 p0 = LD(p + o), p1 = LD(p + o + L);
                    vec4 r0 = LD(r + o), r1 = LD(r + o + L);
                    vec4 i0 = LD(q + o), i1 = LD(q + o + L);
                    LOADS_DONE();
                    re[0][0] += p0 * r0;
                    re[0][1] += p0 * r1;
                    re[1][0] += p1 * r0;
                    re[1][1] += p1 * r1;
                    im[0][0] -= p0 * i0;
                    im[0][1] -= p0 * i1;
                    im[1][0] -= p1 * i0;
                    im[1][1] -= p1 * i1;
                }
            }
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++) {
                    double *e = acc + 8 * ((x + a) * dim + y + b);
                    if (!first) {
                        re[a][b] += LD(e);
                        im[a][b] += LD(e + 4);
                    }
                    ST(e, re[a][b]);
                    ST(e + 4, im[a][b]);
                }
        }
}

void qode_tile_dense_reduce(const double *acc, int n, double *out)
{
    size_t entries = (size_t)2 << (2 * n); /* 2 dim^2 */
    for (size_t k = 0; k < entries; k++) {
        const double *a = acc + 4 * k;
        out[k] = (a[0] + a[1]) + (a[2] + a[3]);
    }
}

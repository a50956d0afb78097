#include "nabla_runtime.h"

/* C[i][j] is always summed over p in increasing order starting from 0.0, exactly as Nabla's
 * interpreter and the loops of standalone C do, so all of them agree to the last bit. Within
 * that constraint the work is blocked for speed: a 4 x 4 block of C stays in registers while p
 * runs, so each row of B is loaded once per four rows of A rather than once per row. */
static void nabla_matmul_rows(long i0, long i1, long k, long n, const double *restrict A,
                              const double *restrict B, double *restrict C) {
    for (long i = i0; i < i1; i++) {
        double *c = C + i * n;
        for (long j = 0; j < n; j++) c[j] = 0.0;
        const double *a = A + i * k;
        for (long p = 0; p < k; p++) {
            const double ap = a[p];
            const double *b = B + p * n;
            for (long j = 0; j < n; j++) c[j] += ap * b[j];
        }
    }
}

/* Built for several instruction sets; the loader picks the best the CPU has. No FMA: products
 * and sums round separately, as everywhere else in Nabla. */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define NABLA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef NABLA_CLONES
#define NABLA_CLONES
#endif

NABLA_CLONES
void nabla_matmul(long m, long k, long n, const double *restrict A, const double *restrict B,
                  double *restrict C) {
    if (n == 1) {
        /* Dot products, four rows at a time: four independent chains of additions, each still
         * in order over p. */
        long i = 0;
        for (; i + 4 <= m; i += 4) {
            const double *a0 = A + i * k, *a1 = a0 + k, *a2 = a1 + k, *a3 = a2 + k;
            double c0 = 0.0, c1 = 0.0, c2 = 0.0, c3 = 0.0;
            for (long p = 0; p < k; p++) {
                const double y = B[p];
                c0 += a0[p] * y;
                c1 += a1[p] * y;
                c2 += a2[p] * y;
                c3 += a3[p] * y;
            }
            C[i] = c0;
            C[i + 1] = c1;
            C[i + 2] = c2;
            C[i + 3] = c3;
        }
        for (; i < m; i++) {
            const double *a = A + i * k;
            double acc = 0.0;
            for (long p = 0; p < k; p++) acc += a[p] * B[p];
            C[i] = acc;
        }
        return;
    }
    long i = 0;
    for (; i + 4 <= m; i += 4) {
        const double *a0 = A + i * k, *a1 = a0 + k, *a2 = a1 + k, *a3 = a2 + k;
        long j = 0;
        for (; j + 8 <= n; j += 8) {
            double c[4][8] = {{0.0}};
            const double *b = B + j;
            for (long p = 0; p < k; p++, b += n) {
                const double x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p];
                for (int q = 0; q < 8; q++) {
                    const double y = b[q];
                    c[0][q] += x0 * y;
                    c[1][q] += x1 * y;
                    c[2][q] += x2 * y;
                    c[3][q] += x3 * y;
                }
            }
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 8; q++) C[(i + r) * n + j + q] = c[r][q];
        }
        for (; j < n; j++) {
            double c0 = 0.0, c1 = 0.0, c2 = 0.0, c3 = 0.0;
            for (long p = 0; p < k; p++) {
                const double y = B[p * n + j];
                c0 += a0[p] * y;
                c1 += a1[p] * y;
                c2 += a2[p] * y;
                c3 += a3[p] * y;
            }
            C[i * n + j] = c0;
            C[(i + 1) * n + j] = c1;
            C[(i + 2) * n + j] = c2;
            C[(i + 3) * n + j] = c3;
        }
    }
    nabla_matmul_rows(i, m, k, n, A, B, C);
}

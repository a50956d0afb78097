#include "nabla_runtime.h"

/* Row-times-matrix order (i, p, j) so the innermost loop streams contiguous rows of B and C
 * and the compiler can vectorise it. Sums run in the same order as Nabla's interpreter, so
 * results agree with it to the last bit; a column count of one (matrix-vector) uses plain dot
 * products, which keep the accumulator in a register. */
void nabla_matmul(long m, long k, long n, const double *restrict A, const double *restrict B,
                  double *restrict C) {
    if (n == 1) {
        for (long i = 0; i < m; i++) {
            const double *a = A + i * k;
            double acc = 0.0;
            for (long p = 0; p < k; p++) acc += a[p] * B[p];
            C[i] = acc;
        }
        return;
    }
    for (long i = 0; i < m; i++) {
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

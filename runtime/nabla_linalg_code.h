/*
 * LU factorisation with partial pivoting and what is built on it. Written once, used twice:
 * nabla_linalg.c compiles it (optimised) for JIT kernels, which call it through
 * tcc_add_symbol, and also turns it into the string `nabla_linalg_source`, which standalone C
 * from `nabla compile` embeds as static functions. Nabla's interpreter (enum LU in
 * Sources/Nabla/Ops/LinearAlgebra.swift) does the same arithmetic in the same order.
 *
 * No include guard: nabla_linalg.c includes this file twice. Inside NABLA_LINALG(...) there
 * must be no preprocessor directives and no comments survive stringising.
 *
 * Back substitution runs row by row (k outer, right-hand sides inner) so it streams memory;
 * every element still sees its subtractions in increasing k, then one division.
 *
 * nabla_lu_factor: eliminates the n x n matrix a (row-major, overwritten by U and the
 * multipliers) and applies the same row swaps and row operations to the n x m right-hand
 * sides x, so no pivot array is stored. A column that is zero from the diagonal down is
 * skipped (the determinant is then 0). Returns the number of row swaps.
 */
NABLA_LINALG(
NABLA_LINKAGE long nabla_lu_factor(long n, long m, double *a, double *x) {
    long i, j, k, p, swaps = 0;
    double best, t, d, l;
    for (k = 0; k < n; k++) {
        p = k;
        best = fabs(a[k * n + k]);
        for (i = k + 1; i < n; i++) {
            t = fabs(a[i * n + k]);
            if (t > best || t != t) {
                best = t;
                p = i;
            }
        }
        if (p != k) {
            for (j = k; j < n; j++) { t = a[k * n + j]; a[k * n + j] = a[p * n + j]; a[p * n + j] = t; }
            for (j = 0; j < m; j++) { t = x[k * m + j]; x[k * m + j] = x[p * m + j]; x[p * m + j] = t; }
            swaps++;
        }
        d = a[k * n + k];
        if (d == 0.0) continue;
        for (i = k + 1; i < n; i++) {
            l = a[i * n + k] / d;
            for (j = k + 1; j < n; j++) a[i * n + j] -= l * a[k * n + j];
            for (j = 0; j < m; j++) x[i * m + j] -= l * x[k * m + j];
        }
    }
    return swaps;
}
NABLA_LINKAGE void nabla_lu_solve(long n, long m, double *a, double *x) {
    long i, j, k;
    double u, d;
    nabla_lu_factor(n, m, a, x);
    for (i = n - 1; i >= 0; i--) {
        double *xi = x + i * m;
        for (k = i + 1; k < n; k++) {
            u = a[i * n + k];
            for (j = 0; j < m; j++) xi[j] -= u * x[k * m + j];
        }
        d = a[i * n + i];
        for (j = 0; j < m; j++) xi[j] = xi[j] / d;
    }
}
NABLA_LINKAGE double nabla_lu_det(long n, double *a) {
    long k, swaps = nabla_lu_factor(n, 0, a, a);
    double d = 1.0;
    for (k = 0; k < n; k++) d *= a[k * n + k];
    return swaps % 2 == 1 ? -d : d;
}
NABLA_LINKAGE double nabla_lu_logabsdet(long n, double *a) {
    long k;
    double s = 0.0;
    nabla_lu_factor(n, 0, a, a);
    for (k = 0; k < n; k++) s += log(fabs(a[k * n + k]));
    return s;
}
)

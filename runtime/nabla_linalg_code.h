/*
 * LU factorisation with partial pivoting and what is built on it. Written once, used twice:
 * nabla_linalg.c compiles it (optimised) for JIT kernels, which call it through
 * tcc_add_symbol, and also turns it into the string `nabla_linalg_source`, which standalone C
 * from `nabla compile` embeds as static functions. Nabla's interpreter (enum LU in
 * Sources/Nabla/Ops/LinearAlgebra.swift) does the same arithmetic in the same order.
 *
 * No include guard: nabla_linalg.c includes this file twice. Inside the macro below there must
 * be no preprocessor directives, and no comments survive stringising.
 *
 * nabla_lu_factor: Gaussian elimination with partial pivoting of the n x n matrix a
 * (row-major, overwritten: U on and above the diagonal, below it the multipliers; under a zero
 * pivot, the entries as they were), recording each step's pivot row in pivots (as doubles). A
 * column that is zero from the diagonal down is skipped (the determinant is then 0). Returns
 * the number of row swaps. It works in blocks of 32 columns (left-looking): each block first
 * replays the earlier steps' swaps and row operations, then factors itself, so every element
 * sees exactly the operations, in the same order, of the plain right-looking loop the
 * interpreter runs; the blocks just stay in cache.
 *
 * nabla_lu_apply replays those swaps and row operations on new right-hand sides, then back
 * substitutes row by row (every element still sees its subtractions in increasing order, then
 * one division): the same operations in the same order as eliminating them with the matrix.
 * nabla_lu_apply_transposed solves A^T x = b with the same factors: U^T y = b forward, then
 * the row operations and swaps transposed, in reverse. The factored form f passed to these
 * is the overwritten matrix; its pivots follow it.
 */
NABLA_LINALG(
NABLA_LINKAGE long nabla_lu_factor(long n, double *a, double *pivots) {
    long i, j, k, p, j0, jb, swaps = 0;
    double best, t, d, l;
    for (j0 = 0; j0 < n; j0 += 32) {
        jb = n - j0 < 32 ? n - j0 : 32;
        for (k = 0; k < j0; k++) {
            p = (long)pivots[k];
            if (p != k) {
                for (j = j0; j < j0 + jb; j++) { t = a[k * n + j]; a[k * n + j] = a[p * n + j]; a[p * n + j] = t; }
            }
            if (a[k * n + k] == 0.0) continue;
            for (i = k + 1; i < n; i++) {
                l = a[i * n + k];
                for (j = j0; j < j0 + jb; j++) a[i * n + j] -= l * a[k * n + j];
            }
        }
        for (k = j0; k < j0 + jb; k++) {
            p = k;
            best = fabs(a[k * n + k]);
            for (i = k + 1; i < n; i++) {
                t = fabs(a[i * n + k]);
                if (t > best || t != t) {
                    best = t;
                    p = i;
                }
            }
            pivots[k] = (double)p;
            if (p != k) {
                for (j = k; j < j0 + jb; j++) { t = a[k * n + j]; a[k * n + j] = a[p * n + j]; a[p * n + j] = t; }
                swaps++;
            }
            d = a[k * n + k];
            if (d == 0.0) continue;
            for (i = k + 1; i < n; i++) {
                l = a[i * n + k] / d;
                a[i * n + k] = l;
                for (j = k + 1; j < j0 + jb; j++) a[i * n + j] -= l * a[k * n + j];
            }
        }
    }
    return swaps;
}
NABLA_LINKAGE void nabla_lu_apply(long n, long m, const double *f, const double *pivots, double *x) {
    long i, j, k, p;
    double t, d, l, u;
    for (k = 0; k < n; k++) {
        p = (long)pivots[k];
        if (p != k) {
            for (j = 0; j < m; j++) { t = x[k * m + j]; x[k * m + j] = x[p * m + j]; x[p * m + j] = t; }
        }
        if (f[k * n + k] == 0.0) continue;
        for (i = k + 1; i < n; i++) {
            l = f[i * n + k];
            for (j = 0; j < m; j++) x[i * m + j] -= l * x[k * m + j];
        }
    }
    for (i = n - 1; i >= 0; i--) {
        double *xi = x + i * m;
        for (k = i + 1; k < n; k++) {
            u = f[i * n + k];
            for (j = 0; j < m; j++) xi[j] -= u * x[k * m + j];
        }
        d = f[i * n + i];
        for (j = 0; j < m; j++) xi[j] = xi[j] / d;
    }
}
NABLA_LINKAGE void nabla_lu_apply_transposed(long n, long m, const double *f, const double *pivots, double *x) {
    long i, j, k, p;
    double t, d, l, u;
    for (i = 0; i < n; i++) {
        double *xi = x + i * m;
        for (k = 0; k < i; k++) {
            u = f[k * n + i];
            for (j = 0; j < m; j++) xi[j] -= u * x[k * m + j];
        }
        d = f[i * n + i];
        for (j = 0; j < m; j++) xi[j] = xi[j] / d;
    }
    for (k = n - 1; k >= 0; k--) {
        if (f[k * n + k] != 0.0) {
            for (i = k + 1; i < n; i++) {
                l = f[i * n + k];
                for (j = 0; j < m; j++) x[k * m + j] -= l * x[i * m + j];
            }
        }
        p = (long)pivots[k];
        if (p != k) {
            for (j = 0; j < m; j++) { t = x[k * m + j]; x[k * m + j] = x[p * m + j]; x[p * m + j] = t; }
        }
    }
}
NABLA_LINKAGE double nabla_lu_det(long n, const double *f, const double *pivots) {
    long k, swaps = 0;
    double d = 1.0;
    for (k = 0; k < n; k++) if ((long)pivots[k] != k) swaps++;
    for (k = 0; k < n; k++) d *= f[k * n + k];
    return swaps % 2 == 1 ? -d : d;
}
NABLA_LINKAGE double nabla_lu_logabsdet(long n, const double *f) {
    long k;
    double s = 0.0;
    for (k = 0; k < n; k++) s += log(fabs(f[k * n + k]));
    return s;
}
)

/*
 * LU factorisation with partial pivoting and what is built on it. Written once, used twice:
 * nabla_linalg.c compiles it (optimised, on x86-64 once per instruction set, each variant under
 * its own name, chosen per call) for JIT kernels, which call it through tcc_add_symbol, and also
 * turns it into the string `nabla_linalg_source`, which standalone C from
 * `nabla compile` embeds as static functions. Nabla's interpreter (enum LU in
 * Sources/Nabla/Ops/LinearAlgebra.swift) does the same arithmetic in the same order.
 *
 * No include guard: nabla_linalg.c includes this file several times (a new function here needs
 * a renaming macro there too, or the variants collide). Each function's definition starts with
 * the token NABLA_LINKAGE, at which the emitter splits the text. Inside the macro below there
 * must be no preprocessor directives, and no comments survive stringising (so all the
 * explanation is here). The code must stay plain C99 that gcc -std=c99 -pedantic (with the
 * extra warnings of StandaloneCTests, -Wvla included: no variable-length arrays) and tcc accept.
 *
 * The contract with the interpreter: every element receives the same floating-point operations,
 * in the same order, as in LU's plain loops (products and differences rounded separately,
 * `c = c - l * u` one step at a time, in the loops' order). Within that, the loops below are
 * reorganised for speed: register tiles (a 4 x 16 block, or a row strip of 48, 32 or 8
 * elements, kept in local arrays the compiler holds in vector registers while the summation
 * index runs in order, so only the multipliers and the other operand are loaded), and strips of
 * columns processed one after another (columns of right-hand sides never interact; a strip of
 * all n rows is 32 wide when it then fits in a 32 KiB L1 cache, n <= 112, else 48). Where a
 * strip or tile would run past the last column, it is shifted left to end at the last column
 * and only its new columns are stored: the overlapping ones are recomputed from values already
 * final and thrown away. All loop bounds are fixed: nothing can trap or hang.
 *
 * nabla_lu_factor: Gaussian elimination with partial pivoting of the n x n matrix source, first
 * copied into a (unless it is a; the copy is here so that TinyCC kernels need not loop over n^2
 * elements themselves), leaving in a U on and above the diagonal and the multipliers below it
 * (a step's in one row, see below; under a zero pivot, the entries as they were), and each
 * step's pivot row in pivots (as doubles). A column that is zero from the diagonal down is
 * skipped (the determinant is then 0). Returns the number of row swaps. The pivot of step k is
 * the first row (from k down) of largest magnitude, or the last NaN when the column holds one:
 * what LU's single scan finds (it takes a strictly larger magnitude or any NaN), computed in
 * two scans without its long dependency chain.
 *   The stored form is the interpreter's: the swap of step k exchanges rows k and p from column
 * k on, so a multiplier stays where its row was when it was computed. The C works right-looking
 * in panels of 16 columns with whole-row swaps instead (LAPACK's getrf order): factor the panel
 * (unblocked, swapping the panel's and the earlier columns; each row's update is done on a
 * fixed 16-column window, keeping by selection, not arithmetic, the columns the step must not
 * touch, and its multiplier is stored after the window so the window's load never waits on that
 * store), apply the panel's swaps to the columns right of it, finish the panel's rows of U to
 * the right (row r minus its multipliers times the rows above it, in order), then update the
 * trailing matrix with 4 x 16 register tiles, subtracting the panel's steps in order. Why this
 * is the same arithmetic: a swap only moves values, and moving a row's multipliers along with
 * it only changes where they are stored, so each element still meets, at every step k before
 * its own row's turn, `a = a - l * u` with the multiplier computed for its row at step k and
 * the value of pivot row k as final after step k; postponing a panel's swaps of the columns to
 * its right until after the panel is factored changes nothing because the panel's steps do not
 * touch those columns. Steps with a zero pivot are skipped everywhere, as in LU. At the end the
 * multipliers are moved back to the interpreter's places by undoing, column by column, the
 * swaps of the later steps (for k = n - 1 down to 1, swap rows k and p in columns 0..k-1), then
 * reflected in the anti-diagonal as LU.factors does (the multiplier of row i at step k goes to
 * row n - 1 - k, column n - 1 - i, so each step's multipliers lie in one row, read backwards,
 * which the solves read contiguously), so the stored factors are bit for bit LU's, zeros under
 * zero pivots included.
 *
 * nabla_lu_apply replays those swaps and row operations on new right-hand sides, then back
 * substitutes row by row (every element still sees its subtractions in increasing order, then
 * one division): the same operations in the same order as eliminating them with the matrix. The
 * back substitution keeps a strip of a row in registers while it subtracts the rows below in
 * increasing order (each row's first term is the row just finished, so rows cannot share the
 * loop; columns can).
 *
 * nabla_lu_apply_transposed solves A^T x = b with the same factors: U^T y = b forward, then the
 * row operations and swaps transposed, in reverse. The forward part runs in 4 x 16 tiles: four
 * rows share the terms of the rows above them (whose last term is the newest row), then finish
 * their small triangle in order. The reverse part, like the back substitution above, keeps a
 * strip of one row in registers. One right-hand side runs scalar loops instead (the forward
 * part row by row over U's rows, which are contiguous).
 *   With identity != 0 the function sets x to the identity itself (1.0 on the diagonal, +0.0
 * elsewhere: A^-T, as in the gradient of log|det A|), and when m == n and U is finite with a
 * non-zero diagonal the forward part skips what cannot change anything: above the diagonal
 * every value is +0.0 before its division (0 - u * (+-0) is +0 for finite u) and +-0 after it,
 * so a term with k < j adds 0 - u * (+-0), which leaves +0 and 1.0 (the only values there
 * before term j) exactly as they were. Each element in column j may therefore start at term j;
 * tiles entirely above the diagonal are written directly as 0.0 / u_ii, the value the full loop
 * ends with. With an infinite or NaN entry in U, or a zero pivot, the full loops run.
 *
 * nabla_lu_adjugate writes adj(A), the transposed matrix of cofactors, which stays finite where
 * det A is 0 (the gradient of det A is adj(A)^T; det A * A^-T is NaN there). With P A = L U,
 * adj(A) = det(P) adj(U) L^-1 P. adj(U) is upper triangular with adj(U)_ij = D(i, j) M(i, j),
 * D(i, j) the product of the pivots outside i..j and M(j, j) = 1,
 * M(i, j) = -sum over l = i + 1 .. j of u_il (u_{i+1,i+1} ... u_{l-1,l-1}) M(l, j): the
 * back substitution for U^-1 scaled by the pivots, with no division at all. Column j of the
 * result is built from the last column back, multiplying adj(U) on the right by the steps of
 * the elimination in reverse (L^-1 P is E_{n-1} S_{n-1} ... E_0 S_0, S_k step k's row swap and
 * E_k its row operations, which nabla_lu_apply replays): at step j, column j of adj(U) (no later
 * step touches it), minus the multipliers of step j times the columns after it (unless step j
 * had a zero pivot and was skipped), then columns j and p_j swapped; finally the sign of P. An entry of adj(U) whose M is zero stays zero (not D * 0, which
 * is NaN when D overflows). Plain loops, O(n^3); the interpreter's LU.adjugate is the same.
 *
 * The factored form f passed to these is the overwritten matrix; its pivots follow it.
 *
 * nabla_cholesky: the lower Cholesky factor of the n x n matrix a (its lower triangle is read)
 * into l (which may be a). Each entry meets its subtractions l_ik l_jk in increasing k, then
 * its square root or division, as in the interpreter's left-looking loops
 * (Triangular.cholesky): the same arithmetic, reorganised right-looking in panels of 32
 * columns. The panel is factored column by column: the diagonal's square root, the column below
 * it divided by that and also written, transposed, into row k above the diagonal (where later
 * updates read it contiguously), then the panel's later columns updated (row i minus l_ik times
 * that row, restrict: the two never overlap). Then the trailing triangle right of the panel is
 * updated by the panel's 32 steps in order, in 4 x 8 register tiles (rows i0..i0+3, columns
 * s..s+7 minus l_ik times row k of the transposed copy); a tile crossing the diagonal computes
 * its entries above it too but stores only those on or below it, and a tile that would run
 * past column n - 1 is shifted left (as in the LU) and stores only its new columns. The rows
 * left over (fewer than 4) run plain loops. The tile's k loop ends with a test that never holds
 * (row k of the transposed copy is never the tile's row): without it, gcc vectorises that loop
 * as in-order reductions across k, which is several times slower. The upper triangle is zeroed
 * at the start and at the end.
 *
 * nabla_cholesky_adjoint: the pullback of nabla_cholesky, a's lower triangle from the factor l
 * and the cotangent b of l (lower triangles read; a may be b, never l), as
 * Triangular.choleskyAdjoint computes it: columns k from the last back, each entry (i, k), i >= k,
 * is b_ik minus m_ij l_jk for j from n - 1 down to k + 1, then divided by l_kk (below the
 * diagonal first, the diagonal last), m = A + A^T as far as finished (diagonal 2 a_kk); a holds
 * m while it runs (the transposed copy above the diagonal, where rows read it contiguously) and
 * is halved on the diagonal and zeroed above it at the end. Blocks of 16 columns from the
 * right (the leftover block is the rightmost, which has no rows below it): first the rows below
 * the block take the terms of all columns right of it, j from n - 1 down, in 4 x 8 register
 * tiles (rows left over run plain loops; the never-true test as in nabla_cholesky); then the
 * block's columns one by one: divide, the diagonal, then the row of the finished column takes
 * its terms j >= k for the block's earlier columns and every row below takes column k's term,
 * so every entry still meets its terms in decreasing j. n^3/3 multiply-adds in all.
 *
 * nabla_triangular_solve: X with op(T) X = B for n x m right-hand sides (B copied into x
 * first, unless it is x), reading T's lower or upper triangle, op(T) = T^T with transpose, as
 * Triangular.solve does: substitution row by row, every entry of a row meeting its terms in
 * the order the rows were solved, then one division. Reorganised, with that order kept:
 *   m == 1 with transpose: the column (axpy) form. Rows are solved in blocks of 8: the block's
 * small triangle in order, then its 8 solved values are subtracted, in order, from every
 * later row at once (one pass over 8 contiguous rows of T, which vectorises across the rows
 * being updated); every entry still meets its terms in solving order.
 *   m == 1 without transpose: rows of T are contiguous in the summation index, so blocks of 8
 * rows accumulate the terms of all earlier rows together (8 independent chains instead of one),
 * then finish the block's triangle in order (that loop too carries a never-true test, the
 * address of row k against the block's first row, for the reason given above).
 *   m > 1: panels of 64 rows (in solving order), within which strips of 8 columns (shifted left
 * at the end like the LU's) and 4 x 8 register tiles: four rows share the terms of all rows
 * solved before them, then finish their small triangle in order and divide. Rows left over and
 * m < 8 run one row at a time. The tile's k loop carries a never-true test for the reason given
 * above.
 */
NABLA_LINALG(
NABLA_LINKAGE long nabla_lu_panel(long n, double *a, double *pivots, long j0, long j1) {
    long i, j, k, p, q, s, nan, swaps = 0;
    double best, t, d, l, y;
    double c[4][16];
    for (k = j0; k < j1; k++) {
        best = 0.0;
        nan = 0;
        for (i = k; i < n; i++) {
            t = fabs(a[i * n + k]);
            best = t > best ? t : best;
            nan |= t != t;
        }
        if (nan) {
            for (p = n - 1; a[p * n + k] == a[p * n + k]; p--) {}
        } else {
            for (p = k; fabs(a[p * n + k]) != best; p++) {}
        }
        pivots[k] = (double)p;
        if (p != k) {
            for (j = 0; j < j1; j++) { t = a[k * n + j]; a[k * n + j] = a[p * n + j]; a[p * n + j] = t; }
            swaps++;
        }
        d = a[k * n + k];
        if (d == 0.0) continue;
        if (j1 < 16) {
            for (i = k + 1; i < n; i++) {
                l = a[i * n + k] / d;
                a[i * n + k] = l;
                for (j = k + 1; j < j1; j++) a[i * n + j] -= l * a[k * n + j];
            }
            continue;
        }
        s = j1 - 16;
        for (q = 0; q < 16; q++) c[0][q] = a[k * n + s + q];
        for (i = k + 1; i < n; i++) {
            l = a[i * n + k] / d;
            for (q = 0; q < 16; q++) {
                y = a[i * n + s + q] - l * c[0][q];
                a[i * n + s + q] = s + q > k ? y : a[i * n + s + q];
            }
            a[i * n + k] = l;
        }
    }
    return swaps;
}
NABLA_LINKAGE void nabla_lu_panel_rows(long n, double *a, const double *pivots, long j0, long j1) {
    long i, j, k, p;
    double t, l;
    for (k = j0; k < j1; k++) {
        p = (long)pivots[k];
        if (p != k) {
            for (j = j1; j < n; j++) { t = a[k * n + j]; a[k * n + j] = a[p * n + j]; a[p * n + j] = t; }
        }
    }
    for (i = j0 + 1; i < j1; i++) {
        for (k = j0; k < i; k++) {
            if (a[k * n + k] == 0.0) continue;
            l = a[i * n + k];
            for (j = j1; j < n; j++) a[i * n + j] -= l * a[k * n + j];
        }
    }
}
NABLA_LINKAGE void nabla_lu_update_rows(long n, double *a, long j0, long j1, long ib, long ie) {
    long i, j, k, q, i0, c0, s;
    double l, y, x0, x1, x2, x3;
    double c[4][16];
    const double *b;
    for (i0 = ib; i0 + 4 <= ie && n - j1 >= 16; i0 += 4) {
        for (c0 = j1; c0 < n; c0 = s + 16) {
            s = n - c0 < 16 ? n - 16 : c0;
            for (i = 0; i < 4; i++)
                for (q = 0; q < 16; q++) c[i][q] = a[(i0 + i) * n + s + q];
            for (k = j0; k < j1; k++) {
                if (a[k * n + k] == 0.0) continue;
                b = a + k * n + s;
                x0 = a[i0 * n + k];
                x1 = a[(i0 + 1) * n + k];
                x2 = a[(i0 + 2) * n + k];
                x3 = a[(i0 + 3) * n + k];
                for (q = 0; q < 16; q++) {
                    y = b[q];
                    c[0][q] -= x0 * y;
                    c[1][q] -= x1 * y;
                    c[2][q] -= x2 * y;
                    c[3][q] -= x3 * y;
                }
            }
            for (i = 0; i < 4; i++)
                for (q = c0 - s; q < 16; q++) a[(i0 + i) * n + s + q] = c[i][q];
        }
    }
    for (i = i0; i < ie; i++) {
        for (k = j0; k < j1; k++) {
            if (a[k * n + k] == 0.0) continue;
            l = a[i * n + k];
            for (j = j1; j < n; j++) a[i * n + j] -= l * a[k * n + j];
        }
    }
}
NABLA_LINKAGE void nabla_lu_finish(long n, double *a, const double *pivots) {
    long i, j, k, p;
    double t;
    for (k = n - 1; k > 0; k--) {
        p = (long)pivots[k];
        if (p != k) {
            for (j = 0; j < k; j++) { t = a[k * n + j]; a[k * n + j] = a[p * n + j]; a[p * n + j] = t; }
        }
    }
    for (i = 1; i < n; i++) {
        for (k = 0; k < i && i + k < n - 1; k++) {
            t = a[i * n + k];
            a[i * n + k] = a[(n - 1 - k) * n + n - 1 - i];
            a[(n - 1 - k) * n + n - 1 - i] = t;
        }
    }
}
NABLA_LINKAGE long nabla_lu_factor(long n, const double *source, double *a, double *pivots) {
    long i, j0, j1, swaps = 0;
    if (source != a) {
        for (i = 0; i < n * n; i++) a[i] = source[i];
    }
    for (j0 = 0; j0 < n; j0 = j1) {
        j1 = n - j0 < 16 ? n : j0 + 16;
        swaps += nabla_lu_panel(n, a, pivots, j0, j1);
        if (j1 == n) break;
        nabla_lu_panel_rows(n, a, pivots, j0, j1);
        nabla_lu_update_rows(n, a, j0, j1, j1, n);
    }
    nabla_lu_finish(n, a, pivots);
    return swaps;
}
NABLA_LINKAGE void nabla_lu_apply(long n, long m, const double *f, const double *pivots, double *x) {
    long i, j, k, p, q, j0, s, w;
    double t, d, l, u;
    double e[48];
    const double *b;
    for (k = 0; k < n; k++) {
        p = (long)pivots[k];
        if (p != k) {
            for (j = 0; j < m; j++) { t = x[k * m + j]; x[k * m + j] = x[p * m + j]; x[p * m + j] = t; }
        }
        if (f[k * n + k] == 0.0) continue;
        if (m == 1) {
            t = x[k];
            for (i = k + 1; i < n; i++) x[i] -= f[(n - 1 - k) * n + n - 1 - i] * t;
        } else {
            for (i = k + 1; i < n; i++) {
                l = f[(n - 1 - k) * n + n - 1 - i];
                for (j = 0; j < m; j++) x[i * m + j] -= l * x[k * m + j];
            }
        }
    }
    for (j0 = 0; j0 < m; j0 = s + w) {
        w = m - j0 >= 48 && n > 112 ? 48 : m - j0 >= 32 ? 32 : m >= 8 ? 8 : m;
        s = m - j0 >= w ? j0 : m - w;
        for (i = n - 1; i >= 0; i--) {
            double *xi = x + i * m + s;
            d = f[i * n + i];
            if (w == 48) {
                for (q = 0; q < 48; q++) e[q] = xi[q];
                for (k = i + 1; k < n; k++) {
                    u = f[i * n + k];
                    b = x + k * m + s;
                    for (q = 0; q < 48; q++) e[q] -= u * b[q];
                }
                for (q = 0; q < 48; q++) xi[q] = e[q] / d;
            } else if (w == 32) {
                for (q = 0; q < 32; q++) e[q] = xi[q];
                for (k = i + 1; k < n; k++) {
                    u = f[i * n + k];
                    b = x + k * m + s;
                    for (q = 0; q < 32; q++) e[q] -= u * b[q];
                }
                for (q = 0; q < 32; q++) xi[q] = e[q] / d;
            } else if (w == 8) {
                for (q = 0; q < 8; q++) e[q] = xi[q];
                for (k = i + 1; k < n; k++) {
                    u = f[i * n + k];
                    b = x + k * m + s;
                    for (q = 0; q < 8; q++) e[q] -= u * b[q];
                }
                for (q = j0 - s; q < 8; q++) xi[q] = e[q] / d;
            } else if (w == 1) {
                t = xi[0];
                for (k = i + 1; k < n; k++) t -= f[i * n + k] * x[k];
                xi[0] = t / d;
            } else {
                for (k = i + 1; k < n; k++) {
                    u = f[i * n + k];
                    b = x + k * m;
                    for (q = 0; q < w; q++) xi[q] -= u * b[q];
                }
                for (q = 0; q < w; q++) xi[q] = xi[q] / d;
            }
        }
    }
}
NABLA_LINKAGE long nabla_lu_transposed_prepare(long n, long m, const double *f, double *x, long identity) {
    long i, j;
    double u;
    if (identity) {
        for (i = 0; i < n * m; i++) x[i] = 0.0;
        for (i = 0; i < n && i < m; i++) x[i * m + i] = 1.0;
    }
    identity = identity && m == n;
    for (i = 0; i < n && identity; i++) {
        identity = f[i * n + i] != 0.0;
        for (j = i; j < n; j++) {
            u = f[i * n + j];
            identity &= u - u == 0.0;
        }
    }
    return identity;
}
NABLA_LINKAGE void nabla_lu_apply_transposed_columns(long n, long m, const double *f, const double *pivots, double *x, long identity, long jb, long je) {
    long i, k, p, q, r, i0, j0, s, w, k0;
    double t, d, l, u, y, x0, x1, x2, x3;
    double c[4][16], e[48];
    const double *b;
    if (m == 1) {
        for (k = 0; k < n; k++) {
            x[k] = x[k] / f[k * n + k];
            t = x[k];
            for (i = k + 1; i < n; i++) x[i] -= f[k * n + i] * t;
        }
    } else if (m < 16) {
        for (i = 0; i < n; i++) {
            double *xi = x + i * m;
            for (k = 0; k < i; k++) {
                u = f[k * n + i];
                b = x + k * m;
                for (q = jb; q < je; q++) xi[q] -= u * b[q];
            }
            d = f[i * n + i];
            for (q = jb; q < je; q++) xi[q] = xi[q] / d;
        }
    } else {
        for (i0 = 0; i0 < n; i0 += 4) {
            for (j0 = jb; j0 < je; j0 = s + 16) {
                s = je - j0 < 16 ? je - 16 : j0;
                k0 = identity ? (s < i0 ? s : i0) : 0;
                if (identity && s > i0 + 3) {
                    for (i = i0; i < i0 + 4 && i < n; i++) {
                        d = f[i * n + i];
                        for (q = j0; q < s + 16; q++) x[i * m + q] = 0.0 / d;
                    }
                } else if (i0 + 4 <= n) {
                    for (r = 0; r < 4; r++)
                        for (q = 0; q < 16; q++) c[r][q] = x[(i0 + r) * m + s + q];
                    for (k = k0; k < i0; k++) {
                        b = x + k * m + s;
                        x0 = f[k * n + i0];
                        x1 = f[k * n + i0 + 1];
                        x2 = f[k * n + i0 + 2];
                        x3 = f[k * n + i0 + 3];
                        for (q = 0; q < 16; q++) {
                            y = b[q];
                            c[0][q] -= x0 * y;
                            c[1][q] -= x1 * y;
                            c[2][q] -= x2 * y;
                            c[3][q] -= x3 * y;
                        }
                    }
                    for (r = 0; r < 4; r++) {
                        for (k = 0; k < r; k++) {
                            u = f[(i0 + k) * n + i0 + r];
                            for (q = 0; q < 16; q++) c[r][q] -= u * c[k][q];
                        }
                        d = f[(i0 + r) * n + i0 + r];
                        for (q = 0; q < 16; q++) c[r][q] = c[r][q] / d;
                    }
                    for (r = 0; r < 4; r++)
                        for (q = j0 - s; q < 16; q++) x[(i0 + r) * m + s + q] = c[r][q];
                } else {
                    for (i = i0; i < n; i++) {
                        for (q = 0; q < 16; q++) e[q] = x[i * m + s + q];
                        for (k = k0; k < i; k++) {
                            u = f[k * n + i];
                            b = x + k * m + s;
                            for (q = 0; q < 16; q++) e[q] -= u * b[q];
                        }
                        d = f[i * n + i];
                        for (q = j0 - s; q < 16; q++) x[i * m + s + q] = e[q] / d;
                    }
                }
            }
        }
    }
    for (j0 = jb; j0 < je; j0 = s + w) {
        w = je - j0 >= 48 && n > 112 ? 48 : je - j0 >= 32 ? 32 : je - jb >= 8 ? 8 : je - jb;
        s = je - j0 >= w ? j0 : je - w;
        for (k = n - 1; k >= 0; k--) {
            double *xk = x + k * m + s;
            if (f[k * n + k] != 0.0) {
                if (w == 48) {
                    for (q = 0; q < 48; q++) e[q] = xk[q];
                    for (i = k + 1; i < n; i++) {
                        l = f[(n - 1 - k) * n + n - 1 - i];
                        b = x + i * m + s;
                        for (q = 0; q < 48; q++) e[q] -= l * b[q];
                    }
                    for (q = 0; q < 48; q++) xk[q] = e[q];
                } else if (w == 32) {
                    for (q = 0; q < 32; q++) e[q] = xk[q];
                    for (i = k + 1; i < n; i++) {
                        l = f[(n - 1 - k) * n + n - 1 - i];
                        b = x + i * m + s;
                        for (q = 0; q < 32; q++) e[q] -= l * b[q];
                    }
                    for (q = 0; q < 32; q++) xk[q] = e[q];
                } else if (w == 8) {
                    for (q = 0; q < 8; q++) e[q] = xk[q];
                    for (i = k + 1; i < n; i++) {
                        l = f[(n - 1 - k) * n + n - 1 - i];
                        b = x + i * m + s;
                        for (q = 0; q < 8; q++) e[q] -= l * b[q];
                    }
                    for (q = j0 - s; q < 8; q++) xk[q] = e[q];
                } else if (w == 1) {
                    t = xk[0];
                    for (i = k + 1; i < n; i++) t -= f[(n - 1 - k) * n + n - 1 - i] * x[i];
                    xk[0] = t;
                } else {
                    for (i = k + 1; i < n; i++) {
                        l = f[(n - 1 - k) * n + n - 1 - i];
                        b = x + i * m;
                        for (q = 0; q < w; q++) xk[q] -= l * b[q];
                    }
                }
            }
            p = (long)pivots[k];
            if (p != k) {
                for (q = j0 - s; q < w; q++) { t = xk[q]; xk[q] = x[p * m + s + q]; x[p * m + s + q] = t; }
            }
        }
    }
}
NABLA_LINKAGE void nabla_lu_apply_transposed(long n, long m, const double *f, const double *pivots, double *x, long identity) {
    identity = nabla_lu_transposed_prepare(n, m, f, x, identity);
    nabla_lu_apply_transposed_columns(n, m, f, pivots, x, identity, 0, m);
}
NABLA_LINKAGE double nabla_lu_det(long n, const double *f, const double *pivots) {
    long k, swaps = 0;
    double d = 1.0;
    for (k = 0; k < n; k++) if ((long)pivots[k] != k) swaps++;
    for (k = 0; k < n; k++) d *= f[k * n + k];
    return swaps % 2 == 1 ? -d : d;
}
NABLA_LINKAGE void nabla_lu_adjugate(long n, const double *f, const double *pivots, double *x) {
    long i, j, k, l, swaps = 0;
    double m, p, d, t;
    for (j = n - 1; j >= 0; j--) {
        x[j * n + j] = 1.0;
        for (i = j - 1; i >= 0; i--) {
            m = 0.0;
            p = 1.0;
            for (l = i + 1; l <= j; l++) {
                m += f[i * n + l] * p * x[l * n + j];
                p *= f[l * n + l];
            }
            x[i * n + j] = -m;
        }
        for (i = 0; i <= j; i++) {
            d = 1.0;
            for (k = 0; k < i; k++) d *= f[k * n + k];
            for (k = j + 1; k < n; k++) d *= f[k * n + k];
            if (x[i * n + j] != 0.0) x[i * n + j] = d * x[i * n + j];
        }
        for (i = j + 1; i < n; i++) x[i * n + j] = 0.0;
        if (f[j * n + j] != 0.0) {
            for (k = j + 1; k < n; k++) {
                t = f[(n - 1 - j) * n + n - 1 - k];
                for (i = 0; i < n; i++) x[i * n + j] -= t * x[i * n + k];
            }
        }
        l = (long)pivots[j];
        if (l != j) {
            swaps++;
            for (i = 0; i < n; i++) { t = x[i * n + j]; x[i * n + j] = x[i * n + l]; x[i * n + l] = t; }
        }
    }
    if (swaps % 2 == 1) for (i = 0; i < n * n; i++) x[i] = -x[i];
}
NABLA_LINKAGE double nabla_lu_logabsdet(long n, const double *f) {
    long k;
    double s = 0.0;
    for (k = 0; k < n; k++) s += log(fabs(f[k * n + k]));
    return s;
}
NABLA_LINKAGE void nabla_cholesky(long n, const double *a, double *l) {
    long i, j, k, q, r, i0, c0, s, j0, j1;
    double d, c, y, x0, x1, x2, x3;
    double e[4][8];
    const double *b;
    for (i = 0; i < n; i++) for (j = 0; j < n; j++) l[i * n + j] = j <= i ? a[i * n + j] : 0.0;
    for (j0 = 0; j0 < n; j0 = j1) {
        j1 = n - j0 < 32 ? n : j0 + 32;
        for (k = j0; k < j1; k++) {
            const double *restrict column = l + k * n;
            d = sqrt(l[k * n + k]);
            l[k * n + k] = d;
            for (i = k + 1; i < n; i++) {
                c = l[i * n + k] / d;
                l[i * n + k] = c;
                l[k * n + i] = c;
            }
            for (i = k + 1; i < n; i++) {
                double *restrict row = l + i * n;
                long end = i < j1 - 1 ? i : j1 - 1;
                c = row[k];
                for (j = k + 1; j <= end; j++) row[j] = row[j] - c * column[j];
            }
        }
        if (j1 == n) break;
        for (i0 = j1; i0 + 4 <= n && n - j1 >= 8; i0 += 4) {
            for (c0 = j1; c0 < i0 + 4; c0 = s + 8) {
                s = c0 + 8 > n ? n - 8 : c0;
                for (r = 0; r < 4; r++)
                    for (q = 0; q < 8; q++) e[r][q] = l[(i0 + r) * n + s + q];
                for (k = j0; k < j1; k++) {
                    b = l + k * n + s;
                    if (b == l + i0 * n) break;
                    x0 = l[i0 * n + k];
                    x1 = l[(i0 + 1) * n + k];
                    x2 = l[(i0 + 2) * n + k];
                    x3 = l[(i0 + 3) * n + k];
                    for (q = 0; q < 8; q++) {
                        y = b[q];
                        e[0][q] = e[0][q] - x0 * y;
                        e[1][q] = e[1][q] - x1 * y;
                        e[2][q] = e[2][q] - x2 * y;
                        e[3][q] = e[3][q] - x3 * y;
                    }
                }
                for (r = 0; r < 4; r++)
                    for (q = c0 - s; q < 8 && s + q <= i0 + r; q++) l[(i0 + r) * n + s + q] = e[r][q];
            }
        }
        for (i = i0; i < n; i++) {
            double *restrict row = l + i * n;
            for (k = j0; k < j1; k++) {
                const double *restrict column = l + k * n;
                c = row[k];
                for (j = j1; j <= i; j++) row[j] = row[j] - c * column[j];
            }
        }
    }
    for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) l[i * n + j] = 0.0;
}
NABLA_LINKAGE void nabla_cholesky_adjoint(long n, const double *l, const double *b, double *a) {
    long i, j, k, q, p, r, i0, s, k0, k1;
    double c, d, y, x0, x1, x2, x3;
    double e[4][8];
    const double *g;
    if (a != b) for (i = 0; i < n; i++) for (j = 0; j <= i; j++) a[i * n + j] = b[i * n + j];
    k1 = n;
    for (k0 = (n - 1) / 16 * 16; k1 > 0; k1 = k0, k0 -= 16) {
        for (i0 = k1; i0 + 4 <= n; i0 += 4) {
            for (s = k0; s < k1; s += 8) {
                for (r = 0; r < 4; r++)
                    for (q = 0; q < 8; q++) e[r][q] = a[(i0 + r) * n + s + q];
                for (j = n - 1; j >= k1; j--) {
                    g = l + j * n + s;
                    if (g == a + i0 * n) break;
                    x0 = a[i0 * n + j];
                    x1 = a[(i0 + 1) * n + j];
                    x2 = a[(i0 + 2) * n + j];
                    x3 = a[(i0 + 3) * n + j];
                    for (q = 0; q < 8; q++) {
                        y = g[q];
                        e[0][q] = e[0][q] - x0 * y;
                        e[1][q] = e[1][q] - x1 * y;
                        e[2][q] = e[2][q] - x2 * y;
                        e[3][q] = e[3][q] - x3 * y;
                    }
                }
                for (r = 0; r < 4; r++)
                    for (q = 0; q < 8; q++) a[(i0 + r) * n + s + q] = e[r][q];
            }
        }
        for (i = i0; i < n; i++) {
            double *restrict row = a + i * n;
            for (j = n - 1; j >= k1; j--) {
                const double *restrict lj = l + j * n;
                c = row[j];
                for (p = k0; p < k1; p++) row[p] = row[p] - c * lj[p];
            }
        }
        for (k = k1 - 1; k >= k0; k--) {
            double *restrict own = a + k * n;
            d = l[k * n + k];
            for (i = k + 1; i < n; i++) {
                c = a[i * n + k] / d;
                a[i * n + k] = c;
                own[i] = c;
            }
            y = own[k];
            for (j = n - 1; j > k; j--) y = y - own[j] * l[j * n + k];
            own[k] = y / d;
            for (j = n - 1; j >= k; j--) {
                const double *restrict lj = l + j * n;
                c = own[j];
                for (p = k0; p < k; p++) own[p] = own[p] - c * lj[p];
            }
            for (i = k + 1; i < n; i++) {
                double *restrict row = a + i * n;
                const double *restrict lk = l + k * n;
                c = row[k];
                for (p = k0; p < k; p++) row[p] = row[p] - c * lk[p];
            }
        }
    }
    for (i = 0; i < n; i++) {
        a[i * n + i] = 0.5 * a[i * n + i];
        for (j = i + 1; j < n; j++) a[i * n + j] = 0.0;
    }
}
NABLA_LINKAGE void nabla_triangular_solve_columns(long n, long m, const double *t, double *x, long lower, long transpose, long jb, long je) {
    long i, k, q, r, s, s0, w, j0, i0, cs, xs, forward = lower != transpose;
    double d, u, y;
    double e[4][8];
    cs = (forward ? 1 : -1) * (transpose ? n : 1);
    xs = (forward ? 1 : -1) * m;
    for (i0 = 0; i0 < n; i0 += 64) {
        long i1 = n - i0 < 64 ? n : i0 + 64;
        for (j0 = jb; j0 < je; j0 = s + w) {
            w = je - jb >= 8 ? 8 : je - jb;
            s = je - j0 >= w ? j0 : je - w;
            for (s0 = i0; s0 < i1; s0 += 4) {
                const double *c[4];
                const double *xk = x + (forward ? 0 : n - 1) * m + s;
                long rows = i1 - s0 < 4 ? i1 - s0 : 4;
                for (r = 0; r < rows; r++) {
                    i = forward ? s0 + r : n - 1 - s0 - r;
                    c[r] = t + (transpose ? i : i * n) + (forward ? 0 : (n - 1) * (transpose ? n : 1));
                }
                if (rows == 4 && w == 8) {
                    double *x0 = x + (forward ? s0 : n - 1 - s0) * m + s, *x1 = x0 + xs, *x2 = x1 + xs, *x3 = x2 + xs;
                    const double *bk = xk, *c0 = c[0], *c1 = c[1], *c2 = c[2], *c3 = c[3];
                    double u0, u1, u2, u3;
                    for (q = 0; q < 8; q++) {
                        e[0][q] = x0[q];
                        e[1][q] = x1[q];
                        e[2][q] = x2[q];
                        e[3][q] = x3[q];
                    }
                    for (k = 0; k < s0; k++) {
                        if (bk == x0) break;
                        u0 = *c0;
                        u1 = *c1;
                        u2 = *c2;
                        u3 = *c3;
                        for (q = 0; q < 8; q++) {
                            y = bk[q];
                            e[0][q] = e[0][q] - u0 * y;
                            e[1][q] = e[1][q] - u1 * y;
                            e[2][q] = e[2][q] - u2 * y;
                            e[3][q] = e[3][q] - u3 * y;
                        }
                        bk += xs;
                        c0 += cs;
                        c1 += cs;
                        c2 += cs;
                        c3 += cs;
                    }
                    for (r = 0; r < 4; r++) {
                        for (k = 0; k < r; k++) {
                            u = c[r][(s0 + k) * cs];
                            for (q = 0; q < 8; q++) e[r][q] = e[r][q] - u * e[k][q];
                        }
                        i = forward ? s0 + r : n - 1 - s0 - r;
                        d = t[i * n + i];
                        for (q = 0; q < 8; q++) e[r][q] = e[r][q] / d;
                    }
                    for (q = j0 - s; q < 8; q++) {
                        x0[q] = e[0][q];
                        x1[q] = e[1][q];
                        x2[q] = e[2][q];
                        x3[q] = e[3][q];
                    }
                } else {
                    for (r = 0; r < rows; r++) {
                        double *xi;
                        i = forward ? s0 + r : n - 1 - s0 - r;
                        xi = x + i * m + s;
                        for (q = 0; q < w; q++) e[0][q] = xi[q];
                        for (k = 0; k < s0 + r; k++) {
                            const double *bk = xk + k * xs;
                            u = c[r][k * cs];
                            for (q = 0; q < w; q++) e[0][q] = e[0][q] - u * bk[q];
                        }
                        d = t[i * n + i];
                        for (q = j0 - s; q < w; q++) xi[q] = e[0][q] / d;
                    }
                }
            }
        }
    }
}
NABLA_LINKAGE void nabla_triangular_solve(long n, long m, const double *t, const double *b, double *x, long lower, long transpose) {
    long i, j, k, q, r, s, s0, w, cs, forward = lower != transpose;
    double u, y, v[8];
    const double *p[8];
    if (x != b) for (s = 0; s < n * m; s++) x[s] = b[s];
    if (m == 1 && transpose) {
        for (s0 = 0; s0 < n; s0 += 8) {
            w = n - s0 < 8 ? n - s0 : 8;
            for (r = 0; r < w; r++) {
                i = forward ? s0 + r : n - 1 - s0 - r;
                y = x[i];
                for (q = 0; q < r; q++) {
                    k = forward ? s0 + q : n - 1 - s0 - q;
                    y = y - t[k * n + i] * x[k];
                }
                x[i] = y / t[i * n + i];
            }
            if (w < 8) break;
            for (q = 0; q < 8; q++) {
                k = forward ? s0 + q : n - 1 - s0 - q;
                p[q] = t + k * n;
                v[q] = x[k];
            }
            {
                double *restrict xr = forward ? x + s0 + 8 : x;
                const double *restrict p0 = p[0] + (forward ? s0 + 8 : 0);
                const double *restrict p1 = p[1] + (forward ? s0 + 8 : 0);
                const double *restrict p2 = p[2] + (forward ? s0 + 8 : 0);
                const double *restrict p3 = p[3] + (forward ? s0 + 8 : 0);
                const double *restrict p4 = p[4] + (forward ? s0 + 8 : 0);
                const double *restrict p5 = p[5] + (forward ? s0 + 8 : 0);
                const double *restrict p6 = p[6] + (forward ? s0 + 8 : 0);
                const double *restrict p7 = p[7] + (forward ? s0 + 8 : 0);
                long count = n - s0 - 8;
                for (j = 0; j < count; j++) {
                    y = xr[j];
                    y = y - p0[j] * v[0];
                    y = y - p1[j] * v[1];
                    y = y - p2[j] * v[2];
                    y = y - p3[j] * v[3];
                    y = y - p4[j] * v[4];
                    y = y - p5[j] * v[5];
                    y = y - p6[j] * v[6];
                    y = y - p7[j] * v[7];
                    xr[j] = y;
                }
            }
        }
        return;
    }
    if (m == 1) {
        for (s0 = 0; s0 < n; s0 += 8) {
            w = n - s0 < 8 ? n - s0 : 8;
            for (r = 0; r < w; r++) {
                i = forward ? s0 + r : n - 1 - s0 - r;
                p[r] = t + i * n + (forward ? 0 : n - 1);
                v[r] = x[i];
            }
            cs = forward ? 1 : -1;
            if (w == 8) {
                double y0 = v[0], y1 = v[1], y2 = v[2], y3 = v[3], y4 = v[4], y5 = v[5], y6 = v[6], y7 = v[7];
                const double *xk = x + (forward ? 0 : n - 1), *xb = xk + s0 * cs;
                for (q = 0; q < s0; q++) {
                    if (xk + q * cs == xb) break;
                    u = xk[q * cs];
                    y0 = y0 - p[0][q * cs] * u;
                    y1 = y1 - p[1][q * cs] * u;
                    y2 = y2 - p[2][q * cs] * u;
                    y3 = y3 - p[3][q * cs] * u;
                    y4 = y4 - p[4][q * cs] * u;
                    y5 = y5 - p[5][q * cs] * u;
                    y6 = y6 - p[6][q * cs] * u;
                    y7 = y7 - p[7][q * cs] * u;
                }
                v[0] = y0, v[1] = y1, v[2] = y2, v[3] = y3, v[4] = y4, v[5] = y5, v[6] = y6, v[7] = y7;
            } else {
                for (r = 0; r < w; r++) {
                    y = v[r];
                    for (q = 0; q < s0; q++) y = y - p[r][q * cs] * x[forward ? q : n - 1 - q];
                    v[r] = y;
                }
            }
            for (r = 0; r < w; r++) {
                i = forward ? s0 + r : n - 1 - s0 - r;
                y = v[r];
                for (q = s0; q < s0 + r; q++) y = y - p[r][q * cs] * x[forward ? q : n - 1 - q];
                x[i] = y / t[i * n + i];
            }
        }
        return;
    }
    nabla_triangular_solve_columns(n, m, t, x, lower, transpose, 0, m);
}
)

/* No fused multiply-adds: see nabla_runtime.c. */
#pragma STDC FP_CONTRACT OFF
#include <math.h>
#include "nabla_runtime.h"

#define NABLA_LINALG(...) __VA_ARGS__

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
/*
 * The functions for JIT kernels, built from the one body in nabla_linalg_code.h once per
 * instruction set (AVX-512, AVX2, the x86-64 baseline) as static functions with their own
 * names, and chosen on every call by the public functions below, which test the CPU as
 * nabla_matmul does. No FMA (-ffp-contract=off), so every variant rounds identically.
 *
 * Why not target_clones: it makes ifunc resolvers, which the dynamic loader runs while
 * relocating, before sanitizer runtimes are initialised (an instrumented resolver then crashes
 * ThreadSanitizer on load). A per-call test costs a load and a branch.
 *
 * While a variant is compiled, each public name stands for that variant's name: the name
 * pasted with NABLA_VARIANT (a macro does not expand inside its own expansion, so the pasted
 * name is left alone).
 */
#define NABLA_PASTE2(name, suffix) name##_##suffix
#define NABLA_PASTE(name, suffix) NABLA_PASTE2(name, suffix)
#define nabla_lu_factor NABLA_PASTE(nabla_lu_factor, NABLA_VARIANT)
#define nabla_lu_panel NABLA_PASTE(nabla_lu_panel, NABLA_VARIANT)
#define nabla_lu_panel_rows NABLA_PASTE(nabla_lu_panel_rows, NABLA_VARIANT)
#define nabla_lu_update_rows NABLA_PASTE(nabla_lu_update_rows, NABLA_VARIANT)
#define nabla_lu_finish NABLA_PASTE(nabla_lu_finish, NABLA_VARIANT)
#define nabla_lu_apply NABLA_PASTE(nabla_lu_apply, NABLA_VARIANT)
#define nabla_lu_apply_transposed NABLA_PASTE(nabla_lu_apply_transposed, NABLA_VARIANT)
#define nabla_lu_det NABLA_PASTE(nabla_lu_det, NABLA_VARIANT)
#define nabla_lu_logabsdet NABLA_PASTE(nabla_lu_logabsdet, NABLA_VARIANT)
#define nabla_lu_adjugate NABLA_PASTE(nabla_lu_adjugate, NABLA_VARIANT)
#define nabla_cholesky NABLA_PASTE(nabla_cholesky, NABLA_VARIANT)
#define nabla_cholesky_adjoint NABLA_PASTE(nabla_cholesky_adjoint, NABLA_VARIANT)
#define nabla_triangular_solve NABLA_PASTE(nabla_triangular_solve, NABLA_VARIANT)
#define nabla_lu_transposed_prepare NABLA_PASTE(nabla_lu_transposed_prepare, NABLA_VARIANT)
#define nabla_lu_apply_transposed_columns NABLA_PASTE(nabla_lu_apply_transposed_columns, NABLA_VARIANT)
#define nabla_triangular_solve_columns NABLA_PASTE(nabla_triangular_solve_columns, NABLA_VARIANT)

#define NABLA_VARIANT avx512
#define NABLA_LINKAGE static __attribute__((target("avx512f")))
#include "nabla_linalg_code.h"
#undef NABLA_LINKAGE
#undef NABLA_VARIANT

#define NABLA_VARIANT avx2
#define NABLA_LINKAGE static __attribute__((target("avx2")))
#include "nabla_linalg_code.h"
#undef NABLA_LINKAGE
#undef NABLA_VARIANT

#define NABLA_VARIANT baseline
#define NABLA_LINKAGE static
#include "nabla_linalg_code.h"
#undef NABLA_LINKAGE
#undef NABLA_VARIANT

#undef nabla_lu_factor
#undef nabla_lu_panel
#undef nabla_lu_panel_rows
#undef nabla_lu_update_rows
#undef nabla_lu_finish
#undef nabla_lu_apply
#undef nabla_lu_apply_transposed
#undef nabla_lu_det
#undef nabla_lu_logabsdet
#undef nabla_lu_adjugate
#undef nabla_cholesky
#undef nabla_cholesky_adjoint
#undef nabla_triangular_solve
#undef nabla_lu_transposed_prepare
#undef nabla_lu_apply_transposed_columns
#undef nabla_triangular_solve_columns

/* The variant to run: 2 for AVX-512, 1 for AVX2, 0 for the baseline (nabla_isa_level). */
static int nabla_linalg_level(void) { return nabla_isa_level(); }

long nabla_lu_panel(long n, double *a, double *pivots, long j0, long j1) {
    switch (nabla_linalg_level()) {
    case 2: return nabla_lu_panel_avx512(n, a, pivots, j0, j1);
    case 1: return nabla_lu_panel_avx2(n, a, pivots, j0, j1);
    default: return nabla_lu_panel_baseline(n, a, pivots, j0, j1);
    }
}

void nabla_lu_panel_rows(long n, double *a, const double *pivots, long j0, long j1) {
    switch (nabla_linalg_level()) {
    case 2: nabla_lu_panel_rows_avx512(n, a, pivots, j0, j1); break;
    case 1: nabla_lu_panel_rows_avx2(n, a, pivots, j0, j1); break;
    default: nabla_lu_panel_rows_baseline(n, a, pivots, j0, j1); break;
    }
}

void nabla_lu_update_rows(long n, double *a, long j0, long j1, long ib, long ie) {
    switch (nabla_linalg_level()) {
    case 2: nabla_lu_update_rows_avx512(n, a, j0, j1, ib, ie); break;
    case 1: nabla_lu_update_rows_avx2(n, a, j0, j1, ib, ie); break;
    default: nabla_lu_update_rows_baseline(n, a, j0, j1, ib, ie); break;
    }
}

void nabla_lu_finish(long n, double *a, const double *pivots) {
    switch (nabla_linalg_level()) {
    case 2: nabla_lu_finish_avx512(n, a, pivots); break;
    case 1: nabla_lu_finish_avx2(n, a, pivots); break;
    default: nabla_lu_finish_baseline(n, a, pivots); break;
    }
}

/* Trailing updates of at least this many multiply-adds ((rows left)^2 x 16) are split over the
 * pool by blocks of rows: each row's update reads the panel's rows and writes only itself, and
 * its arithmetic is the same in any block, so the factors do not depend on the thread count. */
#ifndef NABLA_PARALLEL_LU
#define NABLA_PARALLEL_LU (1L << 20)
#endif

struct lu_rows {
    long n, j0, j1;
    double *a;
};

static void lu_rows(void *context, long ib, long ie) {
    const struct lu_rows *w = (const struct lu_rows *)context;
    nabla_lu_update_rows(w->n, w->a, w->j0, w->j1, ib, ie);
}

/* nabla_lu_factor of nabla_linalg_code.h, step for step, with the trailing updates split. */
static long lu_factor_parallel(long n, const double *source, double *a, double *pivots) {
    long i, j0, j1, rest, swaps = 0;
    struct lu_rows work;
    if (source != a) {
        for (i = 0; i < n * n; i++) a[i] = source[i];
    }
    for (j0 = 0; j0 < n; j0 = j1) {
        j1 = n - j0 < 16 ? n : j0 + 16;
        swaps += nabla_lu_panel(n, a, pivots, j0, j1);
        if (j1 == n) break;
        nabla_lu_panel_rows(n, a, pivots, j0, j1);
        rest = n - j1;
        if ((double)rest * (double)rest * 16.0 >= (double)NABLA_PARALLEL_LU) {
            work.n = n; work.j0 = j0; work.j1 = j1; work.a = a;
            /* Whole 4-row tiles per block. */
            nabla_parallel_blocks(j1, n, 4, lu_rows, &work);
        } else {
            nabla_lu_update_rows(n, a, j0, j1, j1, n);
        }
    }
    nabla_lu_finish(n, a, pivots);
    return swaps;
}

long nabla_lu_factor(long n, const double *source, double *a, double *pivots) {
    if ((double)n * (double)n * 16.0 >= 4.0 * (double)NABLA_PARALLEL_LU && nabla_threads() > 1) return lu_factor_parallel(n, source, a, pivots);
    switch (nabla_linalg_level()) {
    case 2: return nabla_lu_factor_avx512(n, source, a, pivots);
    case 1: return nabla_lu_factor_avx2(n, source, a, pivots);
    default: return nabla_lu_factor_baseline(n, source, a, pivots);
    }
}

void nabla_lu_apply(long n, long m, const double *f, const double *pivots, double *x) {
    switch (nabla_linalg_level()) {
    case 2: nabla_lu_apply_avx512(n, m, f, pivots, x); break;
    case 1: nabla_lu_apply_avx2(n, m, f, pivots, x); break;
    default: nabla_lu_apply_baseline(n, m, f, pivots, x); break;
    }
}

long nabla_lu_transposed_prepare(long n, long m, const double *f, double *x, long identity) {
    switch (nabla_linalg_level()) {
    case 2: return nabla_lu_transposed_prepare_avx512(n, m, f, x, identity);
    case 1: return nabla_lu_transposed_prepare_avx2(n, m, f, x, identity);
    default: return nabla_lu_transposed_prepare_baseline(n, m, f, x, identity);
    }
}

void nabla_lu_apply_transposed_columns(long n, long m, const double *f, const double *pivots, double *x, long identity, long jb, long je) {
    switch (nabla_linalg_level()) {
    case 2: nabla_lu_apply_transposed_columns_avx512(n, m, f, pivots, x, identity, jb, je); break;
    case 1: nabla_lu_apply_transposed_columns_avx2(n, m, f, pivots, x, identity, jb, je); break;
    default: nabla_lu_apply_transposed_columns_baseline(n, m, f, pivots, x, identity, jb, je); break;
    }
}

/* Solves with this many multiply-adds or more (n^2 m, about a millisecond on one core) and at
 * least 64 right-hand sides are split over the pool by blocks of whole 16-column strips:
 * columns of right-hand sides never interact, and each column's arithmetic is the same in any
 * block, so the results do not depend on the thread count. */
#ifndef NABLA_PARALLEL_SOLVE
#define NABLA_PARALLEL_SOLVE (1L << 22)
#endif

/* Whether a solve for m right-hand sides is split over the threads. Its blocks are whole
 * 16-column strips and at least one strip wide, so the solves' strips, shifted left to end at
 * a block's last column, never reach into another block (whose columns another thread is
 * writing). */
static int solve_in_parallel(long n, long m) {
    return m >= 64 && (double)n * (double)n * (double)m >= (double)NABLA_PARALLEL_SOLVE && nabla_threads() > 1;
}

struct lu_transposed_operands {
    long n, m, identity;
    const double *f, *pivots;
    double *x;
};

static void lu_transposed_columns(void *context, long jb, long je) {
    const struct lu_transposed_operands *w = (const struct lu_transposed_operands *)context;
    nabla_lu_apply_transposed_columns(w->n, w->m, w->f, w->pivots, w->x, w->identity, jb, je);
}

void nabla_lu_apply_transposed(long n, long m, const double *f, const double *pivots, double *x, long identity) {
    if (solve_in_parallel(n, m)) {
        struct lu_transposed_operands work;
        work.n = n; work.m = m; work.f = f; work.pivots = pivots; work.x = x;
        work.identity = nabla_lu_transposed_prepare(n, m, f, x, identity);
        nabla_parallel_blocks(0, m, 16, lu_transposed_columns, &work);
        return;
    }
    switch (nabla_linalg_level()) {
    case 2: nabla_lu_apply_transposed_avx512(n, m, f, pivots, x, identity); break;
    case 1: nabla_lu_apply_transposed_avx2(n, m, f, pivots, x, identity); break;
    default: nabla_lu_apply_transposed_baseline(n, m, f, pivots, x, identity); break;
    }
}

double nabla_lu_det(long n, const double *f, const double *pivots) {
    switch (nabla_linalg_level()) {
    case 2: return nabla_lu_det_avx512(n, f, pivots);
    case 1: return nabla_lu_det_avx2(n, f, pivots);
    default: return nabla_lu_det_baseline(n, f, pivots);
    }
}

double nabla_lu_logabsdet(long n, const double *f) {
    switch (nabla_linalg_level()) {
    case 2: return nabla_lu_logabsdet_avx512(n, f);
    case 1: return nabla_lu_logabsdet_avx2(n, f);
    default: return nabla_lu_logabsdet_baseline(n, f);
    }
}

void nabla_lu_adjugate(long n, const double *f, const double *pivots, double *x) {
    switch (nabla_linalg_level()) {
    case 2: nabla_lu_adjugate_avx512(n, f, pivots, x); break;
    case 1: nabla_lu_adjugate_avx2(n, f, pivots, x); break;
    default: nabla_lu_adjugate_baseline(n, f, pivots, x); break;
    }
}

void nabla_cholesky(long n, const double *a, double *l) {
    if (nabla_blas_cholesky(n, a, l)) return;
    switch (nabla_linalg_level()) {
    case 2: nabla_cholesky_avx512(n, a, l); break;
    case 1: nabla_cholesky_avx2(n, a, l); break;
    default: nabla_cholesky_baseline(n, a, l); break;
    }
}

void nabla_cholesky_adjoint(long n, const double *l, const double *b, double *a) {
    switch (nabla_linalg_level()) {
    case 2: nabla_cholesky_adjoint_avx512(n, l, b, a); break;
    case 1: nabla_cholesky_adjoint_avx2(n, l, b, a); break;
    default: nabla_cholesky_adjoint_baseline(n, l, b, a); break;
    }
}

void nabla_triangular_solve_columns(long n, long m, const double *t, double *x, long lower, long transpose, long jb, long je) {
    switch (nabla_linalg_level()) {
    case 2: nabla_triangular_solve_columns_avx512(n, m, t, x, lower, transpose, jb, je); break;
    case 1: nabla_triangular_solve_columns_avx2(n, m, t, x, lower, transpose, jb, je); break;
    default: nabla_triangular_solve_columns_baseline(n, m, t, x, lower, transpose, jb, je); break;
    }
}

struct triangular_operands {
    long n, m, lower, transpose, blas;
    const double *t;
    double *x;
};

static void triangular_columns(void *context, long jb, long je) {
    const struct triangular_operands *w = (const struct triangular_operands *)context;
    if (w->blas) nabla_blas_triangular_columns(w->n, w->m, w->t, w->x, w->lower, w->transpose, jb, je);
    else nabla_triangular_solve_columns(w->n, w->m, w->t, w->x, w->lower, w->transpose, jb, je);
}

void nabla_triangular_solve(long n, long m, const double *t, const double *b, double *x, long lower, long transpose) {
    long blas = n > 0 && m > 0 && nabla_blas_triangular_wins(n, m, transpose);
    if (blas || solve_in_parallel(n, m)) {
        struct triangular_operands work;
        long s;
        if (x != b) for (s = 0; s < n * m; s++) x[s] = b[s];
        work.n = n; work.m = m; work.lower = lower; work.transpose = transpose; work.t = t; work.x = x; work.blas = blas;
        if (solve_in_parallel(n, m)) nabla_parallel_blocks(0, m, 16, triangular_columns, &work);
        else triangular_columns(&work, 0, m);
        return;
    }
    switch (nabla_linalg_level()) {
    case 2: nabla_triangular_solve_avx512(n, m, t, b, x, lower, transpose); break;
    case 1: nabla_triangular_solve_avx2(n, m, t, b, x, lower, transpose); break;
    default: nabla_triangular_solve_baseline(n, m, t, b, x, lower, transpose); break;
    }
}
#else
/* Elsewhere, the functions once, for whatever the compiler targets. */
#define NABLA_LINKAGE
#include "nabla_linalg_code.h"
#undef NABLA_LINKAGE
#endif
#undef NABLA_LINALG

/* The same code as text, for standalone C. NABLA_LINKAGE stays in the text; the emitter
 * replaces it with `static`. */
#define NABLA_STRINGIFY(...) #__VA_ARGS__
#define NABLA_LINALG(...) NABLA_STRINGIFY(__VA_ARGS__)
const char nabla_linalg_source[] =
#include "nabla_linalg_code.h"
;

const char *nabla_linalg_source_pointer(void) { return nabla_linalg_source; }

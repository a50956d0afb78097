/*
 * Nabla runtime: C routines that JIT-compiled kernels call instead of loops compiled by TinyCC.
 *
 * TinyCC does not optimise, so heavy inner loops (matrix products) live here, built with
 * optimisation (by a release build of the package, or at first use when the package was built
 * without it), and are registered into every TinyCC state with
 * tcc_add_symbol. Standalone C written by `nabla compile` inlines its own loops instead and
 * needs none of this.
 */
#ifndef NABLA_RUNTIME_H
#define NABLA_RUNTIME_H

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the runtime was compiled with optimisation, 0 otherwise. */
int nabla_runtime_optimized(void);

/* The widest instruction set the runtime uses: 2 AVX-512, 1 AVX2, 0 the x86-64 baseline; the
 * CPU's best, narrowed by the environment variable NABLA_ISA (avx512, avx2, baseline). */
int nabla_isa_level(void);

/* Threads the runtime's kernels may use (1: the calling thread alone): the last positive
 * nabla_set_threads, else the environment variable NABLA_THREADS, else the processors online
 * (at most 64). nabla_set_threads(0) returns to the default. */
int nabla_threads(void);
void nabla_set_threads(int count);
/* Runs task(context, part) for every part in [0, parts) on up to nabla_threads() threads, the
 * caller's among them, and returns when all are done; on the calling thread alone, in order,
 * when the pool is serving another call. Parts must write disjoint memory. */
void nabla_parallel(long parts, void (*task)(void *context, long part), void *context);
/* Cuts [begin, end) into blocks of whole granules, about two per thread and each at least one
 * granule (the last also takes what is left over, so no block is narrower), and runs
 * task(context, block begin, block end) for each block as nabla_parallel runs parts. */
void nabla_parallel_blocks(long begin, long end, long granule, void (*task)(void *context, long begin, long end), void *context);

/* C[m x n] = A[m x k] * B[k x n], all row-major and contiguous; C must not alias A or B. Large
 * products are split by rows over the threads; the result does not depend on their number. */
void nabla_matmul(long m, long k, long n, const double *A, const double *B, double *C);

/* LU with partial pivoting (see nabla_linalg_code.h). source (n x n) is copied into a (unless
 * they are the same) and a is overwritten by the factors; pivots receives n pivot rows (as
 * doubles); x holds m right-hand sides (n x m), overwritten by the solutions. The factored form
 * f is the overwritten a followed by the pivots. With identity != 0 the transposed solve sets
 * x to the identity first (m == n): A^-T. */
long nabla_lu_factor(long n, const double *source, double *a, double *pivots);
void nabla_lu_apply(long n, long m, const double *f, const double *pivots, double *x);
void nabla_lu_apply_transposed(long n, long m, const double *f, const double *pivots, double *x, long identity);
double nabla_lu_det(long n, const double *f, const double *pivots);
double nabla_lu_logabsdet(long n, const double *f);
/* adj(A) (n x n) from A's factors: the transposed cofactors, finite where det A is 0. */
void nabla_lu_adjugate(long n, const double *f, const double *pivots, double *x);
/* The lower Cholesky factor of a (its lower triangle) into l, and the triangular solve op(T) X = B
 * of nabla_linalg_code.h. */
void nabla_cholesky(long n, const double *a, double *l);
/* The pullback of nabla_cholesky: from its factor l and the cotangent b of l (lower triangles
 * read), the cotangent of a's lower triangle into a (which may be b, never l). */
void nabla_cholesky_adjoint(long n, const double *l, const double *b, double *a);
void nabla_triangular_solve(long n, long m, const double *t, const double *b, double *x, long lower, long transpose);
/* The steps of nabla_lu_factor, which the runtime runs with the trailing updates split over
 * its threads: factor the panel of columns [j0, j1) (returns its row swaps), apply its swaps
 * and its triangle to the panel's rows right of it, update rows [ib, ie) below it, and finish
 * (the remaining swaps and the factors' final layout). */
long nabla_lu_panel(long n, double *a, double *pivots, long j0, long j1);
void nabla_lu_panel_rows(long n, double *a, const double *pivots, long j0, long j1);
void nabla_lu_update_rows(long n, double *a, long j0, long j1, long ib, long ie);
void nabla_lu_finish(long n, double *a, const double *pivots);
/* Pieces of the two solves above: the transposed LU solve's set-up (the identity, when asked
 * for, and whether its shortcut applies) and either solve for the right-hand sides in columns
 * [jb, je) alone (x already holding them). The runtime splits large solves into such pieces
 * over its threads; standalone C calls them over all columns. */
long nabla_lu_transposed_prepare(long n, long m, const double *f, double *x, long identity);
void nabla_lu_apply_transposed_columns(long n, long m, const double *f, const double *pivots, double *x, long identity, long jb, long je);
void nabla_triangular_solve_columns(long n, long m, const double *t, double *x, long lower, long transpose, long jb, long je);

/* An optional BLAS and LAPACK (nabla_blas.c): the addresses of cblas_dgemm, cblas_dtrsm,
 * cblas_dtrsv and dpotrf_ of a loaded library (NULLs switch it off), and whether one is set. The
 * others are the runtime's own uses of it: each does the work and returns 1 where the library
 * is set and faster, else returns 0 and leaves it to the runtime's kernels. */
void nabla_set_blas(void *dgemm, void *dtrsm, void *dtrsv, void *dpotrf);
int nabla_blas_installed(void);
int nabla_blas_matmul(long m, long k, long n, const double *A, const double *B, double *C);
int nabla_blas_cholesky(long n, const double *a, double *l);
int nabla_blas_triangular_wins(long n, long m, long transpose);
void nabla_blas_triangular_columns(long n, long m, const double *t, double *x, long lower, long transpose, long jb, long je);

/* The text of those functions (with the token NABLA_LINKAGE before each), for standalone C. */
extern const char nabla_linalg_source[];
/* The same, as a pointer (Swift imports it more simply). */
const char *nabla_linalg_source_pointer(void);

#ifdef __cplusplus
}
#endif
#endif

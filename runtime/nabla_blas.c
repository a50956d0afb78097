/* An optional BLAS and LAPACK (OpenBLAS) for the runtime's large matrix products, Cholesky
 * factors and triangular solves.
 *
 * Off unless Swift installs one (KernelRuntime.useBLAS, or NABLA_BLAS): Nabla does not link a
 * BLAS, it is handed the addresses of cblas_dgemm, cblas_dtrsm, cblas_dtrsv and dpotrf_ of a
 * library Swift loaded. Each is used only where benchmarks/blas/README.md measured OpenBLAS
 * faster than the runtime's own kernels (the thresholds below); everywhere else, and when a
 * routine reports failure (a matrix that is not positive definite), the runtime's kernels run.
 *
 * A library's results are not the interpreter's bits: it uses fused multiply-adds and its own
 * summation order (agreement to about 1e-15 relative on the benchmark problems). Switching it
 * on or off while kernels run is safe: each call reads each address once, atomically. The
 * library is expected to run on one thread (Swift sets that); the runtime's pool splits the
 * large products and solves over its threads by blocks, as it does for its own kernels. */
#include "nabla_runtime.h"
#include <limits.h>
#include <stddef.h>

/* CBLAS's constants (cblas.h), so that no header is needed. */
enum {
    NABLA_CBLAS_ROW_MAJOR = 101,
    NABLA_CBLAS_NO_TRANS = 111,
    NABLA_CBLAS_TRANS = 112,
    NABLA_CBLAS_UPPER = 121,
    NABLA_CBLAS_LOWER = 122,
    NABLA_CBLAS_NON_UNIT = 131,
    NABLA_CBLAS_LEFT = 141
};

typedef void (*nabla_dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *, int, double,
                               double *, int);
typedef void (*nabla_dtrsm_fn)(int, int, int, int, int, int, int, double, const double *, int, double *, int);
typedef void (*nabla_dtrsv_fn)(int, int, int, int, int, const double *, int, double *, int);
/* LAPACK's Fortran interface: arguments by address, then the hidden length of the string. */
typedef void (*nabla_dpotrf_fn)(const char *, const int *, double *, const int *, int *, size_t);

static void *nabla_blas_dgemm, *nabla_blas_dtrsm, *nabla_blas_dtrsv, *nabla_blas_dpotrf;

void nabla_set_blas(void *dgemm, void *dtrsm, void *dtrsv, void *dpotrf) {
    __atomic_store_n(&nabla_blas_dgemm, dgemm, __ATOMIC_RELEASE);
    __atomic_store_n(&nabla_blas_dtrsm, dtrsm, __ATOMIC_RELEASE);
    __atomic_store_n(&nabla_blas_dtrsv, dtrsv, __ATOMIC_RELEASE);
    __atomic_store_n(&nabla_blas_dpotrf, dpotrf, __ATOMIC_RELEASE);
}

int nabla_blas_installed(void) { return __atomic_load_n(&nabla_blas_dgemm, __ATOMIC_ACQUIRE) != NULL; }

/* Products with every dimension at least 32 and at least 2^18 multiply-adds: OpenBLAS was
 * 1.3-2.2x faster there (P4's 784-wide products, P5's square ones); with a dimension of 2 or
 * 10 (P4's output layer, P5's X X^T) the runtime was level or faster. */
int nabla_blas_matmul(long m, long k, long n, const double *A, const double *B, double *C) {
    nabla_dgemm_fn dgemm = (nabla_dgemm_fn)__atomic_load_n(&nabla_blas_dgemm, __ATOMIC_ACQUIRE);
    if (!dgemm || m < 32 || k < 32 || n < 32 || (double)m * (double)k * (double)n < 262144.0) return 0;
    if (m > INT_MAX || k > INT_MAX || n > INT_MAX) return 0;
    dgemm(NABLA_CBLAS_ROW_MAJOR, NABLA_CBLAS_NO_TRANS, NABLA_CBLAS_NO_TRANS, (int)m, (int)n, (int)k, 1.0, A, (int)k, B,
          (int)n, 0.0, C, (int)n);
    return 1;
}

/* Factors from n = 200 under AVX-512 (OpenBLAS 1.2x faster at 400, 1.6x at 1000; the runtime
 * faster at 100) and from n = 64 otherwise (1.45x at 100). The row-major lower triangle is
 * LAPACK's column-major upper one. A matrix that is not positive definite (dpotrf's info > 0)
 * is factored again by the runtime, whose NaNs say where. */
int nabla_blas_cholesky(long n, const double *a, double *l) {
    nabla_dpotrf_fn potrf = (nabla_dpotrf_fn)__atomic_load_n(&nabla_blas_dpotrf, __ATOMIC_ACQUIRE);
    long i, j;
    int order, info = 0;
    if (!potrf || a == l || n > INT_MAX || n < (nabla_isa_level() == 2 ? 200 : 64)) return 0;
    for (i = 0; i < n; i++) for (j = 0; j < n; j++) l[i * n + j] = j <= i ? a[i * n + j] : 0.0;
    order = (int)n;
    potrf("U", &order, l, &order, &info, 1);
    return info == 0;
}

/* One right-hand side without transposing (the runtime's dot-product form; OpenBLAS 1.4-2.3x
 * faster from n = 100) from n = 200; several right-hand sides from n = 800 under AVX-512 (the
 * runtime level or faster at 400, 1.9-3.2x slower at 1000) and from n = 64 otherwise (2-2.3x). */
int nabla_blas_triangular_wins(long n, long m, long transpose) {
    if (!__atomic_load_n(&nabla_blas_dtrsm, __ATOMIC_ACQUIRE) || n > INT_MAX || m > INT_MAX) return 0;
    if (m == 1) return !transpose && n >= 200;
    return n >= (nabla_isa_level() == 2 ? 800 : 64);
}

/* op(T) X = B for the right-hand sides in columns [jb, je) of x (which holds B). */
void nabla_blas_triangular_columns(long n, long m, const double *t, double *x, long lower, long transpose, long jb, long je) {
    int uplo = lower ? NABLA_CBLAS_LOWER : NABLA_CBLAS_UPPER;
    int op = transpose ? NABLA_CBLAS_TRANS : NABLA_CBLAS_NO_TRANS;
    if (m == 1) {
        nabla_dtrsv_fn dtrsv = (nabla_dtrsv_fn)__atomic_load_n(&nabla_blas_dtrsv, __ATOMIC_ACQUIRE);
        dtrsv(NABLA_CBLAS_ROW_MAJOR, uplo, op, NABLA_CBLAS_NON_UNIT, (int)n, t, (int)n, x, 1);
        return;
    }
    {
        nabla_dtrsm_fn dtrsm = (nabla_dtrsm_fn)__atomic_load_n(&nabla_blas_dtrsm, __ATOMIC_ACQUIRE);
        dtrsm(NABLA_CBLAS_ROW_MAJOR, NABLA_CBLAS_LEFT, uplo, op, NABLA_CBLAS_NON_UNIT, (int)n, (int)(je - jb), 1.0, t, (int)n,
              x + jb, (int)m);
    }
}

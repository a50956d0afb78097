/*
 * The runtime's own kernels (runtime/nabla_runtime.c, runtime/nabla_linalg.c) against OpenBLAS
 * (BLAS and its LAPACK) at the sizes of P4 (the MLP) and P5 (the GP), one thread, row-major.
 * Issue 12. Build and run with benchmarks/blas/run.sh; README.md beside this file has figures.
 *
 * The runtime is compiled as separate objects with the flags Nabla itself uses for its optimised
 * copy of the runtime (RuntimeLibrary.flags: -O3 -ffp-contract=off, no -march: the runtime picks
 * its instruction set per call, narrowed by NABLA_ISA). OpenBLAS picks its kernels at load time;
 * OPENBLAS_CORETYPE forces them (Haswell for AVX2, SkylakeX for AVX-512).
 *
 * Each case times one call of each side, including any copy the call needs so that both sides
 * leave the same result from the same unchanged input (nabla_lu_factor and nabla_cholesky copy
 * their source themselves; the library's factorisations work in place, so a memcpy is timed with
 * them). Timing: calibrate a batch of calls to last about 20 ms, 3 warm-up batches, then 21
 * batches per side, alternating sides batch by batch; the figure is the median time per call.
 *
 * Output: one line per case, tab-separated (see header()), for run.sh / summarise.py.
 */
#define _POSIX_C_SOURCE 200112L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "nabla_runtime.h"

/* OpenBLAS's LAPACK (Fortran interface; Debian's build has no LAPACKE inside OpenBLAS). */
void dgetrf_(const int *m, const int *n, double *a, const int *lda, int *ipiv, int *info);
void dgetrs_(const char *trans, const int *n, const int *nrhs, const double *a, const int *lda, const int *ipiv,
             double *b, const int *ldb, int *info);
void dgetri_(const int *n, double *a, const int *lda, const int *ipiv, double *work, const int *lwork, int *info);
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
char *openblas_get_corename(void);
char *openblas_get_config(void);
void openblas_set_num_threads(int);

/* ---- timing ---- */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef void (*kernel_fn)(void *);

static double batch(kernel_fn f, void *ctx, long reps) {
    double t0 = now();
    for (long r = 0; r < reps; r++) f(ctx);
    return (now() - t0) / (double)reps;
}

static long calibrate(kernel_fn f, void *ctx, double target) {
    double t = batch(f, ctx, 1);
    long reps = 1;
    while (t * (double)reps < target / 4 && reps < (1L << 30)) {
        reps *= 2;
        t = batch(f, ctx, reps);
    }
    long r = (long)(target / (t > 1e-9 ? t : 1e-9));
    return r < 1 ? 1 : r;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int count) {
    qsort(v, (size_t)count, sizeof *v, compare_double);
    return count % 2 ? v[count / 2] : 0.5 * (v[count / 2 - 1] + v[count / 2]);
}

#define BATCHES 21
static double batch_seconds = 0.020;

/* Median seconds per call of a and of b, their batches interleaved. */
static void time_pair(kernel_fn a, void *ca, kernel_fn b, void *cb, double *ta, double *tb) {
    long ra = calibrate(a, ca, batch_seconds), rb = calibrate(b, cb, batch_seconds);
    double sa[BATCHES], sb[BATCHES];
    for (int w = 0; w < 3; w++) {
        batch(a, ca, ra);
        batch(b, cb, rb);
    }
    for (int i = 0; i < BATCHES; i++) {
        if (i % 2 == 0) {
            sa[i] = batch(a, ca, ra);
            sb[i] = batch(b, cb, rb);
        } else {
            sb[i] = batch(b, cb, rb);
            sa[i] = batch(a, ca, ra);
        }
    }
    *ta = median(sa, BATCHES);
    *tb = median(sb, BATCHES);
}

/* ---- data ---- */

static unsigned long long rng_state = 0x9e3779b97f4a7c15ULL;
static double uniform(void) { /* in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static double *alloc(long count) {
    void *p = NULL;
    if (posix_memalign(&p, 64, (size_t)(count > 0 ? count : 1) * sizeof(double))) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static double *random_matrix(long count) {
    double *p = alloc(count);
    for (long i = 0; i < count; i++) p[i] = uniform();
    return p;
}

/* P5's matrix: squared-exponential kernel on n random 2-D points plus noise on the diagonal
 * (signal variance 1, length scale 0.5, noise variance 0.1); symmetric positive definite. */
static double *gp_matrix(long n) {
    double *x = random_matrix(2 * n), *c = alloc(n * n);
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++) {
            double dx = x[2 * i] - x[2 * j], dy = x[2 * i + 1] - x[2 * j + 1];
            c[i * n + j] = exp(-0.5 * (dx * dx + dy * dy) / 0.25) + (i == j ? 0.1 : 0.0);
        }
    free(x);
    return c;
}

/* max |x - y| / max |y| (0 when both are all zero). */
static double rel_diff(long count, const double *x, const double *y) {
    double d = 0.0, s = 0.0;
    for (long i = 0; i < count; i++) {
        double e = fabs(x[i] - y[i]);
        if (e > d || e != e) d = e;
        if (fabs(y[i]) > s) s = fabs(y[i]);
    }
    return s > 0.0 ? d / s : d;
}

/* ---- cases ----
 * One context struct for every case: the kernels read what they need. */

typedef struct {
    long m, k, n;                 /* product: C[m x n] = A[m x k] B[k x n]; others: n x n, k rhs */
    const double *A, *B, *T, *S;  /* inputs */
    double *C, *W, *P;            /* outputs / work */
    int *ipiv;
    double *work;
    int lwork;
    long lower, transpose;
} ctx_t;

static void nabla_matmul_k(void *p) { ctx_t *c = p; nabla_matmul(c->m, c->k, c->n, c->A, c->B, c->C); }
static void blas_dgemm_k(void *p) {
    ctx_t *c = p;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->m, (int)c->n, (int)c->k, 1.0, c->A, (int)c->k,
                c->B, (int)c->n, 0.0, c->C, (int)c->n);
}

/* LU: nabla copies S into W and factors it. OpenBLAS: memcpy, then dgetrf_ on the row-major
 * buffer, which LAPACK reads as the column-major A^T: the usual way to use LAPACK from
 * row-major data (solve A x = b afterwards with dgetrs_ 'T'), with no transposition. */
static void nabla_lu_k(void *p) { ctx_t *c = p; nabla_lu_factor(c->n, c->S, c->W, c->P); }
static void lapack_lu_k(void *p) {
    ctx_t *c = p;
    int n = (int)c->n, info;
    memcpy(c->W, c->S, sizeof(double) * (size_t)(c->n * c->n));
    dgetrf_(&n, &n, c->W, &n, c->ipiv, &info);
}

/* LU solve with k right-hand sides from the factors (B copied into C first on both sides). */
static void nabla_lusolve_k(void *p) {
    ctx_t *c = p;
    memcpy(c->C, c->B, sizeof(double) * (size_t)(c->n * c->k));
    nabla_lu_apply(c->n, c->k, c->T, c->P, c->C);
}
static void lapack_lusolve_k(void *p) {
    ctx_t *c = p;
    int n = (int)c->n, nrhs = (int)c->k, info;
    memcpy(c->C, c->B, sizeof(double) * (size_t)(c->n * c->k));
    /* T holds the column-major factors of A^T; for one rhs the row-major and column-major
     * vectors are the same; for several, rhs columns are strided, so this is only used with k=1. */
    dgetrs_("T", &n, &nrhs, c->T, &n, c->ipiv, c->C, &n, &info);
}

/* A^-T from the factors (what the gradient of log|det A| needs): nabla's transposed apply with
 * identity; LAPACK: dgetri_ on a copy of the factors of A^T gives (A^T)^-1 in column-major,
 * whose row-major view is A^-1 (the transposition, if needed, is left out of the timing). */
static void nabla_inv_k(void *p) { ctx_t *c = p; nabla_lu_apply_transposed(c->n, c->n, c->T, c->P, c->C, 1); }
static void lapack_inv_k(void *p) {
    ctx_t *c = p;
    int n = (int)c->n, info;
    memcpy(c->C, c->T, sizeof(double) * (size_t)(c->n * c->n));
    dgetri_(&n, c->C, &n, c->ipiv, c->work, &c->lwork, &info);
}

/* Cholesky: nabla reads S's lower triangle into W. LAPACK: memcpy, then dpotrf_ 'U' on the
 * row-major buffer (column-major upper of A^T = A), whose row-major view is the lower factor L;
 * the strict upper triangle keeps A (nabla zeroes it; that is left out of the library's time). */
static void nabla_chol_k(void *p) { ctx_t *c = p; nabla_cholesky(c->n, c->S, c->W); }
static void lapack_chol_k(void *p) {
    ctx_t *c = p;
    int n = (int)c->n, info;
    memcpy(c->W, c->S, sizeof(double) * (size_t)(c->n * c->n));
    dpotrf_("U", &n, c->W, &n, &info);
}

/* Triangular solve op(T) X = B, T lower (row-major), k right-hand sides; B copied into C. */
static void nabla_trsolve_k(void *p) {
    ctx_t *c = p;
    nabla_triangular_solve(c->n, c->k, c->T, c->B, c->C, 1, c->transpose);
}
static void blas_trsolve_k(void *p) {
    ctx_t *c = p;
    memcpy(c->C, c->B, sizeof(double) * (size_t)(c->n * c->k));
    if (c->k == 1)
        cblas_dtrsv(CblasRowMajor, CblasLower, c->transpose ? CblasTrans : CblasNoTrans, CblasNonUnit, (int)c->n,
                    c->T, (int)c->n, c->C, 1);
    else
        cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, c->transpose ? CblasTrans : CblasNoTrans, CblasNonUnit,
                    (int)c->n, (int)c->k, 1.0, c->T, (int)c->n, c->C, (int)c->k);
}

/* ---- reporting ---- */

static const char *isa_name(int level) { return level == 2 ? "avx512" : level == 1 ? "avx2" : "baseline"; }

static void header(void) {
    printf("problem\tcase\tshape\tflops\tnabla_us\topenblas_us\tratio\tnabla_gflops\topenblas_gflops\trel_diff\n");
}

static void report(const char *problem, const char *name, const char *shape, double flops, double tn, double tb,
                   double diff) {
    printf("%s\t%s\t%s\t%.0f\t%.3f\t%.3f\t%.3f\t%.2f\t%.2f\t%.1e\n", problem, name, shape, flops, tn * 1e6, tb * 1e6,
           tn / tb, flops / tn * 1e-9, flops / tb * 1e-9, diff);
    fflush(stdout);
}

static void matmul_case(const char *problem, const char *name, long m, long k, long n) {
    ctx_t c = {0};
    c.m = m, c.k = k, c.n = n;
    double *A = random_matrix(m * k), *B = random_matrix(k * n), *C1 = alloc(m * n), *C2 = alloc(m * n);
    c.A = A, c.B = B;
    double tn, tb;
    ctx_t cb = c;
    c.C = C1, cb.C = C2;
    time_pair(nabla_matmul_k, &c, blas_dgemm_k, &cb, &tn, &tb);
    char shape[64];
    snprintf(shape, sizeof shape, "%ldx%ldx%ld", m, k, n);
    report(problem, name, shape, 2.0 * m * k * n, tn, tb, rel_diff(m * n, C1, C2));
    free(A), free(B), free(C1), free(C2);
}

static void p5_cases(long n, int cholesky_only) {
    char problem[32], shape[64];
    snprintf(problem, sizeof problem, "P5 n=%ld", n);
    double *S = gp_matrix(n);
    double tn, tb;

    /* X @ X^T (k = 2) and a square product. */
    if (!cholesky_only) matmul_case(problem, "matmul X@X^T", n, 2, n);
    if (!cholesky_only) matmul_case(problem, "matmul", n, n, n);

    /* LU factor. */
    if (!cholesky_only) {
        ctx_t a = {0}, b = {0};
        a.n = b.n = n;
        a.S = b.S = S;
        a.W = alloc(n * n), a.P = alloc(n);
        b.W = alloc(n * n), b.ipiv = malloc(sizeof(int) * (size_t)n);
        time_pair(nabla_lu_k, &a, lapack_lu_k, &b, &tn, &tb);
        /* Agreement: solve A x = y with each side's factors. */
        double *y = random_matrix(n), *x1 = alloc(n), *x2 = alloc(n);
        memcpy(x1, y, sizeof(double) * (size_t)n);
        nabla_lu_apply(n, 1, a.W, a.P, x1);
        memcpy(x2, y, sizeof(double) * (size_t)n);
        {
            int nn = (int)n, one = 1, info;
            dgetrs_("T", &nn, &one, b.W, &nn, b.ipiv, x2, &nn, &info);
        }
        snprintf(shape, sizeof shape, "%ld", n);
        report(problem, "LU factor", shape, 2.0 / 3.0 * n * n * n, tn, tb, rel_diff(n, x1, x2));

        /* LU solve, 1 rhs (P5's solve(C, y)). */
        ctx_t sa = {0}, sb = {0};
        sa.n = sb.n = n, sa.k = sb.k = 1;
        sa.B = sb.B = y;
        sa.T = a.W, sa.P = a.P, sa.C = x1;
        sb.T = b.W, sb.ipiv = b.ipiv, sb.C = x2;
        time_pair(nabla_lusolve_k, &sa, lapack_lusolve_k, &sb, &tn, &tb);
        snprintf(shape, sizeof shape, "%ldx1", n);
        report(problem, "LU solve (getrs)", shape, 2.0 * n * n, tn, tb, rel_diff(n, x1, x2));

        /* A^-T from the factors (gradient of logdet). */
        ctx_t ia = {0}, ib = {0};
        ia.n = ib.n = n;
        ia.T = a.W, ia.P = a.P, ia.C = alloc(n * n);
        ib.T = b.W, ib.ipiv = b.ipiv, ib.C = alloc(n * n);
        ib.lwork = (int)(64 * n);
        ib.work = alloc(ib.lwork);
        time_pair(nabla_inv_k, &ia, lapack_inv_k, &ib, &tn, &tb);
        /* ib.C, row-major, is A^-1: compare with the transpose of nabla's A^-T. */
        double *t = alloc(n * n);
        for (long i = 0; i < n; i++)
            for (long j = 0; j < n; j++) t[i * n + j] = ia.C[j * n + i];
        snprintf(shape, sizeof shape, "%ldx%ld", n, n);
        report(problem, "A^-T from LU (getri)", shape, 4.0 / 3.0 * n * n * n, tn, tb, rel_diff(n * n, t, ib.C));
        free(t), free(ia.C), free(ib.C), free(ib.work);
        free(y), free(x1), free(x2), free(a.W), free(a.P), free(b.W), free(b.ipiv);
    }

    /* Cholesky. */
    double *L = alloc(n * n);
    {
        ctx_t a = {0}, b = {0};
        a.n = b.n = n;
        a.S = b.S = S;
        a.W = L, b.W = alloc(n * n);
        time_pair(nabla_chol_k, &a, lapack_chol_k, &b, &tn, &tb);
        /* Compare lower triangles (the library's upper keeps A). */
        double *lo = alloc(n * n);
        for (long i = 0; i < n; i++)
            for (long j = 0; j < n; j++) lo[i * n + j] = j <= i ? b.W[i * n + j] : 0.0;
        snprintf(shape, sizeof shape, "%ld", n);
        report(problem, "Cholesky (potrf)", shape, 1.0 / 3.0 * n * n * n, tn, tb, rel_diff(n * n, L, lo));
        free(lo), free(b.W);
    }

    /* Triangular solves with the Cholesky factor: L x = b and L^T x = b (cho_solve), 1 and n rhs. */
    for (int transpose = 0; transpose <= 1; transpose++)
        for (int wide = 0; wide <= 1; wide++) {
            long m = wide ? n : 1;
            ctx_t a = {0}, b = {0};
            a.n = b.n = n, a.k = b.k = m;
            a.T = b.T = L;
            a.transpose = b.transpose = transpose;
            double *B = random_matrix(n * m);
            a.B = b.B = B;
            a.C = alloc(n * m), b.C = alloc(n * m);
            time_pair(nabla_trsolve_k, &a, blas_trsolve_k, &b, &tn, &tb);
            snprintf(shape, sizeof shape, "%ldx%ld", n, m);
            report(problem, transpose ? (wide ? "tri solve L^T (trsm)" : "tri solve L^T (trsv)")
                                      : (wide ? "tri solve L (trsm)" : "tri solve L (trsv)"),
                   shape, (double)n * n * m, tn, tb, rel_diff(n * m, a.C, b.C));
            free(B), free(a.C), free(b.C);
        }
    free(L), free(S);
}

static void p4_cases(long batch) {
    const long n_in = 784, n_hidden = 128, n_classes = 10;
    char problem[32];
    snprintf(problem, sizeof problem, "P4 batch=%ld", batch);
    /* Forward: X @ W1, H @ W2. Backward (transposes materialised): dW2 = H^T @ dlogits,
     * dH = dlogits @ W2^T, dW1 = X^T @ dZ. */
    matmul_case(problem, "X@W1", batch, n_in, n_hidden);
    matmul_case(problem, "H@W2", batch, n_hidden, n_classes);
    matmul_case(problem, "H^T@dL (dW2)", n_hidden, batch, n_classes);
    matmul_case(problem, "dL@W2^T (dH)", batch, n_classes, n_hidden);
    matmul_case(problem, "X^T@dZ (dW1)", n_in, batch, n_hidden);
}

int main(int argc, char **argv) {
    openblas_set_num_threads(1);
    const char *only = argc > 1 ? argv[1] : "all"; /* all | p4 | p5 | chol (P5's Cholesky and triangular solves) */
    const char *bs = getenv("BATCH_SECONDS");
    if (bs) batch_seconds = atof(bs);
    printf("# nabla isa: %s; openblas core: %s; %s\n", isa_name(nabla_isa_level()), openblas_get_corename(),
           openblas_get_config());
    header();
    int chol = strcmp(only, "chol") == 0;
    if (strcmp(only, "p5") != 0 && !chol) {
        p4_cases(64);
        p4_cases(1024);
    }
    if (strcmp(only, "p4") != 0) {
        p5_cases(100, chol);
        p5_cases(400, chol);
        p5_cases(1000, chol);
    }
    return 0;
}

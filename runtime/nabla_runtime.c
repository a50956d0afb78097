/* No fused multiply-adds anywhere in the runtime: each product and sum rounds on its own, as in
 * the interpreter. The pragma says so whatever flags the build passes (a package used by URL
 * may pass none); builds at first use also give -ffp-contract=off. */
#pragma STDC FP_CONTRACT OFF
#include "nabla_runtime.h"
#include <stdlib.h>
#include <string.h>

/* Loops over the registers of a tile (fixed, small trip counts) unrolled completely, so the
 * tile's accumulators live in registers at any optimisation level that vectorises: clang
 * unrolls them by itself at -O3 but not at -O2 (SwiftPM's release level), which made the
 * products 2.7x slower. */
#if defined(__clang__)
#define NABLA_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define NABLA_UNROLL _Pragma("GCC unroll 16")
#else
#define NABLA_UNROLL
#endif

/* 1 when this file was compiled with optimisation. A build without it (SwiftPM's debug
 * configuration) makes Nabla compile an optimised copy of the runtime at first use. */
int nabla_runtime_optimized(void) {
#ifdef __OPTIMIZE__
    return 1;
#else
    return 0;
#endif
}

/* Matrix products, C = A B, all row-major.
 *
 * C[i][j] is always 0.0 plus A[i][p] * B[p][j] for p = 0, 1, ..., k - 1 in that order, each
 * product and each sum rounded on its own (no FMA: see the pragma above), exactly as Nabla's interpreter and the loops of standalone C do, so all of
 * them agree to the last bit. Within that constraint the work is blocked for speed: a block of
 * C stays in vector registers while p runs, so that many independent chains of additions hide
 * their latency and each loaded element of A or B feeds several of them. Blocking over p only
 * pauses each element's chain (the partial sum is stored in C and loaded back, exactly), it
 * never splits or reorders it.
 *
 * On x86-64, nabla_matmul asks at each call whether the CPU (and OS) supports AVX-512 or AVX2
 * and runs kernels written for it with intrinsics; elsewhere, or on older CPUs, portable C
 * blocked the same way. Nothing here allocates or keeps mutable static state, so products may
 * run on many threads at once. */

/* One row of C, summed in memory while B streams past row by row (each row read in order, which
 * hardware prefetchers follow best: the fastest way through a large B used only once, as for a
 * long row vector times a wide matrix). Inlined into callers built for wider vectors. */
static inline __attribute__((always_inline)) void row_streamed(long k, long n, const double *restrict a,
                                                               const double *restrict B, double *restrict c) {
    for (long j = 0; j < n; j++) c[j] = 0.0;
    for (long p = 0; p < k; p++) {
        const double ap = a[p];
        const double *b = B + p * n;
        for (long j = 0; j < n; j++) c[j] += ap * b[j];
    }
}

/* Portable kernel: a 4 x 8 block of C in registers while p runs (compilers vectorise the
 * inner loops), then the rows and columns left over. */
static void matmul_portable(long m, long k, long n, const double *restrict A, const double *restrict B,
                            double *restrict C) {
    long i = 0;
    for (; i + 4 <= m; i += 4) {
        const double *a0 = A + i * k, *a1 = a0 + k, *a2 = a1 + k, *a3 = a2 + k;
        long j = 0;
        for (; j + 8 <= n; j += 8) {
            double c[4][8] = {{0.0}};
            const double *b = B + j;
            for (long p = 0; p < k; p++, b += n) {
                const double x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p];
                NABLA_UNROLL
                for (int q = 0; q < 8; q++) {
                    const double y = b[q];
                    c[0][q] += x0 * y;
                    c[1][q] += x1 * y;
                    c[2][q] += x2 * y;
                    c[3][q] += x3 * y;
                }
            }
            NABLA_UNROLL
            for (int r = 0; r < 4; r++)
                NABLA_UNROLL
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
    for (; i < m; i++) row_streamed(k, n, A + i * k, B, C + i * n);
}

/* Matrix times vector (n == 1): dot products, four rows at a time, so four independent chains
 * of additions (each still in order over p). */
static void matvec_portable(long m, long k, const double *restrict A, const double *restrict B,
                            double *restrict C) {
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
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NABLA_X86 1
#include <immintrin.h>

/* Values of p per pass over C: the 16 rows of A a block of C needs, over this many p (16 KiB),
 * stay in L1 while every block of 8 columns of B streams past them. */
#define NABLA_KC 128
/* Columns per pass: the block of B one pass reads (NABLA_KC x NABLA_NC, 512 KiB) stays in L2
 * while the blocks of 16 rows of A go by. */
#ifndef NABLA_NC
#define NABLA_NC 512
#endif

/* ---- AVX-512: 32 vector registers of 8 doubles. ----
 *
 * The main block is 16 x 8: 16 accumulators (16 independent chains of additions), and per p
 * one vector load of B and 16 multiplications that each broadcast their element of A straight
 * from memory (no separate broadcast instruction, which on AMD Zen 4 would compete with the
 * multiplications and additions for the floating-point pipes). That keeps the multipliers and
 * adders full: about 8 multiply-adds per cycle on Zen 4, its peak without FMA. */

#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f")))
#define AVX512_FUNCTION static __attribute__((noinline, target("avx512f")))

/* An MR x (8 NV) block of C (rows a, a + k, ... of A; columns b, b + 1, ... of B), for p in
 * [p0, p1); from 0.0 when p0 == 0, else from the partial sums already in C. With masked, only
 * the lanes of `last` exist in the last vector of columns (the others are neither loaded nor
 * stored). MR and NV are constants after inlining, so the accumulators live in registers; with
 * NV == 1 each element of A is broadcast straight from memory into its multiplication. */
AVX512_INLINE void tile512(const int MR, const int NV, const int masked, const __mmask8 last, long p0,
                           long p1, long k, long n, const double *restrict a,
                           const double *restrict b, double *restrict c) {
    __m512d acc[16][8];
    NABLA_UNROLL
    for (int r = 0; r < MR; r++)
        NABLA_UNROLL
        for (int v = 0; v < NV; v++) {
            if (p0 == 0) acc[r][v] = _mm512_setzero_pd();
            else if (masked && v == NV - 1) acc[r][v] = _mm512_maskz_loadu_pd(last, c + r * n + 8 * v);
            else acc[r][v] = _mm512_loadu_pd(c + r * n + 8 * v);
        }
    const double *bp = b + p0 * n;
    for (long p = p0; p < p1; p++, bp += n) {
        __m512d y[8];
        NABLA_UNROLL
        for (int v = 0; v < NV; v++)
            y[v] = (masked && v == NV - 1) ? _mm512_maskz_loadu_pd(last, bp + 8 * v) : _mm512_loadu_pd(bp + 8 * v);
        NABLA_UNROLL
        for (int r = 0; r < MR; r++) {
            const __m512d x = _mm512_set1_pd(a[r * k + p]);
            NABLA_UNROLL
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_add_pd(acc[r][v], _mm512_mul_pd(x, y[v]));
        }
    }
    NABLA_UNROLL
    for (int r = 0; r < MR; r++)
        NABLA_UNROLL
        for (int v = 0; v < NV; v++) {
            if (masked && v == NV - 1) _mm512_mask_storeu_pd(c + r * n + 8 * v, last, acc[r][v]);
            else _mm512_storeu_pd(c + r * n + 8 * v, acc[r][v]);
        }
}

/* MR rows of C, w columns: blocks of 8 NV columns, then the columns left over. */
AVX512_INLINE void rows512(const int MR, const int NV, long p0, long p1, long k, long n, long w,
                           const double *restrict a, const double *restrict B, double *restrict c) {
    long j = 0;
    for (; j + 8 * NV <= w; j += 8 * NV) tile512(MR, NV, 0, 0xff, p0, p1, k, n, a, B + j, c + j);
    const long rest = w - j;
    if (rest == 0) return;
    const long vectors = (rest + 7) / 8;
    const __mmask8 last = (__mmask8)(0xffu >> (8 * vectors - rest));
    switch (vectors) {
    case 1: tile512(MR, 1, 1, last, p0, p1, k, n, a, B + j, c + j); break;
    case 2: if (NV >= 2) tile512(MR, NV >= 2 ? 2 : 1, 1, last, p0, p1, k, n, a, B + j, c + j); break;
    case 3: if (NV >= 3) tile512(MR, NV >= 3 ? 3 : 1, 1, last, p0, p1, k, n, a, B + j, c + j); break;
    case 4: if (NV >= 4) tile512(MR, NV >= 4 ? 4 : 1, 1, last, p0, p1, k, n, a, B + j, c + j); break;
    case 5: if (NV >= 5) tile512(MR, NV >= 5 ? 5 : 1, 1, last, p0, p1, k, n, a, B + j, c + j); break;
    case 6: if (NV >= 6) tile512(MR, NV >= 6 ? 6 : 1, 1, last, p0, p1, k, n, a, B + j, c + j); break;
    case 7: if (NV >= 7) tile512(MR, NV >= 7 ? 7 : 1, 1, last, p0, p1, k, n, a, B + j, c + j); break;
    case 8: if (NV >= 8) tile512(MR, NV >= 8 ? 8 : 1, 1, last, p0, p1, k, n, a, B + j, c + j); break;
    }
}

/* 16 rows: 16 x 8 blocks, 16 accumulators, one load of B and 16 broadcasts of A per p. */
AVX512_FUNCTION void rows512_16(long p0, long p1, long k, long n, long w, const double *restrict a,
                                const double *restrict B, double *restrict c) {
    rows512(16, 1, p0, p1, k, n, w, a, B, c);
}

/* Fewer rows (the last of C, or all of a short C): wider blocks keep 8 or more accumulators. */
AVX512_FUNCTION void rows512_few(long rows, long p0, long p1, long k, long n, long w,
                                 const double *restrict a, const double *restrict B, double *restrict c) {
    switch (rows) {
    case 8: rows512(8, 1, p0, p1, k, n, w, a, B, c); break;
    case 7: rows512(7, 2, p0, p1, k, n, w, a, B, c); break;
    case 6: rows512(6, 2, p0, p1, k, n, w, a, B, c); break;
    case 5: rows512(5, 2, p0, p1, k, n, w, a, B, c); break;
    case 4: rows512(4, 2, p0, p1, k, n, w, a, B, c); break;
    case 3: rows512(3, 4, p0, p1, k, n, w, a, B, c); break;
    case 2: rows512(2, 4, p0, p1, k, n, w, a, B, c); break;
    case 1: rows512(1, 8, p0, p1, k, n, w, a, B, c); break;
    }
}

/* (n: the full row length of B and C; w: the columns of this pass.) */
AVX512_FUNCTION void matmul512(long m, long k, long n, const double *restrict A, const double *restrict B,
                               double *restrict C) {
    if (m == 1 && n > 256) {
        row_streamed(k, n, A, B, C);
        return;
    }
    for (long p0 = 0; p0 < k; p0 += NABLA_KC) {
        const long p1 = k - p0 > NABLA_KC ? p0 + NABLA_KC : k;
        for (long j0 = 0; j0 < n; j0 += NABLA_NC) {
            const long w = n - j0 > NABLA_NC ? NABLA_NC : n - j0;
            long i = 0;
            for (; i + 16 <= m; i += 16) rows512_16(p0, p1, k, n, w, A + i * k, B + j0, C + i * n + j0);
            while (i < m) {
                const long rows = m - i >= 8 ? 8 : m - i;
                rows512_few(rows, p0, p1, k, n, w, A + i * k, B + j0, C + i * n + j0);
                i += rows;
            }
        }
    }
}

/* Matrix times vector: 8 rows at a time in one vector of 8 sums. An 8 x 8 block of A (8 rows,
 * 8 consecutive p) is loaded row by row and transposed in registers, so that vector q holds
 * column p + q of the 8 rows; the sums then take their 8 terms in order of p. */
AVX512_INLINE void transpose8x8(__m512d r[8], __m512d v[8]) {
    __m512d t[8], u[8];
    NABLA_UNROLL
    for (int h = 0; h < 8; h += 2) {
        t[h] = _mm512_unpacklo_pd(r[h], r[h + 1]);     /* (r_h, r_h+1) at 0, 2, 4, 6 */
        t[h + 1] = _mm512_unpackhi_pd(r[h], r[h + 1]); /* (r_h, r_h+1) at 1, 3, 5, 7 */
    }
    NABLA_UNROLL
    for (int h = 0; h < 8; h += 4) {
        u[h] = _mm512_shuffle_f64x2(t[h], t[h + 2], 0x88);         /* columns 0 and 4 */
        u[h + 1] = _mm512_shuffle_f64x2(t[h + 1], t[h + 3], 0x88); /* 1 and 5 */
        u[h + 2] = _mm512_shuffle_f64x2(t[h], t[h + 2], 0xdd);     /* 2 and 6 */
        u[h + 3] = _mm512_shuffle_f64x2(t[h + 1], t[h + 3], 0xdd); /* 3 and 7 */
    }
    NABLA_UNROLL
    for (int q = 0; q < 4; q++) {
        v[q] = _mm512_shuffle_f64x2(u[q], u[q + 4], 0x88);
        v[q + 4] = _mm512_shuffle_f64x2(u[q], u[q + 4], 0xdd);
    }
}

AVX512_FUNCTION void matvec512(long m, long k, const double *restrict A, const double *restrict B,
                               double *restrict C) {
    long i = 0;
    if (k >= 16) /* (for shorter rows the scalar chains below are as fast) */
        for (; i + 8 <= m; i += 8) {
            const double *a = A + i * k;
            __m512d acc = _mm512_setzero_pd(), r[8], v[8];
            long p = 0;
            for (; p + 8 <= k; p += 8) {
                NABLA_UNROLL
                for (int h = 0; h < 8; h++) r[h] = _mm512_loadu_pd(a + h * k + p);
                transpose8x8(r, v);
                NABLA_UNROLL
                for (int q = 0; q < 8; q++) acc = _mm512_add_pd(acc, _mm512_mul_pd(v[q], _mm512_set1_pd(B[p + q])));
            }
            if (p < k) { /* the last k mod 8 columns; lanes past the end are not loaded */
                const __mmask8 lanes = (__mmask8)(0xffu >> (8 - (k - p)));
                NABLA_UNROLL
                for (int h = 0; h < 8; h++) r[h] = _mm512_maskz_loadu_pd(lanes, a + h * k + p);
                transpose8x8(r, v);
                for (int q = 0; q < k - p; q++) acc = _mm512_add_pd(acc, _mm512_mul_pd(v[q], _mm512_set1_pd(B[p + q])));
            }
            _mm512_storeu_pd(C + i, acc);
        }
    if (i < m) matvec_portable(m - i, k, A + i * k, B, C + i);
}

/* ---- AVX2: 16 vector registers of 4 doubles. ---- */

#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2")))
#define AVX2_FUNCTION static __attribute__((noinline, target("avx2")))

/* As tile512, with vectors of 4 and the lanes of the last vector given by `last` (all bits set
 * in a lane that exists). */
AVX2_INLINE void tile256(const int MR, const int NV, const int masked, const __m256i last, long p0,
                         long p1, long k, long n, const double *restrict a, const double *restrict b,
                         double *restrict c) {
    __m256d acc[4][4];
    NABLA_UNROLL
    for (int r = 0; r < MR; r++)
        NABLA_UNROLL
        for (int v = 0; v < NV; v++) {
            if (p0 == 0) acc[r][v] = _mm256_setzero_pd();
            else if (masked && v == NV - 1) acc[r][v] = _mm256_maskload_pd(c + r * n + 4 * v, last);
            else acc[r][v] = _mm256_loadu_pd(c + r * n + 4 * v);
        }
    const double *bp = b + p0 * n;
    for (long p = p0; p < p1; p++, bp += n) {
        __m256d y[4];
        NABLA_UNROLL
        for (int v = 0; v < NV; v++)
            y[v] = (masked && v == NV - 1) ? _mm256_maskload_pd(bp + 4 * v, last) : _mm256_loadu_pd(bp + 4 * v);
        NABLA_UNROLL
        for (int r = 0; r < MR; r++) {
            const __m256d x = _mm256_broadcast_sd(a + r * k + p);
            NABLA_UNROLL
            for (int v = 0; v < NV; v++) acc[r][v] = _mm256_add_pd(acc[r][v], _mm256_mul_pd(x, y[v]));
        }
    }
    NABLA_UNROLL
    for (int r = 0; r < MR; r++)
        NABLA_UNROLL
        for (int v = 0; v < NV; v++) {
            if (masked && v == NV - 1) _mm256_maskstore_pd(c + r * n + 4 * v, last, acc[r][v]);
            else _mm256_storeu_pd(c + r * n + 4 * v, acc[r][v]);
        }
}

AVX2_INLINE void rows256(const int MR, const int NV, long p0, long p1, long k, long n, long w,
                         const double *restrict a, const double *restrict B, double *restrict c) {
    long j = 0;
    for (; j + 4 * NV <= w; j += 4 * NV) tile256(MR, NV, 0, _mm256_set1_epi64x(-1), p0, p1, k, n, a, B + j, c + j);
    const long rest = w - j;
    if (rest == 0) return;
    const long vectors = (rest + 3) / 4, lanes = rest - 4 * (vectors - 1);
    const __m256i last = _mm256_cmpgt_epi64(_mm256_set1_epi64x(lanes), _mm256_setr_epi64x(0, 1, 2, 3));
    switch (vectors) {
    case 1: tile256(MR, 1, 1, last, p0, p1, k, n, a, B + j, c + j); break;
    case 2: if (NV >= 2) tile256(MR, NV >= 2 ? 2 : 1, 1, last, p0, p1, k, n, a, B + j, c + j); break;
    case 3: if (NV >= 3) tile256(MR, NV >= 3 ? 3 : 1, 1, last, p0, p1, k, n, a, B + j, c + j); break;
    case 4: if (NV >= 4) tile256(MR, NV >= 4 ? 4 : 1, 1, last, p0, p1, k, n, a, B + j, c + j); break;
    }
}

AVX2_FUNCTION void rows256_4(long p0, long p1, long k, long n, long w, const double *restrict a,
                             const double *restrict B, double *restrict c) {
    rows256(4, 2, p0, p1, k, n, w, a, B, c);
}

AVX2_FUNCTION void rows256_few(long rows, long p0, long p1, long k, long n, long w,
                               const double *restrict a, const double *restrict B, double *restrict c) {
    switch (rows) {
    case 3: rows256(3, 2, p0, p1, k, n, w, a, B, c); break;
    case 2: rows256(2, 3, p0, p1, k, n, w, a, B, c); break;
    case 1: rows256(1, 4, p0, p1, k, n, w, a, B, c); break;
    }
}

AVX2_FUNCTION void matmul256(long m, long k, long n, const double *restrict A, const double *restrict B,
                             double *restrict C) {
    if (m == 1 && n > 256) {
        row_streamed(k, n, A, B, C);
        return;
    }
    for (long p0 = 0; p0 < k; p0 += NABLA_KC) {
        const long p1 = k - p0 > NABLA_KC ? p0 + NABLA_KC : k;
        for (long j0 = 0; j0 < n; j0 += NABLA_NC) {
            const long w = n - j0 > NABLA_NC ? NABLA_NC : n - j0;
            long i = 0;
            for (; i + 4 <= m; i += 4) rows256_4(p0, p1, k, n, w, A + i * k, B + j0, C + i * n + j0);
            if (i < m) rows256_few(m - i, p0, p1, k, n, w, A + i * k, B + j0, C + i * n + j0);
        }
    }
}

#endif

/* The widest instruction set the runtime's kernels use (2 AVX-512, 1 AVX2, 0 the x86-64
 * baseline, which is SSE2): the CPU's best, or less when the environment variable NABLA_ISA
 * (avx512, avx2 or baseline) asks for less, so the narrower paths can be tested and measured on
 * a wider machine. Every path rounds identically. Read once; racing first calls store the same
 * value. */
int nabla_isa_level(void) {
    static int cached = -1;
    int level = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (level >= 0) return level;
    level = 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) level = 2;
    else if (__builtin_cpu_supports("avx2")) level = 1;
#endif
    {
        const char *isa = getenv("NABLA_ISA");
        if (isa && strcmp(isa, "avx2") == 0 && level > 1) level = 1;
        if (isa && strcmp(isa, "baseline") == 0) level = 0;
    }
    __atomic_store_n(&cached, level, __ATOMIC_RELAXED);
    return level;
}

/* The product on the calling thread: m, n and k all positive. */
static void matmul_serial(long m, long k, long n, const double *restrict A, const double *restrict B,
                          double *restrict C) {
#ifdef NABLA_X86
    int level = nabla_isa_level();
    if (level == 2) {
        if (n == 1) matvec512(m, k, A, B, C);
        else matmul512(m, k, n, A, B, C);
        return;
    }
    if (level == 1) {
        if (n == 1) matvec_portable(m, k, A, B, C);
        else matmul256(m, k, n, A, B, C);
        return;
    }
#endif
    if (n == 1) matvec_portable(m, k, A, B, C);
    else matmul_portable(m, k, n, A, B, C);
}

/* Products of at least this many multiply-adds are split over the pool (a wake-up of the
 * workers costs a few microseconds; this is about 50 us of work on one core). */
#ifndef NABLA_PARALLEL_MATMUL
#define NABLA_PARALLEL_MATMUL (1L << 19)
#endif

/* Blocks of rows of C, each a product of its own: every element of C is computed as the serial
 * product computes it, whichever thread does it. */
struct matmul_operands {
    long k, n;
    const double *A, *B;
    double *C;
};

static void matmul_rows(void *context, long r0, long r1) {
    const struct matmul_operands *w = (const struct matmul_operands *)context;
    if (nabla_blas_matmul(r1 - r0, w->k, w->n, w->A + r0 * w->k, w->B, w->C + r0 * w->n)) return;
    matmul_serial(r1 - r0, w->k, w->n, w->A + r0 * w->k, w->B, w->C + r0 * w->n);
}

void nabla_matmul(long m, long k, long n, const double *restrict A, const double *restrict B,
                  double *restrict C) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (long i = 0; i < m * n; i++) C[i] = 0.0;
        return;
    }
    /* Products with few rows stay whole: split by columns, the threads would write the same
     * cache lines of C (a row vector times a tall matrix ran 3x slower on two threads). */
    if ((double)m * (double)k * (double)n >= (double)NABLA_PARALLEL_MATMUL && m >= 32 && nabla_threads() > 1) {
        /* Whole 16-row tiles per block. */
        struct matmul_operands work = {k, n, A, B, C};
        nabla_parallel_blocks(0, m, 16, matmul_rows, &work);
        return;
    }
    if (nabla_blas_matmul(m, k, n, A, B, C)) return;
    matmul_serial(m, k, n, A, B, C);
}

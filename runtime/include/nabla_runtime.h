/*
 * Nabla runtime: C routines that JIT-compiled kernels call instead of loops compiled by TinyCC.
 *
 * TinyCC does not optimise, so heavy inner loops (matrix products) live here, built with
 * optimisation by the package build, and are registered into every TinyCC state with
 * tcc_add_symbol. Standalone C written by `nabla compile` inlines its own loops instead and
 * needs none of this.
 */
#ifndef NABLA_RUNTIME_H
#define NABLA_RUNTIME_H

#ifdef __cplusplus
extern "C" {
#endif

/* C[m x n] = A[m x k] * B[k x n], all row-major and contiguous; C must not alias A or B. */
void nabla_matmul(long m, long k, long n, const double *A, const double *B, double *C);

#ifdef __cplusplus
}
#endif
#endif

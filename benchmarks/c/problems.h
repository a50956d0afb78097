/* Hand-written value and gradient code for the benchmark problems: the speed-of-light
 * reference Nabla's kernels are compared against. Plain C99, strict IEEE arithmetic (no
 * -ffast-math), row-major arrays, caller-owned memory. Each problem has a forward-only
 * function and a value-and-gradient function (P2 also a Hessian-vector product). */
#ifndef NABLA_BENCH_PROBLEMS_H
#define NABLA_BENCH_PROBLEMS_H

/* P1: f(x) = sqrt(x^2 + exp(x^2)) + sin(x^2 - 1). */
void p1_forward(const double *x, double *f);
void p1_value_grad(const double *x, double *f, double *dfdx);

/* P2: chained Rosenbrock sum_i 100 (x_i^2 - x_{i+1})^2 + (x_i - 1)^2, x of length n. */
void p2_forward(long n, const double *x, double *f);
void p2_value_grad(long n, const double *x, double *f, double *g);
/* Value and Hessian-vector product H(x) v. */
void p2_value_hvp(long n, const double *x, const double *v, double *f, double *hv);

/* P3: L = 1/2 ||y - Phi theta||^2, Phi [n, d], gradient wrt theta [d]. */
void p3_forward(long n, long d, const double *phi, const double *y, const double *theta, double *L);
void p3_value_grad(long n, long d, const double *phi, const double *y, const double *theta, double *L, double *g);

/* P4: two-layer perceptron, sigmoid hidden layer, softmax cross-entropy averaged over the batch.
 * X [b, ni], Y [b, nc], W1 [ni, nh], b1 [nh], W2 [nh, nc], b2 [nc]. `scratch` holds at least
 * p4_scratch_doubles(...) doubles. */
long p4_scratch_doubles(long b, long ni, long nh, long nc);
void p4_forward(long b, long ni, long nh, long nc, const double *X, const double *Y, const double *W1,
                const double *b1, const double *W2, const double *b2, double *loss, double *scratch);
void p4_value_grad(long b, long ni, long nh, long nc, const double *X, const double *Y, const double *W1,
                   const double *b1, const double *W2, const double *b2, double *loss, double *dW1, double *db1,
                   double *dW2, double *db2, double *scratch);

/* P5: Gaussian-process negative log marginal likelihood, squared-exponential kernel on 2-D
 * points X [n, 2], targets y [n]; hyperparameters log signal variance, log length-scale, log
 * noise variance. Cholesky factorisation; gradient 1/2 tr((C^-1 - a a^T) dC/dtheta), a = C^-1 y.
 * `scratch` holds at least p5_scratch_doubles(n) doubles. The same code is the hand-written C of
 * both P5 rows, the LU form (p5-gp.nabla) and the Cholesky form (p5-gp-cholesky.nabla, driver
 * name p5-chol). */
long p5_scratch_doubles(long n);
void p5_forward(long n, const double *X, const double *y, const double *log_signal, const double *log_length,
                const double *log_noise, double *nlml, double *scratch);
void p5_value_grad(long n, const double *X, const double *y, const double *log_signal, const double *log_length,
                   const double *log_noise, double *nlml, double *d_signal, double *d_length, double *d_noise,
                   double *scratch);

/* P8: a damped oscillator x'' + c x' + k x = 0, state s = [x, v], parameters p = [k, c],
 * integrated by classical RK4 for t steps of dt = 0.01 from s0; L = |s_t|^2. The value and
 * gradient function stores the t + 1 states in `scratch` (at least p8_scratch_doubles(t)
 * doubles) and runs the reverse pass over them, recomputing each step's stages. */
long p8_scratch_doubles(long t);
void p8_forward(long t, const double *s0, const double *p, double *L);
void p8_value_grad(long t, const double *s0, const double *p, double *L, double *dLds0, double *dLdp,
                   double *scratch);

#endif

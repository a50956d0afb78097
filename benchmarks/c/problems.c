/* Hand-written value and gradient code for the benchmark problems (see problems.h).
 * Written for speed the way a person would write it: one fused pass where the maths allows,
 * loops ordered for contiguous access, no temporaries beyond what the backward pass needs. */
#include "problems.h"

#include <math.h>
#include <string.h>

/* ---------- P1 ---------- */

void p1_forward(const double *x, double *f) {
    double s = x[0] * x[0];
    *f = sqrt(s + exp(s)) + sin(s - 1.0);
}

void p1_value_grad(const double *x, double *f, double *dfdx) {
    double xv = x[0];
    double s = xv * xv;
    double e = exp(s);
    double r = sqrt(s + e);
    double a = s - 1.0;
    *f = r + sin(a);
    /* d/dx sqrt(s + e^s) = x (1 + e^s) / r;  d/dx sin(s - 1) = 2 x cos(s - 1) */
    *dfdx = xv * (1.0 + e) / r + 2.0 * xv * cos(a);
}

/* ---------- P2 ---------- */

void p2_forward(long n, const double *x, double *f) {
    double total = 0.0;
    for (long i = 0; i + 1 < n; i++) {
        double a = x[i] * x[i] - x[i + 1];
        double b = x[i] - 1.0;
        total += 100.0 * a * a + b * b;
    }
    *f = total;
}

void p2_value_grad(long n, const double *x, double *f, double *g) {
    if (n < 2) {
        *f = 0.0;
        for (long i = 0; i < n; i++) g[i] = 0.0;
        return;
    }
    double total = 0.0;
    for (long i = 0; i + 1 < n; i++) {
        double a = x[i] * x[i] - x[i + 1];
        double b = x[i] - 1.0;
        total += 100.0 * a * a + b * b;
    }
    *f = total;
    /* g_i = 400 x_i a_i + 2 (x_i - 1) - 200 a_{i-1}, with a_i = x_i^2 - x_{i+1} */
    {
        double a = x[0] * x[0] - x[1];
        g[0] = 400.0 * x[0] * a + 2.0 * (x[0] - 1.0);
    }
    for (long i = 1; i + 1 < n; i++) {
        double a = x[i] * x[i] - x[i + 1];
        double ap = x[i - 1] * x[i - 1] - x[i];
        g[i] = 400.0 * x[i] * a + 2.0 * (x[i] - 1.0) - 200.0 * ap;
    }
    {
        double ap = x[n - 2] * x[n - 2] - x[n - 1];
        g[n - 1] = -200.0 * ap;
    }
}

void p2_value_hvp(long n, const double *x, const double *v, double *f, double *hv) {
    p2_forward(n, x, f);
    for (long i = 0; i < n; i++) hv[i] = 0.0;
    /* Term i's Hessian block over (x_i, x_{i+1}):
     * [[400 a + 800 x_i^2 + 2, -400 x_i], [-400 x_i, 200]] */
    for (long i = 0; i + 1 < n; i++) {
        double a = x[i] * x[i] - x[i + 1];
        double h11 = 400.0 * a + 800.0 * x[i] * x[i] + 2.0;
        double h12 = -400.0 * x[i];
        hv[i] += h11 * v[i] + h12 * v[i + 1];
        hv[i + 1] += h12 * v[i] + 200.0 * v[i + 1];
    }
}

/* ---------- P3 ---------- */

static double dot(const double *a, const double *b, long n);

void p3_forward(long n, long d, const double *phi, const double *y, const double *theta, double *L) {
    double total = 0.0;
    for (long r = 0; r < n; r++) {
        const double *row = phi + r * d;
        double e = y[r] - dot(row, theta, d);
        total += e * e;
    }
    *L = 0.5 * total;
}

void p3_value_grad(long n, long d, const double *phi, const double *y, const double *theta, double *L, double *g) {
    /* One pass over Phi: residual of a row, then g -= e_r Phi_r. */
    for (long k = 0; k < d; k++) g[k] = 0.0;
    double total = 0.0;
    for (long r = 0; r < n; r++) {
        const double *row = phi + r * d;
        double e = y[r] - dot(row, theta, d);
        total += e * e;
        for (long k = 0; k < d; k++) g[k] -= e * row[k];
    }
    *L = 0.5 * total;
}

/* ---------- P4 ---------- */

long p4_scratch_doubles(long b, long ni, long nh, long nc) {
    (void)ni;
    return 2 * b * nh + 2 * b * nc;
}

static double sigmoid(double z) {
    if (z >= 0.0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* H = sigmoid(X W1 + b1) [b, nh]; logits = H W2 + b2 [b, nc]; returns the loss and leaves the
 * row-wise log-softmax in `lsm` (may alias logits). */
static double p4_forward_into(long b, long ni, long nh, long nc, const double *X, const double *Y, const double *W1,
                              const double *b1, const double *W2, const double *b2, double *H, double *lsm) {
    /* X W1 four rows at a time, so each row of W1 is loaded once per four rows of X. */
    for (long r = 0; r < b * nh; r++) H[r] = b1[r % nh];
    long r0 = 0;
    for (; r0 + 4 <= b; r0 += 4) {
        double *h0 = H + r0 * nh, *h1 = h0 + nh, *h2 = h1 + nh, *h3 = h2 + nh;
        const double *x0 = X + r0 * ni, *x1 = x0 + ni, *x2 = x1 + ni, *x3 = x2 + ni;
        for (long k = 0; k < ni; k++) {
            double a0 = x0[k], a1 = x1[k], a2 = x2[k], a3 = x3[k];
            const double *w = W1 + k * nh;
            for (long j = 0; j < nh; j++) {
                double wj = w[j];
                h0[j] += a0 * wj;
                h1[j] += a1 * wj;
                h2[j] += a2 * wj;
                h3[j] += a3 * wj;
            }
        }
    }
    for (; r0 < b; r0++) {
        double *h = H + r0 * nh;
        const double *xr = X + r0 * ni;
        for (long k = 0; k < ni; k++) {
            double xk = xr[k];
            const double *w = W1 + k * nh;
            for (long j = 0; j < nh; j++) h[j] += xk * w[j];
        }
    }
    for (long r = 0; r < b * nh; r++) H[r] = sigmoid(H[r]);
    double loss = 0.0;
    for (long r = 0; r < b; r++) {
        double *z = lsm + r * nc;
        for (long c = 0; c < nc; c++) z[c] = b2[c];
        const double *h = H + r * nh;
        for (long k = 0; k < nh; k++) {
            double hk = h[k];
            const double *w = W2 + k * nc;
            for (long c = 0; c < nc; c++) z[c] += hk * w[c];
        }
        double m = z[0];
        for (long c = 1; c < nc; c++) m = z[c] > m ? z[c] : m;
        double s = 0.0;
        for (long c = 0; c < nc; c++) s += exp(z[c] - m);
        double lse = m + log(s);
        const double *yr = Y + r * nc;
        for (long c = 0; c < nc; c++) {
            z[c] -= lse;
            loss -= yr[c] * z[c];
        }
    }
    return loss / (double)b;
}

void p4_forward(long b, long ni, long nh, long nc, const double *X, const double *Y, const double *W1,
                const double *b1, const double *W2, const double *b2, double *loss, double *scratch) {
    *loss = p4_forward_into(b, ni, nh, nc, X, Y, W1, b1, W2, b2, scratch, scratch + b * nh);
}

void p4_value_grad(long b, long ni, long nh, long nc, const double *X, const double *Y, const double *W1,
                   const double *b1, const double *W2, const double *b2, double *loss, double *dW1, double *db1,
                   double *dW2, double *db2, double *scratch) {
    double *H = scratch;
    double *lsm = H + b * nh;
    double *dZ2 = lsm + b * nc;
    double *dZ1 = dZ2 + b * nc;
    *loss = p4_forward_into(b, ni, nh, nc, X, Y, W1, b1, W2, b2, H, lsm);
    double inv_b = 1.0 / (double)b;
    /* d loss / d logits = (softmax * sum(Y_r) - Y) / b */
    for (long r = 0; r < b; r++) {
        const double *yr = Y + r * nc;
        double ysum = 0.0;
        for (long c = 0; c < nc; c++) ysum += yr[c];
        for (long c = 0; c < nc; c++) dZ2[r * nc + c] = (exp(lsm[r * nc + c]) * ysum - yr[c]) * inv_b;
    }
    /* dW2 = H^T dZ2, db2 = column sums of dZ2 */
    memset(dW2, 0, sizeof(double) * (size_t)(nh * nc));
    memset(db2, 0, sizeof(double) * (size_t)nc);
    for (long r = 0; r < b; r++) {
        const double *h = H + r * nh;
        const double *dz = dZ2 + r * nc;
        for (long k = 0; k < nh; k++) {
            double hk = h[k];
            double *w = dW2 + k * nc;
            for (long c = 0; c < nc; c++) w[c] += hk * dz[c];
        }
        for (long c = 0; c < nc; c++) db2[c] += dz[c];
    }
    /* dZ1 = (dZ2 W2^T) * H (1 - H) */
    for (long r = 0; r < b; r++) {
        const double *dz = dZ2 + r * nc;
        const double *h = H + r * nh;
        double *d1 = dZ1 + r * nh;
        for (long k = 0; k < nh; k++) {
            const double *w = W2 + k * nc;
            double s = 0.0;
            for (long c = 0; c < nc; c++) s += dz[c] * w[c];
            d1[k] = s * h[k] * (1.0 - h[k]);
        }
    }
    /* dW1 = X^T dZ1, db1 = column sums of dZ1 */
    memset(dW1, 0, sizeof(double) * (size_t)(ni * nh));
    memset(db1, 0, sizeof(double) * (size_t)nh);
    long r1 = 0;
    for (; r1 + 4 <= b; r1 += 4) {
        const double *x0 = X + r1 * ni, *x1 = x0 + ni, *x2 = x1 + ni, *x3 = x2 + ni;
        const double *d0 = dZ1 + r1 * nh, *d1 = d0 + nh, *d2 = d1 + nh, *d3 = d2 + nh;
        for (long k = 0; k < ni; k++) {
            double a0 = x0[k], a1 = x1[k], a2 = x2[k], a3 = x3[k];
            double *w = dW1 + k * nh;
            for (long j = 0; j < nh; j++) w[j] += a0 * d0[j] + a1 * d1[j] + a2 * d2[j] + a3 * d3[j];
        }
    }
    for (; r1 < b; r1++) {
        const double *xr = X + r1 * ni;
        const double *d1 = dZ1 + r1 * nh;
        for (long k = 0; k < ni; k++) {
            double xk = xr[k];
            double *w = dW1 + k * nh;
            for (long j = 0; j < nh; j++) w[j] += xk * d1[j];
        }
    }
    for (long r = 0; r < b; r++)
        for (long j = 0; j < nh; j++) db1[j] += dZ1[r * nh + j];
}

/* ---------- P5 ---------- */

long p5_scratch_doubles(long n) { return 3 * n * n + 2 * n; }

/* Dot product with four independent partial sums (vectorisable without -ffast-math). */
static double dot(const double *a, const double *b, long n) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    long k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += a[k] * b[k];
        s1 += a[k + 1] * b[k + 1];
        s2 += a[k + 2] * b[k + 2];
        s3 += a[k + 3] * b[k + 3];
    }
    for (; k < n; k++) s0 += a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
}

/* K (signal part, no noise) into K; C = K + noise I factorised into lower-triangular L
 * (row-major, upper part untouched); alpha = C^-1 y; returns sum log L_ii. */
static double p5_factor(long n, const double *X, const double *y, double signal, double inv_l2, double noise,
                        double *K, double *L, double *alpha, double *z) {
    for (long i = 0; i < n; i++) {
        double xi = X[2 * i], yi = X[2 * i + 1];
        for (long j = 0; j <= i; j++) {
            double dx = xi - X[2 * j], dy = yi - X[2 * j + 1];
            double k = signal * exp(-0.5 * (dx * dx + dy * dy) * inv_l2);
            K[i * n + j] = k;
            K[j * n + i] = k;
        }
    }
    double logdet_half = 0.0;
    for (long i = 0; i < n; i++) {
        double *li = L + i * n;
        for (long j = 0; j < i; j++) {
            const double *lj = L + j * n;
            li[j] = (K[i * n + j] - dot(li, lj, j)) / lj[j];
        }
        double d = K[i * n + i] + noise - dot(li, li, i);
        li[i] = sqrt(d);
        logdet_half += log(li[i]);
    }
    /* L z = y, then L^T alpha = z */
    for (long i = 0; i < n; i++) z[i] = (y[i] - dot(L + i * n, z, i)) / L[i * n + i];
    for (long i = n - 1; i >= 0; i--) {
        double s = z[i];
        for (long k = i + 1; k < n; k++) s -= L[k * n + i] * alpha[k];
        alpha[i] = s / L[i * n + i];
    }
    return logdet_half;
}

static const double LOG_2PI = 1.8378770664093453;

void p5_forward(long n, const double *X, const double *y, const double *log_signal, const double *log_length,
                const double *log_noise, double *nlml, double *scratch) {
    double *K = scratch, *L = K + n * n, *alpha = L + 2 * n * n, *z = alpha + n;
    double signal = exp(*log_signal), inv_l2 = exp(-2.0 * *log_length), noise = exp(*log_noise);
    double logdet_half = p5_factor(n, X, y, signal, inv_l2, noise, K, L, alpha, z);
    *nlml = 0.5 * dot(y, alpha, n) + logdet_half + 0.5 * (double)n * LOG_2PI;
}

void p5_value_grad(long n, const double *X, const double *y, const double *log_signal, const double *log_length,
                   const double *log_noise, double *nlml, double *d_signal, double *d_length, double *d_noise,
                   double *scratch) {
    double *K = scratch, *L = K + n * n, *W = L + n * n, *alpha = W + n * n, *z = alpha + n;
    double signal = exp(*log_signal), inv_l2 = exp(-2.0 * *log_length), noise = exp(*log_noise);
    double logdet_half = p5_factor(n, X, y, signal, inv_l2, noise, K, L, alpha, z);
    *nlml = 0.5 * dot(y, alpha, n) + logdet_half + 0.5 * (double)n * LOG_2PI;

    /* W = L^-1, row by row: W_i = (e_i - sum_{k<i} L_ik W_k) / L_ii (only W_i[0..i] nonzero). */
    for (long i = 0; i < n; i++) {
        double *wi = W + i * n;
        for (long j = 0; j <= i; j++) wi[j] = 0.0;
        wi[i] = 1.0;
        const double *li = L + i * n;
        for (long k = 0; k < i; k++) {
            double c = li[k];
            const double *wk = W + k * n;
            for (long j = 0; j <= k; j++) wi[j] -= c * wk[j];
        }
        double inv = 1.0 / li[i];
        for (long j = 0; j <= i; j++) wi[j] *= inv;
    }
    /* C^-1 = W^T W, built over L's storage (lower triangle and diagonal are enough: symmetric). */
    double *Ci = L;
    for (long i = 0; i < n * n; i++) Ci[i] = 0.0;
    for (long k = 0; k < n; k++) {
        const double *wk = W + k * n;
        for (long i = 0; i <= k; i++) {
            double c = wk[i];
            double *ci = Ci + i * n;
            for (long j = 0; j <= i; j++) ci[j] += c * wk[j];
        }
    }
    /* dnlml/dtheta = 1/2 sum_ij (C^-1 - alpha alpha^T)_ij dC_ij, symmetric: off-diagonal twice. */
    double gs = 0.0, gl = 0.0, gn = 0.0;
    for (long i = 0; i < n; i++) {
        double xi = X[2 * i], yi = X[2 * i + 1];
        const double *ci = Ci + i * n;
        for (long j = 0; j < i; j++) {
            double m = ci[j] - alpha[i] * alpha[j];
            double dx = xi - X[2 * j], dy = yi - X[2 * j + 1];
            double k = K[i * n + j];
            gs += 2.0 * m * k;
            gl += 2.0 * m * k * (dx * dx + dy * dy) * inv_l2;
        }
        double m = ci[i] - alpha[i] * alpha[i];
        gs += m * K[i * n + i];
        gn += m;
    }
    *d_signal = 0.5 * gs;
    *d_length = 0.5 * gl;
    *d_noise = 0.5 * noise * gn;
}

/* ---------- P8 ---------- */

long p8_scratch_doubles(long t) { return 2 * (t + 1); }

#define P8_DT 0.01

/* One RK4 step of s' = [v, -k x - c v] from (x, v), in place. */
static void p8_step(double k, double c, double *x, double *v) {
    const double h = P8_DT, h2 = P8_DT / 2, h6 = P8_DT / 6;
    double x0 = *x, v0 = *v;
    double k1x = v0, k1v = -k * x0 - c * v0;
    double x2 = x0 + h2 * k1x, v2 = v0 + h2 * k1v;
    double k2x = v2, k2v = -k * x2 - c * v2;
    double x3 = x0 + h2 * k2x, v3 = v0 + h2 * k2v;
    double k3x = v3, k3v = -k * x3 - c * v3;
    double x4 = x0 + h * k3x, v4 = v0 + h * k3v;
    double k4x = v4, k4v = -k * x4 - c * v4;
    *x = x0 + h6 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x);
    *v = v0 + h6 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v);
}

void p8_forward(long t, const double *s0, const double *p, double *L) {
    double k = p[0], c = p[1], x = s0[0], v = s0[1];
    for (long i = 0; i < t; i++) p8_step(k, c, &x, &v);
    *L = x * x + v * v;
}

void p8_value_grad(long t, const double *s0, const double *p, double *L, double *dLds0, double *dLdp,
                   double *scratch) {
    const double h = P8_DT, h2 = P8_DT / 2, h6 = P8_DT / 6, h3 = P8_DT / 3;
    double k = p[0], c = p[1], x = s0[0], v = s0[1];
    double *S = scratch;
    S[0] = x;
    S[1] = v;
    for (long i = 0; i < t; i++) {
        p8_step(k, c, &x, &v);
        S[2 * i + 2] = x;
        S[2 * i + 3] = v;
    }
    *L = x * x + v * v;
    /* Reverse pass: (ax, av) = dL/ds_i, from dL/ds_t = 2 s_t down to dL/ds_0. A stage
     * k = f(z) = [z_v, -k z_x - c z_v] sends its adjoint (bx, bv) to z as [-k bv, bx - c bv]
     * and to the parameters as dk -= z_x bv, dc -= z_v bv. */
    double ax = 2.0 * x, av = 2.0 * v, dk = 0.0, dc = 0.0;
    for (long i = t - 1; i >= 0; i--) {
        double x0 = S[2 * i], v0 = S[2 * i + 1];
        /* the stages' inputs z1 = s, z2, z3, z4 again */
        double k1x = v0, k1v = -k * x0 - c * v0;
        double x2 = x0 + h2 * k1x, v2 = v0 + h2 * k1v;
        double k2x = v2, k2v = -k * x2 - c * v2;
        double x3 = x0 + h2 * k2x, v3 = v0 + h2 * k2v;
        double k3x = v3, k3v = -k * x3 - c * v3;
        double x4 = x0 + h * k3x, v4 = v0 + h * k3v;
        /* s' = s + h/6 (k1 + 2 k2 + 2 k3 + k4) */
        double b4x = h6 * ax, b4v = h6 * av;
        double b3x = h3 * ax, b3v = h3 * av;
        double b2x = b3x, b2v = b3v;
        double b1x = b4x, b1v = b4v;
        double sx = ax, sv = av;
        /* k4 = f(z4), z4 = s + h k3 */
        double zx = -k * b4v, zv = b4x - c * b4v;
        dk -= x4 * b4v;
        dc -= v4 * b4v;
        sx += zx;
        sv += zv;
        b3x += h * zx;
        b3v += h * zv;
        /* k3 = f(z3), z3 = s + h/2 k2 */
        zx = -k * b3v;
        zv = b3x - c * b3v;
        dk -= x3 * b3v;
        dc -= v3 * b3v;
        sx += zx;
        sv += zv;
        b2x += h2 * zx;
        b2v += h2 * zv;
        /* k2 = f(z2), z2 = s + h/2 k1 */
        zx = -k * b2v;
        zv = b2x - c * b2v;
        dk -= x2 * b2v;
        dc -= v2 * b2v;
        sx += zx;
        sv += zv;
        b1x += h2 * zx;
        b1v += h2 * zv;
        /* k1 = f(s) */
        dk -= x0 * b1v;
        dc -= v0 * b1v;
        ax = sx - k * b1v;
        av = sv + b1x - c * b1v;
    }
    dLds0[0] = ax;
    dLds0[1] = av;
    dLdp[0] = dk;
    dLdp[1] = dc;
}

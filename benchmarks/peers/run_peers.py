#!/usr/bin/env python3
"""Runs the benchmark problems P1-P5 (P5 also in its Cholesky form, P5-chol) and P8 through the
peers: JAX (jit), CasADi (VM and gcc JIT) and PyTensor (C backend), and writes their figures as JSON.

    python3 benchmarks/peers/run_peers.py [--quick] [--out FILE] [--peers jax,casadi,casadi-jit,pytensor] [--deep]
    python3 benchmarks/peers/run_peers.py [--quick] --deep-only --out FILE
    python3 benchmarks/peers/run_peers.py [--quick] --problems P8 --out FILE

It creates its own virtual environment in benchmarks/.venv when missing, installs
requirements.txt there (never into the system Python; again only when the file changes) and
re-executes itself inside it. Every (peer, case) is measured in a child process with a time
limit, so a peer that fails to install, to import, to build a problem or to finish in time is
reported as "n/a" with the reason and the run goes on.

Figures, f64 throughout (jax_enable_x64): the first call (JAX: trace + XLA compile + the call)
or the build/compile time (CasADi: symbolic construction + Function, with the JIT its gcc
compile; PyTensor: pytensor.function, with whether its C-module cache was cold or warm), then
the median time per call of value and derivatives together, from Python, after a warm-up, on
inputs converted to the peer's own types beforehand. Peers run on one thread (BLAS, OpenMP and
XLA's pools limited to one), as Nabla and the hand-written C do; --threads default leaves them as
installed. Each result carries a correctness check
against NumPy: the value, and the derivative along a random direction by central differences
(the Hessian-vector product against its closed form). P8 (RK4 of a damped oscillator for T steps)
is written as each peer's own loop: JAX jax.lax.scan, CasADi an SX step Function folded with
Function.fold(T), PyTensor pytensor.scan; its check is benchmarks/p8_reference.py (plain Python:
the value, and the whole gradient by forward-mode tangents, both relative, as the figures are
tiny at T = 10^5, the state decaying as e^(-c t/2); the tangents themselves against central differences).

--deep adds the deep-graph anchors of P7 (benchmarks/p7_generate.py), written under the key
"deep" of the same JSON; --deep-only runs them alone and replaces only that key of an existing
FILE. The recurrence y_k = 0.999 sin(y_(k-1)) + 0.001 a, unrolled N steps, with the gradient wrt
(y0, a): CasADi SX builds the expression, ca.gradient and a ca.Function (its VM, no native code)
and the construction is timed, then the first call and the median call; JAX traces the
unrolled Python loop under jax.jit(jax.value_and_grad) and the first call (trace + XLA compile
+ the call) is timed, then the median call. Wall and CPU time (time.process_time, all the
process's threads) of the construction or first call are both recorded. Each (peer, N) in a child with a time limit, checked
against plain Python.
"""
import argparse
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
VENV = os.path.join(BENCH, ".venv")
REQUIREMENTS = os.path.join(HERE, "requirements.txt")
sys.path.insert(0, BENCH)
from cases import cases  # noqa: E402
import p7_generate  # noqa: E402
import p8_reference  # noqa: E402

PEERS = {
    "jax": "JAX jit",
    "casadi": "CasADi VM",
    "casadi-jit": "CasADi JIT (gcc -O3)",
    "pytensor": "PyTensor (C)",
}
# Nabla and the hand-written C run on one thread; so do the peers unless --threads default.
# (On a busy 2-core machine OpenBLAS's thread pool, which JAX's and PyTensor's linear algebra
# reach through SciPy, also turned 0.5 ms calls into 16 ms ones.)
SINGLE_THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}
# P7's deep recurrence, steps per peer. The issue quotes, on this machine, CasADi SX 0.84 s at
# 10^4 and 11.6 s at 10^5, JAX 5.1 s at 10^3 and 21 s at 3x10^3.
DEEP_PEERS = {"casadi": "CasADi SX (VM)", "jax": "JAX jit"}
DEEP_STEPS = {"quick": {"casadi": [1000, 10000], "jax": [300, 1000]},
              "full": {"casadi": [1000, 10000, 100000], "jax": [1000, 3000]}}
DEEP_INPUTS = {"y0": 0.5, "a": -0.25}
# CasADi's gcc JIT takes seconds to minutes on big expression graphs: only these cases.
# P8's folded step compiles in under a second at every T (its C is a loop, not the unrolled steps).
# CasADi's Cholesky is SX only (see run_casadi): its node count grows as n^3, so not at n = 400.
CASADI_SKIP = {
    "P5-chol n=400": "CasADi has chol for SX only (no MX chol in 3.8): the unrolled SX Cholesky with its gradient "
                     "measured 1.19 million nodes at n = 100 (construction 1.4 s, 179 MiB) and 8.7 million at n = 200 "
                     "(12.8 s, 0.9 GiB); growing as n^3, about 65 million nodes, 100 s and 7 GB at n = 400: not run",
}
CASADI_JIT_CASES = {"quick": {"P1", "P2 N=100", "P8 RK4 T=1000"},
                    "full": {"P1", "P2 N=100", "P2 N=1000", "P8 RK4 T=100", "P8 RK4 T=1000", "P8 RK4 T=10^5"}}


# ---------------------------------------------------------------- virtual environment


def venv_python():
    return os.path.join(VENV, "bin", "python")


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def bootstrap(argv):
    """Makes the venv, installs the requirements and re-executes inside it. On failure returns a
    reason (the caller reports every peer n/a with it)."""
    py = venv_python()
    if not os.path.exists(py):
        print(f"[peers] creating {VENV}", file=sys.stderr)
        r = subprocess.run([sys.executable, "-m", "venv", VENV], capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(py):
            return f"cannot create virtual environment: {(r.stderr or r.stdout).strip()[-300:]}"
    with open(REQUIREMENTS, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    marker = os.path.join(VENV, ".nabla-requirements.sha256")
    status_file = os.path.join(VENV, ".nabla-install.json")
    installed = os.path.exists(marker) and open(marker).read().strip() == digest
    if not installed:
        failures = {}
        subprocess.run([py, "-m", "pip", "install", "-q", "--upgrade", "pip"], capture_output=True, text=True)
        for line in open(REQUIREMENTS):
            req = line.split("#", 1)[0].strip()
            if not req:
                continue
            print(f"[peers] pip install {req} (into {VENV})", file=sys.stderr)
            try:
                r = subprocess.run([py, "-m", "pip", "install", "-q", req], capture_output=True, text=True, timeout=1200)
                if r.returncode != 0:
                    failures[req] = "pip install failed: " + (r.stderr or r.stdout).strip().splitlines()[-1][:300]
            except subprocess.TimeoutExpired:
                failures[req] = "pip install timed out after 1200 s"
        with open(status_file, "w") as f:
            json.dump(failures, f)
        if not failures:
            with open(marker, "w") as f:
                f.write(digest)
    os.execv(py, [py, os.path.abspath(__file__)] + argv)


# ---------------------------------------------------------------- problems in NumPy


def make_inputs(problem, dims, seed=1):
    """Named inputs in the graph file's declaration order, uniform in [-1, 1] (fixed seed)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    u = lambda *shape: rng.uniform(-1.0, 1.0, size=shape)
    if problem == "p1":
        return {"x": np.float64(0.5)}
    if problem == "p2":
        return {"x": u(dims["N"])}
    if problem == "p2-hvp":
        return {"x": u(dims["N"]), "v": u(dims["N"])}
    if problem == "p3":
        n, d = dims["N"], dims["D"]
        return {"Phi": u(n, d), "y": u(n), "theta": u(d)}
    if problem == "p4":
        b, ni, nh, nc = dims["batch"], dims["n_in"], dims["n_hidden"], dims["n_classes"]
        Y = np.zeros((b, nc))
        Y[np.arange(b), rng.integers(0, nc, size=b)] = 1.0
        return {"X": u(b, ni), "Y": Y, "W1": 0.1 * u(ni, nh), "b1": 0.1 * u(nh), "W2": 0.3 * u(nh, nc), "b2": 0.1 * u(nc)}
    if problem in ("p5", "p5-chol"):
        n = dims["n"]
        return {"X": 2.0 * u(n, 2), "y": u(n), "log_signal": np.float64(0.3), "log_length": np.float64(-0.4),
                "log_noise": np.float64(-2.0)}
    if problem == "p8":
        # a damped oscillator: stiffness k in [1, 5], damping c in [0.1, 0.5]
        return {"s0": u(2), "p": np.array([rng.uniform(1.0, 5.0), rng.uniform(0.1, 0.5)])}
    raise ValueError(problem)


# What each problem differentiates with respect to.
WRT = {"p1": ["x"], "p2": ["x"], "p2-hvp": ["x"], "p3": ["theta"], "p4": ["W1", "b1", "W2", "b2"],
       "p5": ["log_signal", "log_length", "log_noise"], "p5-chol": ["log_signal", "log_length", "log_noise"],
       "p8": ["s0", "p"]}


def reference_value(problem, inp, dims=None):
    import numpy as np

    if problem == "p1":
        s = inp["x"] ** 2
        return float(np.sqrt(s + np.exp(s)) + np.sin(s - 1))
    if problem in ("p2", "p2-hvp"):
        x = inp["x"]
        a = x[:-1] ** 2 - x[1:]
        return float(np.sum(100 * a * a + (x[:-1] - 1) ** 2))
    if problem == "p3":
        e = inp["y"] - inp["Phi"] @ inp["theta"]
        return float(0.5 * e @ e)
    if problem == "p4":
        H = 1 / (1 + np.exp(-(inp["X"] @ inp["W1"] + inp["b1"])))
        z = H @ inp["W2"] + inp["b2"]
        m = z.max(axis=1, keepdims=True)
        lsm = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
        return float(-np.sum(inp["Y"] * lsm) / z.shape[0])
    if problem in ("p5", "p5-chol"):
        X, y = inp["X"], inp["y"]
        n = len(y)
        sq = (X ** 2).sum(1)
        d2 = sq[:, None] + sq[None, :] - 2 * X @ X.T
        C = np.exp(inp["log_signal"]) * np.exp(-0.5 * d2 / np.exp(2 * inp["log_length"])) + np.exp(inp["log_noise"]) * np.eye(n)
        L = np.linalg.cholesky(C)
        return float(0.5 * y @ np.linalg.solve(C, y) + np.log(np.diag(L)).sum() + 0.5 * n * math.log(2 * math.pi))
    if problem == "p8":
        return p8_reference.value([float(v) for v in inp["s0"]], [float(v) for v in inp["p"]], dims["T"])
    raise ValueError(problem)


def reference_hvp(x, v):
    import numpy as np

    hv = np.zeros_like(x)
    a = x[:-1] ** 2 - x[1:]
    h11 = 400 * a + 800 * x[:-1] ** 2 + 2
    h12 = -400 * x[:-1]
    hv[:-1] += h11 * v[:-1] + h12 * v[1:]
    hv[1:] += h12 * v[:-1] + 200 * v[1:]
    return hv


def check(problem, inp, value, derivs, dims=None):
    """Compares a peer's value and derivatives (NumPy arrays, in WRT order; for p2-hvp the
    product) with NumPy (P8: with benchmarks/p8_reference.py, at the case's dims). Returns (ok,
    detail)."""
    import numpy as np

    if problem == "p8":
        return p8_reference.check([float(v) for v in inp["s0"]], [float(v) for v in inp["p"]], dims["T"], float(value),
                                  np.asarray(derivs[0], dtype=float).ravel(), np.asarray(derivs[1], dtype=float).ravel())
    want = reference_value(problem, inp)
    verr = abs(float(value) - want) / max(1.0, abs(want))
    if problem == "p2-hvp":
        ref = reference_hvp(inp["x"], inp["v"])
        derr = float(np.max(np.abs(np.asarray(derivs[0]).ravel() - ref)) / max(1.0, np.max(np.abs(ref))))
    else:
        rng = np.random.default_rng(7)
        dirs = {k: rng.uniform(-1, 1, size=np.shape(inp[k])) for k in WRT[problem]}
        analytic = sum(float(np.sum(np.asarray(g).reshape(np.shape(inp[k])) * dirs[k])) for k, g in zip(WRT[problem], derivs))
        h = 1e-6
        plus = dict(inp)
        minus = dict(inp)
        for k in WRT[problem]:
            plus[k] = inp[k] + h * dirs[k]
            minus[k] = inp[k] - h * dirs[k]
        fd = (reference_value(problem, plus) - reference_value(problem, minus)) / (2 * h)
        derr = abs(analytic - fd) / max(1.0, abs(fd))
    ok = verr < 1e-8 and derr < 1e-5
    return ok, f"value rel err {verr:.1e}, derivative rel err {derr:.1e}"


# ---------------------------------------------------------------- timing


def measure(fn, budget):
    """Median seconds per call: warm-up, then batches of about 2 ms until the budget is spent
    (at least 5 batches, at most 101)."""
    start = time.perf_counter()
    n = 0
    while n < 3 or time.perf_counter() - start < min(0.05, 0.1 * budget):
        fn()
        n += 1
    per = (time.perf_counter() - start) / n
    inner = max(1, int(2e-3 / max(per, 1e-9)))
    samples = []
    t_start = time.perf_counter()
    while len(samples) < 5 or (time.perf_counter() - t_start < budget and len(samples) < 101):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
        if len(samples) >= 3 and time.perf_counter() - t_start > 4 * budget:
            break
    samples.sort()
    m = len(samples)
    return samples[m // 2] if m % 2 else 0.5 * (samples[m // 2 - 1] + samples[m // 2])


# ---------------------------------------------------------------- JAX


def run_jax(problem, dims, inp, budget):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def p1(x):
        s = x * x
        return jnp.sqrt(s + jnp.exp(s)) + jnp.sin(s - 1)

    def p2(x):
        a = x[:-1] ** 2 - x[1:]
        return jnp.sum(100 * a * a + (x[:-1] - 1) ** 2)

    def p3(theta, Phi, y):
        e = y - Phi @ theta
        return 0.5 * jnp.sum(e * e)

    def p4(W1, b1, W2, b2, X, Y):
        H = jax.nn.sigmoid(X @ W1 + b1)
        logits = H @ W2 + b2
        return -jnp.sum(Y * jax.nn.log_softmax(logits, axis=1)) / X.shape[0]

    def p5(ls, ll, ln, X, y):
        n = y.shape[0]
        sq = jnp.sum(X ** 2, axis=1)
        d2 = sq[:, None] + sq[None, :] - 2 * X @ X.T
        C = jnp.exp(ls) * jnp.exp(-0.5 * d2 / jnp.exp(2 * ll)) + jnp.exp(ln) * jnp.eye(n)
        # solve + slogdet (LU), as the graph file does; JAX's Cholesky gradient on CPU measured
        # several times slower here.
        return 0.5 * y @ jnp.linalg.solve(C, y) + 0.5 * jnp.linalg.slogdet(C)[1] + 0.5 * n * jnp.log(2 * jnp.pi)

    def p5_chol(ls, ll, ln, X, y):
        # The way GP libraries write it (p5-gp-cholesky.nabla): one Cholesky factor, alpha by
        # cho_solve (two triangular solves), log|C| = 2 sum log diag L.
        from jax.scipy.linalg import cho_solve

        n = y.shape[0]
        sq = jnp.sum(X ** 2, axis=1)
        d2 = sq[:, None] + sq[None, :] - 2 * X @ X.T
        C = jnp.exp(ls) * jnp.exp(-0.5 * d2 / jnp.exp(2 * ll)) + jnp.exp(ln) * jnp.eye(n)
        L = jnp.linalg.cholesky(C)
        alpha = cho_solve((L, True), y)
        return 0.5 * y @ alpha + jnp.sum(jnp.log(jnp.diag(L))) + 0.5 * n * jnp.log(2 * jnp.pi)

    def p8(s0, p):
        dt = p8_reference.DT

        def rhs(s):
            return jnp.stack([s[1], -p[0] * s[0] - p[1] * s[1]])

        def step(s, _):
            k1 = rhs(s)
            k2 = rhs(s + dt / 2 * k1)
            k3 = rhs(s + dt / 2 * k2)
            k4 = rhs(s + dt * k3)
            return s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), None

        # scan's unroll left at 1: unroll=10 measured 4x slower per call at T = 1000 (and 7.6 s to compile)
        sT, _ = jax.lax.scan(step, s0, None, length=dims["T"])
        return jnp.sum(sT ** 2)

    a = {k: jnp.asarray(v) for k, v in inp.items()}
    if problem == "p1":
        vg, fwd, args = jax.value_and_grad(p1), p1, (a["x"],)
    elif problem == "p2":
        vg, fwd, args = jax.value_and_grad(p2), p2, (a["x"],)
    elif problem == "p2-hvp":
        def vg(x, v):
            return p2(x), jax.jvp(jax.grad(p2), (x,), (v,))[1]
        fwd = lambda x, v: p2(x)
        args = (a["x"], a["v"])
    elif problem == "p3":
        vg, fwd, args = jax.value_and_grad(p3), p3, (a["theta"], a["Phi"], a["y"])
    elif problem == "p4":
        vg = jax.value_and_grad(p4, argnums=(0, 1, 2, 3))
        fwd, args = p4, tuple(a[k] for k in ["W1", "b1", "W2", "b2", "X", "Y"])
    elif problem == "p5":
        vg = jax.value_and_grad(p5, argnums=(0, 1, 2))
        fwd, args = p5, tuple(a[k] for k in ["log_signal", "log_length", "log_noise", "X", "y"])
    elif problem == "p5-chol":
        vg = jax.value_and_grad(p5_chol, argnums=(0, 1, 2))
        fwd, args = p5_chol, tuple(a[k] for k in ["log_signal", "log_length", "log_noise", "X", "y"])
    elif problem == "p8":
        vg = jax.value_and_grad(p8, argnums=(0, 1))
        fwd, args = p8, (a["s0"], a["p"])
    vg_jit, fwd_jit = jax.jit(vg), jax.jit(fwd)
    t0 = time.perf_counter()
    out = jax.block_until_ready(vg_jit(*args))
    first = time.perf_counter() - t0
    call = measure(lambda: jax.block_until_ready(vg_jit(*args)), budget)
    jax.block_until_ready(fwd_jit(*args))
    forward = measure(lambda: jax.block_until_ready(fwd_jit(*args)), budget)
    value, derivs = out
    derivs = list(derivs) if isinstance(derivs, tuple) else [derivs]
    ok, detail = check(problem, inp, value, [jax.device_get(d) for d in derivs], dims)
    return {"first_call_s": first, "call_us": call * 1e6, "forward_us": forward * 1e6, "check_ok": ok,
            "check": detail, "version": jax.__version__}


# ---------------------------------------------------------------- CasADi


def run_casadi(problem, dims, inp, budget, jit=False, jit_compiler="gcc"):
    import casadi as ca
    import numpy as np

    t0 = time.perf_counter()
    if problem in ("p1", "p2", "p2-hvp"):
        # Scalar-heavy: SX expression graphs, as CasADi recommends.
        if problem == "p1":
            x = ca.SX.sym("x")
            s = x * x
            f = ca.sqrt(s + ca.exp(s)) + ca.sin(s - 1)
            ins, vals = [x], [inp["x"]]
            outs = [f, ca.gradient(f, x)]
        else:
            n = dims["N"]
            x = ca.SX.sym("x", n)
            head, tail = x[0:n - 1], x[1:n]
            a = head ** 2 - tail
            f = ca.sum1(100 * a ** 2 + (head - 1) ** 2)
            g = ca.gradient(f, x)
            if problem == "p2":
                ins, vals, outs = [x], [inp["x"]], [f, g]
            else:
                v = ca.SX.sym("v", n)
                ins, vals, outs = [x, v], [inp["x"], inp["v"]], [f, ca.jtimes(g, x, v)]
        fwd_outs = [f]
    elif problem == "p3":
        n, d = dims["N"], dims["D"]
        Phi, y, th = ca.MX.sym("Phi", n, d), ca.MX.sym("y", n), ca.MX.sym("theta", d)
        e = y - ca.mtimes(Phi, th)
        L = 0.5 * ca.sumsqr(e)
        ins, vals = [Phi, y, th], [inp["Phi"], inp["y"], inp["theta"]]
        outs, fwd_outs = [L, ca.gradient(L, th)], [L]
    elif problem == "p4":
        b, ni, nh, nc = dims["batch"], dims["n_in"], dims["n_hidden"], dims["n_classes"]
        X, Y = ca.MX.sym("X", b, ni), ca.MX.sym("Y", b, nc)
        W1, b1, W2, b2 = ca.MX.sym("W1", ni, nh), ca.MX.sym("b1", nh), ca.MX.sym("W2", nh, nc), ca.MX.sym("b2", nc)
        H = 1 / (1 + ca.exp(-(ca.mtimes(X, W1) + ca.repmat(b1.T, b, 1))))
        z = ca.mtimes(H, W2) + ca.repmat(b2.T, b, 1)
        m = ca.mmax(z)
        lse = m + ca.log(ca.sum2(ca.exp(z - m)))
        loss = -ca.sum1(ca.sum2(Y * (z - ca.repmat(lse, 1, nc)))) / b
        grads = ca.reverse([loss], [W1, b1, W2, b2], [[ca.MX.ones(1, 1)]])[0]
        ins = [X, Y, W1, b1, W2, b2]
        vals = [inp[k] for k in ["X", "Y", "W1", "b1", "W2", "b2"]]
        outs, fwd_outs = [loss] + list(grads), [loss]
    elif problem == "p5":
        n = dims["n"]
        X, y = ca.MX.sym("X", n, 2), ca.MX.sym("y", n)
        ls, ll, ln = ca.MX.sym("ls"), ca.MX.sym("ll"), ca.MX.sym("ln")
        sq = ca.sum2(X ** 2)
        d2 = ca.repmat(sq, 1, n) + ca.repmat(sq.T, n, 1) - 2 * ca.mtimes(X, X.T)
        C = ca.exp(ls) * ca.exp(-0.5 * d2 / ca.exp(2 * ll)) + ca.exp(ln) * ca.MX.eye(n)
        nlml = 0.5 * ca.dot(y, ca.solve(C, y)) + 0.5 * ca.log(ca.det(C)) + 0.5 * n * math.log(2 * math.pi)
        grads = ca.reverse([nlml], [ls, ll, ln], [[ca.MX.ones(1, 1)]])[0]
        ins = [X, y, ls, ll, ln]
        vals = [inp[k] for k in ["X", "y", "log_signal", "log_length", "log_noise"]]
        outs, fwd_outs = [nlml] + list(grads), [nlml]
    elif problem == "p5-chol":
        # CasADi 3.8 has chol for SX and DM only (not MX): the Cholesky form is an SX expression
        # graph, the factor's ~n^3/6 multiply-adds unrolled into scalar nodes (1.19 million nodes
        # with the gradient at n = 100), evaluated on CasADi's VM. chol gives the upper factor R,
        # C = R^T R; ca.solve on a triangular SX matrix is a substitution.
        n = dims["n"]
        X, y = ca.SX.sym("X", n, 2), ca.SX.sym("y", n)
        ls, ll, ln = ca.SX.sym("ls"), ca.SX.sym("ll"), ca.SX.sym("ln")
        sq = ca.sum2(X ** 2)
        d2 = ca.repmat(sq, 1, n) + ca.repmat(sq.T, n, 1) - 2 * ca.mtimes(X, X.T)
        C = ca.exp(ls) * ca.exp(-0.5 * d2 / ca.exp(2 * ll)) + ca.exp(ln) * ca.SX.eye(n)
        R = ca.chol(C)
        alpha = ca.solve(R, ca.solve(R.T, y))
        nlml = 0.5 * ca.dot(y, alpha) + ca.sum1(ca.log(ca.diag(R))) + 0.5 * n * math.log(2 * math.pi)
        g = ca.gradient(nlml, ca.vertcat(ls, ll, ln))
        ins = [X, y, ls, ll, ln]
        vals = [inp[k] for k in ["X", "y", "log_signal", "log_length", "log_noise"]]
        outs, fwd_outs = [nlml, g[0], g[1], g[2]], [nlml]
    elif problem == "p8":
        # One RK4 step as an SX Function, folded over T steps (Function.fold: a tower of loops of
        # at most 10 steps, not the unrolled expression); p, a non-accumulated input, is
        # broadcast to every step.
        dt = p8_reference.DT
        s, p = ca.SX.sym("s", 2), ca.SX.sym("p", 2)
        rhs = lambda z: ca.vertcat(z[1], -p[0] * z[0] - p[1] * z[1])
        k1 = rhs(s)
        k2 = rhs(s + dt / 2 * k1)
        k3 = rhs(s + dt / 2 * k2)
        k4 = rhs(s + dt * k3)
        step = ca.Function("rk4", [s, p], [s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)])
        folded = step.fold(dims["T"])
        S0, P = ca.MX.sym("s0", 2), ca.MX.sym("p", 2)
        L = ca.sumsqr(folded(S0, P))
        grads = ca.reverse([L], [S0, P], [[ca.MX.ones(1, 1)]])[0]
        ins, vals = [S0, P], [inp["s0"], inp["p"]]
        outs, fwd_outs = [L] + list(grads), [L]
    opts = {}
    if jit:
        opts = {"jit": True, "compiler": "shell", "jit_options": {"compiler": jit_compiler, "flags": ["-O3"], "verbose": False}}
    F = ca.Function("vg", ins, outs, opts)
    Ffwd = ca.Function("fwd", ins, fwd_outs, opts)
    dm = [ca.DM(np.asarray(v, dtype=float)) for v in vals]
    out = F(*dm)  # the JIT compiles at construction; this first call is cheap either way
    build = time.perf_counter() - t0
    call = measure(lambda: F(*dm), budget)
    Ffwd(*dm)
    forward = measure(lambda: Ffwd(*dm), budget)
    out = out if isinstance(out, (tuple, list)) else [out]
    value = float(out[0])
    derivs = []
    for (k, d) in zip(WRT[problem], out[1:]):
        arr = np.array(d)  # DM to NumPy keeps the matrix shape
        derivs.append(arr.reshape(np.shape(inp[k])) if arr.size == np.size(inp[k]) else arr)
    ok, detail = check(problem, inp, value, derivs, dims)
    return {"compile_s": build, "call_us": call * 1e6, "forward_us": forward * 1e6, "check_ok": ok, "check": detail,
            "version": ca.__version__}


# ---------------------------------------------------------------- PyTensor


def run_pytensor(problem, dims, inp, budget):
    compiledir = os.path.join(VENV, "pytensor-cache")
    cold = not os.path.isdir(compiledir) or not os.listdir(compiledir)
    os.environ.setdefault("PYTENSOR_FLAGS", f"base_compiledir={compiledir},floatX=float64")
    import numpy as np
    import pytensor
    import pytensor.tensor as pt
    from pytensor.tensor.special import log_softmax

    if problem == "p1":
        x = pt.dscalar("x")
        s = x * x
        f = pt.sqrt(s + pt.exp(s)) + pt.sin(s - 1)
        ins, vals, outs = [x], [inp["x"]], [f, pytensor.grad(f, x)]
    elif problem in ("p2", "p2-hvp"):
        x = pt.dvector("x")
        a = x[:-1] ** 2 - x[1:]
        f = pt.sum(100 * a ** 2 + (x[:-1] - 1) ** 2)
        g = pytensor.grad(f, x)
        if problem == "p2":
            ins, vals, outs = [x], [inp["x"]], [f, g]
        else:
            v = pt.dvector("v")
            hv = pytensor.grad(pt.sum(g * v), x)  # R-op through reverse mode: H v
            ins, vals, outs = [x, v], [inp["x"], inp["v"]], [f, hv]
    elif problem == "p3":
        Phi, y, th = pt.dmatrix("Phi"), pt.dvector("y"), pt.dvector("theta")
        e = y - pt.dot(Phi, th)
        f = 0.5 * pt.sum(e ** 2)
        ins, vals, outs = [Phi, y, th], [inp["Phi"], inp["y"], inp["theta"]], [f, pytensor.grad(f, th)]
    elif problem == "p4":
        X, Y = pt.dmatrix("X"), pt.dmatrix("Y")
        W1, b1, W2, b2 = pt.dmatrix("W1"), pt.dvector("b1"), pt.dmatrix("W2"), pt.dvector("b2")
        H = pt.sigmoid(pt.dot(X, W1) + b1)
        logits = pt.dot(H, W2) + b2
        f = -pt.sum(Y * log_softmax(logits, axis=1)) / X.shape[0]
        ins = [X, Y, W1, b1, W2, b2]
        vals = [inp[k] for k in ["X", "Y", "W1", "b1", "W2", "b2"]]
        outs = [f] + pytensor.grad(f, [W1, b1, W2, b2])
    elif problem == "p5":
        X, y = pt.dmatrix("X"), pt.dvector("y")
        ls, ll, ln = pt.dscalar("ls"), pt.dscalar("ll"), pt.dscalar("ln")
        n = dims["n"]
        sq = pt.sum(X ** 2, axis=1)
        d2 = sq[:, None] + sq[None, :] - 2 * pt.dot(X, X.T)
        C = pt.exp(ls) * pt.exp(-0.5 * d2 / pt.exp(2 * ll)) + pt.exp(ln) * pt.eye(n)
        # solve + slogdet, as the graph file does (measured faster here than Cholesky's gradient)
        f = 0.5 * pt.dot(y, pt.linalg.solve(C, y)) + 0.5 * pt.linalg.slogdet(C)[1] + 0.5 * n * math.log(2 * math.pi)
        ins = [X, y, ls, ll, ln]
        vals = [inp[k] for k in ["X", "y", "log_signal", "log_length", "log_noise"]]
        outs = [f] + pytensor.grad(f, [ls, ll, ln])
    elif problem == "p5-chol":
        X, y = pt.dmatrix("X"), pt.dvector("y")
        ls, ll, ln = pt.dscalar("ls"), pt.dscalar("ll"), pt.dscalar("ln")
        n = dims["n"]
        sq = pt.sum(X ** 2, axis=1)
        d2 = sq[:, None] + sq[None, :] - 2 * pt.dot(X, X.T)
        C = pt.exp(ls) * pt.exp(-0.5 * d2 / pt.exp(2 * ll)) + pt.exp(ln) * pt.eye(n)
        # The way GP libraries write it (p5-gp-cholesky.nabla): pytensor.tensor.linalg cholesky,
        # cho_solve (two triangular solves), log|C| = 2 sum log diag L.
        L = pt.linalg.cholesky(C, lower=True)
        alpha = pt.linalg.cho_solve((L, True), y)
        f = 0.5 * pt.dot(y, alpha) + pt.sum(pt.log(pt.diag(L))) + 0.5 * n * math.log(2 * math.pi)
        ins = [X, y, ls, ll, ln]
        vals = [inp[k] for k in ["X", "y", "log_signal", "log_length", "log_noise"]]
        outs = [f] + pytensor.grad(f, [ls, ll, ln])
    elif problem == "p8":
        dt = p8_reference.DT
        s0, p = pt.dvector("s0"), pt.dvector("p")

        def rhs(s, p):
            return pt.stack([s[1], -p[0] * s[0] - p[1] * s[1]])

        def step(s, p):
            k1 = rhs(s, p)
            k2 = rhs(s + dt / 2 * k1, p)
            k3 = rhs(s + dt / 2 * k2, p)
            k4 = rhs(s + dt * k3, p)
            return s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

        states = pytensor.scan(step, outputs_info=[s0], non_sequences=[p], n_steps=dims["T"], return_updates=False)
        f = pt.sum(states[-1] ** 2)
        ins, vals = [s0, p], [inp["s0"], inp["p"]]
        outs = [f] + pytensor.grad(f, [s0, p])
    t0 = time.perf_counter()
    F = pytensor.function(ins, outs)
    compile_s = time.perf_counter() - t0
    Ffwd = pytensor.function(ins, outs[0], on_unused_input="ignore")
    F.trust_input = True
    Ffwd.trust_input = True
    args = [np.asarray(v, dtype=np.float64) for v in vals]
    out = F(*args)
    call = measure(lambda: F(*args), budget)
    forward = measure(lambda: Ffwd(*args), budget)
    ok, detail = check(problem, inp, out[0], out[1:], dims)
    mode = pytensor.config.mode
    cxx = pytensor.config.cxx
    return {"compile_s": compile_s, "compile_cache": "cold" if cold else "warm", "call_us": call * 1e6,
            "forward_us": forward * 1e6, "check_ok": ok, "check": detail, "version": pytensor.__version__,
            "note": f"mode {mode}, cxx {cxx or 'none (Python fallback)'}"}


# ---------------------------------------------------------------- P7: deep recurrence


def peak_rss_kib():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux


def deep_casadi(n, budget):
    import casadi as ca

    c0 = time.process_time()
    t0 = time.perf_counter()
    y0, a = ca.SX.sym("y0"), ca.SX.sym("a")
    y = y0
    for _ in range(n):
        y = 0.999 * ca.sin(y) + 0.001 * a
    t1 = time.perf_counter()
    g = ca.gradient(y, ca.vertcat(y0, a))
    t2 = time.perf_counter()
    F = ca.Function("deep", [y0, a], [y, g])
    t3 = time.perf_counter()
    construct_cpu = time.process_time() - c0
    args = [ca.DM(DEEP_INPUTS["y0"]), ca.DM(DEEP_INPUTS["a"])]
    out = F(*args)
    first = time.perf_counter() - t3
    call = measure(lambda: F(*args), budget)
    value = float(out[0])
    grad = [float(v) for v in ca.DM(out[1]).full().ravel()]
    return {"construct_s": t3 - t0, "construct_cpu_s": construct_cpu, "graph_s": t1 - t0, "gradient_s": t2 - t1, "function_s": t3 - t2,
            "first_call_s": first, "call_us": call * 1e6, "version": ca.__version__,
            "outputs": {"f": value, "df/dy0": grad[0], "df/da": grad[1]}}


def deep_jax(n, budget):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def f(y0, a):
        y = y0
        for _ in range(n):
            y = 0.999 * jnp.sin(y) + 0.001 * a
        return y

    vg = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
    args = (jnp.float64(DEEP_INPUTS["y0"]), jnp.float64(DEEP_INPUTS["a"]))
    jax.block_until_ready(args)
    c0 = time.process_time()
    t0 = time.perf_counter()
    value, (gy0, ga) = jax.block_until_ready(vg(*args))
    first = time.perf_counter() - t0
    first_cpu = time.process_time() - c0
    call = measure(lambda: jax.block_until_ready(vg(*args)), budget)
    return {"first_call_s": first, "first_call_cpu_s": first_cpu, "call_us": call * 1e6, "version": jax.__version__,
            "outputs": {"f": float(value), "df/dy0": float(gy0), "df/da": float(ga)}}


def deep_worker(peer, n, quick):
    budget = 0.2 if quick else 0.5
    res = deep_casadi(n, budget) if peer == "casadi" else deep_jax(n, budget) if peer == "jax" else None
    if res is None:
        raise ValueError(peer)
    want = p7_generate.reference("recurrence", n, DEEP_INPUTS)
    bad = [k for k in p7_generate.OUTPUTS["recurrence"] if not p7_generate.agrees(res["outputs"][k], want[k])]
    res["check_ok"] = not bad
    res["check"] = "agrees with plain Python" if not bad else \
        "disagrees: " + ", ".join(f"{k} = {res['outputs'][k]!r} (want {want[k]!r})" for k in bad)
    res["maxrss_kib"] = peak_rss_kib()
    print("RESULT " + json.dumps(res))


def orchestrate_deep(args, bootstrap_error=None):
    quick = args.quick
    steps = {p: list(v) for p, v in DEEP_STEPS["quick" if quick else "full"].items()}
    for peer, text in (("casadi", args.deep_casadi_steps), ("jax", args.deep_jax_steps)):
        if text:
            steps[peer] = [int(x) for x in text.split(",") if x]
    selected = [p.strip() for p in args.deep_peers.split(",") if p.strip()]
    timeout = args.deep_timeout if args.deep_timeout else (120 if quick else 300)
    budget_end = time.time() + (args.deep_budget if args.deep_budget else (300 if quick else 900))
    results = []
    for peer in selected:
        errors = None
        if bootstrap_error:
            errors = bootstrap_error
        elif peer not in DEEP_PEERS:
            errors = f"unknown deep peer (known: {', '.join(DEEP_PEERS)})"
        else:
            r = subprocess.run([sys.executable, "-c", f"import {peer}"], capture_output=True, text=True)
            if r.returncode != 0:
                errors = f"import {peer} failed: {last_line(r.stderr)}"
        for n in steps.get(peer, []):
            row = {"peer": peer, "label": DEEP_PEERS.get(peer, peer), "case": f"P7 recurrence {n}", "steps": n}
            if errors:
                row.update(status="n/a", reason=errors)
            elif time.time() > budget_end:
                row.update(status="skipped", reason="deep-graph time budget exhausted")
            else:
                limit = max(5, min(timeout, budget_end - time.time() + 5))
                cmd = [sys.executable, os.path.abspath(__file__), "--deep-worker", peer, str(n)] + (["--quick"] if quick else [])
                env = dict(os.environ)
                if args.single_thread:
                    env.update(SINGLE_THREAD_ENV)
                print(f"[peers] deep {row['label']:16} {n} steps", file=sys.stderr, flush=True)
                t0 = time.time()
                try:
                    r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, env=env)
                    found = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")]
                    if r.returncode == 0 and found:
                        row.update(status="ok", **json.loads(found[-1][len("RESULT "):]))
                        if not row.get("check_ok", True):
                            row.update(status="wrong", reason="result disagrees with plain Python: " + row["check"])
                    else:
                        row.update(status="n/a", reason=f"failed (exit {r.returncode}): {last_line(r.stderr)}")
                except subprocess.TimeoutExpired:
                    row.update(status="n/a", reason=f"timed out after {limit:.0f} s")
                row["wall_s"] = round(time.time() - t0, 2)
            results.append(row)
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": quick,
        "steps": steps,
        "inputs": DEEP_INPUTS,
        "threads": "one (" + " ".join(f"{k}={v}" for k, v in SINGLE_THREAD_ENV.items()) + ")" if args.single_thread else "default",
        "results": results,
    }


# ---------------------------------------------------------------- orchestration


def worker(peer, case_id, quick, jit_compiler):
    case = next(c for c in cases(False) + cases(False, thread_cases=True) if c["id"] == case_id)
    inp = make_inputs(case["problem"], case["dims"])
    budget = 0.3 if quick else 1.0
    if peer == "jax":
        res = run_jax(case["problem"], case["dims"], inp, budget)
    elif peer == "casadi":
        res = run_casadi(case["problem"], case["dims"], inp, budget)
    elif peer == "casadi-jit":
        res = run_casadi(case["problem"], case["dims"], inp, budget, jit=True, jit_compiler=jit_compiler)
    elif peer == "pytensor":
        res = run_pytensor(case["problem"], case["dims"], inp, budget)
    else:
        raise ValueError(peer)
    print("RESULT " + json.dumps(res))


def last_line(text, limit=300):
    lines = [l for l in (text or "").strip().splitlines() if l.strip()]
    return lines[-1][:limit] if lines else "no output"


def peer_module(peer):
    return {"jax": "jax", "casadi": "casadi", "casadi-jit": "casadi", "pytensor": "pytensor"}[peer]


def orchestrate(args, bootstrap_error=None):
    quick = args.quick
    selected = [p.strip() for p in args.peers.split(",") if p.strip()]
    install_failures = {}
    status_file = os.path.join(VENV, ".nabla-install.json")
    if os.path.exists(status_file):
        try:
            install_failures = json.load(open(status_file))
        except ValueError:
            pass
    timeout = args.timeout if args.timeout else (180 if quick else 300)
    jit_timeout = args.jit_timeout if args.jit_timeout else (30 if quick else 90)
    budget_end = time.time() + (args.budget if args.budget else (480 if quick else 1200))
    results = []
    import_errors = {}
    for peer in selected:
        if bootstrap_error:
            import_errors[peer] = bootstrap_error
            continue
        if peer not in PEERS:
            import_errors[peer] = f"unknown peer (known: {', '.join(PEERS)})"
            continue
        mod = peer_module(peer)
        r = subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True, text=True)
        if r.returncode != 0:
            why = next((v for k, v in install_failures.items() if k.lower().startswith(mod)), None)
            import_errors[peer] = (why + "; " if why else "") + f"import {mod} failed: {last_line(r.stderr)}"
    jit_compiler = "gcc"
    if "casadi-jit" in selected and "casadi-jit" not in import_errors:
        from shutil import which
        if which("gcc") is None:
            import_errors["casadi-jit"] = "gcc not found for CasADi's JIT"
    for case in cases(quick, [x for x in (args.problems or "").split(",") if x], thread_cases=args.thread_cases):
        for peer in selected:
            row = {"peer": peer, "label": PEERS.get(peer, peer), "case": case["id"], "problem": case["problem"],
                   "dims": case["dims"]}
            if peer in import_errors:
                row.update(status="n/a", reason=import_errors[peer])
            elif peer == "casadi" and case["id"] in CASADI_SKIP:
                row.update(status="skipped", reason=CASADI_SKIP[case["id"]])
            elif peer == "casadi-jit" and case["id"] not in CASADI_JIT_CASES["quick" if quick else "full"]:
                row.update(status="skipped", reason="CasADi's gcc JIT is run on small cases only (compile takes seconds to minutes)")
            elif time.time() > budget_end:
                row.update(status="skipped", reason="peer time budget exhausted")
            else:
                limit = jit_timeout if peer == "casadi-jit" else timeout
                limit = max(5, min(limit, budget_end - time.time() + 5))
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", peer, case["id"]] + (["--quick"] if quick else [])
                env = dict(os.environ)
                if args.single_thread:
                    env.update(SINGLE_THREAD_ENV)
                t0 = time.time()
                print(f"[peers] {row['label']:22} {case['id']}", file=sys.stderr, flush=True)
                try:
                    r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, env=env)
                    found = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")]
                    if r.returncode == 0 and found:
                        row.update(status="ok", **json.loads(found[-1][len("RESULT "):]))
                        if not row.get("check_ok", True):
                            row["status"] = "wrong"
                            row["reason"] = "result disagrees with NumPy: " + row.get("check", "")
                    else:
                        row.update(status="n/a", reason=f"failed (exit {r.returncode}): {last_line(r.stderr)}")
                except subprocess.TimeoutExpired:
                    row.update(status="n/a", reason=f"timed out after {limit:.0f} s")
                row["wall_s"] = round(time.time() - t0, 2)
            results.append(row)
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": quick,
        "python": platform.python_version(),
        "peers": {p: PEERS.get(p, p) for p in selected},
        "threads": "one (" + " ".join(f"{k}={v}" for k, v in SINGLE_THREAD_ENV.items()) + ")" if args.single_thread else "default",
        "results": results,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="quick sizes, short measurements")
    ap.add_argument("--out", default=os.path.join(BENCH, "results", "peers.json"))
    ap.add_argument("--peers", default="jax,casadi,casadi-jit,pytensor")
    ap.add_argument("--problems", help="only these problems of cases.py, comma-separated first words of the case ids "
                    "(P1, P2, P2-hvp, P3, P4, P5, P5-chol, P8); default all")
    ap.add_argument("--timeout", type=float, default=0, help="seconds per (peer, case) (default 180 quick, 300 full)")
    ap.add_argument("--jit-timeout", type=float, default=0, help="seconds per CasADi JIT case (default 30 quick, 90 full)")
    ap.add_argument("--budget", type=float, default=0, help="seconds for all peers (default 480 quick, 1200 full)")
    ap.add_argument("--threads", choices=["one", "default"], default="one",
                    help="one: BLAS, OpenMP and XLA limited to one thread, like Nabla (default); default: as installed")
    ap.add_argument("--thread-cases", action="store_true",
                    help="the cases large enough to split over cores (cases.THREAD_CASES) instead of the main table's")
    ap.add_argument("--no-venv", action="store_true", help="run in this Python (packages already installed)")
    ap.add_argument("--deep", action="store_true", help="also the deep-graph anchors of P7 (key 'deep' of the JSON)")
    ap.add_argument("--deep-only", action="store_true",
                    help="only the deep-graph anchors: replaces the key 'deep' of an existing --out file")
    ap.add_argument("--deep-peers", default="casadi,jax")
    ap.add_argument("--deep-casadi-steps", help="steps for CasADi (default 1000,10000 quick; 1000,10000,100000 full)")
    ap.add_argument("--deep-jax-steps", help="steps for JAX (default 300,1000 quick; 1000,3000 full)")
    ap.add_argument("--deep-timeout", type=float, default=0, help="seconds per (peer, steps) (default 120 quick, 300 full)")
    ap.add_argument("--deep-budget", type=float, default=0, help="seconds for all deep runs (default 300 quick, 900 full)")
    ap.add_argument("--worker", nargs=2, metavar=("PEER", "CASE"), help=argparse.SUPPRESS)
    ap.add_argument("--deep-worker", nargs=2, metavar=("PEER", "STEPS"), help=argparse.SUPPRESS)
    ap.add_argument("--jit-compiler", default="gcc", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.single_thread = args.threads == "one"

    if args.worker:
        worker(args.worker[0], args.worker[1], args.quick, args.jit_compiler)
        return
    if args.deep_worker:
        deep_worker(args.deep_worker[0], int(args.deep_worker[1]), args.quick)
        return
    bootstrap_error = None
    if not args.no_venv and not in_venv():
        bootstrap_error = bootstrap(sys.argv[1:])  # returns only on failure
    if args.deep_only:
        report = {"results": []}
        try:
            with open(args.out) as f:
                report = json.load(f)
        except (OSError, ValueError):
            pass
        report["deep"] = orchestrate_deep(args, bootstrap_error)
    else:
        report = orchestrate(args, bootstrap_error)
        if args.deep:
            report["deep"] = orchestrate_deep(args, bootstrap_error)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    rows = ([] if args.deep_only else report["results"]) + report.get("deep", {}).get("results", [])
    ok = sum(r["status"] == "ok" for r in rows)
    print(f"[peers] {ok} of {len(rows)} measurements ok; written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

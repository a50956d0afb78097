#!/usr/bin/env python3
"""P8's plain-Python reference: a damped oscillator x'' + c x' + k x = 0, state s = [x, v],
parameters p = [k, c], classical RK4 for T steps of DT = 0.01 from s0, L = x_T^2 + v_T^2
(benchmarks/problems/p8-rk4.nabla).

    python3 benchmarks/p8_reference.py [--T 1000] [--s0 1,0] [--p 4,0.3]

The value by the RK4 loop itself; the gradient wrt (s0, p) by forward-mode tangents carried
along the same loop, one for each of the four inputs (exact up to rounding, and independent of
any reverse pass). run_peers.py checks every peer's P8 result with check(), which also compares
that gradient with central differences of the value along a random direction. Standard library
only (the suite runs it with the system Python, the peers inside benchmarks/.venv).
"""
import argparse
import math
import random

DT = 0.01


def value(s0, p, T):
    """L = |s_T|^2 after T RK4 steps from s0 with parameters p = [k, c]."""
    k, c = float(p[0]), float(p[1])
    h, h2, h6 = DT, DT / 2, DT / 6
    x, v = float(s0[0]), float(s0[1])
    for _ in range(T):
        k1x, k1v = v, -k * x - c * v
        x2, v2 = x + h2 * k1x, v + h2 * k1v
        k2x, k2v = v2, -k * x2 - c * v2
        x3, v3 = x + h2 * k2x, v + h2 * k2v
        k3x, k3v = v3, -k * x3 - c * v3
        x4, v4 = x + h * k3x, v + h * k3v
        k4x, k4v = v4, -k * x4 - c * v4
        x, v = x + h6 * (k1x + 2 * k2x + 2 * k3x + k4x), v + h6 * (k1v + 2 * k2v + 2 * k3v + k4v)
    return x * x + v * v


def value_and_grad(s0, p, T):
    """(L, [dL/dx0, dL/dv0], [dL/dk, dL/dc]), the gradient by forward-mode tangents: along the
    loop, for each input j, (dx_j, dv_j) = d(x, v)/d input j."""
    k, c = float(p[0]), float(p[1])
    h, h2, h6 = DT, DT / 2, DT / 6
    x, v = float(s0[0]), float(s0[1])
    # tangents of (x, v) wrt x0, v0, k, c; and of (k, c) themselves
    tx = [1.0, 0.0, 0.0, 0.0]
    tv = [0.0, 1.0, 0.0, 0.0]
    tk = [0.0, 0.0, 1.0, 0.0]
    tc = [0.0, 0.0, 0.0, 1.0]
    for _ in range(T):
        k1x, k1v = v, -k * x - c * v
        x2, v2 = x + h2 * k1x, v + h2 * k1v
        k2x, k2v = v2, -k * x2 - c * v2
        x3, v3 = x + h2 * k2x, v + h2 * k2v
        k3x, k3v = v3, -k * x3 - c * v3
        x4, v4 = x + h * k3x, v + h * k3v
        k4x, k4v = v4, -k * x4 - c * v4
        for j in range(4):
            dx, dv, dk, dc = tx[j], tv[j], tk[j], tc[j]
            # d f(z) = [dz_v, -dk z_x - k dz_x - dc z_v - c dz_v]
            d1x, d1v = dv, -dk * x - k * dx - dc * v - c * dv
            dx2, dv2 = dx + h2 * d1x, dv + h2 * d1v
            d2x, d2v = dv2, -dk * x2 - k * dx2 - dc * v2 - c * dv2
            dx3, dv3 = dx + h2 * d2x, dv + h2 * d2v
            d3x, d3v = dv3, -dk * x3 - k * dx3 - dc * v3 - c * dv3
            dx4, dv4 = dx + h * d3x, dv + h * d3v
            d4x, d4v = dv4, -dk * x4 - k * dx4 - dc * v4 - c * dv4
            tx[j] = dx + h6 * (d1x + 2 * d2x + 2 * d3x + d4x)
            tv[j] = dv + h6 * (d1v + 2 * d2v + 2 * d3v + d4v)
        x, v = x + h6 * (k1x + 2 * k2x + 2 * k3x + k4x), v + h6 * (k1v + 2 * k2v + 2 * k3v + k4v)
    g = [2 * x * tx[j] + 2 * v * tv[j] for j in range(4)]
    return x * x + v * v, g[0:2], g[2:4]


def _rel(have, want):
    """max |have - want| / max |want| over a block (absolute when want is all zero)."""
    scale = max(abs(w) for w in want) or 1.0
    return max(abs(float(a) - float(b)) for a, b in zip(have, want)) / scale


def check(s0, p, T, L, dLds0, dLdp, tol=1e-8, fd_tol=1e-5):
    """Compares a peer's value and gradient with the reference: the value relative to |L|, each
    gradient block relative to its largest element (relative, not against max(1, ...): at
    T = 10^5 every figure is tiny, the state decaying as e^(-c t / 2)). Also checks the reference gradient itself against
    central differences of the value along a random direction. Returns (ok, detail)."""
    want_L, want_s0, want_p = value_and_grad(s0, p, T)
    verr = abs(float(L) - want_L) / (abs(want_L) or 1.0)
    gerr = max(_rel(list(dLds0), want_s0), _rel(list(dLdp), want_p))
    rng = random.Random(7)
    d = [rng.uniform(-1, 1) for _ in range(4)]
    h = 1e-6
    plus = value([s0[0] + h * d[0], s0[1] + h * d[1]], [p[0] + h * d[2], p[1] + h * d[3]], T)
    minus = value([s0[0] - h * d[0], s0[1] - h * d[1]], [p[0] - h * d[2], p[1] - h * d[3]], T)
    fd = (plus - minus) / (2 * h)
    analytic = sum(a * b for a, b in zip(want_s0 + want_p, d))
    fderr = abs(analytic - fd) / (abs(fd) or 1.0)
    ok = verr < tol and gerr < tol and fderr < fd_tol and all(map(math.isfinite, [L] + list(dLds0) + list(dLdp)))
    return ok, (f"value rel err {verr:.1e}, gradient rel err {gerr:.1e} (against forward-mode tangents in plain Python; "
                f"those against central differences {fderr:.1e})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--s0", default="1,0")
    ap.add_argument("--p", default="4,0.3")
    args = ap.parse_args()
    s0 = [float(x) for x in args.s0.split(",")]
    p = [float(x) for x in args.p.split(",")]
    L, gs, gp = value_and_grad(s0, p, args.T)
    print(f"L = {L!r}\ndL/ds0 = {gs!r}\ndL/dp = {gp!r}")
    if args.T * DT == 10 and s0 == [1.0, 0.0]:
        # x(t) of the exact solution, underdamped: x = e^(-c t/2) (cos w t + c/(2 w) sin w t)
        k, c = p
        w = math.sqrt(k - c * c / 4)
        t = args.T * DT
        print(f"exact x({t:g}) = {math.exp(-c * t / 2) * (math.cos(w * t) + c / (2 * w) * math.sin(w * t))!r}")


if __name__ == "__main__":
    main()

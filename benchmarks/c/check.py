#!/usr/bin/env python3
"""Checks the hand-written C against `nabla run` at fixed inputs; exits 1 loudly on a mismatch.

    python3 benchmarks/c/check.py --nabla .build/release/nabla --bench benchmarks/results/bench_c_gcc

For each problem and a few sizes it writes the same deterministic inputs as JSON (for
`nabla run --input NAME=@file`) and as flat text (for `bench_c eval`), runs both and compares
every output element: |c - nabla| <= rtol * max(1, max |nabla output|) (P8: rtol * max |nabla
output|, relative, as its figures at T = 10^5 are around 1e-120). P8's `nabla run` outputs are also
compared with the plain-Python reference (benchmarks/p8_reference.py) the peers are checked
against, with the same relative tolerance.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROBLEMS = os.path.join(os.path.dirname(HERE), "problems")
sys.path.insert(0, os.path.dirname(HERE))
import p8_reference  # noqa: E402

# (C problem name, graph file, dims, inputs as (name, count function) in declaration order)
CASES = [
    ("p1", "p1-seed.nabla", {}),
    ("p2", "p2-rosenbrock.nabla", {"N": 2}),
    ("p2", "p2-rosenbrock.nabla", {"N": 11}),
    ("p2", "p2-rosenbrock.nabla", {"N": 1000}),
    ("p2-hvp", "p2-hvp.nabla", {"N": 2}),
    ("p2-hvp", "p2-hvp.nabla", {"N": 57}),
    ("p3", "p3-least-squares.nabla", {"N": 50, "D": 7}),
    ("p3", "p3-least-squares.nabla", {"N": 1000, "D": 100}),
    ("p4", "p4-mlp.nabla", {"batch": 6, "n_in": 13, "n_hidden": 9, "n_classes": 4}),
    ("p4", "p4-mlp.nabla", {"batch": 64, "n_in": 784, "n_hidden": 128, "n_classes": 10}),
    ("p5", "p5-gp.nabla", {"n": 17}),
    ("p5", "p5-gp.nabla", {"n": 100}),
    ("p5-chol", "p5-gp-cholesky.nabla", {"n": 17}),
    ("p5-chol", "p5-gp-cholesky.nabla", {"n": 100}),
    ("p8", "p8-rk4.nabla", {"T": 1}),
    ("p8", "p8-rk4.nabla", {"T": 7}),
    ("p8", "p8-rk4.nabla", {"T": 1000}),
    ("p8", "p8-rk4.nabla", {"T": 100000}),
]


def inputs_for(problem, dims, rng):
    """Inputs in declaration order: list of (name, flat values)."""
    u = lambda k, scale=1.0: [scale * rng.uniform(-1, 1) for _ in range(k)]
    if problem == "p1":
        return [("x", [0.5 + 0.1 * rng.random()])]
    if problem == "p2":
        return [("x", u(dims["N"], 1.5))]
    if problem == "p2-hvp":
        return [("x", u(dims["N"], 1.5)), ("v", u(dims["N"]))]
    if problem == "p3":
        n, d = dims["N"], dims["D"]
        return [("Phi", u(n * d)), ("y", u(n)), ("theta", u(d))]
    if problem == "p4":
        b, ni, nh, nc = dims["batch"], dims["n_in"], dims["n_hidden"], dims["n_classes"]
        Y = []
        for _ in range(b):
            row = [0.0] * nc
            row[rng.randrange(nc)] = 1.0
            Y += row
        return [("X", u(b * ni)), ("Y", Y), ("W1", u(ni * nh, 0.1)), ("b1", u(nh, 0.1)),
                ("W2", u(nh * nc, 0.3)), ("b2", u(nc, 0.1))]
    if problem in ("p5", "p5-chol"):
        n = dims["n"]
        return [("X", u(2 * n, 2.0)), ("y", u(n)), ("log_signal", [0.3]), ("log_length", [-0.4]),
                ("log_noise", [-2.0])]
    if problem == "p8":
        # a damped oscillator: stiffness k in [1, 5], damping c in [0.1, 0.5]
        return [("s0", u(2)), ("p", [rng.uniform(1, 5), rng.uniform(0.1, 0.5)])]
    raise ValueError(problem)


def as_float(v):
    return float(v) if not isinstance(v, str) else float(v.replace("inf", "inf"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nabla", required=True)
    ap.add_argument("--bench", required=True, help="the bench_c binary (any compiler)")
    ap.add_argument("--rtol", type=float, default=1e-9)
    ap.add_argument("--quick", action="store_true", help="skip the largest cases")
    args = ap.parse_args()

    rng = random.Random(20240601)
    failures = 0
    checked = 0
    with tempfile.TemporaryDirectory(prefix="nabla-check-") as tmp:
        for problem, file, dims in CASES:
            if args.quick and (dims.get("N", 0) >= 1000 or dims.get("n_in", 0) >= 784 or dims.get("n", 0) >= 100
                               or dims.get("T", 0) >= 100000):
                continue
            inputs = inputs_for(problem, dims, rng)
            flat = os.path.join(tmp, "inputs.txt")
            with open(flat, "w") as f:
                for _, values in inputs:
                    f.write(" ".join(repr(v) for v in values) + "\n")
            cmd = [args.nabla, "run", os.path.join(PROBLEMS, file), "--format", "json"]
            for k, v in dims.items():
                cmd += ["--dim", f"{k}={v}"]
            for name, values in inputs:
                path = os.path.join(tmp, f"in-{name}.json")
                with open(path, "w") as f:
                    json.dump(values, f)
                cmd += ["--input", f"{name}=@{path}"]
            label = f"{problem} {' '.join(f'{k}={v}' for k, v in dims.items())}".strip()
            ref = subprocess.run(cmd, capture_output=True, text=True)
            if ref.returncode != 0:
                print(f"FAIL {label}: nabla run exited {ref.returncode}: {ref.stderr.strip()}")
                failures += 1
                continue
            reference = json.loads(ref.stdout)
            if problem == "p8":
                values = dict(inputs)
                want_L, want_s0, want_p = p8_reference.value_and_grad(values["s0"], values["p"], dims["T"])
                for name, want in (("L", [want_L]), ("dL/ds0", want_s0), ("dL/dp", want_p)):
                    have = [as_float(v) for v in reference.get(name, {}).get("data", [])]
                    scale = max(abs(w) for w in want) or 1.0
                    worst = max((abs(a - b) for a, b in zip(have, want)), default=float("inf")) if len(have) == len(want) \
                        else float("inf")
                    checked += 1
                    status = "ok" if worst <= args.rtol * scale else "MISMATCH"
                    print(f"{status:8} {label + ' nabla vs plain Python':40} {name:20} max abs diff {worst:.3e} (scale {scale:.3g})")
                    if status != "ok":
                        failures += 1
            ccmd = [args.bench, "eval", problem] + [f"{k}={v}" for k, v in dims.items()] + [flat]
            got = subprocess.run(ccmd, capture_output=True, text=True)
            if got.returncode != 0:
                print(f"FAIL {label}: bench_c eval exited {got.returncode}: {got.stderr.strip()}")
                failures += 1
                continue
            mine = json.loads(got.stdout)
            for name, values in mine.items():
                if name not in reference:
                    print(f"FAIL {label}: nabla has no output {name!r} (has {list(reference)})")
                    failures += 1
                    continue
                want = [as_float(v) for v in reference[name]["data"]]
                have = [as_float(v) for v in values]
                if len(want) != len(have):
                    print(f"FAIL {label} {name}: {len(have)} elements, nabla has {len(want)}")
                    failures += 1
                    continue
                scale = max([1.0] + [abs(w) for w in want]) if problem != "p8" else max(abs(w) for w in want) or 1.0
                worst = max((abs(a - b) for a, b in zip(have, want)), default=0.0)
                checked += 1
                status = "ok" if worst <= args.rtol * scale else "MISMATCH"
                print(f"{status:8} {label:40} {name:20} max abs diff {worst:.3e} (scale {scale:.3g})")
                if status != "ok":
                    failures += 1
    print(f"{checked - failures if failures <= checked else 0} passed, {failures} failed")
    if failures:
        print("error: hand-written C disagrees with nabla run", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

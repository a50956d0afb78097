#!/usr/bin/env python3
"""Measures Nabla and the hand-written C on every benchmark case; run.sh calls it.

    python3 benchmarks/suite.py [--quick] --nabla .build/release/nabla --c-gcc BIN [--c-tcc BIN] --out DIR

Writes DIR/nabla.json, DIR/c.json and DIR/p6.json. Nabla is measured with `nabla bench FILE
--dim ... --backend all --format json` when the subcommand exists; otherwise (an older nabla)
the fallback times whole `nabla run` processes (parse, differentiate, emit, compile, one call,
print) and says so: it has no per-call figures. A case that fails is recorded with its reason.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cases import cases, slug  # noqa: E402
import p6_generate  # noqa: E402


def last_line(text, limit=300):
    lines = [l for l in (text or "").strip().splitlines() if l.strip()]
    return lines[-1][:limit] if lines else "no output"


def bench_available(nabla):
    r = subprocess.run([nabla, "bench", "--help"], capture_output=True, text=True)
    text = r.stdout + r.stderr
    return r.returncode == 0 and "--backend" in text, "--seconds" in text


def dim_args(dims):
    out = []
    for k, v in dims.items():
        out += ["--dim", f"{k}={v}"]
    return out


def run_bench(nabla, file, dims, backend, seconds, timeout):
    cmd = [nabla, "bench", file] + dim_args(dims) + ["--backend", backend, "--format", "json"]
    if seconds:
        cmd += ["--seconds", str(seconds)]
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "n/a", "reason": f"nabla bench timed out after {timeout} s", "command": " ".join(cmd)}
    if r.returncode != 0:
        return {"status": "n/a", "reason": f"nabla bench exited {r.returncode}: {last_line(r.stderr)}", "command": " ".join(cmd)}
    try:
        data = json.loads(r.stdout)
    except ValueError as e:
        return {"status": "n/a", "reason": f"nabla bench printed no JSON ({e})", "command": " ".join(cmd)}
    return {"status": "ok", "mode": "bench", "bench": data, "wall_s": round(time.time() - t0, 2), "command": " ".join(cmd)}


def run_fallback(nabla, file, dims, repeats, timeout):
    """Median wall time of whole `nabla run` processes."""
    cmd = [nabla, "run", file] + dim_args(dims) + ["--seed", "1", "--format", "json"]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"status": "n/a", "reason": f"nabla run timed out after {timeout} s", "command": " ".join(cmd)}
        if r.returncode != 0:
            return {"status": "n/a", "reason": f"nabla run exited {r.returncode}: {last_line(r.stderr)}", "command": " ".join(cmd)}
        times.append(time.perf_counter() - t0)
    return {"status": "ok", "mode": "run-fallback", "run_wall_s": statistics.median(times), "runs": len(times),
            "command": " ".join(cmd)}


def run_c(binary, cname, dims, quick, timeout=300):
    reps, seconds = ("11", "0.3") if quick else ("31", "1.0")
    cmd = [binary, "time", cname] + [f"{k}={v}" for k, v in dims.items()] + ["--reps", reps, "--max-seconds", seconds]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "n/a", "reason": f"timed out after {timeout} s"}
    if r.returncode != 0:
        return {"status": "n/a", "reason": f"exited {r.returncode}: {last_line(r.stderr)}"}
    data = json.loads(r.stdout)
    data["status"] = "ok"
    return data


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--nabla", required=True)
    ap.add_argument("--c-gcc")
    ap.add_argument("--c-tcc")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-p6", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    quick = args.quick
    has_bench, has_seconds = bench_available(args.nabla)
    seconds = (0.1 if quick else 0.5) if has_seconds else None
    if not has_bench:
        print("[suite] `nabla bench` is not available in this nabla: falling back to timing whole `nabla run` "
              "processes (no per-call figures)", file=sys.stderr)

    nabla_results = []
    c_results = []
    for case in cases(quick):
        file = os.path.join(HERE, "problems", case["file"])
        print(f"[suite] nabla  {case['id']}", file=sys.stderr, flush=True)
        if has_bench:
            res = run_bench(args.nabla, file, case["dims"], "all", seconds, timeout=600)
        else:
            res = run_fallback(args.nabla, file, case["dims"], 3, timeout=600)
        res.update(case=case["id"], file=os.path.relpath(file, os.path.dirname(HERE)), dims=case["dims"])
        nabla_results.append(res)
        for compiler, binary in (("gcc -O3 -march=native", args.c_gcc), ("tcc", args.c_tcc)):
            if not binary:
                c_results.append({"case": case["id"], "compiler": compiler, "status": "n/a", "reason": "compiler not available"})
                continue
            print(f"[suite] C {compiler:22} {case['id']}", file=sys.stderr, flush=True)
            res = run_c(binary, case["c"], case["dims"], quick)
            res.update(case=case["id"], compiler=compiler)
            c_results.append(res)

    p6_results = []
    if not args.no_p6:
        sizes = [100, 1000, 10000] if quick else [100, 1000, 10000, 100000]
        p6_dir = os.path.join(HERE, "p6")
        os.makedirs(p6_dir, exist_ok=True)
        for size in sizes:
            path = os.path.join(p6_dir, f"p6-{size}.nabla")
            with open(path, "w") as f:
                f.write(p6_generate.generate(size, 6))
            backends = ["all"] if size <= 1000 else ["interp", "tcc"] if size <= 10000 else ["tcc"]
            for backend in backends:
                print(f"[suite] nabla  P6 {size} ({backend})", file=sys.stderr, flush=True)
                if has_bench:
                    res = run_bench(args.nabla, path, {}, backend, 0.05 if quick else 0.2, timeout=900)
                else:
                    res = run_fallback(args.nabla, path, {}, 1, timeout=900)
                res.update(case=f"P6 {size}", size=size, backend_request=backend, file=os.path.relpath(path, os.path.dirname(HERE)))
                p6_results.append(res)
                if not has_bench:
                    break

    meta = {"bench_available": has_bench, "quick": quick, "seconds": seconds}
    for name, data in (("nabla.json", nabla_results), ("c.json", c_results), ("p6.json", p6_results)):
        with open(os.path.join(args.out, name), "w") as f:
            json.dump({"meta": meta, "results": data}, f, indent=1)


if __name__ == "__main__":
    main()

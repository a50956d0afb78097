#!/usr/bin/env python3
"""Measures Nabla and the hand-written C on every benchmark case; run.sh calls it.

    python3 benchmarks/suite.py [--quick] --nabla .build/release/nabla --c-gcc BIN [--c-tcc BIN] --out DIR
    python3 benchmarks/suite.py [--quick] --nabla .build/release/nabla --only-p7 --out DIR
    python3 benchmarks/suite.py --problems P8 --no-p6 --no-p7 --nabla ... --c-gcc BIN --c-tcc BIN --out DIR

Writes DIR/nabla.json, DIR/c.json, DIR/p6.json and DIR/p7.json (--only-p7: p7.json alone, the
others left as they are; --no-p6, --no-p7 leave those out). Nabla is measured with `nabla bench FILE
--dim ... --backend all --format json` when the subcommand exists; otherwise (an older nabla)
the fallback times whole `nabla run` processes (parse, differentiate, emit, compile, one call,
print) and says so: it has no per-call figures. A case that fails is recorded with its reason.
For P8 (RK4 through a fold) each entry also records the size in bytes of the C that `nabla compile
FILE --dim T=...` writes (c_bytes), to show it does not grow with T.

P7 (deep graphs, benchmarks/p7_generate.py): for each file, `nabla bench FILE --backend tcc
--seconds 0.2 --format json` (compile median and node count) and whole `nabla run FILE --seed 1
--format json` processes, timed from this script, with the child's own peak RSS and CPU time from
os.wait4; the outputs are checked against plain Python at the inputs that seed draws. A crash
(signal), a failure or a timeout is recorded as n/a with the reason; the suite goes on.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cases import cases, slug  # noqa: E402
import p6_generate  # noqa: E402
import p7_generate  # noqa: E402


def last_line(text, limit=300):
    lines = [l for l in (text or "").strip().splitlines() if l.strip()]
    return lines[-1][:limit] if lines else "no output"


def failure_text(stderr):
    """What went wrong, from a child's stderr: for a crash the Swift runtime's backtrace, its
    "Program crashed" line and the innermost frame (function, file:line); else the last line."""
    lines = (stderr or "").splitlines()
    crashed = next((l.strip().strip("*").strip() for l in lines if "Program crashed:" in l), None)
    if not crashed:
        return last_line(stderr)
    crashed = re.sub(r" at 0x[0-9a-fA-F]+", "", crashed)  # the address differs from run to run
    frame = next((l for l in lines if re.match(r"\s*\d+ ", l) and " in " in l), None)
    where = ""
    if frame:
        m = re.search(r"\s(\S+\(.*?\))(?: \+ \d+)? in \S+ at \S*/([^/\s]+:\d+)", frame)
        where = f" in {m.group(1)} at {m.group(2)}" if m else ""
    return (crashed + where)[:300]


def exit_reason(returncode):
    """'exited 1', or 'killed by SIGSEGV (signal 11)' for a negative return code ('failed to
    start' for None)."""
    if returncode is None:
        return "failed to start"
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal"
        return f"killed by {name} (signal {-returncode})"
    return f"exited {returncode}"


def bench_available(nabla):
    r = subprocess.run([nabla, "bench", "--help"], capture_output=True, text=True)
    text = r.stdout + r.stderr
    return r.returncode == 0 and "--backend" in text, "--seconds" in text


def dim_args(dims):
    out = []
    for k, v in dims.items():
        out += ["--dim", f"{k}={v}"]
    return out


def run_bench(nabla, file, dims, backend, seconds, timeout, threads=1):
    """`nabla bench` on `threads` threads (NABLA_THREADS; the main table is single-threaded, as the
    hand-written C and the peers are)."""
    cmd = [nabla, "bench", file] + dim_args(dims) + ["--backend", backend, "--format", "json"]
    if seconds:
        cmd += ["--seconds", str(seconds)]
    env = dict(os.environ, NABLA_THREADS=str(threads))
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"status": "n/a", "reason": f"nabla bench timed out after {timeout} s", "command": " ".join(cmd)}
    except OSError as e:
        return {"status": "n/a", "reason": f"cannot start nabla: {e}", "command": " ".join(cmd)}
    if r.returncode != 0:
        return {"status": "n/a", "reason": f"nabla bench {exit_reason(r.returncode)}: {failure_text(r.stderr)}", "command": " ".join(cmd)}
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
            return {"status": "n/a", "reason": f"nabla run {exit_reason(r.returncode)}: {failure_text(r.stderr)}", "command": " ".join(cmd)}
        times.append(time.perf_counter() - t0)
    return {"status": "ok", "mode": "run-fallback", "run_wall_s": statistics.median(times), "runs": len(times),
            "command": " ".join(cmd)}


def c_size(nabla, file, dims, timeout=300):
    """Bytes of the C `nabla compile FILE --dim ...` writes to standard output, or the reason it
    failed."""
    cmd = [nabla, "compile", file] + dim_args(dims)
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError) as e:
        return None, f"nabla compile failed: {e}"
    if r.returncode != 0:
        return None, f"nabla compile {exit_reason(r.returncode)}: {failure_text(r.stderr.decode(errors='replace'))}"
    return len(r.stdout), None


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


def run_process(cmd, timeout):
    """Runs cmd once as a child process: wall seconds (from just before the fork to its exit),
    the child's own peak RSS and CPU time (os.wait4), return code, stdout and stderr. On timeout
    the child is killed (SIGKILL) and timed_out is set."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        except OSError as e:
            return {"wall_s": None, "maxrss_kib": None, "cpu_s": None, "returncode": None, "timed_out": False,
                    "stdout": "", "stderr": f"cannot start {cmd[0]}: {e}"}
        fired = threading.Event()

        def kill():
            fired.set()
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
        out.seek(0)
        err.seek(0)
        return {
            "wall_s": wall,
            "maxrss_kib": usage.ru_maxrss,  # kilobytes on Linux
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "returncode": proc.returncode,
            "timed_out": fired.is_set(),
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


def p7_probe_inputs(nabla, p7_dir, kind, seed):
    """The input values `nabla run --seed SEED` draws for a file of this kind, read by running
    the kind's probe file (same inputs, in the same order, output unchanged)."""
    path = os.path.join(p7_dir, f"p7-probe-{kind}.nabla")
    with open(path, "w") as f:
        f.write(p7_generate.probe(kind))
    r = subprocess.run([nabla, "run", path, "--seed", str(seed), "--format", "json"], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"probe {exit_reason(r.returncode)}: {last_line(r.stderr)}")
    data = json.loads(r.stdout)
    return {n: data[f"{n}_value"]["data"][0] for n in p7_generate.INPUTS[kind]}


def run_p7_file(nabla, kind, size, path, inputs, timeout=300):
    """One P7 file: whole `nabla run` processes (3 for sizes up to 10^4, else 1), then
    `nabla bench --backend tcc --seconds 0.2` (not tried when the run timed out)."""
    res = {"case": f"P7 {kind} {size}", "kind": kind, "size": size, "file": os.path.relpath(path, os.path.dirname(HERE))}
    cmd = [nabla, "run", path, "--seed", "1", "--format", "json"]
    repeats = 3 if size <= 10000 else 1
    runs = []
    print(f"[suite] nabla  P7 {kind} {size}: nabla run x{repeats}", file=sys.stderr, flush=True)
    run = {"command": " ".join(cmd), "status": "ok"}
    for _ in range(repeats):
        p = run_process(cmd, timeout)
        if p["timed_out"]:
            run.update(status="n/a", reason=f"nabla run timed out after {timeout} s (killed)")
            break
        if p["returncode"] != 0:
            run.update(status="n/a", reason=f"nabla run {exit_reason(p['returncode'])}: {failure_text(p['stderr'])}",
                       wall_s=p["wall_s"], maxrss_kib=p["maxrss_kib"])
            break
        runs.append(p)
    if run["status"] == "ok":
        run.update(wall_s=statistics.median(p["wall_s"] for p in runs), wall_all_s=[round(p["wall_s"], 4) for p in runs],
                   cpu_s=statistics.median(p["cpu_s"] for p in runs), maxrss_kib=max(p["maxrss_kib"] for p in runs),
                   runs=len(runs))
        try:
            data = json.loads(runs[-1]["stdout"])
            got = {k: v["data"][0] for k, v in data.items()}
            run["outputs"] = got
            if inputs is None:
                run["check"] = "not checked (the probe of the inputs failed)"
            else:
                want = p7_generate.reference(kind, size, inputs)
                bad = [k for k in p7_generate.OUTPUTS[kind] if k not in got or not p7_generate.agrees(got[k], want[k])]
                run["check_ok"] = not bad
                run["check"] = "outputs agree with plain Python" if not bad else \
                    "disagree with plain Python: " + ", ".join(f"{k} = {got.get(k)} (want {want[k]!r})" for k in bad)
                if bad:
                    run["status"] = "wrong"
                    run["reason"] = run["check"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            run.update(status="n/a", reason=f"nabla run printed no readable JSON ({e})")
    res["run"] = run

    if run.get("reason", "").startswith("nabla run timed out"):
        res["bench"] = {"status": "skipped", "reason": "not run: nabla run timed out"}
    else:
        print(f"[suite] nabla  P7 {kind} {size}: nabla bench --backend tcc", file=sys.stderr, flush=True)
        b = run_bench(nabla, path, {}, "tcc", 0.2, timeout=timeout)
        if b["status"] == "ok":
            tcc = next((x for x in b["bench"].get("backends", []) if x.get("backend") == "tcc"), None)
            if tcc and isinstance(tcc.get("compile_us"), (int, float)):
                b.update(compile_us=tcc["compile_us"], compiles=tcc.get("compiles"), nodes=tcc.get("nodes"),
                         forward_nodes=tcc.get("forward_nodes"), call_us=(tcc.get("call_ns") or 0) * 1e-3 or None)
                if tcc.get("nodes"):
                    b["per_node_us"] = tcc["compile_us"] / tcc["nodes"]
            else:
                b.update(status="n/a", reason="nabla bench printed no tcc compile time")
        res["bench"] = b
    return res


def run_p7(nabla, quick, out_dir, sizes=None, kinds=p7_generate.KINDS):
    sizes = sizes or ([1000, 10000] if quick else [1000, 10000, 100000])
    p7_dir = os.path.join(HERE, "p7")
    os.makedirs(p7_dir, exist_ok=True)
    results = []
    for kind in kinds:
        try:
            inputs = p7_probe_inputs(nabla, p7_dir, kind, 1)
            probe_error = None
        except (OSError, RuntimeError, ValueError, KeyError, IndexError, subprocess.TimeoutExpired) as e:
            inputs, probe_error = None, str(e)
        for size in sizes:
            path = p7_generate.write(p7_dir, kind, size)
            res = run_p7_file(nabla, kind, size, path, inputs)
            if probe_error:
                res["probe_error"] = probe_error
            results.append(res)
    with open(os.path.join(out_dir, "p7.json"), "w") as f:
        json.dump({"meta": {"quick": quick, "sizes": sizes, "kinds": list(kinds), "bench_seconds": 0.2, "timeout_s": 300},
                   "results": results}, f, indent=1)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--nabla", required=True)
    ap.add_argument("--c-gcc")
    ap.add_argument("--c-tcc")
    ap.add_argument("--out", required=True)
    ap.add_argument("--problems", help="only these problems of cases.py, comma-separated first words of the case ids "
                    "(P1, P2, P2-hvp, P3, P4, P5, P5-chol, P8); default all")
    ap.add_argument("--no-p6", action="store_true")
    ap.add_argument("--no-p7", action="store_true", help="leave out the deep graphs (P7)")
    ap.add_argument("--only-p7", action="store_true", help="only the deep graphs: writes p7.json alone")
    ap.add_argument("--p7-sizes", help="P7 sizes, comma-separated (default 1000,10000; full run also 100000)")
    ap.add_argument("--p7-kinds", default=",".join(p7_generate.KINDS), help="P7 kinds: recurrence,sum")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    quick = args.quick
    p7_sizes = [int(x) for x in args.p7_sizes.split(",") if x] if args.p7_sizes else None
    p7_kinds = [k for k in args.p7_kinds.split(",") if k]
    if args.only_p7:
        run_p7(args.nabla, quick, args.out, p7_sizes, p7_kinds)
        return
    has_bench, has_seconds = bench_available(args.nabla)
    seconds = (0.1 if quick else 0.5) if has_seconds else None
    if not has_bench:
        print("[suite] `nabla bench` is not available in this nabla: falling back to timing whole `nabla run` "
              "processes (no per-call figures)", file=sys.stderr)

    nabla_results = []
    c_results = []
    problems = [x for x in (args.problems or "").split(",") if x]
    for case in cases(quick, problems):
        file = os.path.join(HERE, "problems", case["file"])
        print(f"[suite] nabla  {case['id']}", file=sys.stderr, flush=True)
        if has_bench:
            res = run_bench(args.nabla, file, case["dims"], "all", seconds, timeout=600)
        else:
            res = run_fallback(args.nabla, file, case["dims"], 3, timeout=600)
        res.update(case=case["id"], file=os.path.relpath(file, os.path.dirname(HERE)), dims=case["dims"])
        if case["problem"] == "p8":
            res["c_bytes"], why = c_size(args.nabla, file, case["dims"])
            if why:
                res["c_bytes_reason"] = why
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

    if not args.no_p7:
        run_p7(args.nabla, quick, args.out, p7_sizes, p7_kinds)

    meta = {"bench_available": has_bench, "quick": quick, "seconds": seconds, "problems": problems or "all"}
    for name, data in (("nabla.json", nabla_results), ("c.json", c_results), ("p6.json", p6_results)):
        with open(os.path.join(args.out, name), "w") as f:
            json.dump({"meta": meta, "results": data}, f, indent=1)


if __name__ == "__main__":
    main()

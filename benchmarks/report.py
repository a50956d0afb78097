#!/usr/bin/env python3
"""Assembles one Markdown table from a benchmark run's raw results; run.sh calls it.

    python3 benchmarks/report.py --raw benchmarks/results/raw --command "benchmarks/run.sh --quick" \
        --json benchmarks/results/latest.json --md benchmarks/results/latest.md

Reads RAW/nabla.json, RAW/c.json, RAW/p6.json, RAW/p7.json (from suite.py) and RAW/peers.json
(from peers/run_peers.py, its key "deep" for P7's peers); any may be missing. P7 (deep graphs)
gets a table of its own, after the main one, and so does P8 (RK4 through a fold: its C size and
compile time for each T, and Nabla against the best peer and the hand-written C). Prints the table and writes it (with the machine and the
command) as Markdown, and everything as JSON. Ratios are "other time / Nabla time" against
Nabla's faster compiled backend (tcc or cc) in the same run: above 1x Nabla is faster.
"""
import argparse
import json
import os
import platform
import subprocess
import time

PEER_COLUMNS = [("jax", "JAX jit"), ("casadi", "CasADi VM"), ("casadi-jit", "CasADi JIT gcc -O3"), ("pytensor", "PyTensor C")]
C_COLUMNS = [("gcc -O3 -march=native", "hand C gcc -O3"), ("tcc", "hand C tcc")]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def t(us):
    """Microseconds to '812 ns', '12.3 us', '1.23 ms', '2.05 s' (three significant digits)."""
    if us is None:
        return "-"
    s = us * 1e-6
    value, unit = (s * 1e9, "ns") if s < 1e-6 else (s * 1e6, "us") if s < 1e-3 else (s * 1e3, "ms") if s < 1 else (s, "s")
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:.{digits}f} {unit}"


def ratio(x):
    if x is None:
        return "-"
    return f"{x:.0f}x" if x >= 100 else f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def sh(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20, shell=isinstance(cmd, str))
        return (r.stdout + r.stderr).strip()
    except Exception:  # noqa: BLE001 - machine facts are best effort
        return ""


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # The vector width kernels use: the CPU's widest, or what NABLA_ISA narrows it to.
    flags = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    widest = "avx512" if "avx512f" in flags else ("avx2" if "avx2" in flags else "baseline")
    order = ["baseline", "avx2", "avx512"]
    asked = os.environ.get("NABLA_ISA", "")
    used = asked if asked in order and order.index(asked) < order.index(widest) else widest
    isa = f"kernels use {used}" + (f" (NABLA_ISA; the CPU has {widest})" if used != widest else "")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = sh(["git", "-C", root, "rev-parse", "--short", "HEAD"])
    # The run's own results (tracked, rewritten by every run) do not make the code dirty.
    dirty = sh(["git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results"])
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "os": f"{platform.system()} {platform.release()}",
        "gcc": sh(["gcc", "--version"]).splitlines()[0] if sh(["gcc", "--version"]) else "",
        "tcc": sh(["tcc", "-v"]).splitlines()[0] if sh(["tcc", "-v"]) else "",
        "swift": (sh(["swift", "--version"]).splitlines() or [""])[0],
        "python": platform.python_version(),
        "commit": commit + ("+uncommitted changes" if dirty else ""),
        "isa": isa,
    }


class Notes:
    """Numbered footnotes for n/a reasons."""

    def __init__(self):
        self.items = []

    def mark(self, text):
        if text not in self.items:
            self.items.append(text)
        return f"[{self.items.index(text) + 1}]"


def nabla_figures(entry):
    """From one nabla.json entry: {backend: {...}} with times in microseconds."""
    out = {}
    if not entry or entry.get("status") != "ok":
        return out
    if entry.get("mode") == "run-fallback":
        out["run"] = {"run_wall_us": entry["run_wall_s"] * 1e6}
        return out
    for b in entry["bench"].get("backends", []):
        name = b.get("backend")
        g = lambda k, scale=1.0: (b.get(k) * scale) if isinstance(b.get(k), (int, float)) else None
        out[name] = {
            "compile_us": g("compile_us"),
            "call_us": g("call_ns", 1e-3),
            "forward_us": g("forward_ns", 1e-3),
            "ratio": g("gradient_ratio"),
            "workspace_bytes": b.get("workspace_bytes"),
            "nodes": b.get("nodes"),
        }
    return out


def mem(kib):
    """Kilobytes (ru_maxrss) to '84.2 MiB' or '1.23 GiB'."""
    if kib is None:
        return "-"
    mib = kib / 1024
    if mib >= 1024:
        return f"{mib / 1024:.2f} GiB"
    return f"{mib:.0f} MiB" if mib >= 100 else f"{mib:.1f} MiB"


def size_label(n):
    """1000 -> '10^3', 3000 -> '3x10^3', 1234 -> '1234'."""
    for e in range(9, 1, -1):
        for m in range(1, 10):
            if n == m * 10 ** e:
                return f"10^{e}" if m == 1 else f"{m}x10^{e}"
    return str(n)


# The targets of issue 9 for the deep recurrence.
P7_TARGET_WALL_S, P7_TARGET_WALL_MAX_S, P7_TARGET_RSS_KIB, P7_TARGET_GROWTH = 2.0, 10.0, 2 * 1024 * 1024, 15.0


def p7_section(p7, peers, notes):
    """The "Deep graphs (P7)" table, its legend lines and its records for the JSON; None
    without P7 results."""
    deep = (peers or {}).get("deep") or {}
    entries = {(e["kind"], e["size"]): e for e in (p7 or {}).get("results", [])}
    peer_rows = {}
    for r in deep.get("results", []):
        peer_rows[("recurrence", r["steps"], r["peer"])] = r
    if not entries and not peer_rows:
        return None
    keys = sorted(set(entries) | {(k, n) for k, n, _ in peer_rows}, key=lambda kn: (kn[0] != "recurrence", kn[0], kn[1]))
    head = ["case", "nodes", "tcc compile (compiles)", "per node", "growth ×10 size: compile / run cpu",
            "end-to-end `nabla run`", "peak memory", "CasADi SX (VM): construct; call; peak", "JAX jit: first call; call; peak"]
    rows, records = [], []

    def ok_figures(e):
        b = (e or {}).get("bench") or {}
        r = (e or {}).get("run") or {}
        compile_us = b.get("compile_us") if b.get("status") == "ok" else None
        cpu = r.get("cpu_s") if r.get("status") == "ok" else None
        return compile_us, cpu

    for kind, n in keys:
        e = entries.get((kind, n))
        label = f"P7 {kind} {size_label(n)}" + (" steps" if kind == "recurrence" else " terms")
        row = [label]
        record = {"case": f"P7 {kind} {n}", "kind": kind, "size": n}
        if e is None:
            row += ["-"] * 6
        else:
            b, r = e.get("bench") or {}, e.get("run") or {}
            record["bench"] = {k: b.get(k) for k in ("status", "reason", "compile_us", "compiles", "nodes", "forward_nodes",
                                                     "per_node_us", "call_us")}
            record["run"] = {k: r.get(k) for k in ("status", "reason", "wall_s", "cpu_s", "maxrss_kib", "runs", "check")}
            row.append(str(b["nodes"]) if b.get("nodes") else "-")
            if b.get("status") == "ok":
                row.append(f"{t(b['compile_us'])} ({b.get('compiles')})")
                row.append(t(b.get("per_node_us")))
            else:
                word = "skip" if b.get("status") == "skipped" else "n/a"
                row += [f"{word} {notes.mark(f'Nabla {label}, nabla bench: ' + str(b.get('reason')))}", "-"]
            compile_us, cpu = ok_figures(e)
            smaller = entries.get((kind, n // 10)) if n % 10 == 0 else None
            c0, cpu0 = ok_figures(smaller)
            growth_c = compile_us / c0 if compile_us and c0 else None
            growth_w = cpu / cpu0 if cpu and cpu0 else None
            record["growth_compile"], record["growth_run_cpu"] = growth_c, growth_w
            row.append("-" if smaller is None else f"{ratio(growth_c)} / {ratio(growth_w)}")
            if r.get("status") == "ok":
                runs = f", median of {r['runs']}" if r.get("runs", 1) > 1 else ""
                row.append(f"{t(r['wall_s'] * 1e6)} (cpu {t(r['cpu_s'] * 1e6)}{runs})")
                row.append(mem(r.get("maxrss_kib")))
            else:
                word = "wrong" if r.get("status") == "wrong" else "n/a"
                row += [f"{word} {notes.mark(f'Nabla {label}, nabla run: ' + str(r.get('reason')))}", "-"]
        record["peers"] = {}
        for peer in ("casadi", "jax"):
            res = peer_rows.get((kind, n, peer))
            if res is None:
                row.append("-")
                continue
            record["peers"][peer] = {k: res.get(k) for k in ("status", "reason", "construct_s", "construct_cpu_s", "graph_s",
                                                            "gradient_s", "function_s", "first_call_s", "first_call_cpu_s",
                                                            "call_us", "maxrss_kib", "version")}
            if res["status"] != "ok":
                word = "wrong" if res["status"] == "wrong" else "skip" if res["status"] == "skipped" else "n/a"
                why = f"{res.get('label', peer)} {label}: {res.get('reason')}"
                row.append(f"{word} {notes.mark(why)}")
                continue
            key = "construct" if peer == "casadi" else "first_call"
            cpu = res.get(f"{key}_cpu_s")
            cpu_text = f" (cpu {t(cpu * 1e6)})" if cpu is not None else ""
            row.append(f"{t(res[f'{key}_s'] * 1e6)}{cpu_text}; {t(res['call_us'])}; peak {mem(res.get('maxrss_kib'))}")
        rows.append(row)
        records.append(record)

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    legend = [
        "P7 rows: deep graphs from `benchmarks/p7_generate.py` (issue 9). *recurrence N steps*: y_k = 0.999 sin(y_(k-1)) + "
        "0.001 a, one binding a step, output y_N, `grad f wrt y0, a`. *sum T terms*: `output f = sin(x)*0 + ... + "
        "sin(x)*(T-1)` on one line (a left-deep chain of T terms), `grad f wrt x`.",
        "nodes: node count of the whole graph (value and gradient) as `nabla bench` reports it. tcc compile: median "
        "in-process compile (source text to callable TinyCC kernel) from `nabla bench FILE --backend tcc --seconds 0.2 "
        "--format json`, with the number of compiles it took the median of (1 when one compile exceeds 0.2 s); per node: "
        "that compile ÷ nodes. growth ×10 size: this row's tcc compile and end-to-end CPU time ÷ those of the same kind at "
        "a tenth of the size (CPU time, as a busy machine inflates it less than wall time) (linear cost is 10x; the issue's target is at most 15x from 10^4 to 10^5 steps).",
        "end-to-end: wall time of one whole `nabla run FILE --seed 1 --format json` process (parse, differentiate, "
        "compile with TinyCC, one call, print), timed from the suite around fork and exit, median of 3 processes up to "
        "10^4 (one at 10^5); in parentheses that process's own CPU time (user + system, os.wait4), which a busy machine "
        "inflates less than the wall time. peak memory: that process's maximum resident set (ru_maxrss, the largest of the "
        "runs). Every run's outputs are checked against plain Python at the inputs seed 1 draws. A crash, failure or "
        "timeout (300 s) is n/a with the reason.",
    ]
    if deep:
        legend.append(
            "P7 peers (recurrence only, each in its own process, from Python, "
            + str(deep.get("threads", "")) + "): CasADi SX: construct = building the unrolled SX expression in a Python "
            "loop, `ca.gradient` wrt (y0, a) and `ca.Function` (its virtual machine, no native code), then the median "
            "call; JAX: first call = `jax.jit(jax.value_and_grad(f))` of the unrolled Python loop, its first call "
            "(trace + XLA compile + the call), then the median call. In parentheses the CPU time of the construction or "
            "first call (time.process_time, all the process's threads). peak: the peer process's maximum resident set "
            "(Python and the library included). Outputs checked against plain Python. The issue quotes, on this "
            "machine, CasADi 0.84 s at 10^4 and 11.6 s at 10^5 steps, JAX 5.1 s at 10^3 and 21 s at 3x10^3.")
    rec = {n: e for (k, n), e in entries.items() if k == "recurrence"}
    big = rec.get(100000)
    if big:
        r = big.get("run") or {}
        w = r.get("wall_s") if r.get("status") == "ok" else None
        c, cpu = ok_figures(big)
        c4, cpu4 = ok_figures(rec.get(10000))
        parts = []
        if w is not None:
            verdict = "met" if w < P7_TARGET_WALL_S else "within the limit" if w <= P7_TARGET_WALL_MAX_S else "not met"
            parts.append(f"end to end {t(w * 1e6)} (target under 2 s, 10 s at most: {verdict})")
        else:
            parts.append("end to end n/a (not met)")
        if r.get("maxrss_kib"):
            parts.append(f"peak memory {mem(r['maxrss_kib'])} (target under 2 GiB: "
                         f"{'met' if r['maxrss_kib'] < P7_TARGET_RSS_KIB else 'not met'})")
        for what, x, x4 in (("tcc compile", c, c4), ("end-to-end CPU time", cpu, cpu4)):
            if x and x4:
                parts.append(f"{what} 10^5 ÷ 10^4 {ratio(x / x4)} (target at most 15x: "
                             f"{'met' if x / x4 <= P7_TARGET_GROWTH else 'not met'})")
        legend.append("Issue 9's targets for the 10^5-step recurrence with its gradient, in this run: " + "; ".join(parts) + ".")
    return "\n".join(lines), legend, records


def p8_section(nabla, c, peers):
    """The "RK4 through a fold (P8)" table and its legend; None without P8 results."""
    entries = [e for e in nabla.get("results", []) if e.get("case", "").startswith("P8")]
    if not entries:
        return None
    head = ["case", "Nabla C bytes", "Nabla compile tcc / cc", "Nabla per call tcc / cc", "Nabla per step",
            "hand C gcc -O3 / tcc", "best peer", "Nabla ÷ best peer", "Nabla ÷ hand C gcc -O3"]
    rows = []
    for entry in entries:
        case = entry["case"]
        fig = nabla_figures(entry)
        best, best_backend = best_compiled(fig)
        g = lambda b, k: fig.get(b, {}).get(k)
        row = [case, str(entry["c_bytes"]) if entry.get("c_bytes") else "-"]
        if best is None:
            row += ["-", "-", "-"]
        else:
            row.append(f"{t(g('tcc', 'compile_us'))} / {t(g('cc', 'compile_us'))}")
            row.append(" / ".join(f"**{t(g(b, 'call_us'))}**" if b == best_backend else t(g(b, "call_us"))
                                  for b in ("tcc", "cc")))
            steps = (entry.get("dims") or {}).get("T")
            row.append(t(best / steps) if steps else "-")
        hand = {r["compiler"]: r.get("call_us") for r in c.get("results", []) if r["case"] == case and r.get("status") == "ok"}
        row.append(f"{t(hand.get('gcc -O3 -march=native'))} / {t(hand.get('tcc'))}")
        ok_peers = [(r["call_us"], r["label"]) for r in (peers or {}).get("results", [])
                    if r["case"] == case and r["status"] == "ok" and r.get("call_us")]
        top = min(ok_peers) if ok_peers else None
        row.append(f"{top[1]}: {t(top[0])}" if top else "-")
        row.append(ratio(best / top[0]) if top and best else "-")
        gcc = hand.get("gcc -O3 -march=native")
        row.append(ratio(best / gcc) if gcc and best else "-")
        rows.append(row)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    legend = [
        "P8 rows: a damped oscillator x'' + c x' + k x = 0, s = [x, v], p = [k, c], integrated by classical RK4 for T "
        "steps of dt = 0.01 with `fold(rk4, s0, T)` (`benchmarks/problems/p8-rk4.nabla`), L = sum(s_T^2), value and "
        "gradient wrt s0 and p. Nabla C bytes: the size of `nabla compile FILE --dim T=...` (the loop is one C loop "
        "calling the step's function, so the size and the compile time do not grow with T). Nabla per step: Nabla's "
        "faster compiled backend ÷ T. The peers write the loop their own way: JAX `jax.lax.scan` under "
        "`jax.jit(jax.value_and_grad)`; CasADi one RK4 step as an SX Function, `Function.fold(T)`, `ca.reverse` of "
        "the folded call (VM, and its gcc -O3 JIT); PyTensor `pytensor.scan` and `pytensor.grad`. Best peer: the "
        "fastest peer whose result passed its check (the value and the whole gradient against plain-Python "
        "forward-mode tangents, relative error under 1e-8). Nabla ÷ x: Nabla's faster compiled backend ÷ x, "
        "below 1x Nabla is faster (the inverse of the main table's ratios).",
    ]
    return "\n".join(lines), legend


def best_compiled(fig):
    cands = [(fig[b]["call_us"], b) for b in ("tcc", "cc") if b in fig and fig[b].get("call_us")]
    return min(cands) if cands else (None, None)


def build(raw, command):
    nabla = load(os.path.join(raw, "nabla.json")) or {"meta": {}, "results": []}
    c = load(os.path.join(raw, "c.json")) or {"results": []}
    p6 = load(os.path.join(raw, "p6.json")) or {"results": []}
    p7 = load(os.path.join(raw, "p7.json"))
    peers = load(os.path.join(raw, "peers.json"))
    notes = Notes()
    bench_ok = nabla.get("meta", {}).get("bench_available", True)
    quick = nabla.get("meta", {}).get("quick")

    head = ["case", "Nabla compile tcc / cc", "Nabla per call interp / tcc / cc", "grad÷fwd tcc / cc"]
    head += [label for _, label in C_COLUMNS] + [label for _, label in PEER_COLUMNS]
    rows = []
    combined = []
    for entry in nabla["results"]:
        case = entry["case"]
        fig = nabla_figures(entry)
        best, best_backend = best_compiled(fig)
        row = [case]
        if entry.get("status") != "ok":
            mark = notes.mark(f"Nabla {case}: {entry.get('reason')}")
            row += [f"n/a {mark}"] * 3
        elif "run" in fig:
            row += [f"{t(fig['run']['run_wall_us'])} whole `nabla run` process", "n/a (no `nabla bench`)", "-"]
        else:
            g = lambda b, k: fig.get(b, {}).get(k)
            row.append(f"{t(g('tcc', 'compile_us'))} / {t(g('cc', 'compile_us'))}")
            calls = []
            for b in ("interp", "tcc", "cc"):
                cell = t(g(b, "call_us"))
                calls.append(f"**{cell}**" if b == best_backend else cell)
            row.append(" / ".join(calls))
            row.append(f"{ratio(g('tcc', 'ratio'))} / {ratio(g('cc', 'ratio'))}")
        record = {"case": case, "nabla": fig, "nabla_best_us": best, "nabla_best_backend": best_backend, "c": {}, "peers": {}}
        if "c_bytes" in entry:
            record["nabla_c_bytes"] = entry["c_bytes"]
        for key, label in C_COLUMNS:
            res = next((r for r in c["results"] if r["case"] == case and r["compiler"] == key), None)
            if not res:
                row.append("-")
                continue
            if res.get("status") != "ok":
                row.append(f"n/a {notes.mark(f'{label}: ' + str(res.get('reason')))}")
                continue
            x = res["call_us"] / best if best else None
            row.append(f"{t(res['call_us'])} ({ratio(x)})")
            record["c"][key] = {"call_us": res["call_us"], "forward_us": res.get("forward_us"), "ratio_to_nabla": x}
        for key, label in PEER_COLUMNS:
            if peers is None:
                row.append(f"n/a {notes.mark('peers: no results (run_peers.py did not write peers.json)')}")
                continue
            res = next((r for r in peers["results"] if r["case"] == case and r["peer"] == key), None)
            if res is None:
                row.append("-")
                continue
            if res["status"] != "ok":
                word = "wrong" if res["status"] == "wrong" else "skip" if res["status"] == "skipped" else "n/a"
                row.append(f"{word} {notes.mark(f'{label}: ' + str(res.get('reason')))}")
                record["peers"][key] = {"status": res["status"], "reason": res.get("reason")}
                continue
            x = res["call_us"] / best if best else None
            if "first_call_s" in res:
                extra = f"first call {t(res['first_call_s'] * 1e6)}"
            else:
                extra = f"compile {t(res['compile_s'] * 1e6)}"
                if res.get("compile_cache"):
                    extra += f" ({res['compile_cache']} cache)"
            row.append(f"{t(res['call_us'])} ({ratio(x)}); {extra}")
            record["peers"][key] = {k: res.get(k) for k in ("call_us", "forward_us", "first_call_s", "compile_s", "compile_cache", "version")}
            record["peers"][key]["ratio_to_nabla"] = x
        rows.append(row)
        combined.append(record)

    # P6: one row per size, the backends of its (one or more) bench runs merged.
    by_size = {}
    for entry in p6["results"]:
        merged = by_size.setdefault(entry["size"], {"status": "ok", "fig": {}, "reasons": []})
        if entry.get("status") != "ok":
            merged["reasons"].append(str(entry.get("reason")))
        merged["fig"].update(nabla_figures(entry))
    for size, merged in sorted(by_size.items()):
        fig = merged["fig"]
        nodes = next((v.get("nodes") for v in fig.values() if v.get("nodes")), None)
        label = f"P6 {size} bindings" + (f" ({nodes} nodes)" if nodes else "")
        row = [label]
        if not fig:
            row += [f"n/a {notes.mark(f'Nabla {label}: ' + '; '.join(merged['reasons']))}", "-", "-"]
        elif "run" in fig:
            row += [f"{t(fig['run']['run_wall_us'])} whole `nabla run` process", "-", "-"]
        else:
            g = lambda b, k: fig.get(b, {}).get(k)
            compile_cell = f"{t(g('tcc', 'compile_us'))} / {t(g('cc', 'compile_us'))}"
            if "interp" in fig:
                compile_cell += f" (front end {t(g('interp', 'compile_us'))})"
            row.append(compile_cell)
            row.append(" / ".join(t(g(b, "call_us")) for b in ("interp", "tcc", "cc")))
            row.append(f"{ratio(g('tcc', 'ratio'))} / {ratio(g('cc', 'ratio'))}")
        row += ["-"] * (len(C_COLUMNS) + len(PEER_COLUMNS))
        rows.append(row)
        combined.append({"case": label, "nabla": fig})

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    table = "\n".join(lines)
    legend = [
        "Times are medians per call of value and derivatives together (P2-hvp: value and Hessian-vector "
        "product), f64. Nabla: `nabla bench`, in process, unchecked calls on preallocated buffers; the "
        "faster compiled backend in bold. Ratios in parentheses are that column's time ÷ Nabla's faster "
        "compiled backend, from this same run: above 1x Nabla is faster. Peers are timed from Python "
        "(their host language), inputs already converted to their types. grad÷fwd is the value-and-"
        "derivative time over the forward-only time. Compile: source text to callable kernel, in process."
    ]
    if peers and peers.get("threads"):
        legend.append(f"Peers' threads: {peers['threads']}; peers' versions: "
                      + ", ".join(sorted({f"{r['label']} {r['version']}" for r in peers['results'] if r.get('version')})) + ".")
    if any(r[0].startswith("P5-chol") for r in rows):
        legend.append("P5-chol rows: P5 written the way GP libraries write it (`benchmarks/problems/p5-gp-cholesky.nabla`): "
                      "L = cholesky(C), alpha = cho_solve(L, y), log|C| = 2 sum log diag L, next to the P5 rows' LU form "
                      "(solve and logdet); same value and gradient. The hand-written C of both forms is the same Cholesky "
                      "code (`benchmarks/c/problems.c`, P5). Peers: JAX `jnp.linalg.cholesky` and "
                      "`jax.scipy.linalg.cho_solve`; PyTensor `pytensor.tensor.linalg` cholesky and cho_solve; CasADi "
                      "has `chol` for SX only, so its form is an SX graph with the factor unrolled into scalar nodes "
                      "(not run at n = 400).")
    legend.append("P6 rows: compile time of random elementwise-and-reduction graphs (value and gradient wrt every input), "
                  "front end = parse and differentiate (the interp backend's compile); peers are not run on P6.")
    if not bench_ok:
        legend.append("**`nabla bench` was not available: Nabla's figures are whole `nabla run` processes "
                      "(parse, differentiate, emit, compile, one call, print), so there are no per-call figures or ratios.**")
    if not rows:  # e.g. `suite.py --only-p7`: no P1-P6 results, no main table
        table, legend = None, []
    section = p7_section(p7, peers, notes)
    if section:
        combined += section[2]
        if quick is None:
            quick = (p7 or {}).get("meta", {}).get("quick")
    rk4 = p8_section(nabla, c, peers)
    foot = [f"{i + 1}. {text}" for i, text in enumerate(notes.items)]
    return table, legend, foot, combined, quick, section, rk4


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", required=True)
    ap.add_argument("--command", default="benchmarks/run.sh")
    ap.add_argument("--json")
    ap.add_argument("--md")
    ap.add_argument("--elapsed", type=float, help="seconds the whole run took")
    args = ap.parse_args()
    table, legend, foot, combined, quick, section, rk4 = build(args.raw, args.command)
    m = machine()
    kind = "quick run" if quick else "full run"
    header = [
        f"Nabla benchmarks, {kind}: `{args.command}`, {time.strftime('%Y-%m-%d %H:%M %Z')}"
        + (f", {args.elapsed / 60:.1f} min" if args.elapsed else ""),
        f"Machine: {m['nproc']} cores, {m['cpu']}, {m.get('isa', '')}, {m['os']}; {m['gcc']}; {m['tcc']}; {m['swift']}; "
        f"Python {m['python']}; commit {m['commit']}",
    ]
    parts = ["\n".join(header)] + ([table, "\n\n".join(legend)] if table else [])
    if section:
        parts += ["### Deep graphs (P7)", section[0], "\n\n".join(section[1])]
    if rk4:
        parts += ["### RK4 through a fold (P8)", rk4[0], "\n\n".join(rk4[1])]
    md = "\n\n".join(parts + (["\n".join(foot)] if foot else [])) + "\n"
    print(md)
    if args.md:
        with open(args.md, "w") as f:
            f.write(md)
    if args.json:
        peers = load(os.path.join(args.raw, "peers.json"))
        with open(args.json, "w") as f:
            json.dump({"command": args.command, "quick": quick, "machine": m, "elapsed_s": args.elapsed,
                       "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cases": combined,
                       "peer_versions": sorted({(r["peer"], r.get("version")) for r in (peers or {}).get("results", [])
                                                if r.get("version")}),
                       "notes": foot}, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Assembles one Markdown table from a benchmark run's raw results; run.sh calls it.

    python3 benchmarks/report.py --raw benchmarks/results/raw --command "benchmarks/run.sh --quick" \
        --json benchmarks/results/latest.json --md benchmarks/results/latest.md

Reads RAW/nabla.json, RAW/c.json, RAW/p6.json (from suite.py) and RAW/peers.json (from
peers/run_peers.py); any may be missing. Prints the table and writes it (with the machine and the
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


def best_compiled(fig):
    cands = [(fig[b]["call_us"], b) for b in ("tcc", "cc") if b in fig and fig[b].get("call_us")]
    return min(cands) if cands else (None, None)


def build(raw, command):
    nabla = load(os.path.join(raw, "nabla.json")) or {"meta": {}, "results": []}
    c = load(os.path.join(raw, "c.json")) or {"results": []}
    p6 = load(os.path.join(raw, "p6.json")) or {"results": []}
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
    legend.append("P6 rows: compile time of random elementwise-and-reduction graphs (value and gradient wrt every input), "
                  "front end = parse and differentiate (the interp backend's compile); peers are not run on P6.")
    if not bench_ok:
        legend.append("**`nabla bench` was not available: Nabla's figures are whole `nabla run` processes "
                      "(parse, differentiate, emit, compile, one call, print), so there are no per-call figures or ratios.**")
    foot = [f"{i + 1}. {text}" for i, text in enumerate(notes.items)]
    return table, legend, foot, combined, quick


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", required=True)
    ap.add_argument("--command", default="benchmarks/run.sh")
    ap.add_argument("--json")
    ap.add_argument("--md")
    ap.add_argument("--elapsed", type=float, help="seconds the whole run took")
    args = ap.parse_args()
    table, legend, foot, combined, quick = build(args.raw, args.command)
    m = machine()
    kind = "quick run" if quick else "full run"
    header = [
        f"Nabla benchmarks, {kind}: `{args.command}`, {time.strftime('%Y-%m-%d %H:%M %Z')}"
        + (f", {args.elapsed / 60:.1f} min" if args.elapsed else ""),
        f"Machine: {m['nproc']} cores, {m['cpu']}, {m['os']}; {m['gcc']}; {m['tcc']}; {m['swift']}; "
        f"Python {m['python']}; commit {m['commit']}",
    ]
    md = "\n\n".join(["\n".join(header), table, "\n\n".join(legend)] + (["\n".join(foot)] if foot else [])) + "\n"
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

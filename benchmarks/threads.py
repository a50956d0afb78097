"""Nabla on one thread and on every core, for the problems large enough to split (issue 12).

    python3 benchmarks/threads.py [--nabla .build/release/nabla] [--threads N] [--repeats 3] [--out DIR]

For each case, `nabla bench --backend tcc,cc` with NABLA_THREADS=1 and NABLA_THREADS=N (default: the
processors online), interleaved and repeated; prints the medians and the speed-ups as a Markdown table
and writes them to DIR/threads.md and DIR/threads.json (DIR: benchmarks/results).

What the runtime splits today: matrix products of more than about a million multiply-adds, by rows
(P4 at batch 1024, P5's X X^T). Sums over many elements (P2, P3's loss and gradient) are one ordered
chain of additions, which Nabla keeps so that every tier gives the interpreter's bits; they run on
one thread, and the table shows it.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

CASES = [
    # id, graph file, dims
    ("P2 N=10^6", "p2-rosenbrock.nabla", {"N": 1000000}),
    ("P3 10^5x10", "p3-least-squares.nabla", {"N": 100000, "D": 10}),
    ("P4 1024x784-128-10", "p4-mlp.nabla", {"batch": 1024, "n_in": 784, "n_hidden": 128, "n_classes": 10}),
    ("P5 n=1000", "p5-gp.nabla", {"n": 1000}),
]


def bench(nabla, file, dims, backend, threads, seconds):
    cmd = [nabla, "bench", file, "--backend", backend, "--format", "json", "--seconds", str(seconds)]
    for k, v in dims.items():
        cmd += ["--dim", f"{k}={v}"]
    env = dict(os.environ, NABLA_THREADS=str(threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    data = json.loads(r.stdout)
    return data["backends"][0]["call_ns"] / 1e3, data.get("instruction_set", "?")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nabla", default=os.path.join(here, "..", ".build", "release", "nabla"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--out", default=os.path.join(here, "results"))
    args = ap.parse_args()
    rows, isa = [], "?"
    for cid, file, dims in CASES:
        path = os.path.join(here, "problems", file)
        for backend in ["tcc", "cc"]:
            times = {1: [], args.threads: []}
            for _ in range(args.repeats):
                for t in times:
                    us, isa = bench(args.nabla, path, dims, backend, t, args.seconds)
                    times[t].append(us)
            one, many = statistics.median(times[1]), statistics.median(times[args.threads])
            rows.append({"case": cid, "backend": backend, "one_thread_us": one, "threads_us": many, "speedup": one / many,
                         "samples": {str(k): v for k, v in times.items()}})
            print(f"[threads] {cid} {backend}: {one:.0f} us on 1 thread, {many:.0f} us on {args.threads}", file=sys.stderr, flush=True)
    lines = [f"Nabla, value and gradient per call, 1 thread against {args.threads} (NABLA_THREADS), instruction set {isa}; "
             f"medians of {args.repeats} interleaved `nabla bench` runs.", "",
             f"| case | tier | 1 thread | {args.threads} threads | speed-up |", "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['backend']} | {r['one_thread_us']:.0f} us | {r['threads_us']:.0f} us | {r['speedup']:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "threads.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "threads.json"), "w") as f:
        json.dump({"threads": args.threads, "instruction_set": isa, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

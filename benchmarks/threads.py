"""Nabla on one thread and on every core, for the problems large enough to split (issue 12).

    python3 benchmarks/threads.py [--nabla .build/release/nabla] [--threads N] [--repeats 3] [--peers | --peers-from JSON] [--out DIR]

For each case, `nabla bench --backend tcc,cc` with NABLA_THREADS=1 and NABLA_THREADS=N (default: the
processors online), interleaved and repeated; prints the medians and the speed-ups as a Markdown table
and writes them to DIR/threads.md and DIR/threads.json (DIR: benchmarks/results). --peers also runs
JAX, CasADi and PyTensor on the same cases with their default threading (peers/run_peers.py
--thread-cases --threads default, into benchmarks/.venv) and sets the best of them beside Nabla on
all cores.

What the runtime splits: matrix products of more than half a million multiply-adds, by rows (P4 at
batch 1024, P5's X X^T, P3's Phi theta; not P3's gradient e^T Phi, a single row); and fused loops over more than 16,384 elements by blocks of rows (P2, P3's loss, P4's
elementwise layers). A sum into one element adds its blocks' partial sums in block order on every
path, the interpreter's included, so results are the same bits for any thread count.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

from cases import THREAD_CASES

# id, graph file, dims
CASES = [(cid, file, dims) for cid, _, file, dims, _, _ in THREAD_CASES]


def peers_with_default_threads(here, out, reuse=None):
    """The fastest peer per case with its default threading, by case id: (label, us), or None.
    `reuse`: the JSON of an earlier run of the peers instead of a new one."""
    path = reuse or os.path.join(out, "threads-peers.json")
    cmd = [sys.executable, os.path.join(here, "peers", "run_peers.py"), "--thread-cases", "--threads", "default",
           "--peers", "jax,casadi,pytensor", "--out", path]
    if not reuse:
        print("[threads] peers: " + " ".join(cmd), file=sys.stderr, flush=True)
        if subprocess.run(cmd).returncode != 0:
            print("[threads] warning: run_peers.py failed; no peer column", file=sys.stderr)
            return {}
    with open(path) as f:
        rows = json.load(f)["results"]
    best = {}
    for r in rows:
        if r.get("status") != "ok":
            continue
        if r["case"] not in best or r["call_us"] < best[r["case"]][1]:
            best[r["case"]] = (r.get("label", r["peer"]), r["call_us"])
    return best


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
    ap.add_argument("--peers", action="store_true", help="also the peers with their default threading")
    ap.add_argument("--peers-from", metavar="JSON", help="the peers' figures from this earlier --peers run (its threads-peers.json)")
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
    args.peers = args.peers or bool(args.peers_from)
    best = peers_with_default_threads(here, args.out, args.peers_from) if args.peers else {}
    lines = [f"Nabla, value and gradient per call, 1 thread against {args.threads} (NABLA_THREADS), instruction set {isa}; "
             f"medians of {args.repeats} interleaved `nabla bench` runs."
             + (" Best peer: the fastest of JAX, CasADi and PyTensor with their default threading, result checked." if args.peers else ""),
             "", f"| case | tier | 1 thread | {args.threads} threads | speed-up |" + (" best peer, default threads | peer ÷ Nabla |" if args.peers else ""),
             "|---|---|---:|---:|---:|" + ("---|---:|" if args.peers else "")]
    for r in rows:
        line = f"| {r['case']} | {r['backend']} | {r['one_thread_us']:.0f} us | {r['threads_us']:.0f} us | {r['speedup']:.2f}x |"
        if args.peers:
            peer = best.get(r["case"])
            r["best_peer"] = {"label": peer[0], "call_us": peer[1]} if peer else None
            line += f" {peer[0]} {peer[1]:.0f} us | {peer[1] / r['threads_us']:.2f}x |" if peer else " n/a | |"
        lines.append(line)
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "threads.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "threads.json"), "w") as f:
        json.dump({"threads": args.threads, "instruction_set": isa, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

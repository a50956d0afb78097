#!/usr/bin/env python3
"""Nabla's whole kernels with and without OpenBLAS (and, optionally, an older nabla), interleaved.

For each problem and instruction set, runs `nabla bench --backend cc --threads 1 --format json`
once per variant per round, rounds alternating the variants, and prints the median time per call
(value and gradient) and forward-only time of each, and the ratio to the first variant.

    python3 benchmarks/blas/ab.py --nabla .build/release/nabla [--old /tmp/old/.build/release/nabla] [--rounds 5]
"""
import argparse
import json
import os
import statistics
import subprocess

PROBLEMS = [
    ("P4", "benchmarks/problems/p4-mlp.nabla", []),
    ("P5-chol n=400", "benchmarks/problems/p5-gp-cholesky.nabla", ["--dim", "n=400"]),
    ("P5 n=400", "benchmarks/problems/p5-gp.nabla", ["--dim", "n=400"]),
    ("P5-chol n=1000", "benchmarks/problems/p5-gp-cholesky.nabla", ["--dim", "n=1000"]),
]


def bench(nabla, file, dims, isa, blas, seconds):
    env = dict(os.environ, NABLA_ISA=isa, NABLA_BLAS="openblas" if blas else "off")
    out = subprocess.run([nabla, "bench", file, *dims, "--backend", "cc", "--threads", "1", "--seconds", str(seconds),
                          "--format", "json"], env=env, check=True, capture_output=True, text=True).stdout
    row = json.loads(out)["backends"][0]
    return row["call_ns"] / 1e3, row.get("forward_ns", 0) / 1e3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nabla", default=".build/release/nabla")
    parser.add_argument("--old", help="an older nabla, timed first (without BLAS)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--isa", default="avx512,avx2")
    parser.add_argument("--problems", default=",".join(p[0] for p in PROBLEMS))
    args = parser.parse_args()
    variants = ([("old", args.old, False)] if args.old else []) + [("runtime", args.nabla, False), ("OpenBLAS", args.nabla, True)]
    wanted = args.problems.split(",")
    print("| problem | ISA | " + " | ".join(f"{v[0]} call / forward" for v in variants) + " | " +
          " | ".join(f"{v[0]} / {variants[0][0]}" for v in variants[1:]) + " |")
    print("|---|---|" + "---:|" * (2 * len(variants) - 1))
    for name, file, dims in PROBLEMS:
        if name not in wanted:
            continue
        for isa in args.isa.split(","):
            times = {v[0]: [] for v in variants}
            for _ in range(args.rounds):
                for label, nabla, blas in variants:
                    times[label].append(bench(nabla, file, dims, isa, blas, args.seconds))
            medians = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in times.items()}
            base = medians[variants[0][0]][0]
            cells = [f"{medians[v[0]][0]:.0f} / {medians[v[0]][1]:.0f} us" for v in variants]
            ratios = [f"{medians[v[0]][0] / base:.2f}" for v in variants[1:]]
            print(f"| {name} | {isa} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |", flush=True)


if __name__ == "__main__":
    main()

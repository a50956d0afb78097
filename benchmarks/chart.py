#!/usr/bin/env python3
"""Draws the benchmark table as a chart: per problem (P1-P5, P5-chol and P8), the time per call of value and
derivatives of Nabla's two tiers, the hand-written C built with gcc -O3 and each peer, on a log
scale (shorter is faster), from the JSON benchmarks/report.py writes.

    benchmarks/.venv/bin/python benchmarks/chart.py [--json benchmarks/results/latest.json] [--out benchmarks/results/latest.png]

Needs matplotlib (benchmarks/peers/requirements.txt installs it into benchmarks/.venv with the
peers). A missing figure (a peer that was not run, or failed) leaves a gap.
"""
import argparse
import json
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# (label, how to read the figure from a case), in the order drawn.
SERIES = [
    ("Nabla, TinyCC", lambda c: c.get("nabla", {}).get("tcc", {}).get("call_us")),
    ("Nabla, cc -O3", lambda c: c.get("nabla", {}).get("cc", {}).get("call_us")),
    ("hand C, gcc -O3", lambda c: c.get("c", {}).get("gcc -O3 -march=native", {}).get("call_us")),
    ("JAX jit", lambda c: c.get("peers", {}).get("jax", {}).get("call_us")),
    ("CasADi VM", lambda c: c.get("peers", {}).get("casadi", {}).get("call_us")),
    ("PyTensor C", lambda c: c.get("peers", {}).get("pytensor", {}).get("call_us")),
]
COLOURS = ["#1f5fa8", "#6aa5e0", "#555555", "#d9822b", "#3c9a5f", "#a8437a"]


def figure(value):
    return value if isinstance(value, (int, float)) and value > 0 and math.isfinite(value) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.png"))
    args = ap.parse_args()
    with open(args.json) as f:
        data = json.load(f)
    cases = [c for c in data["cases"] if c["case"].split()[0] in ("P1", "P2", "P2-hvp", "P3", "P4", "P5", "P5-chol", "P8")]
    height = 0.8 / len(SERIES)
    fig, ax = plt.subplots(figsize=(9, 0.62 * len(cases) + 1.6))
    for k, (label, read) in enumerate(SERIES):
        ys, xs = [], []
        for i, case in enumerate(cases):
            value = figure(read(case))
            if value is not None:
                ys.append(i + (k - (len(SERIES) - 1) / 2) * height)
                xs.append(value)
        ax.barh(ys, xs, height=height * 0.95, color=COLOURS[k], label=label)
    ax.set_xscale("log")
    ax.set_yticks(range(len(cases)))
    ax.set_yticklabels([c["case"] for c in cases])
    ax.invert_yaxis()
    ax.set_xlabel("time per call of value and derivatives (microseconds, log scale; shorter is faster)")
    machine = data.get("machine", {})
    ax.set_title(f"Nabla against hand-written C and its peers, {data.get('generated', '')[:10]}, "
                 f"{machine.get('nproc', '?')} cores, {machine.get('cpu', '')}", fontsize=10)
    ax.grid(axis="x", which="both", alpha=0.25)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06 - 0.5 / len(cases)), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"[chart] wrote {args.out}")


if __name__ == "__main__":
    main()

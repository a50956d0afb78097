#!/usr/bin/env python3
"""Markdown table from compare's TSV output: files named ISA-runN.tsv (run.sh writes them).

Per case and ISA: the median over runs of each side's time per call (each run's figure is
itself the median of 21 batches), the ratio runtime / OpenBLAS of those medians (> 1: OpenBLAS
faster), and in brackets the lowest and highest ratio of the single runs. rel diff is the
largest over all runs of max |runtime - OpenBLAS| / max |OpenBLAS|.
"""
import os
import statistics
import sys
from collections import OrderedDict, defaultdict


def fmt_us(us):
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    if us >= 100:
        return f"{us:.0f} µs"
    return f"{us:.1f} µs"


def main(paths):
    runs = defaultdict(list)  # isa -> list of {key: row}
    cores = {}
    order = OrderedDict()
    for path in paths:
        isa = os.path.basename(path)[: -len(".tsv")].split("-run")[0]
        rows = {}
        with open(path) as f:
            for line in f:
                if line.startswith("#"):
                    cores[isa] = line.split("openblas core: ")[1].split(";")[0]
                    continue
                fields = line.rstrip("\n").split("\t")
                if fields[0] == "problem":
                    header = fields
                    continue
                row = dict(zip(header, fields))
                key = (row["problem"], row["case"], row["shape"])
                order[key] = None
                rows[key] = row
        runs[isa].append(rows)
    known = ("avx512", "avx2", "baseline")
    isas = [i for i in known if i in runs] + sorted(i for i in runs if i not in known)
    head = ["problem", "case", "shape (m×k×n / n / n×rhs)"]
    for isa in isas:
        label = {"avx512": "AVX-512", "avx2": "AVX2", "avx512-defaultcore": "AVX-512"}.get(isa, isa)
        head += [f"{label} runtime", f"{label} OpenBLAS ({cores.get(isa, '?')})", f"{label} ratio"]
    head.append("rel diff")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] * 3 + ["---:"] * (3 * len(isas)) + ["---:"]) + "|")
    for key in order:
        cells = list(key)
        diff = 0.0
        for isa in isas:
            rs = [r[key] for r in runs[isa] if key in r]
            tn = statistics.median(float(r["nabla_us"]) for r in rs)
            tb = statistics.median(float(r["openblas_us"]) for r in rs)
            ratios = [float(r["nabla_us"]) / float(r["openblas_us"]) for r in rs]
            spread = f" ({min(ratios):.2f}–{max(ratios):.2f})" if len(rs) > 1 else ""
            cells += [fmt_us(tn), fmt_us(tb), f"**{tn / tb:.2f}**{spread}"]
            diff = max([diff] + [float(r["rel_diff"]) for r in rs])
        cells.append(f"{diff:.0e}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env bash
# Nabla's benchmark suite, the one command:
#
#     benchmarks/run.sh [--quick] [--no-peers] [--no-p6] [--no-p7] [--no-build] [--nabla PATH]
#
# Builds nabla (release), times every problem in benchmarks/problems with `nabla bench` on each
# backend (interp, tcc, cc), builds the hand-written C (gcc -O3 -march=native and tcc), checks
# its results against `nabla run` (a mismatch stops the run), times it, runs the peers (JAX,
# CasADi, PyTensor; benchmarks/peers/run_peers.py installs them into benchmarks/.venv), times
# compilation of the random P6 graphs and the deep P7 graphs (compile, end-to-end run, peak memory;
# CasADi's and JAX's construction of the deep recurrence as anchors), and prints the tables. Writes
# benchmarks/results/latest.md and latest.json (raw figures in benchmarks/results/raw/).
# --quick: small sizes, short measurements: about 1 minute on 2 cores; the full run about 3-4
# minutes; P7 (deep graphs) and its peers add about 1 and 4 minutes (all once nabla is built and
# the peers are installed: the first run spends about 5 minutes creating benchmarks/.venv).
# --no-p7 leaves out the deep graphs and their peers. --no-build uses the nabla already built in
# .build/release; --nabla PATH uses that nabla instead (and builds nothing). NABLA_ISA=avx2 (or
# baseline) narrows Nabla's kernels and the hand-written C's -march alike (not the peers').
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

quick=()
build=1
peers=1
p6=()
p7=()
deep=(--deep)
nabla=.build/release/nabla
expect_nabla=0
for arg in "$@"; do
    if [ "$expect_nabla" = 1 ]; then
        nabla=$arg; build=0; expect_nabla=0; continue
    fi
    case "$arg" in
        --quick) quick=(--quick) ;;
        --no-peers) peers=0 ;;
        --no-p6) p6=(--no-p6) ;;
        --no-p7) p7=(--no-p7); deep=() ;;
        --no-build) build=0 ;;
        --nabla) expect_nabla=1 ;;
        --nabla=*) nabla=${arg#--nabla=}; build=0 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: benchmarks/run.sh [--quick] [--no-peers] [--no-p6] [--no-p7] [--no-build] [--nabla PATH]" >&2; exit 2 ;;
    esac
done
if [ "$expect_nabla" = 1 ]; then
    echo "error: --nabla needs a path" >&2
    exit 2
fi

results=benchmarks/results
raw=$results/raw
bin=$results/bin
mkdir -p "$raw" "$bin"
rm -f "$raw"/*.json

scripts/ensure-deps
if [ "$build" = 1 ]; then
    echo "== building nabla (release)" >&2
    # one retry: a build can fail when a source file changes under it
    swift build -c release --product nabla >&2 || swift build -c release --product nabla >&2
elif [ ! -x "$nabla" ]; then
    echo "error: $nabla does not exist (--no-build, --nabla)" >&2
    exit 2
fi

if "$nabla" bench --help >/dev/null 2>&1; then
    echo "== nabla bench is available" >&2
else
    echo "== nabla bench is NOT available: falling back to timing whole 'nabla run' processes" >&2
fi

echo "== building the hand-written C" >&2
csrc=(benchmarks/c/driver.c benchmarks/c/problems.c)
# The hand-written C gets the instruction set Nabla's kernels get (NABLA_ISA narrows both).
case "${NABLA_ISA:-}" in
    avx2) march=(-march=native -mno-avx512f) ;;
    baseline) march=(-march=x86-64 -mtune=native) ;;
    *) march=(-march=native) ;;
esac
gcc -O3 "${march[@]}" -std=c99 -Wall -Wextra -o "$bin/bench_c_gcc" "${csrc[@]}" -lm
c_args=(--c-gcc "$bin/bench_c_gcc")
if command -v tcc >/dev/null 2>&1 && tcc -o "$bin/bench_c_tcc" "${csrc[@]}" -lm; then
    c_args+=(--c-tcc "$bin/bench_c_tcc")
else
    echo "warning: tcc not available; no tcc column for the hand-written C" >&2
fi

echo "== checking the hand-written C against nabla run" >&2
python3 benchmarks/c/check.py --nabla "$nabla" --bench "$bin/bench_c_gcc" "${quick[@]}" >&2
if [ -x "$bin/bench_c_tcc" ]; then
    python3 benchmarks/c/check.py --nabla "$nabla" --bench "$bin/bench_c_tcc" --quick >&2
fi

echo "== timing Nabla and the hand-written C" >&2
python3 benchmarks/suite.py "${quick[@]}" "${p6[@]}" "${p7[@]}" --nabla "$nabla" "${c_args[@]}" --out "$raw"

if [ "$peers" = 1 ]; then
    echo "== timing the peers" >&2
    python3 benchmarks/peers/run_peers.py "${quick[@]}" "${deep[@]}" --out "$raw/peers.json" ||
        echo "warning: run_peers.py failed; peers are reported n/a" >&2
fi

elapsed=$(( $(date +%s) - start ))
python3 benchmarks/report.py --raw "$raw" --command "benchmarks/run.sh $*" --elapsed "$elapsed" \
    --json "$results/latest.json" --md "$results/latest.md"
# The chart, with matplotlib from the peers' virtual environment (installed with them).
if [ -x benchmarks/.venv/bin/python ] && benchmarks/.venv/bin/python -c "import matplotlib" 2>/dev/null; then
    benchmarks/.venv/bin/python benchmarks/chart.py --json "$results/latest.json" --out "$results/latest.png" >&2
else
    echo "note: no chart (matplotlib is installed into benchmarks/.venv with the peers)" >&2
fi

#!/usr/bin/env bash
# The runtime's matrix product, LU, Cholesky and triangular solves against OpenBLAS at P4 and
# P5 sizes, under AVX-512 and AVX2 (issue 12). Installs OpenBLAS if it is missing, builds
# compare.c, runs it RUNS times per instruction set (interleaved: avx512, avx2, avx512, ...),
# and prints a Markdown table of the medians (summarise.py).
#
#   benchmarks/blas/run.sh                 # both ISAs, 2 runs each
#   RUNS=1 ISAS="avx2" benchmarks/blas/run.sh
#   ONLY=p5 benchmarks/blas/run.sh         # p4 | p5 | chol (P5 Cholesky, triangular solves) | all
#   DEFAULT_CORE=1 benchmarks/blas/run.sh  # also one run with OpenBLAS's own core choice
#
# The runtime is compiled the way Nabla compiles its optimised copy at first use
# (RuntimeLibrary.flags: cc -O3 -ffp-contract=off, no -march: the C picks AVX-512 / AVX2 /
# baseline per call, narrowed by NABLA_ISA). Override with RUNTIME_CC / RUNTIME_CFLAGS (e.g.
# RUNTIME_CC=clang RUNTIME_CFLAGS=-O2 for SwiftPM's release build). Do not add -march=native:
# it would let the compiler use AVX-512 in the AVX2 and baseline paths too.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${OUT:-$here/out}"
runs="${RUNS:-2}"
isas="${ISAS:-avx512 avx2}"
only="${ONLY:-all}"
cc="${RUNTIME_CC:-cc}"
cflags="${RUNTIME_CFLAGS:--O3 -ffp-contract=off}"

if ! [ -e /usr/include/x86_64-linux-gnu/cblas.h ] && ! [ -e /usr/include/cblas.h ] || ! ldconfig -p | grep -q libopenblas.so; then
    echo "installing OpenBLAS" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev >/dev/null
fi

mkdir -p "$out"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
# shellcheck disable=SC2086
$cc $cflags -I"$root/runtime/include" -c "$root/runtime/nabla_runtime.c" -o "$build/nabla_runtime.o"
# shellcheck disable=SC2086
$cc $cflags -I"$root/runtime/include" -c "$root/runtime/nabla_linalg.c" -o "$build/nabla_linalg.o"
cc -O2 -Wall -Wextra -I"$root/runtime/include" "$here/compare.c" "$build/nabla_runtime.o" "$build/nabla_linalg.o" \
    -o "$out/compare" -lopenblas -lm

core_for() { case "$1" in avx512) echo SkylakeX ;; avx2) echo Haswell ;; *) echo Prescott ;; esac; }

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    grep -m1 'model name' /proc/cpuinfo
    echo "cpus: $(getconf _NPROCESSORS_ONLN); runtime: $cc $cflags ($($cc --version | head -1))"
} | tee "$out/machine.txt"

files=()
for run in $(seq 1 "$runs"); do
    for isa in $isas; do
        core="$(core_for "$isa")"
        f="$out/$isa-run$run.tsv"
        echo "run $run: NABLA_ISA=$isa OPENBLAS_CORETYPE=$core" >&2
        NABLA_ISA="$isa" OPENBLAS_CORETYPE="$core" "$out/compare" "$only" >"$f"
        head -1 "$f" >&2
        # OPENBLAS_CORETYPE is ignored silently when the core is unknown: check it took.
        grep -q "openblas core: $core;" "$f" || { echo "OpenBLAS did not take OPENBLAS_CORETYPE=$core" >&2; exit 1; }
        files+=("$f")
    done
done
if [ "${DEFAULT_CORE:-0}" = 1 ]; then
    f="$out/avx512-defaultcore.tsv"
    echo "run: NABLA_ISA=avx512, OpenBLAS's own core choice" >&2
    env -u OPENBLAS_CORETYPE NABLA_ISA=avx512 "$out/compare" "$only" >"$f"
    head -1 "$f" >&2
fi
python3 "$here/summarise.py" "${files[@]}" | tee "$out/table.md"
if [ "${DEFAULT_CORE:-0}" = 1 ]; then
    echo; echo "OpenBLAS's own core choice:"
    python3 "$here/summarise.py" "$out/avx512-defaultcore.tsv" | tee "$out/table-defaultcore.md"
fi

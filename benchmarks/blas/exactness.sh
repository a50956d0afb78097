#!/usr/bin/env bash
# Builds benchmarks/blas/exactness.c against the runtime (compiled as run.sh compiles it) and runs
# it under NABLA_ISA=avx512, avx2 and baseline. Exit status non-zero on any mismatch.
#   benchmarks/blas/exactness.sh [nmax]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cc="${RUNTIME_CC:-cc}"
cflags="${RUNTIME_CFLAGS:--O3 -ffp-contract=off}"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
# shellcheck disable=SC2086
$cc $cflags -I"$root/runtime/include" -c "${RUNTIME_C:-$root/runtime/nabla_runtime.c}" -o "$build/nabla_runtime.o"
# shellcheck disable=SC2086
$cc $cflags -I"$root/runtime/include" -c "$root/runtime/nabla_linalg.c" -o "$build/nabla_linalg.o"
cc -O2 -ffp-contract=off -Wall -Wextra -I"$root/runtime/include" "$here/exactness.c" "$build/nabla_runtime.o" \
    "$build/nabla_linalg.o" -o "$build/exactness" -lm
status=0
for isa in ${ISAS:-avx512 avx2 baseline}; do
    echo "NABLA_ISA=$isa"
    NABLA_ISA="$isa" "$build/exactness" "$@" || status=1
done
exit $status

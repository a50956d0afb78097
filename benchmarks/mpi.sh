#!/usr/bin/env bash
# Data-parallel P3 (least squares, value and gradient) at 10^6 x 10 rows: one process against
# MPI runs of 1 and 2 processes (`nabla bench --shard Phi,y`), interleaved, ROUNDS rounds
# (default 3). Each process uses one runtime thread, so 2 processes use both cores; the one-
# process rows are given with 1 and with 2 threads. Needs Open MPI (scripts/ensure-deps) and a
# release build (swift build -c release --product nabla).
set -euo pipefail
cd "$(dirname "$0")/.."
nabla=.build/release/nabla
problem=benchmarks/problems/p3-least-squares.nabla
dims=(--dim N="${ROWS:-1000000}" --dim D=10)
rounds=${ROUNDS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for round in $(seq "$rounds"); do
    echo "== round $round"
    for threads in 1 2; do
        echo "-- one process, $threads thread(s)"
        "$nabla" bench "$problem" "${dims[@]}" --backend tcc --threads "$threads" --seconds 1 | tail -n +3
        "$nabla" bench "$problem" "${dims[@]}" --backend cc --threads "$threads" --seconds 1 | tail -n +3
    done
    for ranks in 1 2; do
        echo "-- mpirun -np $ranks, 1 thread each"
        NABLA_THREADS=1 mpirun --oversubscribe -np "$ranks" "$nabla" bench "$problem" "${dims[@]}" --shard Phi,y --backend all --seconds 1 | tail -n +2
    done
done

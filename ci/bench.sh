#!/usr/bin/env bash
# Runs the runtime's benchmarks RUNS times (default 3), interleaved so that a noisy period hurts
# every bench alike, keeps each run's raw results under target/bench-results/runN/, and prints
# the median tables that docs/benchmarks.md reports. Never used as a pass/fail CI step (with CI
# set, the latency and alloc benches only make a smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"
out=target/bench-results
mkdir -p "$out"
for i in $(seq 1 "$runs"); do
    dir="$out/run$i"
    rm -rf "$dir" target/criterion
    mkdir -p "$dir"
    cargo bench --bench messaging -- --noplot 2>&1 | tee "$dir/messaging.txt"
    cp -r target/criterion "$dir/criterion"
    cargo bench --bench latency 2>&1 | tee "$dir/latency.txt"
    cp "$out/latency.csv" "$dir/latency.csv"
    cargo bench --bench alloc 2>&1 | tee "$dir/alloc.txt"
    cp "$out/alloc.csv" "$dir/alloc.csv"
done
python3 ci/bench_summary.py "$out" | tee "$out/summary.md"

#!/usr/bin/env bash
# Runs the loom models on the production code (see docs/loom.md).
#   1. every model with --cfg coreactor_loom must pass;
#   2. with the deliberate bugs injected (--cfg coreactor_loom_bug=...), the models written to
#      catch them must fail (they are #[should_panic]; the others are ignored in that build).
# A separate target directory keeps the loom builds from invalidating the normal one.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
# The models are the test targets of the `coreactor-loom-tests` package (loom-tests/Cargo.toml):
# building it compiles coreactor and loom, none of the benchmark peers.
models=(-p coreactor-loom-tests --tests)

echo "== loom models (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
start=$(date +%s)
RUSTFLAGS="--cfg coreactor_loom -C debug-assertions" \
    cargo test --release "${models[@]}" -- --test-threads=2
echo "loom models passed in $(( $(date +%s) - start )) s"

echo "== loom models with injected bugs: each must be caught"
start=$(date +%s)
CARGO_TARGET_DIR="${CARGO_TARGET_DIR}-bug" RUSTFLAGS='--cfg coreactor_loom --cfg coreactor_loom_bug="ring" --cfg coreactor_loom_bug="doorbell" --cfg coreactor_loom_bug="polled" --cfg coreactor_loom_bug="inject" --cfg coreactor_loom_bug="inject_bounded" --cfg coreactor_loom_bug="inject_append" -C debug-assertions' \
    cargo test --release "${models[@]}" -- --test-threads=2
echo "injected bugs caught in $(( $(date +%s) - start )) s"

# The forwarding bug of the migration protocol gets a build of its own: with the other bugs
# injected too, the steal model would fail for their sake (a lost wake-up deadlocks it).
echo "== steal model with the forwarding bug injected: it must be caught"
start=$(date +%s)
CARGO_TARGET_DIR="${CARGO_TARGET_DIR}-bug-migrate" RUSTFLAGS='--cfg coreactor_loom --cfg coreactor_loom_bug="migrate" -C debug-assertions' \
    cargo test --release -p coreactor-loom-tests --test loom_steal -- --test-threads=2
echo "forwarding bug caught in $(( $(date +%s) - start )) s"

# The token bug of the injection queue's shutdown handshake alone: with the pusher's fence also
# missing (the second build), model (f) would fail for that bug's sake.
echo "== shutdown-handshake model with the token bug injected: it must be caught"
start=$(date +%s)
CARGO_TARGET_DIR="${CARGO_TARGET_DIR}-bug-token" RUSTFLAGS='--cfg coreactor_loom --cfg coreactor_loom_bug="inject_token" -C debug-assertions' \
    cargo test --release -p coreactor-loom-tests --test loom_inject_close -- --test-threads=2
echo "token bug caught in $(( $(date +%s) - start )) s"

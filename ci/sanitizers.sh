#!/usr/bin/env bash
# Runs a set of the test suite under AddressSanitizer (with LeakSanitizer) and ThreadSanitizer.
# Sanitizers need a nightly toolchain; without one this prints why and exits 0. Not part of
# .ci/run, which must pass on the stable toolchain alone.
#
#   ci/sanitizers.sh            # both
#   ci/sanitizers.sh address    # one
#
# ThreadSanitizer needs the standard library rebuilt with instrumentation (`-Zbuild-std`, which
# needs the nightly `rust-src` component; current nightlies refuse to link an instrumented crate
# against an uninstrumented std). Without `rust-src` the TSan step is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "sanitizers: no nightly toolchain installed; skipped"
    exit 0
fi
target=$(rustc -vV | sed -n 's/^host: //p')
tests=(--lib --test messaging_fifo --test ask_timeout --test ask_correlation
       --test shutdown_terminates --test stress_accounting --test io_readiness)
which="${1:-all}"

if [ "$which" = all ] || [ "$which" = address ]; then
    echo "== AddressSanitizer + LeakSanitizer"
    RUSTFLAGS="-Zsanitizer=address" CARGO_TARGET_DIR=target/asan \
        cargo +nightly test --target "$target" "${tests[@]}"
fi

if [ "$which" = all ] || [ "$which" = thread ]; then
    echo "== ThreadSanitizer"
    if rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src'; then
        RUSTFLAGS="-Zsanitizer=thread" CARGO_TARGET_DIR=target/tsan \
            cargo +nightly test -Zbuild-std --target "$target" "${tests[@]}"
    else
        echo "ThreadSanitizer skipped: the nightly toolchain has no rust-src component (-Zbuild-std)"
    fi
fi

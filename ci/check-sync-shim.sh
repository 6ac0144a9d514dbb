#!/usr/bin/env bash
# Every atomic, UnsafeCell, spin hint and thread spawn must come through src/sync/, so that
# `--cfg coreactor_loom` model-checks the production code. Fails if one is named elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='std::sync::atomic|core::sync::atomic|std::cell::UnsafeCell|std::hint::spin_loop|std::thread::spawn|thread_local!'
if grep -rnE "$pattern" src --include='*.rs' | grep -v '^src/sync/'; then
    echo "error: concurrency primitives named outside src/sync/ (see above)" >&2
    exit 1
fi
echo "sync shim check: ok"

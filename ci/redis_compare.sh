#!/usr/bin/env bash
# redis-benchmark against the kv example and against redis-server, on this machine, in the same
# run, interleaved: the numbers in docs/benchmarks.md ("kv vs redis-server"). Both log every
# write and fsync once a second (kv --fsync everysec; redis appendonly + appendfsync everysec).
#
#   bash ci/redis_compare.sh            # 3 rounds, 200k requests per test
#   ROUNDS=1 N=50000 bash ci/redis_compare.sh
#
# Needs redis-server, redis-benchmark (Debian: redis-server, redis-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
N=${N:-200000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-16}
KV_PORT=${KV_PORT:-7379}
REDIS_PORT=${REDIS_PORT:-7380}
for bin in redis-server redis-benchmark redis-cli; do
  command -v "$bin" >/dev/null || { echo "missing $bin (apt-get install redis-server redis-tools)"; exit 1; }
done
cargo build --release --example kv
work=$(mktemp -d)
trap 'kill $KV_PID $REDIS_PID 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/examples/kv --serve "127.0.0.1:$KV_PORT" --dir "$work/kv" --fsync everysec >"$work/kv.log" 2>&1 &
KV_PID=$!
redis-server --port "$REDIS_PORT" --dir "$work" --save "" --appendonly yes --appendfsync everysec \
  --daemonize no >"$work/redis.log" 2>&1 &
REDIS_PID=$!
for port in $KV_PORT $REDIS_PORT; do
  for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
done
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, kernel $(uname -r)"
echo "redis-server: $(redis-server --version | cut -d' ' -f3)"
echo "command: redis-benchmark -p PORT -t set,get -n $N -c $CLIENTS -P $PIPELINE -q"
for r in $(seq "$ROUNDS"); do
  for target in kv:$KV_PORT redis:$REDIS_PORT; do
    name=${target%%:*}; port=${target##*:}
    redis-benchmark -p "$port" -t set,get -n "$N" -c "$CLIENTS" -P "$PIPELINE" -q 2>/dev/null \
      | tr '\r' '\n' | grep -E '^(SET|GET): [0-9.]+ requests per second' | sed "s/^/round $r $name /"
  done
done

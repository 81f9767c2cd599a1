#!/usr/bin/env bash
# The Redis store's throughput on a throwaway redis-server (free loopback port, its own
# folder): decisions/s for 1 caller and for 64 concurrent callers sharing the pipelined
# connection, against redis-benchmark's raw INCR rate from 64 connections in the same run.
# Bounded: each phase stops after $SECS seconds.
#
#   bench/redis.sh                # SECS=5
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-5}
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
  echo "missing redis-server/redis-benchmark: sudo apt-get install -y redis-server redis-tools" >&2
  exit 1
}
cargo build --release -q -p tollgate-redis --example redis_load
tmp=$(mktemp -d -t tollgate-redis-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

echo "== Tollgate Redis store (GCRA, 10,000 keys)"
target/release/examples/redis_load "redis://127.0.0.1:$port" "$SECS" | tee "$tmp/tollgate.txt"
echo "== redis-benchmark INCR, 64 connections, no pipelining (the raw one-command ceiling)"
n=$(( SECS * 60000 ))
redis-benchmark -p "$port" -c 64 -n "$n" -r 10000 -q INCR __rand_int__ | tr '\r' '\n' | grep -v '^$' | tail -1 | tee "$tmp/peer.txt"
ours=$(awk '/64 callers/ {print $3}' "$tmp/tollgate.txt")
peer=$(grep -oE '[0-9.]+ requests per second' "$tmp/peer.txt" | awk '{print $1}')
python3 -c "print(f'ratio: Tollgate decisions/s ÷ raw INCR/s = {float($ours)/float($peer):.2f}')"

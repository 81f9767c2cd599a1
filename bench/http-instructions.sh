#!/usr/bin/env bash
# Instructions per request of Tollgate's POST /v1/check and GET /v1/authorize, counted by
# callgrind on the release binary: repeatable to a fraction of a percent whatever else the
# machine does, so it shows what a change to the request path saves where wall-clock load
# figures move by ±10%. Counts user space only (the kernel's TCP work is not in it).
#
#   bench/http-instructions.sh            # N=10000 requests of each, after 2000 to warm up
#   TOP=30 bench/http-instructions.sh     # and the 30 functions with the most own cost
#   KEEP=dir bench/http-instructions.sh   # keeps callgrind's files in dir, for
#                                         # callgrind_annotate --tree=caller and the like
#   BODY='{"subject":{...}}' bench/http-instructions.sh  # another body for POST /v1/check
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
BODY=${BODY:-'{"subject":{"user":"42"}}'}
TOP=${TOP:-0}

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "missing $1: $2" >&2
    exit 1
  }
}
need valgrind "sudo apt-get install -y valgrind"
need callgrind_control "sudo apt-get install -y valgrind"
need oha "cargo install oha --locked"

# TOLLGATE=path/to/tollgate counts that binary instead of building this tree's.
if [ -z "${TOLLGATE:-}" ]; then
  cargo build --release -q -p tollgate-server
  TOLLGATE=$PWD/target/release/tollgate
fi

tmp=$(mktemp -d -t tollgate-cg.XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP" && cp "$tmp"/cg.* "$KEEP"/
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/tollgate.yaml" <<YAML
server: { listen: "127.0.0.1:$port", grpc_listen: "off" }
store: { kind: memory, capacity: 100000 }
rules:
  - { name: per-user, match: { user: "*" }, key: "user:{user}", algorithm: gcra, limit: 1000000, period: 1s }
YAML
# One file per thread and per dump, with names written out in each file, so every dump
# reads on its own.
TOLLGATE_LOG=warn valgrind --tool=callgrind --separate-threads=yes --compress-strings=no \
  --compress-pos=no --callgrind-out-file="$tmp/cg.%p" \
  "$TOLLGATE" serve --config "$tmp/tollgate.yaml" >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
  sleep 0.1
done

check() { oha --no-tui -n "$1" -c 4 -m POST -H 'content-type: application/json' \
  -d "$BODY" "http://127.0.0.1:$port/v1/check" >/dev/null; }
authorize() { oha --no-tui -n "$1" -c 4 -H 'X-Forwarded-User: 42' \
  "http://127.0.0.1:$port/v1/authorize" >/dev/null; }

# Each dump holds what ran since the one before: warm-up, then each target alone.
check 2000
authorize 2000
callgrind_control -d warm "$pid" >/dev/null 2>&1
check "$N"
callgrind_control -d check "$pid" >/dev/null 2>&1
authorize "$N"
callgrind_control -d authorize "$pid" >/dev/null 2>&1
kill -INT "$pid"
wait "$pid" 2>/dev/null || true
pid=

python3 - "$tmp" "$N" "$TOP" <<'PY'
import collections, glob, sys
tmp, n, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for part, name in ((2, "POST /v1/check"), (3, "GET /v1/authorize")):
    own = collections.Counter()
    for path in glob.glob(f"{tmp}/cg.*.{part}-*"):
        fn, call = None, False
        for line in open(path):
            if line.startswith("fn="):
                fn = line[3:].strip()
            elif line.startswith("calls="):
                call = True
            elif line[:1].isdigit():
                if not call:
                    own[fn] += int(line.split()[1])
                call = False
    print(f"{name:<20} {sum(own.values()) / n:>8.0f} instructions per request")
    for fn, c in own.most_common(top):
        print(f"    {c / n:>7.0f}  {fn[:110]}")
PY

#!/usr/bin/env bash
# HTTP load: Tollgate's POST /v1/check and GET /v1/authorize against nginx `limit_req`
# doing the same job (a per-user limit over 10,000 users) in the same run, on loopback.
# Saturation with wrk (rps and p99 for each, and their ratio), the p99 at saturation again
# with oha (as measured, where wrk's corrects for coordinated omission; see below), and p99
# at a fixed rate with oha, over interleaved rounds. Bounded: every load stops by itself
# after $DURATION.
#
#   bench/http.sh                 # DURATION=10s CONNS=64 THREADS=2 RATE=20000 ROUNDS=3
#   TOLLGATE=/tmp/a bench/http.sh # a binary built elsewhere
#   TOLLGATE_B=/tmp/b bench/http.sh  # a second build in the same rounds (its saturation
#                                 # rows are "B"): how a piece is weighed against another
#   TRACES=1 bench/http.sh        # B is this build exporting traces at 1% over OTLP
#   TRACES=1 TRACE_RATIO=0 bench/http.sh  # ... at another sampling ratio
#   PIN=1 bench/http.sh           # servers on the first core, load generators on the second
#   ALGORITHM=sliding_window bench/http.sh  # Tollgate's limit in another algorithm (gcra
#                                 # unless told; nginx's is always its leaky bucket)
# It ends with how often the machine took a core away before the load (bench/stalls.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
RATE=${RATE:-20000}
ROUNDS=${ROUNDS:-3}
ALGORITHM=${ALGORITHM:-gcra}
USERS=10000

need wrk "sudo apt-get install -y wrk"
need nginx "sudo apt-get install -y nginx"
need oha "cargo install oha --locked"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# The figures of record share both cores between servers and load generators, so a tail
# can be a server's wait for a core that wrk holds, or wrk's for one a server holds. PIN=1
# keeps them apart, the same for both servers: a reading of the servers alone.
# Pinned, each server runs one worker for its one core (Tollgate counts the cores it may
# use).
server_cpu=()
client_cpu=()
nginx_workers=2
if [ "${PIN:-0}" = 1 ]; then
  need taskset "sudo apt-get install -y util-linux"
  server_cpu=(taskset -c 0)
  client_cpu=(taskset -c 1)
  nginx_workers=1
fi

# TOLLGATE=path/to/tollgate measures that binary instead of building this tree's.
if [ -z "${TOLLGATE:-}" ]; then
  cargo build --release -q -p tollgate-server
  TOLLGATE=target/release/tollgate
fi

scratch bench


# Both sides admit everything: the rate is far above what the load reaches, so each request
# costs one full decision and nothing else.
tport=$(free_port)
cat >"$tmp/tollgate.yaml" <<YAML
server: { listen: "127.0.0.1:$tport", grpc_listen: "off" }
store: { kind: memory, capacity: 100000 }
rules:
  - { name: per-user, match: { user: "*" }, key: "user:{user}", algorithm: $ALGORITHM, limit: 1000000, period: 1s }
YAML
TOLLGATE_LOG=warn "${server_cpu[@]}" "$TOLLGATE" serve --config "$tmp/tollgate.yaml" >"$tmp/tollgate.out" 2>&1 &
tpid=$!
pids+=($tpid)
# TRACES=1: B is the same binary exporting traces at a 1% sampling ratio (TRACE_RATIO) to an OTLP
# receiver (the test kit's, on the OpenTelemetry protos): what tracing costs.
if [ "${TRACES:-0}" = 1 ]; then
  py=${TOLLGATE_TEST_PYTHON:-target/test-venv/bin/python}
  "$py" -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc' 2>/dev/null ||
    { echo "TRACES=1 needs the test virtualenv: run scripts/test once" >&2; exit 1; }
  mkdir -p "$tmp/otlp"
  # At the lowest priority: a collector runs elsewhere, and its work on these cores is not
  # the traced server's.
  nice -n 19 "$py" crates/tollgate-testkit/scripts/otlp_receiver.py "$tmp/otlp" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -f "$tmp/otlp/port" ] && break; sleep 0.1; done
  TOLLGATE_B=$TOLLGATE
fi
if [ -n "${TOLLGATE_B:-}" ]; then
  bport=$(free_port)
  sed "s/127.0.0.1:$tport/127.0.0.1:$bport/" "$tmp/tollgate.yaml" >"$tmp/tollgate-b.yaml"
  if [ "${TRACES:-0}" = 1 ]; then
    echo "telemetry: { endpoint: \"http://127.0.0.1:$(cat "$tmp/otlp/port")\", sample_ratio: ${TRACE_RATIO:-0.01} }" >>"$tmp/tollgate-b.yaml"
  fi
  TOLLGATE_LOG=warn "${server_cpu[@]}" "$TOLLGATE_B" serve --config "$tmp/tollgate-b.yaml" >"$tmp/tollgate-b.out" 2>&1 &
  bpid=$!
  pids+=($bpid)
fi

nport=$(free_port)
mkdir -p "$tmp/nginx/www"
echo ok >"$tmp/nginx/www/index.html"
nginx_conf "$tmp/nginx" "$nginx_workers" <<CONF
    limit_req_zone \$arg_user zone=users:10m rate=1000000r/s;
    server {
        listen 127.0.0.1:$nport reuseport;
        root $tmp/nginx/www;
        location / {
            limit_req zone=users burst=1000 nodelay;
            limit_req_status 429;
            try_files /index.html =404;
        }
    }
CONF
"${server_cpu[@]}" "$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
npid=$!
pids+=($npid)
wait_port "$tport"
wait_port "$nport"
[ -z "${TOLLGATE_B:-}" ] || wait_port "$bport"

lua_done='
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT %.0f %d %d %d %.0f\n", summary.requests / secs, latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    summary.requests, latency.mean))
end'
cat >"$tmp/check.lua" <<LUA
request = function()
  local body = '{"subject":{"user":"' .. math.random(0, $USERS - 1) .. '"}}'
  return wrk.format("POST", "/v1/check", { ["Content-Type"] = "application/json" }, body)
end
$lua_done
LUA
cat >"$tmp/authorize.lua" <<LUA
request = function()
  return wrk.format("GET", "/v1/authorize", { ["X-Forwarded-User"] = tostring(math.random(0, $USERS - 1)) })
end
$lua_done
LUA
cat >"$tmp/nginx.lua" <<LUA
request = function()
  return wrk.format("GET", "/?user=" .. math.random(0, $USERS - 1))
end
$lua_done
LUA

# CPU time the server spends per answer, in user space and in the kernel, from the
# processes' own accounting (every thread; nginx's workers too): where a gap in
# throughput comes from when the load generator shares the cores.
ticks() { # pid...: user and system clock ticks, summed
  for p in "$@"; do awk '{print $14, $15}' "/proc/$p/stat"; done | awk '{u += $1; s += $2} END {print u + 0, s + 0}'
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))
run_wrk() { # port script pid...: rps, p99, errors, user and system µs per answer, mean latency
  local port=$1 script=$2
  shift 2
  local before after
  before=$(ticks "$@")
  "${client_cpu[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$script" "http://127.0.0.1:$port" >"$tmp/wrk.out"
  after=$(ticks "$@")
  awk -v b="$before" -v a="$after" -v tick="$TICK_US" '/^RESULT/ {
    split(b, x, " "); split(a, y, " "); n = ($5 > 0) ? $5 : 1
    printf "%s %s %s %.2f %.2f %s\n", $2, $3, $4, (y[1] - x[1]) * tick / n, (y[2] - x[2]) * tick / n, $6
  }' "$tmp/wrk.out"
}
oha_run() { # url [oha args...]: rps, p99 in microseconds, success in percent, mean latency
  local url=$1
  shift
  "${client_cpu[@]}" oha --no-tui --output-format json -c "$CONNS" -z "$DURATION" "$@" "$url" >"$tmp/oha.json"
  python3 - "$tmp/oha.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]; p = d["latencyPercentiles"]
print(f"{s['requestsPerSec']:.0f} {p['p99'] * 1e6:.0f} {s['successRate'] * 100:.2f} {s['average'] * 1e6:.0f}")
PY
}

# How often the machine itself takes a core away, read before the load (2 s): the floor
# under any p99 at a fixed rate, and the figure to compare when two machines disagree.
rustc -O --edition 2021 -o "$tmp/stalls" bench/stalls.rs
"$tmp/stalls" 2 >"$tmp/stalls.out"

# The three targets take turns, round after round, in a rotating order, so a slow spell of
# the machine falls on all of them alike; each figure is the median over the rounds.
targets=(nginx check authorize)
[ -z "${TOLLGATE_B:-}" ] || targets+=(check_b authorize_b)
saturate() { # target
  case $1 in
    nginx) run_wrk "$nport" "$tmp/nginx.lua" "$npid" $(pgrep -P "$npid") ;;
    check) run_wrk "$tport" "$tmp/check.lua" "$tpid" ;;
    authorize) run_wrk "$tport" "$tmp/authorize.lua" "$tpid" ;;
    check_b) run_wrk "$bport" "$tmp/check.lua" "$bpid" ;;
    authorize_b) run_wrk "$bport" "$tmp/authorize.lua" "$bpid" ;;
  esac
}
on_oha() { # target [oha args...]
  local t=$1
  shift
  case $t in
    nginx) oha_run "http://127.0.0.1:$nport/\\?user=[0-9]{4}" --rand-regex-url "$@" ;;
    check) oha_run "http://127.0.0.1:$tport/v1/check" -m POST -H "content-type: application/json" \
      -d '{"subject":{"user":"42"}}' "$@" ;;
    authorize) oha_run "http://127.0.0.1:$tport/v1/authorize" -H "X-Forwarded-User: 42" "$@" ;;
  esac
}
for round in $(seq 1 "$ROUNDS"); do
  n=${#targets[@]}
  for i in $(seq 0 $((n - 1))); do
    t=${targets[$(((i + round) % n))]}
    saturate "$t" >>"$tmp/sat.$t"
    case $t in *_b) continue ;; esac
    on_oha "$t" >>"$tmp/closed.$t"
    on_oha "$t" -q "$RATE" >>"$tmp/rate.$t"
  done
done
[ "$(awk '{s += $3} END {print s + 0}' "$tmp/sat.nginx")" = 0 ] ||
  { echo "nginx answered errors:"; tail -3 "$tmp/nginx/error.log"; }

placement=""
[ "${PIN:-0}" = 1 ] && placement=" (servers pinned to core 0, load to core 1)"
python3 - "$tmp" "$ROUNDS" "$CONNS" "wrk -t$THREADS -c$CONNS -d$DURATION$placement" "oha -c $CONNS -z $DURATION$placement" "-q $RATE" <<'PY'
import statistics, sys
tmp, rounds, conns, wrk, oha, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
def rows(kind, t):
    return [list(map(float, l.split())) for l in open(f"{tmp}/{kind}.{t}") if l.strip()]
def med(kind, t, col):
    return statistics.median(r[col] for r in rows(kind, t))
import os
names = {"nginx": "nginx limit_req (GET /?user=N)", "check": "tollgate POST /v1/check",
         "authorize": "tollgate GET /v1/authorize", "check_b": "B: tollgate POST /v1/check",
         "authorize_b": "B: tollgate GET /v1/authorize"}
saturated = [t for t in names if os.path.exists(f"{tmp}/sat.{t}")]
print(f"{wrk} over 10000 users, median of {rounds} interleaved rounds (p99 in microseconds;")
print("cpu_us: the server's CPU time per answer, user + kernel, in microseconds)")
print(f"{'target':<34} {'rps':>9} {'p99_us':>8} {'errors':>7} {'rps/nginx':>10} {'p99/nginx':>10} {'cpu_us':>11}   rps per round")
n_rps, n_p99 = med("sat", "nginx", 0), med("sat", "nginx", 1)
for t in saturated:
    rps, p99 = med("sat", t, 0), med("sat", t, 1)
    errs = sum(r[2] for r in rows("sat", t))
    each = " ".join(f"{r[0]:.0f}" for r in rows("sat", t))
    cpu = f"{med('sat', t, 3):.1f}+{med('sat', t, 4):.1f}"
    print(f"{names[t]:<34} {rps:>9.0f} {p99:>8.0f} {errs:>7.0f} {rps / n_rps:>10.2f} {p99 / n_p99:>10.2f} {cpu:>11}   {each}")
# wrk corrects its latencies for coordinated omission: after the run it adds, for each answer
# slower than a connection's mean interval between requests, the answers that a client
# sending at that steady rate would have seen queue behind it. On a host that takes the
# cores away for 100 ms at a time, each pause adds some 160 such answers per connection and
# they set the p99, the same for every server. Little's law tells when: with every
# connection always waiting for an answer, the measured mean is the connections over the
# rate, and a mean far above that is mostly added answers.
def measured(rps, mean):
    return mean <= 1.5 * conns / rps * 1e6
added = [t for t in ("nginx", "check", "authorize") if not measured(med("sat", t, 0), med("sat", t, 5))]
if added:
    t = added[0]
    print(f"wrk's p99 above is mostly the answers its coordinated-omission correction added: "
          f"{names[t]} averaged {med('sat', t, 5):.0f} µs where {conns} connections at "
          f"{med('sat', t, 0):.0f} rps measure {conns / med('sat', t, 0) * 1e6:.0f} µs; "
          "the p99 as measured is oha's, below")
print()
print(f"{oha}: p99 at saturation (closed loop, one user for Tollgate), median of {rounds} rounds")
n_rps, n_p99 = med("closed", "nginx", 0), med("closed", "nginx", 1)
for t in ("nginx", "check", "authorize"):
    rps, p99, mean = med("closed", t, 0), med("closed", t, 1), med("closed", t, 3)
    each = " ".join(f"{r[1] / 1000:.3f}" for r in rows("closed", t))
    flag = "" if measured(rps, mean) else "   (mean above the connections over the rate)"
    print(f"{names[t]:<34} rps {rps:>7.0f} ({rps / n_rps:4.2f}×)   p99 {p99 / 1000:6.3f} ms   "
          f"p99/nginx {p99 / n_p99:5.2f}   p99 per round (ms): {each}{flag}")
print()
print(f"{oha} {rate}: p99 at a fixed rate, median of {rounds} rounds")
for t in ("nginx", "authorize", "check"):
    rps, p99, ok = med("rate", t, 0), med("rate", t, 1), min(r[2] for r in rows("rate", t))
    each = " ".join(f"{r[1] / 1000:.3f}" for r in rows("rate", t))
    print(f"{names[t]:<34} rps {rps:>7.0f}   p99 {p99 / 1000:6.3f} ms   success {ok:.2f}%   p99 per round (ms): {each}")
PY
echo
cat "$tmp/stalls.out"
if [ "${TRACES:-0}" = 1 ]; then
  echo "the OTLP receiver got $(wc -l <"$tmp/otlp/spans.jsonl" 2>/dev/null || echo 0) spans from B"
fi

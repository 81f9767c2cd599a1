#!/usr/bin/env bash
# Both of Tollgate's decision doors on the memory store and on one Redis, beside their
# ceilings and, when LIMITADOR_BIN names a limitador-server binary, Kuadrant limitador's
# same two doors on memory and on the same Redis — all in one run, in interleaved rounds.
#
#   HTTP: wrk -t2 -c64 over 10,000 users. Tollgate answers POST /v1/check, limitador
#         POST /check_and_report; the ceiling is nginx answering `return 200`.
#   gRPC: Envoy's ShouldRateLimit from 64 callers on one HTTP/2 connection (bench/rls-load),
#         one descriptor user=N over 10,000 users; the ceiling is bench/rls-load's rls-ok, a
#         bare tonic server answering OK to every call.
#
# Every limit admits everything (a billion a second), so each call costs one full decision
# and, on Redis, one round trip. Load, servers and Redis share the machine's cores.
#
#   bench/peers.sh                                  # SECS=10 ROUNDS=3 CONNS=64
#   LIMITADOR_BIN=path/to/limitador-server bench/peers.sh
#   TOLLGATE=path/to/tollgate bench/peers.sh        # a binary built elsewhere
#   TOLLGATE_B=path/to/other bench/peers.sh         # a second build on the same Redis in
#                                                   # the same rounds: one change weighed
#   CLUSTER=1 bench/peers.sh                        # Tollgate on a local 3-primary Redis
#                                                   # Cluster too, beside one Redis
#
# limitador is not on crates.io: build limitador-server by hand from its public repository,
# outside this tree (`cargo build --release -p limitador-server`; it needs libclang-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
USERS=10000

need wrk "sudo apt-get install -y wrk"
need nginx "sudo apt-get install -y nginx"
need redis-server "sudo apt-get install -y redis-server"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release -q -p rls-load
bin=${CARGO_TARGET_DIR:-target}/release
if [ -z "${TOLLGATE:-}" ]; then
  cargo build --release -q -p tollgate-server
  TOLLGATE=$bin/tollgate
fi

scratch peers

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >/dev/null &
pids+=($!)
wait_port "$rport"

# tollgate NAME STORE-YAML: a Tollgate with both doors; sets NAME_http and NAME_grpc.
tollgate() {
  local http grpc
  http=$(free_port)
  grpc=$(free_port)
  cat >"$tmp/$1.yaml" <<YAML
server: { listen: "127.0.0.1:$http", grpc_listen: "127.0.0.1:$grpc" }
$2
rules:
  - { name: per-user, match: { user: "*" }, key: "user:{user}", limit: 1000000000, period: 1s }
envoy:
  - domain: bench
    descriptors:
      - key: user
        rate_limit: { unit: second, requests_per_unit: 1000000000 }
YAML
  TOLLGATE_LOG=warn "${3:-$TOLLGATE}" serve --config "$tmp/$1.yaml" >"$tmp/$1.out" 2>&1 &
  pids+=($!)
  printf -v "${1}_http" %s "$http"
  printf -v "${1}_grpc" %s "$grpc"
  wait_port "$http"
  wait_port "$grpc"
}
tollgate tg_memory "store: { kind: memory, capacity: 100000 }"
tollgate tg_redis "store: { kind: redis, url: \"redis://127.0.0.1:$rport\" }"
if [ -n "${CLUSTER:-}" ]; then
  # A port whose Cluster bus port (+10000) exists and is free too.
  cluster_port() {
    local p
    while :; do
      p=$(free_port)
      [ "$p" -lt 55000 ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null && break
    done
    echo "$p"
  }
  seeds=()
  for i in 1 2 3; do
    cport=$(cluster_port)
    mkdir -p "$tmp/cluster$i"
    redis-server --port "$cport" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp/cluster$i" \
      --cluster-enabled yes --cluster-config-file nodes.conf >/dev/null &
    pids+=($!)
    wait_port "$cport"
    seeds+=("127.0.0.1:$cport")
  done
  redis-cli --cluster create "${seeds[@]}" --cluster-yes >/dev/null
  for _ in $(seq 1 200); do
    redis-cli -p "${seeds[0]#*:}" CLUSTER INFO | grep -q cluster_state:ok && break
    sleep 0.1
  done
  urls=$(printf '"redis://%s", ' "${seeds[@]:1}")
  tollgate tg_cluster "store: { kind: redis, mode: cluster, url: \"redis://${seeds[0]}\", urls: [${urls%, }] }"
fi
if [ -n "${TOLLGATE_B:-}" ]; then
  tollgate tg_redis_b "store: { kind: redis, url: \"redis://127.0.0.1:$rport\" }" "$TOLLGATE_B"
fi

nport=$(free_port)
nginx_conf "$tmp/nginx" 2 <<CONF
    server {
        listen 127.0.0.1:$nport reuseport;
        location / { return 200 "ok"; }
    }
CONF
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
pids+=($!)
wait_port "$nport"

okport=$(free_port)
"$bin/rls-ok" "127.0.0.1:$okport" >/dev/null &
pids+=($!)
wait_port "$okport"

http_targets=(nginx tg_memory tg_redis)
grpc_targets=(rls_ok tg_memory tg_redis)
if [ -n "${CLUSTER:-}" ]; then
  http_targets+=(tg_cluster)
  grpc_targets+=(tg_cluster)
fi
if [ -n "${TOLLGATE_B:-}" ]; then
  http_targets+=(tg_redis_b)
  grpc_targets+=(tg_redis_b)
fi
if [ -n "${LIMITADOR_BIN:-}" ]; then
  cat >"$tmp/limits.yaml" <<YAML
- namespace: bench
  max_value: 1000000000
  seconds: 1
  conditions: []
  variables: ["descriptors[0]['user']"]
YAML
  # limitador NAME STORAGE...: sets NAME_http and NAME_grpc.
  limitador() {
    local name=$1 http grpc
    shift
    http=$(free_port)
    grpc=$(free_port)
    "$LIMITADOR_BIN" --http-ip 127.0.0.1 --http-port "$http" --rls-ip 127.0.0.1 --rls-port "$grpc" \
      "$tmp/limits.yaml" "$@" >"$tmp/$name.out" 2>&1 &
    pids+=($!)
    printf -v "${name}_http" %s "$http"
    printf -v "${name}_grpc" %s "$grpc"
    wait_port "$http"
    wait_port "$grpc"
  }
  limitador lim_memory memory
  limitador lim_redis redis "redis://127.0.0.1:$rport"
  http_targets+=(lim_memory lim_redis)
  grpc_targets+=(lim_memory lim_redis)
fi

cat >"$tmp/done.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(99), summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout))
end
LUA
cat >"$tmp/tollgate.lua" <<LUA
request = function()
  local body = '{"subject":{"user":"' .. math.random(0, $USERS - 1) .. '"}}'
  return wrk.format("POST", "/v1/check", { ["Content-Type"] = "application/json" }, body)
end
LUA
cat >"$tmp/limitador.lua" <<LUA
request = function()
  local body = '{"namespace":"bench","values":{"user":"' .. math.random(0, $USERS - 1) .. '"},"delta":1}'
  return wrk.format("POST", "/check_and_report", { ["Content-Type"] = "application/json" }, body)
end
LUA
cat >"$tmp/nginx.lua" <<LUA
request = function()
  return wrk.format("GET", "/?user=" .. math.random(0, $USERS - 1))
end
LUA

http_load() { # target: calls/s, p99 in µs, errors
  local t=$1 port script
  case $t in
    nginx) port=$nport script=nginx ;;
    tg_*) port=${t}_http script=tollgate ;;
    lim_*) port=${t}_http script=limitador ;;
  esac
  [[ $port =~ ^[0-9]+$ ]] || port=${!port}
  cat "$tmp/$script.lua" "$tmp/done.lua" >"$tmp/run.lua"
  wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$tmp/run.lua" "http://127.0.0.1:$port" |
    awk '/^RESULT/ {print $2, $3, $4}'
}
grpc_load() { # target: calls/s, p99 in µs, errors
  local t=$1 port
  case $t in
    rls_ok) port=$okport ;;
    *) port=${t}_grpc port=${!port} ;;
  esac
  "$bin/rls-load" "127.0.0.1:$port" "$SECS" "$CONNS" "$USERS" |
    awk '{printf "%s %.0f %s\n", $2, $7 * 1000, $10}'
}

# The targets take turns, round after round, in a rotating order, so a slow spell of the
# machine falls on all of them alike; each figure is the median over the rounds.
for round in $(seq 1 "$ROUNDS"); do
  n=${#http_targets[@]}
  for i in $(seq 0 $((n - 1))); do
    t=${http_targets[$(((i + round) % n))]}
    http_load "$t" >>"$tmp/http.$t"
  done
  n=${#grpc_targets[@]}
  for i in $(seq 0 $((n - 1))); do
    t=${grpc_targets[$(((i + round) % n))]}
    grpc_load "$t" >>"$tmp/grpc.$t"
  done
done

python3 - "$tmp" "$ROUNDS" "$CONNS" "$SECS" <<'PY'
import os, statistics, sys
tmp, rounds, conns, secs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def rows(door, t):
    path = f"{tmp}/{door}.{t}"
    if not os.path.exists(path):
        return None
    return [list(map(float, l.split())) for l in open(path) if l.strip()]
def med(door, t, col=0):
    r = rows(door, t)
    return statistics.median(x[col] for x in r) if r else None
names = {"nginx": "nginx return 200 (ceiling)", "rls_ok": "bare tonic server (ceiling)",
         "tg_memory": "Tollgate, memory", "tg_redis": "Tollgate, one Redis",
         "tg_cluster": "Tollgate, 3-primary Cluster",
         "tg_redis_b": "Tollgate B, one Redis",
         "lim_memory": "limitador, memory", "lim_redis": "limitador, one Redis"}
doors = {"http": (f"HTTP, wrk -t2 -c{conns} -d{secs}s", "nginx"),
         "grpc": (f"gRPC ShouldRateLimit, {conns} callers on one connection, {secs}s", "rls_ok")}
print(f"median of {rounds} interleaved rounds, 10000 users, every call admitted")
for door, (title, ceiling) in doors.items():
    print()
    print(title)
    print(f"  {'target':<30} {'calls/s':>9} {'p99_ms':>7} {'errors':>7} {'/ceiling':>9}   calls/s per round")
    top = med(door, ceiling)
    for t in names:
        r = rows(door, t)
        if not r:
            continue
        rate, p99 = med(door, t), med(door, t, 1) / 1000
        errors = sum(x[2] for x in r)
        each = " ".join(f"{x[0]:.0f}" for x in r)
        print(f"  {names[t]:<30} {rate:>9.0f} {p99:>7.2f} {errors:>7.0f} {rate / top:>9.2f}   {each}")
    redis, memory = med(door, "tg_redis"), med(door, "tg_memory")
    print(f"  Tollgate on Redis / on memory: {redis / memory:.2f}")
    cluster = med(door, "tg_cluster")
    if cluster:
        print(f"  Tollgate on a Cluster / on one Redis: {cluster / redis:.2f}")
    b = med(door, "tg_redis_b")
    if b:
        print(f"  B on Redis / Tollgate on Redis: {b / redis:.2f}; B on Redis / on memory: {b / memory:.2f}")
    for store in ("memory", "redis"):
        lim = med(door, f"lim_{store}")
        if lim:
            print(f"  Tollgate / limitador, {store}: {med(door, f'tg_{store}') / lim:.2f}")
PY

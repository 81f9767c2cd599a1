#!/usr/bin/env bash
# The reverse proxy under load: Tollgate's proxy door with one limit per user in front of an
# upstream, against nginx `limit_req` + `proxy_pass` doing the same job to the same
# upstream (an nginx of its own answering a static body), 10,000 users, in the same run on
# loopback. Saturation with wrk (rps and p99 of each, and their ratio), then the p99 at a
# fixed rate with oha when it is installed, over interleaved rounds.
#
#   bench/proxy.sh                 # DURATION=10s CONNS=64 THREADS=2 RATE=10000 ROUNDS=3
#   TOLLGATE=/tmp/a bench/proxy.sh # a binary built elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
RATE=${RATE:-10000}
ROUNDS=${ROUNDS:-3}
USERS=10000

need wrk "sudo apt-get install -y wrk"
need nginx "sudo apt-get install -y nginx"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
have_oha=0
command -v oha >/dev/null 2>&1 && have_oha=1

if [ -z "${TOLLGATE:-}" ]; then
  cargo build --release -q -p tollgate-server
  TOLLGATE=target/release/tollgate
fi

scratch proxy-bench


# The upstream both proxies forward to: one worker answering a short static body.
uport=$(free_port)
nginx_conf "$tmp/upstream" 1 <<CONF
    server {
        listen 127.0.0.1:$uport;
        location / { return 200 "ok\n"; }
    }
CONF
"$NGINX" -p "$tmp/upstream" -c "$tmp/upstream/nginx.conf" &
pids+=($!)

# Both limits admit everything: the rate is far above what the load reaches, so each request
# costs one decision and one forwarded request.
nport=$(free_port)
nginx_conf "$tmp/peer" 2 <<CONF
    limit_req_zone \$http_x_forwarded_user zone=users:10m rate=1000000r/s;
    upstream api {
        server 127.0.0.1:$uport;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$nport reuseport;
        location / {
            limit_req zone=users burst=1000 nodelay;
            limit_req_status 429;
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
CONF
"$NGINX" -p "$tmp/peer" -c "$tmp/peer/nginx.conf" &
npid=$!
pids+=($npid)

tport=$(free_port)
pport=$(free_port)
cat >"$tmp/tollgate.yaml" <<YAML
server: { listen: "127.0.0.1:$tport", grpc_listen: "off", trusted_proxies: ["127.0.0.1"] }
store: { kind: memory, capacity: 100000 }
proxy:
  listen: "127.0.0.1:$pport"
  routes: [{ upstream: api }]
  upstreams: { api: { origins: ["http://127.0.0.1:$uport"] } }
rules:
  - { name: per-user, match: { user: "*" }, key: "user:{user}", limit: 1000000, period: 1s }
YAML
TOLLGATE_LOG=warn "$TOLLGATE" serve --config "$tmp/tollgate.yaml" >"$tmp/tollgate.out" 2>&1 &
tpid=$!
pids+=($tpid)
wait_port "$uport"
wait_port "$nport"
wait_port "$pport"

cat >"$tmp/users.lua" <<LUA
request = function()
  return wrk.format("GET", "/", { ["X-Forwarded-User"] = tostring(math.random(0, $USERS - 1)) })
end
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT %.0f %d %d\n", summary.requests / secs, latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
LUA

saturate() { # port: rps, p99 in microseconds, errors
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$tmp/users.lua" "http://127.0.0.1:$1" | awk '/^RESULT/ {print $2, $3, $4}'
}
at_rate() { # port: p99 in microseconds at $RATE requests/s
  oha --no-tui --output-format json -c "$CONNS" -z "$DURATION" -q "$RATE" \
    -H "X-Forwarded-User: 42" "http://127.0.0.1:$1/" >"$tmp/oha.json"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.0f" % (d["latencyPercentiles"]["p99"] * 1e6))' "$tmp/oha.json"
}

for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="nginx tollgate"; else order="tollgate nginx"; fi
  for t in $order; do
    port=$nport
    [ "$t" = tollgate ] && port=$pport
    saturate "$port" >>"$tmp/sat.$t"
    [ "$have_oha" = 0 ] || at_rate "$port" >>"$tmp/rate.$t"
  done
done

python3 - "$tmp" "$ROUNDS" "$have_oha" "wrk -t$THREADS -c$CONNS -d$DURATION" "$RATE" <<'PY'
import statistics, sys
tmp, rounds, have_oha, wrk, rate = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4], sys.argv[5]
def col(kind, t, i):
    return [float(l.split()[i]) for l in open(f"{tmp}/{kind}.{t}") if l.strip()]
print(f"{wrk} over 10000 users through each proxy to one upstream, median of {rounds} interleaved rounds")
print(f"{'proxy':<40} {'rps':>9} {'p99_us':>8} {'errors':>7} {'rps/nginx':>10}   rps per round")
n = statistics.median(col("sat", "nginx", 0))
for t, name in [("nginx", "nginx limit_req + proxy_pass"), ("tollgate", "tollgate proxy, one limit per user")]:
    rps = col("sat", t, 0)
    print(f"{name:<40} {statistics.median(rps):>9.0f} {statistics.median(col('sat', t, 1)):>8.0f} "
          f"{sum(col('sat', t, 2)):>7.0f} {statistics.median(rps) / n:>9.2f}x   {' '.join(f'{r:.0f}' for r in rps)}")
if have_oha:
    print(f"p99 at a fixed {rate} requests/s (oha), microseconds: " + ", ".join(
        f"{t} {statistics.median(col('rate', t, 0)):.0f}" for t in ("nginx", "tollgate")))
else:
    print("(oha is not installed: no p99 at a fixed rate; cargo install oha)")
PY

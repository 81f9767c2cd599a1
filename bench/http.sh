#!/usr/bin/env bash
# HTTP load: Tollgate's POST /v1/check and GET /v1/authorize against nginx `limit_req`
# doing the same job (a per-user limit over 10,000 users) in the same run, on loopback.
# Saturation with wrk (rps and p99 for each, and their ratio), then p99 at a fixed rate
# with oha. Bounded: every load stops by itself after $DURATION.
#
#   bench/http.sh                 # DURATION=10s CONNS=64 THREADS=2 RATE=20000
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
RATE=${RATE:-20000}
USERS=10000

need() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || {
    echo "missing $1: $2" >&2
    exit 1
  }
}
need wrk "sudo apt-get install -y wrk"
need nginx "sudo apt-get install -y nginx"
need oha "cargo install oha --locked"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release -q -p tollgate-server
TOLLGATE=target/release/tollgate

tmp=$(mktemp -d -t tollgate-bench.XXXXXX)
chmod 755 "$tmp" # nginx workers run as another user
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  exit 1
}

# Both sides admit everything: the rate is far above what the load reaches, so each request
# costs one full decision and nothing else.
tport=$(free_port)
cat >"$tmp/tollgate.yaml" <<YAML
server: { listen: "127.0.0.1:$tport" }
store: { kind: memory, capacity: 100000 }
rules:
  - { name: per-user, match: { user: "*" }, key: "user:{user}", algorithm: gcra, limit: 1000000, period: 1s }
YAML
TOLLGATE_LOG=warn "$TOLLGATE" serve --config "$tmp/tollgate.yaml" >"$tmp/tollgate.out" 2>&1 &
pids+=($!)

nport=$(free_port)
mkdir -p "$tmp/nginx/www"
echo ok >"$tmp/nginx/www/index.html"
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
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
}
CONF
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
pids+=($!)
wait_port "$tport"
wait_port "$nport"

lua_done='
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT %.0f %d %d\n", summary.requests / secs, latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
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

run_wrk() { # name port script
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$3" "http://127.0.0.1:$2" | awk '/^RESULT/ {print $2, $3, $4}'
}

echo "wrk -t$THREADS -c$CONNS -d$DURATION over $USERS users (p99 in microseconds)"
read -r n_rps n_p99 n_err < <(run_wrk nginx "$nport" "$tmp/nginx.lua")
[ "$n_err" = 0 ] || { echo "nginx answered errors:"; curl -s -i "http://127.0.0.1:$nport/?user=1" | head -3; tail -3 "$tmp/nginx/error.log"; }
read -r c_rps c_p99 c_err < <(run_wrk check "$tport" "$tmp/check.lua")
read -r a_rps a_p99 a_err < <(run_wrk authorize "$tport" "$tmp/authorize.lua")
printf '%-34s %10s %10s %8s %12s %12s\n' target rps p99_us errors "rps/nginx" "p99/nginx"
printf '%-34s %10s %10s %8s %12s %12s\n' "nginx limit_req (GET /?user=N)" "$n_rps" "$n_p99" "$n_err" 1.00 1.00
for row in "POST /v1/check:$c_rps:$c_p99:$c_err" "GET /v1/authorize:$a_rps:$a_p99:$a_err"; do
  IFS=: read -r name rps p99 err <<<"$row"
  printf '%-34s %10s %10s %8s %12.2f %12.2f\n' "tollgate $name" "$rps" "$p99" "$err" \
    "$(echo "$rps / $n_rps" | bc -l)" "$(echo "$p99 / $n_p99" | bc -l)"
done

echo
echo "oha -q $RATE -c $CONNS -z $DURATION: p99 at a fixed rate (milliseconds)"
fixed() { # name url [oha args...]
  local name=$1 url=$2
  shift 2
  oha --no-tui --output-format json -q "$RATE" -c "$CONNS" -z "$DURATION" "$@" "$url" >"$tmp/oha.json"
  python3 - "$name" "$tmp/oha.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
s = d["summary"]; p = d["latencyPercentiles"]
print(f"{sys.argv[1]:<34} rps {s['requestsPerSec']:>9.0f}   p99 {p['p99'] * 1000:7.3f} ms   success {s['successRate'] * 100:.2f}%")
PY
}
fixed "nginx limit_req" "http://127.0.0.1:$nport/\\?user=[0-9]{4}" --rand-regex-url
fixed "tollgate GET /v1/authorize" "http://127.0.0.1:$tport/v1/authorize" -H "X-Forwarded-User: 42"
fixed "tollgate POST /v1/check" "http://127.0.0.1:$tport/v1/check" -m POST -H "content-type: application/json" -d '{"subject":{"user":"42"}}'

# Shared by the load scripts: sourced, not run.

# need COMMAND HOW: stops with HOW when COMMAND is missing (nginx may live in /usr/sbin).
need() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || {
    echo "missing $1: $2" >&2
    exit 1
  }
}

# A free loopback port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT: waits until something listens on PORT, for ten seconds at most.
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  exit 1
}

# scratch NAME: $tmp, a temporary folder (readable by nginx's workers, which run as another
# user), and $pids, the processes started; both go when the script ends.
scratch() {
  tmp=$(mktemp -d -t "tollgate-$1.XXXXXX")
  chmod 755 "$tmp"
  pids=()
  trap cleanup EXIT INT TERM
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}

# nginx_conf DIR [WORKERS]: writes DIR/nginx.conf for a foreground nginx keeping its files in
# DIR, with the http block's directives and server blocks read from stdin.
nginx_conf() {
  mkdir -p "$1"
  {
    cat <<CONF
worker_processes ${2:-1};
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
CONF
    cat
    echo "}"
  } >"$1/nginx.conf"
}

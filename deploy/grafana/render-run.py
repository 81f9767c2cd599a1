#!/usr/bin/env python3
"""A real run of Tollgate under varied load, scraped by Prometheus, drawn as its dashboards.

Starts, in a temporary folder and on free loopback ports: a Redis, a PostgreSQL, four
Tollgate instances and a Prometheus scraping them every two seconds. Then it loads them
for `--duration` with varied traffic and events, draws every dashboard of
`deploy/grafana/dashboards` with `render.py`, and stops everything it started.

- `memory`: the memory store (small, so counters are evicted), records in PostgreSQL, API
  keys on three tiers (one with a daily quota), a deny list, a shadow rule, Envoy
  descriptors on gRPC, and the reverse proxy in front of `redis`'s listener and of an
  origin nothing listens on (its breaker opens).
- `redis`: Redis, `consistency: exact`, rules failing `allow`, `deny` and `local`.
- `approx-a`, `approx-b`: Redis, `consistency: approximate`, sharing a counter, so that
  both admit some units past its limit between two syncs.

Events, at fixed shares of the run: a refused then an accepted reload; a burst of keyed
traffic that overflows the usage writer's queue; the records' tables locked while made-up
keys arrive (lookups shed, usage dropped); Redis killed and started again (store errors,
degraded decisions, failed syncs); a reload that needs a restart; a burst on `redis`
through `tollgate loadtest`. Throughout: allowed and denied checks, dry runs, several
keys, refused keys, malformed bodies, forward-auth, proxied requests and Envoy calls.

Needs `redis-server`, PostgreSQL's server binaries (`/usr/lib/postgresql/*/bin`, or
`PG_BIN`), Debian's `prometheus`, a built `tollgate`, and a Python with matplotlib and
grpcio (the test virtualenv that `scripts/test` makes, plus matplotlib):

    cargo build -p tollgate-server
    target/test-venv/bin/pip install matplotlib
    target/test-venv/bin/python deploy/grafana/render-run.py --out docs/observability

`--tollgate` (or `TOLLGATE_BIN`) names another binary; `--duration` (seconds, default 300)
makes the run longer or shorter.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import grpc

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import render  # noqa: E402

SCRAPE = 2  # seconds between scrapes
INSTANCES = ("memory", "redis", "approx-a", "approx-b")
SECRET = "a key secret for this run, at least 32 bytes long"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, ok, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if ok():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {deadline:.0f}s")


def http_ok(port: int, path: str) -> bool:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        c.request("GET", path)
        return c.getresponse().status == 200
    finally:
        c.close()


def request(port: int, method: str, path: str, body=None, headers=None, timeout=10):
    """One request on its own connection; (status, JSON or None)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        h = {"content-type": "application/json", **(headers or {})}
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, None
    finally:
        c.close()


# ---------------------------------------------------------------------------- processes


class Processes:
    """What this run started, stopped in reverse order at the end."""

    def __init__(self, dir: Path):
        self.dir = dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.stops: list = []

    def start(self, name: str, args: list, env=None) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "ab")
        p = subprocess.Popen([str(a) for a in args], stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
        self.procs[name] = p
        return p

    def stop(self, name: str, sig=signal.SIGTERM) -> None:
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return
        p.send_signal(sig)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)
        for stop in reversed(self.stops):
            stop()

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


class Postgres:
    """A throwaway PostgreSQL (as the `postgres` user when run as root)."""

    def __init__(self, procs: Processes):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        self.bin = Path(os.environ["PG_BIN"]) if "PG_BIN" in os.environ else bins[-1].parent
        self.root = os.geteuid() == 0
        self.data = procs.dir / "pg"
        self.data.mkdir()
        if self.root:
            shutil.chown(procs.dir, "postgres")
            shutil.chown(self.data, "postgres")
        self.port = free_port()
        self.run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        opts = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run("pg_ctl", "-D", self.data, "-o", opts, "-l", self.data / "log", "-w", "start")
        procs.stops.append(lambda: self.run("pg_ctl", "-D", self.data, "-m", "immediate", "stop"))
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def cmd(self, tool: str, *args) -> list:
        c = [str(self.bin / tool), *map(str, args)]
        return ["runuser", "-u", "postgres", "--", *c] if self.root else c

    def run(self, tool: str, *args) -> None:
        subprocess.run(self.cmd(tool, *args), check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def lock_tables(self) -> subprocess.Popen:
        """A transaction holding the keys' and the writer's tables until `unlock`.

        The lock can deadlock with the writer's batch, which then wins; it is tried again.
        """
        for _ in range(10):
            p = subprocess.Popen(self.cmd("psql", "-X", "-q", "-h", "127.0.0.1", "-p", self.port,
                                          "-U", "postgres", "postgres"),
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            p.stdin.write(b"BEGIN;\nLOCK TABLE keys, usage_events, violations IN ACCESS EXCLUSIVE MODE;\n")
            p.stdin.flush()
            try:
                wait_for("the tables' locks", self.locks_held, deadline=5)
                return p
            except RuntimeError:
                self.unlock(p)
        raise RuntimeError("the tables could not be locked")

    def locks_held(self) -> bool:
        out = subprocess.run(
            self.cmd("psql", "-X", "-tA", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres",
                     "postgres", "-c",
                     "SELECT count(*) FROM pg_locks WHERE granted AND mode = 'AccessExclusiveLock' "
                     "AND relation IN ('keys'::regclass, 'usage_events'::regclass, "
                     "'violations'::regclass)"),
            capture_output=True, text=True, stdin=subprocess.DEVNULL)
        return out.stdout.strip() == "3"

    @staticmethod
    def unlock(p: subprocess.Popen) -> None:
        p.stdin.write(b"COMMIT;\n")
        p.stdin.close()
        p.wait(30)


# ---------------------------------------------------------------------------- configuration


def memory_config(ports: dict, pg: Postgres) -> str:
    return f"""\
server: {{ listen: "127.0.0.1:{ports['memory']}", grpc_listen: "127.0.0.1:{ports['grpc']}" }}
store: {{ kind: memory, capacity: 1000 }}
database: {{ url: "{pg.url}", cache_ttl: 30s, usage_queue: 100, flush_interval: 500ms }}
proxy:
  listen: "127.0.0.1:{ports['proxy']}"
  routes:
    - {{ path_prefix: /flaky, upstream: flaky, retry: {{ backoff: 5ms }}, try_timeout: 1s }}
    - {{ path_prefix: /, upstream: api }}
  upstreams:
    api: {{ origins: ["http://127.0.0.1:{ports['redis']}"] }}
    flaky:
      origins: ["http://127.0.0.1:{ports['dead']}"]
      breaker: {{ failures: 5, open_for: 3s }}
      budget: {{ ratio: 0.5, min_per_second: 2 }}
deny: {{ users: [mallory] }}
rules:
  - {{ name: per-user, key: "user:{{user}}", match: {{ user: "*" }}, algorithm: gcra, limit: 5, period: 1s, burst: 5 }}
  - {{ name: per-ip, key: "ip:{{ip}}", match: {{ ip: "0.0.0.0/0" }}, algorithm: sliding_window, limit: 20, period: 10s }}
  - {{ name: search, key: "search:{{user}}", match: {{ path: "/search" }}, algorithm: fixed_window, limit: 3, period: 5s }}
  - {{ name: next-per-user, key: "next:{{user}}", match: {{ user: "*" }}, algorithm: fixed_window, limit: 3, period: 1s, shadow: true }}
tiers:
  free:
    limits:
      - {{ name: requests, algorithm: gcra, limit: 4, period: 1s }}
      - {{ name: daily, algorithm: quota, limit: 150, period: day }}
  pro:
    limits:
      - {{ name: requests-pro, algorithm: gcra, limit: 60, period: 1s, burst: 60 }}
  bulk:
    limits:
      - {{ name: requests-bulk, algorithm: gcra, limit: 350, period: 1s, burst: 100 }}
envoy:
  - domain: edge
    descriptors:
      - key: route
        value_to_metric: true
        descriptors:
          - key: user
            detailed_metric: true
            rate_limit: {{ unit: second, requests_per_unit: 2 }}
"""


def redis_config(ports: dict) -> str:
    return f"""\
server: {{ listen: "127.0.0.1:{ports['redis']}", grpc_listen: "off" }}
store: {{ kind: redis, url: "redis://127.0.0.1:{ports['redis-server']}", timeout: 100ms, breaker: {{ failures: 3, cool_down: 1s }} }}
rules:
  - {{ name: tenant, key: "tenant:{{tenant}}", match: {{ tenant: "*" }}, algorithm: token_bucket, limit: 40, period: 1s, burst: 20, on_store_error: local }}
  - {{ name: bulk, match: {{ path: /bulk }}, algorithm: gcra, limit: 250, period: 1s, burst: 50 }}
  - {{ name: checkout, key: "checkout:{{user}}", match: {{ path: /checkout }}, algorithm: sliding_window, limit: 2, period: 1s, on_store_error: deny }}
  - {{ name: per-user-fleet, key: "user:{{user}}", match: {{ user: "*" }}, algorithm: gcra, limit: 8, period: 1s, on_store_error: allow }}
"""


def approx_config(ports: dict, name: str) -> str:
    return f"""\
server: {{ listen: "127.0.0.1:{ports[name]}", grpc_listen: "off" }}
store: {{ kind: redis, url: "redis://127.0.0.1:{ports['redis-server']}", consistency: approximate, sync: 500ms }}
rules:
  - {{ name: shared, key: "shared:{{user}}", match: {{ user: "*" }}, algorithm: fixed_window, limit: 30, period: 10s, on_store_error: local }}
"""


def prometheus_config(ports: dict) -> str:
    # Each instance named for what it runs on rather than by its port.
    targets = "".join(
        f'      - {{ targets: ["127.0.0.1:{ports[n]}"], labels: {{ instance: {n} }} }}\n'
        for n in INSTANCES)
    return f"""\
global: {{ scrape_interval: {SCRAPE}s, evaluation_interval: {SCRAPE}s }}
scrape_configs:
  - job_name: tollgate
    static_configs:
{targets}"""


# ---------------------------------------------------------------------------- traffic


def made_up_key() -> str:
    """A key of the right shape and checksum that no database knows."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

    def base62(n: int, width: int) -> str:
        out = []
        for _ in range(width):
            n, d = divmod(n, 62)
            out.append(alphabet[d])
        return "".join(reversed(out))

    head = "tg_live_" + base62(random.getrandbits(128), 22)
    return head + base62(zlib.crc32(head.encode()), 6)


def rls_request(domain: str, entries: list[tuple[str, str]]) -> bytes:
    """An Envoy RateLimitRequest with one descriptor, in protobuf's wire format."""

    def field(number: int, payload: bytes) -> bytes:
        n, length = len(payload), b""
        while True:
            byte, n = n & 0x7F, n >> 7
            length += bytes([byte | (0x80 if n else 0)])
            if not n:
                break
        return bytes([number << 3 | 2]) + length + payload

    descriptor = b"".join(field(1, field(1, k.encode()) + field(2, v.encode())) for k, v in entries)
    return field(1, domain.encode()) + field(2, descriptor)


class Load:
    """Workers sending a weighted mix of requests at a steady rate until stopped."""

    def __init__(self, ports: dict, keys: dict):
        self.ports, self.keys = ports, keys
        self.stop = threading.Event()
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def worker(self, mix, rate: float) -> None:
        conns: dict[int, http.client.HTTPConnection] = {}
        pause = 1 / rate
        while not self.stop.is_set():
            started = time.monotonic()
            port, method, path, body, headers = mix()
            try:
                c = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conns[port] = c
                data = body if isinstance(body, str) or body is None else json.dumps(body)
                c.request(method, path, body=data,
                          headers={"content-type": "application/json", **headers})
                r = c.getresponse()
                raw = r.read()
                code = r.status
                if r.status == 200 and path == "/v1/check":
                    code = json.loads(raw).get("code", code)
                self.count(f"{port} {code}")
            except (OSError, http.client.HTTPException, ValueError):
                conns.pop(port, None)
                self.count("error")
            self.stop.wait(max(0.0, pause - (time.monotonic() - started)))
        for c in conns.values():
            c.close()

    def envoy(self, rate: float) -> None:
        channel = grpc.insecure_channel(f"127.0.0.1:{self.ports['grpc']}")
        call = channel.unary_unary("/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        while not self.stop.is_set():
            route = random.choice(["orders", "orders", "search", "login"])
            user = random.choice(["alice", "bob", "carol", "dave", "erin"])
            try:
                call(rls_request("edge", [("route", route), ("user", user)]), timeout=5)
                self.count("grpc ok")
            except grpc.RpcError:
                self.count("grpc error")
            self.stop.wait(1 / rate)
        channel.close()

    def memory_mix(self):
        p, k = self.ports["memory"], self.keys
        r = random.random()
        user = f"u{min(int(random.expovariate(0.25)), 40)}"
        ip = f"10.{random.randint(0, 3)}.{random.randint(0, 255)}.{random.randint(0, 255)}"
        if r < 0.30:
            return p, "POST", "/v1/check", {"subject": {"user": user, "ip": ip}}, {}
        if r < 0.36:
            return p, "POST", "/v1/check", {"subject": {"user": user, "path": "/search"}}, {}
        if r < 0.40:
            return p, "POST", "/v1/check", {"subject": {"user": user}, "dry_run": True}, {}
        if r < 0.52:
            return p, "POST", "/v1/check", {"subject": {"api_key": random.choice(k["pro"])}}, {}
        if r < 0.60:
            return p, "POST", "/v1/check", {"subject": {"api_key": random.choice(k["free"])}}, {}
        if r < 0.63:
            return p, "POST", "/v1/check", {"subject": {"api_key": k["disabled"]}}, {}
        if r < 0.66:
            return p, "POST", "/v1/check", {"subject": {"api_key": k["expiring"]}}, {}
        if r < 0.68:
            return p, "POST", "/v1/check", {"subject": {"api_key": made_up_key()}}, {}
        if r < 0.70:
            return p, "POST", "/v1/check", {"subject": {"user": "mallory"}}, {}
        if r < 0.72:
            return p, "POST", "/v1/check", '{"subject": {"user": ', {}
        if r < 0.73:
            return p, "POST", "/v1/check", {"subject": {"usr": "typo"}}, {}
        if r < 0.85:
            return p, "GET", "/v1/authorize", None, {"x-api-key": random.choice(k["pro"])}
        if r < 0.95:
            return self.ports["proxy"], "GET", "/healthz", None, {"x-forwarded-for": ip}
        return self.ports["proxy"], "GET", "/flaky/orders", None, {}

    def redis_mix(self):
        r = random.random()
        user = f"u{min(int(random.expovariate(0.3)), 30)}"
        tenant = random.choice(["acme", "acme", "globex", "initech"])
        if r < 0.30:
            port = self.ports[random.choice(["approx-a", "approx-b"])]
            return port, "POST", "/v1/check", {"subject": {"user": user}}, {}
        if r < 0.42:
            return (self.ports["redis"], "POST", "/v1/check",
                    {"subject": {"user": user, "path": "/checkout"}}, {})
        return (self.ports["redis"], "POST", "/v1/check",
                {"subject": {"user": user, "tenant": tenant}}, {})

    def start(self) -> None:
        plan = [(self.memory_mix, 25)] * 5 + [(self.redis_mix, 25)] * 3
        for mix, rate in plan:
            self.threads.append(threading.Thread(target=self.worker, args=(mix, rate), daemon=True))
        self.threads.append(threading.Thread(target=self.envoy, args=(12,), daemon=True))
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)


def flood_made_up_keys(port: int, seconds: float, threads: int = 48) -> None:
    """Made-up keys from many clients at once: each needs a lookup of its own."""
    end = time.monotonic() + seconds

    def one():
        while time.monotonic() < end:
            try:
                request(port, "POST", "/v1/check", {"subject": {"api_key": made_up_key()}},
                        timeout=15)
            except OSError:
                time.sleep(0.05)

    ts = [threading.Thread(target=one, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 30)


# ---------------------------------------------------------------------------- the run


def run(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="tollgate-dashboards-"))
    procs = Processes(tmp)
    load = None
    try:
        ports = {n: free_port() for n in
                 (*INSTANCES, "grpc", "proxy", "redis-server", "dead", "prometheus")}
        pg = Postgres(procs)
        procs.start("redis-server", [args.redis_server, "--port", ports["redis-server"],
                                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                     "--dir", tmp])
        wait_for("redis", lambda: socket.create_connection(("127.0.0.1", ports["redis-server"]), 1))

        configs = {"memory": memory_config(ports, pg), "redis": redis_config(ports),
                   "approx-a": approx_config(ports, "approx-a"),
                   "approx-b": approx_config(ports, "approx-b")}
        for name, text in configs.items():
            (tmp / f"{name}.yaml").write_text(text)
            procs.start(name, [args.tollgate, "serve", "--config", tmp / f"{name}.yaml"],
                        env={"TOLLGATE_KEY_SECRET": SECRET, "TOLLGATE_LOG": "warn"})
        for name in configs:
            wait_for(f"tollgate {name} (see {tmp / name}.log)",
                     lambda n=name: http_ok(ports[n], "/readyz"))

        (tmp / "prometheus.yml").write_text(prometheus_config(ports))
        procs.start("prometheus", [args.prometheus_bin, f"--config.file={tmp / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp / 'tsdb'}",
                                   f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                                   "--log.level=warn"])
        wait_for("prometheus", lambda: http_ok(ports["prometheus"], "/-/ready"))

        keys = make_keys(ports["memory"])
        t0 = time.time()
        load = Load(ports, keys)
        load.start()
        timeline(args.duration, ports, pg, procs, tmp, configs, keys, args)
        load.finish()
        end = time.time()
        # The last scrapes of the load, before the pictures are drawn up to its end.
        time.sleep(2 * SCRAPE + 1)
        print("answers:", json.dumps(dict(sorted(load.counts.items()))), file=sys.stderr)

        prom_url = f"http://127.0.0.1:{ports['prometheus']}"
        failed = []
        for path in sorted((HERE / "dashboards").glob("*.json")):
            out = args.out / f"{path.stem}.png"
            failed += render.render(path, out, prom_url, t0 - 10, end, SCRAPE)
            print(f"{out}: {out.stat().st_size // 1024} KiB")
        for f in failed:
            print(f"query failed: {f}", file=sys.stderr)
        return 1 if failed else 0
    except Exception:
        for name in list(procs.procs):
            print(f"--- {name}.log\n{procs.log_tail(name)}", file=sys.stderr)
        raise
    finally:
        if load:
            load.finish()
        procs.stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def make_keys(port: int) -> dict:
    def create(name, tier, **extra):
        status, body = request(port, "POST", "/v1/keys",
                               {"name": name, "owner": name.split("-")[0], "tier": tier, **extra})
        if status != 201:
            raise RuntimeError(f"creating key {name}: {status} {body}")
        return body

    keys = {
        "pro": [create(f"acme-{i}", "pro")["secret"] for i in range(3)],
        "free": [create(f"hobby-{i}", "free")["secret"] for i in range(3)],
        "bulk": create("batch-import", "bulk")["secret"],
    }
    disabled = create("old-app", "free")
    status, body = request(port, "PATCH", f"/v1/keys/{disabled['key']['id']}", {"enabled": False})
    if status != 200:
        raise RuntimeError(f"disabling a key: {status} {body}")
    keys["disabled"] = disabled["secret"]
    # Valid for the first minute of the load, refused as expired after.
    keys["expiring"] = create("trial", "free", expires_at=int((time.time() + 60) * 1000))["secret"]
    return keys


def timeline(duration: float, ports, pg, procs, tmp, configs, keys, args) -> None:
    """The run's events, each at its share of the duration."""
    start = time.monotonic()

    def at(share: float) -> None:
        delay = start + share * duration - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def loadtest(port: int, rate: int, seconds: int, body: dict) -> subprocess.Popen:
        return subprocess.Popen(
            [str(args.tollgate), "loadtest", "--url", f"http://127.0.0.1:{port}", "--rate",
             str(rate), "--duration", f"{seconds}s", "--body", json.dumps(body)],
            stdout=open(tmp / "loadtest.log", "ab"), stderr=subprocess.STDOUT)

    memory_yaml = tmp / "memory.yaml"
    at(0.15)
    memory_yaml.write_text(configs["memory"] + "\nrules: [\n")  # refused
    time.sleep(4)
    memory_yaml.write_text(configs["memory"].replace("limit: 5, period: 1s, burst: 5",
                                                     "limit: 6, period: 1s, burst: 6"))
    at(0.25)
    # More usage at once than the writer's queue holds between two flushes.
    loadtest(ports["memory"], 400, 12, {"subject": {"api_key": keys["bulk"]}}).wait()
    at(0.40)
    lock = pg.lock_tables()
    time.sleep(1)
    flood_made_up_keys(ports["memory"], 8)
    Postgres.unlock(lock)
    at(0.55)
    procs.stop("redis-server", signal.SIGKILL)
    time.sleep(min(30, duration * 0.1))
    procs.start("redis-server", [args.redis_server, "--port", ports["redis-server"], "--bind",
                                 "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp])
    at(0.75)
    # A change to a setting read at start: counted as needing a restart, then undone.
    memory_yaml.write_text(memory_yaml.read_text().replace(
        "grpc_listen:", "max_connections: 5000, grpc_listen:"))
    time.sleep(4)
    memory_yaml.write_text(memory_yaml.read_text().replace("max_connections: 5000, ", ""))
    at(0.80)
    loadtest(ports["redis"], 300, 20, {"subject": {"path": "/bulk"}}).wait()
    at(1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tollgate", type=Path,
                    default=Path(os.environ.get("TOLLGATE_BIN", ROOT / "target/debug/tollgate")))
    ap.add_argument("--prometheus-bin", default=shutil.which("prometheus") or "prometheus")
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    ap.add_argument("--duration", type=float, default=300, help="seconds of load")
    ap.add_argument("--out", type=Path, default=ROOT / "docs/observability")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder and its logs")
    args = ap.parse_args()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

//! Real Redis servers for tests: a single node, a Cluster (3 primaries, 3 replicas) and a
//! primary with a replica and 3 Sentinels, each on free loopback ports in its own temporary
//! folder, stopped when dropped. Nothing here mocks Redis; it only starts and stops it.
//!
//! `redis-server` and `redis-cli` come from `PATH` (the project's test script installs
//! them) or from `REDIS_SERVER` / `REDIS_CLI`.

pub mod python;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A test-support error: what failed and why.
pub type Error = String;

fn server_bin() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

fn cli_bin() -> String {
    std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into())
}

/// A loopback port that is free, and whose Cluster bus port (+10000) is free too.
pub fn free_port() -> Result<u16, Error> {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        let bus = port.checked_add(10_000).filter(|&bus| bus < 65_000);
        if bus.is_some_and(|bus| TcpListener::bind(("127.0.0.1", bus)).is_ok()) {
            return Ok(port);
        }
    }
    Err("no free port pair found".into())
}

/// Runs `redis-cli` against `port` and returns its output.
pub fn cli(port: u16, args: &[&str]) -> Result<String, Error> {
    let out = Command::new(cli_bin())
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e} (is redis-tools installed?)", cli_bin()))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `ready` every 20 ms until it holds or `deadline` passes.
pub fn wait_for(
    what: &str,
    deadline: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), Error> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("{what}: not ready after {deadline:?}"))
}

/// One `redis-server` process (a data node or a Sentinel).
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
    conf: Option<PathBuf>,
    args: Vec<String>,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a node on a free port with extra `args` (`--cluster-enabled yes`, …).
    pub fn start(dir: &Path, args: &[&str]) -> Result<RedisServer, Error> {
        let port = free_port()?;
        Self::start_on(dir, port, None, args)
    }

    /// Starts a node on `port`, reading the config file `conf` first when given.
    pub fn start_on(
        dir: &Path,
        port: u16,
        conf: Option<PathBuf>,
        args: &[&str],
    ) -> Result<RedisServer, Error> {
        let dir = dir.join(format!("node-{port}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut server = RedisServer {
            port,
            child: None,
            conf,
            args: args.iter().map(|s| s.to_string()).collect(),
            dir,
        };
        server.restart()?;
        Ok(server)
    }

    /// The node's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the node again after [`kill`](Self::kill), on the same port.
    pub fn restart(&mut self) -> Result<(), Error> {
        let child = Command::new(server_bin())
            .args(self.conf.iter())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // Replicas sync at once instead of after the default 5 s diskless delay.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e} (is redis-server installed?)", server_bin()))?;
        self.child = Some(child);
        let port = self.port;
        // Any answer will do: with ACLs, PING may be refused yet the server is up.
        wait_for(&format!("redis on {port}"), Duration::from_secs(10), || {
            cli(port, &["PING"]).is_ok_and(|o| !o.trim().is_empty())
        })
    }

    /// Kills the node at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A standalone node in its own temporary folder.
pub struct Single {
    /// The node.
    pub server: RedisServer,
    _dir: tempfile::TempDir,
}

impl Single {
    /// Starts one node.
    pub fn start() -> Result<Single, Error> {
        Self::start_with(&[])
    }

    /// Starts one node with extra arguments (ACL users, `--requirepass`, …).
    pub fn start_with(args: &[&str]) -> Result<Single, Error> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let server = RedisServer::start(dir.path(), args)?;
        Ok(Single { server, _dir: dir })
    }

    /// Starts one node that also listens with TLS on a second port, its certificate (for
    /// `localhost` and 127.0.0.1) signed by a throwaway CA made with `openssl`. Returns
    /// the node, the TLS port and the CA's certificate file.
    pub fn start_tls(args: &[&str]) -> Result<(Single, u16, PathBuf), Error> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let Certificates { ca, cert, key } = certificates(dir.path())?;
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let tls_port = free_port()?.to_string();
        let (cert_s, key_s, ca_s) = (path(&cert), path(&key), path(&ca));
        let mut all = vec![
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            &cert_s,
            "--tls-key-file",
            &key_s,
            "--tls-ca-cert-file",
            &ca_s,
            "--tls-auth-clients",
            "no",
        ];
        all.extend_from_slice(args);
        let server = RedisServer::start(dir.path(), &all)?;
        let port = tls_port.parse().map_err(|_| "bad port".to_string())?;
        Ok((Single { server, _dir: dir }, port, ca))
    }

    /// The node's URL.
    pub fn url(&self) -> String {
        self.server.url()
    }
}

/// A Cluster of 3 primaries and 3 replicas, built with `redis-cli --cluster create`.
pub struct Cluster {
    /// Its nodes; the first three start as primaries.
    pub nodes: Vec<RedisServer>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts six nodes and joins them into a Cluster.
    ///
    /// A Cluster that does not settle (every node `cluster_state:ok`, every replica in sync)
    /// is stopped and built again on fresh ports, up to three times; each failed attempt
    /// prints what its nodes reported and their logs' last lines.
    pub fn start() -> Result<Cluster, Error> {
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            match Self::try_start() {
                Ok(cluster) => return Ok(cluster),
                Err(e) => {
                    eprintln!("cluster attempt {attempt} failed: {e}");
                    failures.push(e);
                }
            }
        }
        Err(failures.join("\n---\n"))
    }

    fn try_start() -> Result<Cluster, Error> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let args = [
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            "1000",
            // A replica promoted before its first sync would otherwise refuse, leaving its
            // slots uncovered while its primary is merely slow on a loaded machine.
            "--cluster-replica-validity-factor",
            "0",
            "--cluster-config-file",
            "nodes.conf",
            // Relative to the node's own folder (its --dir).
            "--logfile",
            "redis.log",
        ];
        let nodes = (0..6)
            .map(|_| RedisServer::start(dir.path(), &args))
            .collect::<Result<Vec<_>, _>>()?;
        let cluster = Cluster { nodes, _dir: dir };
        cluster
            .join()
            .map_err(|e| format!("{e}\n{}", cluster.report()))?;
        Ok(cluster)
    }

    fn join(&self) -> Result<(), Error> {
        let addrs: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addrs.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        let first = self.nodes.first().ok_or("a cluster of no nodes")?;
        let out = Command::new(cli_bin())
            .args(["-h", "127.0.0.1", "-p", &first.port.to_string()])
            .args(&create)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", cli_bin()))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        for n in &self.nodes {
            let port = n.port;
            wait_for("cluster state ok", Duration::from_secs(20), || {
                cli(port, &["CLUSTER", "INFO"]).is_ok_and(|o| o.contains("cluster_state:ok"))
            })?;
            // A replica that never synced refuses to fail over; tests of failover need
            // every replica in sync first.
            wait_for("replicas in sync", Duration::from_secs(20), || {
                cli(port, &["INFO", "replication"])
                    .is_ok_and(|o| o.contains("role:master") || o.contains("master_link_status:up"))
            })?;
        }
        Ok(())
    }

    /// What each node says of the Cluster, and the end of its log.
    fn report(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let info = cli(n.port, &["CLUSTER", "INFO"]).unwrap_or_else(|e| e);
            let state = info
                .lines()
                .find(|l| l.starts_with("cluster_state"))
                .unwrap_or("no answer");
            let nodes = cli(n.port, &["CLUSTER", "NODES"]).unwrap_or_else(|e| e);
            let log = std::fs::read_to_string(n.dir.join("redis.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            out.push_str(&format!("node {} ({state}):\n{nodes}", n.port));
            for line in tail.into_iter().rev() {
                out.push_str(&format!("  | {line}\n"));
            }
        }
        out
    }

    /// Seed URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// A primary, one replica and three Sentinels watching them as `mymaster`.
pub struct Sentinels {
    /// The data nodes: `[primary, replica]` as started.
    pub data: Vec<RedisServer>,
    /// The Sentinels.
    pub sentinels: Vec<RedisServer>,
    _dir: tempfile::TempDir,
}

impl Sentinels {
    /// The master name the Sentinels monitor.
    pub const MASTER: &'static str = "mymaster";

    /// Starts the primary, its replica and three Sentinels (1 s down-after).
    pub fn start() -> Result<Sentinels, Error> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let primary = RedisServer::start(dir.path(), &[])?;
        let primary_port = primary.port.to_string();
        let replica = RedisServer::start(dir.path(), &["--replicaof", "127.0.0.1", &primary_port])?;
        let rport = replica.port;
        wait_for("replica in sync", Duration::from_secs(10), || {
            cli(rport, &["INFO", "replication"]).is_ok_and(|o| o.contains("master_link_status:up"))
        })?;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port()?;
            let conf = dir.path().join(format!("sentinel-{port}.conf"));
            let text = format!(
                "port {port}\nbind 127.0.0.1\nsentinel monitor {m} 127.0.0.1 {primary_port} 2\n\
                 sentinel down-after-milliseconds {m} 1000\nsentinel failover-timeout {m} 5000\n\
                 sentinel parallel-syncs {m} 1\n",
                m = Self::MASTER
            );
            std::fs::write(&conf, text).map_err(|e| e.to_string())?;
            sentinels.push(RedisServer::start_on(
                dir.path(),
                port,
                Some(conf),
                &["--sentinel"],
            )?);
        }
        for s in &sentinels {
            let port = s.port;
            wait_for("sentinels see each other", Duration::from_secs(20), || {
                cli(port, &["SENTINEL", "MASTER", Self::MASTER]).is_ok_and(|o| {
                    o.lines().skip_while(|l| *l != "num-other-sentinels").nth(1) == Some("2")
                })
            })?;
        }
        Ok(Sentinels {
            data: vec![primary, replica],
            sentinels,
            _dir: dir,
        })
    }

    /// The Sentinels' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisServer::url).collect()
    }

    /// The port of the current primary, as the Sentinels report it.
    pub fn primary_port(&self) -> Option<u16> {
        let out = cli(
            self.sentinels.first()?.port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::MASTER],
        )
        .ok()?;
        out.lines().nth(1)?.trim().parse().ok()
    }
}

/// A throwaway PostgreSQL server (initdb into a temporary folder, trust authentication on
/// loopback), stopped when dropped. As root it runs as the `postgres` user, since
/// PostgreSQL refuses to run as root.
pub struct Postgres {
    /// Its port.
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

fn pg_bin() -> Result<PathBuf, Error> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(dir.into());
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e} (is postgresql installed?)"))?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| "no PostgreSQL server binaries under /usr/lib/postgresql".to_string())
}

impl Postgres {
    /// Starts a server on a free port.
    pub fn start() -> Result<Postgres, Error> {
        let bin = pg_bin()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data).map_err(|e| e.to_string())?;
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err("chown to postgres failed".into());
            }
        }
        let port = free_port()?;
        let pg = Postgres {
            port,
            bin,
            data,
            as_postgres,
            _dir: dir,
        };
        let data_arg = pg.data.to_string_lossy().into_owned();
        pg.run(
            "initdb",
            &[
                "-D",
                &data_arg,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )?;
        pg.start_again()?;
        Ok(pg)
    }

    /// Starts the server again on its data and port, after [`Postgres::stop`].
    pub fn start_again(&self) -> Result<(), Error> {
        let data_arg = self.data.to_string_lossy().into_owned();
        let port = self.port;
        let opts = format!("-p {port} -k {data_arg} -c listen_addresses=127.0.0.1 -c fsync=off");
        let log = self.data.join("log").to_string_lossy().into_owned();
        self.run(
            "pg_ctl",
            &["-D", &data_arg, "-o", &opts, "-l", &log, "-w", "start"],
        )?;
        wait_for("postgres", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
    }

    /// Stops the server at once, as a crash would, keeping its data.
    pub fn stop(&self) -> Result<(), Error> {
        let data = self.data.to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), Error> {
        let path = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// A URL for its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().into_owned();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}

/// A server certificate and key for `localhost` and 127.0.0.1, signed by a throwaway CA made
/// with `openssl`, written into `dir`.
#[derive(Debug, Clone)]
pub struct Certificates {
    /// The CA's certificate (PEM).
    pub ca: PathBuf,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

/// Makes [`Certificates`] in `dir`.
pub fn certificates(dir: &Path) -> Result<Certificates, Error> {
    let ca = dir.join("ca.pem");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let ca_key = dir.join("ca-key.pem");
    let csr = dir.join("cert.csr");
    let ext = dir.join("ext.cnf");
    std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        .map_err(|e| e.to_string())?;
    // A CA, then a server certificate it signs (rustls refuses a CA as the end entity).
    let steps: [Vec<String>; 3] = [
        vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=tollgate test CA",
            "-keyout",
            &path(&ca_key),
            "-out",
            &path(&ca),
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        vec![
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &path(&key),
            "-out",
            &path(&csr),
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        vec![
            "x509",
            "-req",
            "-in",
            &path(&csr),
            "-CA",
            &path(&ca),
            "-CAkey",
            &path(&ca_key),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &path(&ext),
            "-out",
            &path(&cert),
        ]
        .into_iter()
        .map(String::from)
        .collect(),
    ];
    for step in steps {
        let status = Command::new("openssl")
            .args(&step)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("openssl: {e}"))?;
        if !status.success() {
            return Err(format!("openssl {} failed", step.join(" ")));
        }
    }
    Ok(Certificates { ca, cert, key })
}

//! Reloads by SIGHUP and symlink swap, counters across reloads, request ids, shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::time::Duration;

use common::{Server, eventually};
use serde_json::{Value, json};

async fn check(s: &Server, user: &str) -> Value {
    reqwest::Client::new()
        .post(s.url("/v1/check"))
        .json(&json!({"subject": {"user": user}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn signal(s: &Server, sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(s.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn a_reload_keeps_the_counters_of_unchanged_rules() {
    let s = Server::start(
        "rules: [{name: r, key: '{user}', algorithm: fixed_window, limit: 5, period: 1h}]",
    );
    for _ in 0..3 {
        check(&s, "k").await;
    }
    // Same identity, new limit: the count of 3 carries over.
    let c = reqwest::Client::new();
    let r = c
        .put(s.url("/v1/config"))
        .body("rules: [{name: r, key: '{user}', algorithm: fixed_window, limit: 10, period: 1h}]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(check(&s, "k").await["limits"][0]["remaining"], 6);
    // A new window is a new identity: counting starts again.
    let r = c
        .put(s.url("/v1/config"))
        .body("rules: [{name: r, key: '{user}', algorithm: fixed_window, limit: 10, period: 2h}]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(check(&s, "k").await["limits"][0]["remaining"], 9);
}

async fn reloads_ok(s: &Server) -> u64 {
    let text = s.metrics().await;
    text.lines()
        .find(|l| l.starts_with("tollgate_reloads_total{result=\"ok\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn sighup_reloads_even_an_unchanged_file() {
    let s = Server::start("rules: [{name: first, key: '{user}', limit: 5, period: 1m}]");
    let before = reloads_ok(&s).await;
    signal(&s, "HUP");
    assert!(
        eventually(Duration::from_secs(10), || async {
            reloads_ok(&s).await == before + 1
        })
        .await
    );
    assert_eq!(check(&s, "u").await["limits"][0]["name"], "first");
}

#[cfg(unix)]
#[tokio::test]
async fn a_configmap_style_symlink_swap_reloads() {
    // Kubernetes mounts a ConfigMap as tollgate.yaml -> ..data/tollgate.yaml, ..data -> ..v1,
    // and updates it by pointing ..data at a new folder.
    let dir = tempfile::tempdir().unwrap();
    let write_version = |v: &str, rule: &str| {
        let d = dir.path().join(v);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("tollgate.yaml"),
            format!("server: {{ listen: \"127.0.0.1:0\" }}\nrules: [{{name: {rule}, key: '{{user}}', limit: 5, period: 1m}}]\n"),
        )
        .unwrap();
    };
    write_version("..v1", "one");
    std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/tollgate.yaml", dir.path().join("tollgate.yaml")).unwrap();
    let s = Server::start_at(dir.path().join("tollgate.yaml"));
    assert_eq!(check(&s, "u").await["limits"][0]["name"], "one");
    write_version("..v2", "two");
    std::os::unix::fs::symlink("..v2", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            check(&s, "u").await["limits"][0]["name"] == "two"
        })
        .await
    );
}

#[tokio::test]
async fn request_ids_are_honoured_or_made() {
    let s = Server::start("rules: []");
    let c = reqwest::Client::new();
    let r = c
        .get(s.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = c.get(s.url("/healthz")).send().await.unwrap();
    let made = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        made.len() == 32 && made.bytes().all(|b| b.is_ascii_hexdigit()),
        "{made}"
    );
    // The decision routes, answered before the router, honour and make them too.
    let r = c
        .post(s.url("/v1/check"))
        .header("x-request-id", "abc-456")
        .json(&serde_json::json!({"subject": {"user": "1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-456");
    let r = c.get(s.url("/v1/authorize")).send().await.unwrap();
    let again = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(again.len() == 32 && again != made, "{again} {made}");
    // Log lines written while handling a request carry its id.
    c.delete(s.url("/v1/counters/some-key"))
        .header("x-request-id", "rid-77")
        .send()
        .await
        .unwrap();
    let logged = eventually(Duration::from_secs(5), || async {
        s.log_text()
            .lines()
            .any(|l| l.contains("counter reset") && l.contains("rid-77"))
    })
    .await;
    assert!(logged, "{}", s.log_text());
}

#[tokio::test]
async fn sigterm_stops_gracefully() {
    let mut s = Server::start("rules: []");
    assert!(s.alive().await);
    signal(&s, "TERM");
    let status = s.exited().await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn a_second_server_on_a_taken_address_stops_with_a_clear_error() {
    let first = Server::start("rules: []");
    let taken = first.base.trim_start_matches("http://").to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tollgate.yaml");
    std::fs::write(
        &config,
        format!("server: {{ listen: \"{taken}\", grpc_listen: \"off\" }}\nrules: []\n"),
    )
    .unwrap();
    // Sharing the port would split the traffic, and each half would count alone.
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("TOLLGATE_ADMIN_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = second.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("the second server did not stop");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains(&format!("binding HTTP {taken}")) && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(first.alive().await);
}

/// The receive queue of the server's end of the connection from `client` to `server`
/// (how many bytes it has not read yet), from `/proc/net/tcp`.
fn unread_by_server(server: std::net::SocketAddr, client: std::net::SocketAddr) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (port(f[1])? == server.port() && port(f[2])? == client.port())
            .then(|| u64::from_str_radix(f[4].split(':').nth(1)?, 16).ok())
            .flatten()
    })
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_and_closes_idle_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = Server::start("rules: []");
    assert!(s.alive().await);
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut busy = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = br#"{"subject":{"user":"42"}}"#;
    let head = format!(
        "POST /v1/check HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    busy.write_all(head.as_bytes()).await.unwrap();
    busy.write_all(&body[..7]).await.unwrap();
    // Stopping before the server has read the head would find the connection idle.
    let me = busy.local_addr().unwrap();
    let read = eventually(Duration::from_secs(10), || async move {
        unread_by_server(addr, me) == Some(0)
    })
    .await;
    assert!(read, "the server never read the request's head");
    signal(&s, "TERM");
    // Stopping refuses new connections first, while the request in flight is still open.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "the idle connection stayed open: {closed:?}"
    );
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "stopped with a request in flight"
    );

    busy.write_all(&body[7..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), busy.read_to_end(&mut answer))
        .await
        .expect("the answer never came")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert!(answer.contains(r#""allowed":true"#), "{answer}");
    let status = s.exited().await;
    assert!(status.success(), "{status:?}");
}

/// A connection is closed once it has gone `server.idle_timeout` without starting a
/// request: idle after an answer, or sending its head too slowly.
#[tokio::test]
async fn idle_and_slow_connections_are_closed_after_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start_with_env("rules: []", &[("TOLLGATE_SERVER__IDLE_TIMEOUT", "300ms")]);
    assert!(s.alive().await);
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n")
        .await
        .unwrap();
    for (name, conn, answered) in [("idle", &mut idle, true), ("slow", &mut slow, false)] {
        let mut got = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut got)).await;
        assert!(matches!(closed, Ok(Ok(_))), "{name}: still open");
        let got = String::from_utf8_lossy(&got);
        assert_eq!(
            got.starts_with("HTTP/1.1 200 OK\r\n"),
            answered,
            "{name}: {got}"
        );
        assert!(
            got.ends_with(if answered { "ok\n" } else { "" }),
            "{name}: {got}"
        );
    }
    assert!(s.alive().await);
}

/// Past `server.max_connections`, a new connection waits in the listen queue and is served
/// once another closes.
#[tokio::test]
async fn connections_beyond_the_limit_wait_for_one_to_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start_with_env("rules: []", &[("TOLLGATE_SERVER__MAX_CONNECTIONS", "2")]);
    assert!(s.alive().await);
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    // Scraped on a connection that the server closes, so that it frees its place at once.
    let scrape = || async move {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).await.unwrap();
        text
    };
    // Only the scrape's own connection open: the start-up probe's has closed.
    let settled = eventually(Duration::from_secs(10), || async {
        let m = scrape().await;
        m.contains("tollgate_connections_open 1\n") && m.contains("tollgate_connections_max 2\n")
    })
    .await;
    assert!(settled, "{}", scrape().await);
    async fn ask(conn: &mut tokio::net::TcpStream, close: bool) {
        let head = if close { "connection: close\r\n" } else { "" };
        let request = format!("GET /healthz HTTP/1.1\r\nhost: t\r\n{head}\r\n");
        conn.write_all(request.as_bytes()).await.unwrap();
    }
    async fn answer(conn: &mut tokio::net::TcpStream) -> String {
        let mut buf = vec![0; 4096];
        let n = conn.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        ask(&mut conn, false).await;
        let got = tokio::time::timeout(Duration::from_secs(10), answer(&mut conn)).await;
        assert!(got.unwrap().starts_with("HTTP/1.1 200"));
        held.push(conn);
    }
    let mut waiting = tokio::net::TcpStream::connect(addr).await.unwrap();
    ask(&mut waiting, true).await;
    let early = tokio::time::timeout(Duration::from_millis(300), answer(&mut waiting)).await;
    assert!(early.is_err(), "answered beyond the limit: {early:?}");
    drop(held.pop());
    let got = tokio::time::timeout(Duration::from_secs(10), answer(&mut waiting))
        .await
        .expect("the waiting connection was never served");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(s.log_text().contains("connection limit reached"));
}

fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn reloads(s: &Server, result: &str) -> u64 {
    let prefix = format!("tollgate_reloads_total{{result=\"{result}\"}}");
    let text = s.metrics().await;
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn editing_admin_credentials_in_the_file_takes_effect_on_reload() {
    // Past authentication, the keys API without a database answers that it has none.
    const NO_DATABASE: u16 = 503;
    let with_token = |token: &str, idle: &str| {
        format!(
            "server: {{ listen: \"127.0.0.1:0\", idle_timeout: {idle} }}\nadmin:\n  tokens:\n    - {{ name: ops, role: operator, sha256: \"{}\" }}\nrules: [{{name: r, key: '{{user}}', limit: 5, period: 1m}}]\n",
            sha256_hex(token)
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tollgate.yaml");
    std::fs::write(&file, with_token("token-a", "75s")).unwrap();
    let s = Server::start_at(file.clone());
    let keys = |token: &'static str| {
        let url = s.url("/v1/keys");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(keys("token-a").await, NO_DATABASE);
    assert_eq!(keys("token-b").await, 401);

    // Revoke A by putting B in its place; the idle timeout changes too, which waits for a
    // restart and says so.
    std::fs::write(&file, with_token("token-b", "30s")).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            reloads(&s, "restart_needed").await == 1
        })
        .await,
        "{}",
        s.log_text()
    );
    assert_eq!(keys("token-a").await, 401, "a revoked token is refused");
    assert_eq!(keys("token-b").await, NO_DATABASE);
    assert!(
        s.log_text()
            .contains("server.idle_timeout changed: takes effect at restart"),
        "{}",
        s.log_text()
    );

    // A reload that changes only what reloads counts as ok.
    let before = reloads(&s, "ok").await;
    std::fs::write(&file, with_token("token-a", "30s")).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            reloads(&s, "ok").await == before + 1
        })
        .await
    );
    assert_eq!(keys("token-a").await, NO_DATABASE);
    assert_eq!(keys("token-b").await, 401);
}

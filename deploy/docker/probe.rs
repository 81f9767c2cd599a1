//! `tollgate-probe`: the container image's health check. The runtime image has no shell
//! and no HTTP client, so this asks `GET /healthz` itself and exits 0 on a 200 answer, 1
//! otherwise.
//!
//! `tollgate-probe [http://127.0.0.1:PORT/PATH]`; without an argument it asks the port of
//! `TOLLGATE_SERVER__LISTEN` (8080 unless set) on 127.0.0.1. Standard library only, so it
//! builds with a bare `rustc`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

fn target() -> Result<(SocketAddr, String), String> {
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => {
            let port = std::env::var("TOLLGATE_SERVER__LISTEN")
                .ok()
                .and_then(|l| {
                    l.rsplit_once(':')
                        .map(|(_, p)| p.trim_matches('"').to_owned())
                })
                .unwrap_or_else(|| "8080".to_owned());
            format!("http://127.0.0.1:{port}/healthz")
        }
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/healthz"),
    };
    let addr = authority
        .parse()
        .map_err(|_| format!("{authority}: expected an IP address and port"))?;
    Ok((addr, path.to_owned()))
}

fn probe() -> Result<(), String> {
    let (addr, path) = target()?;
    let timeout = Duration::from_secs(2);
    let mut conn =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    conn.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        match conn.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(e.to_string()),
        }
    }
    let status = String::from_utf8_lossy(&head[..read]);
    let line = status.lines().next().unwrap_or_default();
    if line.starts_with("HTTP/1.1 200") || line.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!("{path}: {line:?}"))
    }
}

fn main() -> ExitCode {
    match probe() {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("tollgate-probe: {why}");
            ExitCode::FAILURE
        }
    }
}

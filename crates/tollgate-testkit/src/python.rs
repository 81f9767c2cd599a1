//! The test receivers written in Python: a Standard Webhooks receiver that verifies every
//! signature with the reference library, an SMTP server (aiosmtpd), and an OTLP trace
//! receiver on the OpenTelemetry protos. Both run from the
//! test virtualenv that the project's test script makes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::Error;

/// The Python of the test virtualenv (`TOLLGATE_TEST_PYTHON`).
pub fn python() -> Result<String, Error> {
    std::env::var("TOLLGATE_TEST_PYTHON").map_err(|_| {
        "TOLLGATE_TEST_PYTHON is not set: run scripts/test, which makes the test virtualenv \
         (standardwebhooks, aiosmtpd) and sets it"
            .to_owned()
    })
}

/// A receiver script run as a child process, killed and reaped on drop.
pub struct Receiver {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Receiver {
    /// Runs `scripts/{script}` with `args`; the script writes its port to `dir/port` once
    /// listening (the file is removed first, so a restart waits for the new one).
    pub fn start(script: &str, dir: &Path, args: &[&str]) -> Result<Receiver, Error> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join(script);
        let port_file = dir.join("port");
        let _ = std::fs::remove_file(&port_file);
        let child = Command::new(python()?)
            .arg(path)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {script}: {e}"))?;
        let mut receiver = Receiver { child, port: 0 };
        crate::wait_for(script, Duration::from_secs(30), || port_file.exists())?;
        receiver.port = std::fs::read_to_string(&port_file)
            .map_err(|e| e.to_string())?
            .trim()
            .parse()
            .map_err(|e| format!("{script} wrote no port: {e}"))?;
        Ok(receiver)
    }

    /// A webhook receiver verifying with `secret` (`whsec_…`), writing what it gets to
    /// `dir/received.jsonl`, on `port` (0: a free one).
    pub fn webhooks(secret: &str, dir: &Path, port: u16) -> Result<Receiver, Error> {
        let out = dir.to_str().ok_or("a folder whose name is not UTF-8")?;
        Receiver::start(
            "webhook_receiver.py",
            dir,
            &[secret, out, &port.to_string()],
        )
    }

    /// An OTLP trace receiver (gRPC on [`Receiver::port`], HTTP/protobuf on the port it
    /// gives too) writing each span to `dir/spans.jsonl`.
    pub fn otlp(dir: &Path) -> Result<(Receiver, u16), Error> {
        let out = dir.to_str().ok_or("a folder whose name is not UTF-8")?;
        let receiver = Receiver::start("otlp_receiver.py", dir, &[out])?;
        let http = std::fs::read_to_string(dir.join("http_port"))
            .map_err(|e| e.to_string())?
            .trim()
            .parse()
            .map_err(|e| format!("otlp_receiver.py wrote no HTTP port: {e}"))?;
        Ok((receiver, http))
    }

    /// An SMTP server writing each message to `dir/msg-N.json` (STARTTLS offered when a
    /// certificate and key are given).
    pub fn smtp(dir: &Path, tls: Option<(&Path, &Path)>) -> Result<Receiver, Error> {
        let out = dir.to_str().ok_or("a folder whose name is not UTF-8")?;
        let mut args = vec![out.to_owned()];
        if let Some((cert, key)) = tls {
            for p in [cert, key] {
                args.push(p.to_str().ok_or("a path that is not UTF-8")?.to_owned());
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Receiver::start("smtp_receiver.py", dir, &args)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The records a webhook receiver wrote to `dir/received.jsonl` so far (a line being
/// written is left for the next read).
pub fn received_webhooks(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("received.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The spans an OTLP receiver wrote to `dir/spans.jsonl` so far.
pub fn received_spans(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("spans.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The messages an SMTP receiver wrote to `dir` so far.
pub fn received_mail(dir: &Path) -> Vec<serde_json::Value> {
    let mut found: Vec<(u64, serde_json::Value)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name
                .strip_prefix("msg-")?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            Some((n, serde_json::from_str(&text).ok()?))
        })
        .collect();
    found.sort_by_key(|(n, _)| *n);
    found.into_iter().map(|(_, v)| v).collect()
}

//! Starts the real `tollgate` binary on a free port with its own config folder.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `tollgate check-config` on `yaml` written to a file of its own: whether it passed,
/// and everything it printed.
pub fn check_config(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tollgate.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub struct Server {
    pub child: Child,
    /// Every line the server logged so far.
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub base: String,
    /// The gRPC door's address (`host:port`).
    pub grpc: Option<String>,
    /// The reverse proxy's base URL (`http://host:port`).
    pub proxy: Option<String>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Server {
    /// Starts `tollgate serve` on `yaml` (listening on 127.0.0.1:0), with extra env vars.
    pub fn start_with_env(yaml: &str, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tollgate.yaml");
        let yaml = format!(
            "server: {{ listen: \"127.0.0.1:0\", max_body: 4KiB, request_timeout: 5s }}\n{yaml}"
        );
        std::fs::write(&config, yaml).unwrap();
        Self::spawn(dir, config, env)
    }

    /// Starts `tollgate serve` on an existing configuration file.
    pub fn start_at(config: PathBuf) -> Server {
        Self::start_at_with_env(config, &[])
    }

    /// Starts `tollgate serve` on an existing configuration file, with extra env vars.
    pub fn start_at_with_env(config: PathBuf, env: &[(&str, &str)]) -> Server {
        Self::spawn(tempfile::tempdir().unwrap(), config, env)
    }

    /// Starts `tollgate serve --dev` on the embedded default, in a folder of its own (where
    /// dev mode keeps its database and key secret), listening on a free port.
    pub fn start_embedded_dev() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.args(["serve", "--dev"])
            .current_dir(dir.path())
            .env_remove("TOLLGATE_CONFIG")
            .env_remove("TOLLGATE_KEY_SECRET")
            .env("TOLLGATE_SERVER__LISTEN", "127.0.0.1:0");
        let config = dir.path().join("tollgate.yaml");
        Self::spawn_cmd(cmd, dir, config, &[])
    }

    fn spawn(dir: tempfile::TempDir, config: PathBuf, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.args(["serve", "--config"]).arg(&config);
        Self::spawn_cmd(cmd, dir, config, env)
    }

    fn spawn_cmd(
        mut cmd: Command,
        dir: tempfile::TempDir,
        config: PathBuf,
        env: &[(&str, &str)],
    ) -> Server {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.env_remove("TOLLGATE_ADMIN_TOKEN");
        // Every test server's gRPC door on a free port too, unless the test says otherwise.
        cmd.env("TOLLGATE_SERVER__GRPC_LISTEN", "127.0.0.1:0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        // Drained continuously so a chatty server never blocks on a full pipe.
        let stderr = child.stderr.take().unwrap();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut grpc = None;
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.wait();
                panic!(
                    "tollgate did not say where it listens; its log:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            };
            if let Some(rest) = line.strip_prefix("tollgate listening on ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // The other doors' lines follow the HTTP one, and a hint ends them.
        let mut proxy = None;
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
            if let Some(rest) =
                line.strip_prefix("tollgate gRPC (Envoy rate limit service) listening on ")
            {
                grpc = Some(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("tollgate reverse proxy listening on ") {
                proxy = Some(rest.trim().to_string());
            } else if line.starts_with("try: ") {
                break;
            }
        }
        Server {
            child,
            logs,
            base,
            grpc,
            proxy,
            dir,
            config,
        }
    }

    pub fn start(yaml: &str) -> Server {
        Self::start_with_env(yaml, &[])
    }

    /// The server's log so far, one line each.
    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What `GET /metrics` answers.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits, up to a deadline, for the server to exit, and gives its status.
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "tollgate did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server still answers.
    pub async fn alive(&self) -> bool {
        reqwest::get(self.url("/healthz"))
            .await
            .is_ok_and(|r| r.status() == 200)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

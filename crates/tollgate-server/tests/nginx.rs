//! Forward-auth through a real nginx (`auth_request`), as `docs/forward-auth.md` shows it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Server, eventually};

struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    // nginx runs as one process (`master_process off`): a killed master would leave its
    // workers running, holding the port.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> PathBuf {
    let path =
        std::env::var_os("NGINX").map_or_else(|| PathBuf::from("/usr/sbin/nginx"), PathBuf::from);
    assert!(
        path.exists(),
        "nginx is missing: run  sudo apt-get install -y nginx  (scripts/test does it when run as root)"
    );
    path
}

/// nginx in front of a static page, asking Tollgate (at `tollgate`, host:port) about
/// every request.
fn start_nginx(tollgate: &str) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::create_dir_all(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("www/index.html"), "hello\n").unwrap();
    let port = tollgate_testkit::free_port().unwrap();
    let conf = format!(
        r#"
master_process off;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream tollgate {{ server {tollgate}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        add_header RateLimit $tollgate_ratelimit always;
        add_header RateLimit-Policy $tollgate_policy always;
        add_header Retry-After $tollgate_retry_after always;
        location / {{
            auth_request /_tollgate;
            auth_request_set $tollgate_ratelimit $upstream_http_ratelimit;
            auth_request_set $tollgate_policy $upstream_http_ratelimit_policy;
            auth_request_set $tollgate_retry_after $upstream_http_retry_after;
            error_page 401 = @limited;
            try_files /index.html =404;
        }}
        location = /_tollgate {{
            internal;
            proxy_pass http://tollgate/v1/authorize?deny_status=401;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
        location @limited {{
            default_type text/plain;
            return 429 "rate limited\n";
        }}
    }}
}}
"#
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Nginx {
        child,
        port,
        _dir: dir,
    }
}

#[tokio::test]
async fn nginx_auth_request_admits_then_answers_429_with_headers() {
    let tollgate = Server::start_with_env(
        "rules:
  - {name: per-ip, key: 'ip:{ip}', algorithm: fixed_window, limit: 3, period: 1h}
  - {name: login, match: {method: POST, path: /login}, key: 'login:{ip}', algorithm: fixed_window, limit: 1, period: 1h}",
        &[("TOLLGATE_SERVER__TRUSTED_PROXIES", "['127.0.0.0/8']")],
    );
    let upstream = tollgate.base.trim_start_matches("http://").to_string();
    let nginx = start_nginx(&upstream);
    let url = format!("http://127.0.0.1:{}/", nginx.port);
    let c = reqwest::Client::new();
    assert!(
        eventually(Duration::from_secs(10), || async {
            c.get(&url).send().await.is_ok()
        })
        .await,
        "nginx did not start"
    );
    // That probe was the first request; two more pass.
    for _ in 0..2 {
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["ratelimit"]
                .to_str()
                .unwrap()
                .starts_with(r#""per-ip";r="#)
        );
        assert_eq!(r.text().await.unwrap(), "hello\n");
    }
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let h = r.headers();
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(h["ratelimit-policy"], r#""per-ip";q=3;w=3600"#);
    assert_eq!(
        h["ratelimit"].to_str().unwrap(),
        format!(r#""per-ip";r=0;t={retry}"#)
    );

    // The client's counter (from nginx's X-Real-IP, a trusted proxy) is used up.
    let counters: serde_json::Value =
        reqwest::get(tollgate.url("/v1/counters?key=ip:127.0.0.1&rule=per-ip"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(counters["counters"][0]["remaining"], 0);
}

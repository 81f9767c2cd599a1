//! The admin subcommands of the real binary against a real server, with the records in a
//! SQLite file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects,
    missing_docs
)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::Server;
use serde_json::{Value, json};

const CONFIG: &str = "database: {}\ntiers:\n  free: { limits: [] }\n  pro:\n    limits:\n      - { name: requests, limit: 50, period: 1h }\n";

const SECRET: &str = "a server secret of at least 32 bytes!!";
const TOKEN: &str = "cli-admin-token";

fn start() -> Server {
    Server::start_with_env(
        CONFIG,
        &[
            ("TOLLGATE_KEY_SECRET", SECRET),
            ("TOLLGATE_ADMIN_TOKEN", TOKEN),
        ],
    )
}

/// Runs `tollgate ARGS` against `url` with `token`, stdin from `input`.
fn run_with(url: &str, token: &str, args: &[&str], input: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env("TOLLGATE_URL", url)
        .env("TOLLGATE_ADMIN_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(text) = input {
        stdin.write_all(text.as_bytes()).unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// Runs `tollgate ARGS` against `server` and asserts it succeeded; its stdout.
fn ok(server: &Server, args: &[&str]) -> String {
    let out = run_with(&server.base, TOKEN, args, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn ok_json(server: &Server, args: &[&str]) -> Value {
    let text = ok(server, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

async fn check_code(server: &Server, key: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(server.url("/v1/check"))
        .json(&json!({"subject": {"api_key": key}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn keys_are_created_listed_rotated_and_revoked_from_the_command_line() {
    let server = start();

    let created = ok_json(
        &server,
        &[
            "keys",
            "create",
            "--name",
            "ci",
            "--owner",
            "acme",
            "--tier",
            "pro",
            "--metadata",
            r#"{"team":"a"}"#,
            "--json",
        ],
    );
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(created["key"]["owner"], "acme");
    assert_eq!(created["key"]["metadata"]["team"], "a");
    assert_eq!(check_code(&server, &secret).await, "OK");

    // The table names the key under aligned headers; --json parses.
    let table = ok(&server, &["keys", "list"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("ID"), "{table}");
    let row = lines.find(|l| l.contains(&id)).unwrap();
    assert!(row.contains("acme") && row.contains("pro"), "{table}");
    assert_eq!(header.find("OWNER"), row.find("acme"), "{table}");
    let listed = ok_json(&server, &["keys", "list", "--owner", "acme", "--json"]);
    assert_eq!(listed["keys"][0]["id"], id.as_str());
    let none = ok_json(&server, &["keys", "list", "--owner", "nobody", "--json"]);
    assert_eq!(none["keys"], json!([]));

    let got = ok_json(&server, &["keys", "get", &id, "--json"]);
    assert_eq!(got["name"], "ci");
    assert!(ok(&server, &["keys", "get", &id]).contains(&id));

    // Usage: the tier's limit, read without consuming.
    let usage = ok_json(&server, &["usage", &id, "--json"]);
    assert_eq!(usage["limits"][0]["name"], "requests");
    assert_eq!(usage["limits"][0]["limit"], 50);
    let table = ok(&server, &["usage", &id]);
    assert!(
        table.contains("requests") && table.contains("50"),
        "{table}"
    );

    // Disabled, the key is refused; enabled again, it works; a new name shows.
    let updated = ok_json(&server, &["keys", "update", &id, "--disable", "--json"]);
    assert_eq!(updated["status"], "disabled", "{updated}");
    assert_eq!(check_code(&server, &secret).await, "KEY_DISABLED");
    let table = ok(
        &server,
        &["keys", "update", &id, "--enable", "--name", "renamed"],
    );
    assert!(table.contains("renamed"), "{table}");
    assert_eq!(check_code(&server, &secret).await, "OK");
    let out = run_with(&server.base, TOKEN, &["keys", "update", &id], None);
    assert!(
        !out.status.success(),
        "an update that changes nothing is refused"
    );

    let rotated = ok_json(
        &server,
        &["keys", "rotate", &id, "--grace-seconds", "0", "--json"],
    );
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(check_code(&server, &new_secret).await, "OK");
    // No grace: the old secret, verified and cached before, is refused at once.
    assert_eq!(check_code(&server, &secret).await, "KEY_INVALID");

    let out = ok(&server, &["keys", "revoke", &id]);
    assert!(out.contains(&id), "{out}");
    // A revoked key is refused as one that never existed.
    assert_eq!(check_code(&server, &new_secret).await, "KEY_INVALID");
    let got = ok_json(&server, &["keys", "get", &id, "--json"]);
    assert_eq!(got["status"], "revoked");

    // A refusal prints the problem's title and detail, and exits non-zero.
    let out = run_with(&server.base, TOKEN, &["keys", "get", "key_missing"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("key_missing"), "{stderr}");
}

#[tokio::test]
async fn tiers_are_listed_and_put_from_a_file_or_stdin() {
    let server = start();
    let table = ok(&server, &["tiers", "list"]);
    assert!(table.starts_with("TIER"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("pro ") && l.contains("requests")),
        "{table}"
    );

    let file = server.dir.path().join("team.yaml");
    std::fs::write(
        &file,
        "limits:\n  - { name: calls, limit: 9, period: 1m }\n",
    )
    .unwrap();
    ok(&server, &["tiers", "put", "team", file.to_str().unwrap()]);
    let out = run_with(
        &server.base,
        TOKEN,
        &["tiers", "put", "json"],
        Some(r#"{"limits": [{"name": "hits", "limit": 3, "period": "1s"}]}"#),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tiers = ok_json(&server, &["tiers", "list", "--json"]);
    assert_eq!(tiers["tiers"]["team"]["limits"][0]["name"], "calls");
    assert_eq!(tiers["tiers"]["json"]["limits"][0]["limit"], 3);

    // A bad tier is refused with each error under its path.
    let out = run_with(
        &server.base,
        TOKEN,
        &["tiers", "put", "bad"],
        Some("limits:\n  - { name: x, limit: 1, period: \"1 mintue\" }\n"),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("period"), "{stderr}");
}

#[tokio::test]
async fn the_policy_is_read_and_replaced_and_files_checked() {
    let server = start();
    let policy = ok(&server, &["config", "get"]);
    assert!(policy.contains("pro"), "{policy}");
    let v = ok_json(&server, &["config", "get", "--json"]);
    assert!(v["tiers"]["pro"].is_object(), "{v}");

    let file = server.dir.path().join("policy.yaml");
    std::fs::write(
        &file,
        "tiers:\n  free: { limits: [] }\n  pro: { limits: [] }\n  gold: { limits: [] }\n",
    )
    .unwrap();
    ok(&server, &["config", "put", file.to_str().unwrap()]);
    let v = ok_json(&server, &["config", "get", "--json"]);
    assert!(v["tiers"]["gold"].is_object(), "{v}");

    let bad = server.dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "rules:\n  - { name: r, limit: 1, period: \"1 mintue\" }\n",
    )
    .unwrap();
    let out = run_with(
        &server.base,
        TOKEN,
        &["config", "check", bad.to_str().unwrap()],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("period"));
    let out = run_with(
        &server.base,
        TOKEN,
        &["config", "put", bad.to_str().unwrap()],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rules[0].period"));
    assert!(ok(&server, &["config", "check", file.to_str().unwrap()]).contains("ok"));
}

#[tokio::test]
async fn a_wrong_token_and_an_unreachable_server_are_said_clearly() {
    let server = start();
    let out = run_with(&server.base, "not-the-token", &["keys", "list"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown admin token"), "{stderr}");

    // The token file wins over the environment.
    let file = server.dir.path().join("admin.token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let out = run_with(
        &server.base,
        "not-the-token",
        &["keys", "list", "--token-file", file.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = run_with(&url, TOKEN, &["tiers", "list"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not reach") && stderr.contains(&url),
        "{stderr}"
    );
}

#[test]
fn the_manual_and_completions_name_the_admin_commands() {
    let man = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["man", "keys"])
        .output()
        .unwrap();
    assert!(man.status.success());
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.contains("rotate") && man.contains("revoke"), "{man}");
    let bash = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let bash = String::from_utf8_lossy(&bash.stdout);
    for word in [
        "keys",
        "usage",
        "tiers",
        "dead-letters",
        "config",
        "--token-file",
    ] {
        assert!(bash.contains(word), "{word}");
    }
}

#[test]
fn the_load_generator_keeps_its_rate_and_accounts_for_every_request() {
    let server = start();
    let out = run_with(
        &server.base,
        TOKEN,
        &["loadtest", "--rate", "200", "--duration", "1s", "--json"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sent"], 200);
    assert_eq!(v["completed"], 200);
    let counted: u64 = v["statuses"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(counted, 200, "{v}");
    assert_eq!(v["statuses"]["200"], 200, "{v}");
    // Sent on a timetable: the run takes about the duration, not less.
    assert!(v["elapsed_s"].as_f64().unwrap() >= 0.99, "{v}");
    let lat = &v["latency_ms"];
    for (lo, hi) in [
        ("p50", "p90"),
        ("p90", "p99"),
        ("p99", "p99.9"),
        ("p99.9", "max"),
    ] {
        assert!(
            lat[lo].as_f64().unwrap() <= lat[hi].as_f64().unwrap(),
            "{v}"
        );
    }

    // The human form names the same figures.
    let out = run_with(
        &server.base,
        TOKEN,
        &["loadtest", "--rate", "50", "--duration", "200ms"],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sent 10 at 50/s") && text.contains("p99.9"),
        "{text}"
    );
}

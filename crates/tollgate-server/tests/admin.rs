//! Admin security on the real binary: every admin route × every role, JWTs signed with
//! RS256 (keys from a JWKS served over HTTP) and ES256 (a PEM file), the admin API's own
//! rate limits, CORS, security headers, the audit log, and no key material in any log line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::path::Path;

use common::Server;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;

const SECRET: &str = "a server secret of at least 32 bytes!!";

fn sha256_hex(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn call(
    c: &reqwest::Client,
    server: &Server,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = c.request(method, server.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Viewer,
    Operator,
    Admin,
}

#[tokio::test]
async fn every_admin_route_by_every_role_on_sqlite() {
    matrix("{}").await;
}

#[tokio::test]
async fn every_admin_route_by_every_role_on_postgres() {
    let pg = tollgate_testkit::Postgres::start().unwrap();
    matrix(&format!("{{ url: \"{}\" }}", pg.url())).await;
}

async fn matrix(database: &str) {
    let yaml = format!(
        "database: {database}\nadmin:\n  tokens:\n    - {{ name: ops, role: operator, sha256: \"{}\" }}\n    - {{ name: ro, role: viewer, sha256: \"{}\" }}\n  cors_origins: [\"https://console.example\"]\ntiers:\n  free:\n    limits:\n      - {{ name: requests, limit: 10, period: 1s }}\n",
        sha256_hex("operator-token"),
        sha256_hex("viewer-token"),
    );
    let server = Server::start_with_env(
        &yaml,
        &[
            ("TOLLGATE_KEY_SECRET", SECRET),
            ("TOLLGATE_ADMIN_TOKEN", "admin-token"),
        ],
    );
    let c = reqwest::Client::new();
    let admin = Some("admin-token");
    let (_, policy) = call(&c, &server, Method::GET, "/v1/config", admin, None).await;
    let (status, created) = call(
        &c,
        &server,
        Method::POST,
        "/v1/keys",
        admin,
        Some(&json!({"name": "k", "owner": "acme", "tier": "free"})),
    )
    .await;
    assert_eq!(status, 201);
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let mut secrets = vec![created["secret"].as_str().unwrap().to_owned()];

    let new_key = json!({"name": "n", "owner": "acme", "tier": "free"});
    let tier = json!({"limits": [{"name": "requests", "limit": 5, "period": "1s"}]});
    let k = |p: &str| p.replace("{id}", &id);
    // Every admin route, and the least role that may use it.
    let routes: Vec<(Method, String, Option<Value>, Role)> = vec![
        (Method::GET, "/v1/config".into(), None, Role::Viewer),
        (
            Method::PUT,
            "/v1/config".into(),
            Some(policy.clone()),
            Role::Admin,
        ),
        (
            Method::POST,
            "/v1/config".into(),
            Some(policy.clone()),
            Role::Admin,
        ),
        (Method::GET, "/v1/counters?key=x".into(), None, Role::Viewer),
        (
            Method::DELETE,
            "/v1/counters/x".into(),
            None,
            Role::Operator,
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            Some(new_key.clone()),
            Role::Operator,
        ),
        (Method::GET, "/v1/keys".into(), None, Role::Viewer),
        (
            Method::POST,
            "/v1/keys/verify".into(),
            Some(json!({"key": "tg_live_nope"})),
            Role::Viewer,
        ),
        (Method::GET, k("/v1/keys/{id}"), None, Role::Viewer),
        (
            Method::PATCH,
            k("/v1/keys/{id}"),
            Some(json!({"name": "renamed"})),
            Role::Operator,
        ),
        (
            Method::POST,
            k("/v1/keys/{id}/rotate"),
            Some(json!({})),
            Role::Operator,
        ),
        (Method::GET, k("/v1/keys/{id}/usage"), None, Role::Viewer),
        (
            Method::GET,
            k("/v1/keys/{id}/usage/history"),
            None,
            Role::Viewer,
        ),
        (Method::GET, k("/v1/keys/{id}/limits"), None, Role::Viewer),
        (
            Method::GET,
            "/v1/owners/acme/usage/history".into(),
            None,
            Role::Viewer,
        ),
        (Method::GET, "/v1/violations".into(), None, Role::Viewer),
        (Method::GET, "/v1/tiers".into(), None, Role::Viewer),
        (Method::GET, "/v1/tiers/free".into(), None, Role::Viewer),
        (
            Method::PUT,
            "/v1/tiers/extra".into(),
            Some(tier.clone()),
            Role::Operator,
        ),
        (
            Method::DELETE,
            "/v1/tiers/extra".into(),
            None,
            Role::Operator,
        ),
        (Method::GET, "/v1/audit".into(), None, Role::Admin),
        (Method::GET, "/v1/dead-letters".into(), None, Role::Viewer),
        (Method::GET, "/v1/dead-letters/1".into(), None, Role::Viewer),
        (
            Method::POST,
            "/v1/dead-letters/1/replay".into(),
            None,
            Role::Admin,
        ),
        (
            Method::DELETE,
            "/v1/dead-letters/1".into(),
            None,
            Role::Admin,
        ),
        (
            Method::POST,
            "/v1/explain".into(),
            Some(json!({"subject": {"user": "u"}})),
            Role::Viewer,
        ),
        (Method::DELETE, k("/v1/keys/{id}"), None, Role::Operator),
    ];
    let callers = [
        (Role::Viewer, "viewer-token"),
        (Role::Operator, "operator-token"),
        (Role::Admin, "admin-token"),
    ];
    let mut matrix = Vec::new();
    for (method, path, body, need) in &routes {
        // Without credentials, or with made-up ones: 401, whatever the route.
        for token in [None, Some("not-a-token")] {
            let (status, v) = call(&c, &server, method.clone(), path, token, body.as_ref()).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {v}");
        }
        for (role, token) in callers {
            let (status, v) = call(
                &c,
                &server,
                method.clone(),
                path,
                Some(token),
                body.as_ref(),
            )
            .await;
            if let Some(s) = v["secret"].as_str() {
                secrets.push(s.to_owned());
            }
            let allowed = role >= *need;
            matrix.push((method.clone(), path.clone(), role, status));
            if allowed {
                assert!(
                    status != 401 && status != 403 && status < 500,
                    "{method} {path} as {role:?} should be allowed: {status} {v}"
                );
            } else {
                assert_eq!(
                    status, 403,
                    "{method} {path} as {role:?} should be refused: {v}"
                );
                assert!(v["type"].as_str().unwrap().ends_with("/forbidden"), "{v}");
            }
        }
    }
    assert_eq!(matrix.len(), routes.len() * 3);

    // The audit log: each change that passed the gate, with who, what, where from.
    let (status, audit) = call(
        &c,
        &server,
        Method::GET,
        "/v1/audit?limit=1000",
        admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let entries = audit["entries"].as_array().unwrap();
    let created_by_ops = entries
        .iter()
        .find(|e| e["actor"] == "ops" && e["action"] == "POST /v1/keys")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(
        (
            created_by_ops["role"].as_str(),
            created_by_ops["status"].as_i64(),
            created_by_ops["source"].as_str()
        ),
        (Some("operator"), Some(201), Some("127.0.0.1"))
    );
    assert!(
        entries
            .iter()
            .any(|e| e["actor"] == "admin" && e["action"] == "PUT /v1/config")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "DELETE /v1/keys/{id}" && e["target"] == k("/v1/keys/{id}"))
    );
    // Refused attempts changed nothing and are not changes.
    assert!(
        !entries
            .iter()
            .any(|e| e["actor"] == "ro" && e["action"] == "POST /v1/keys")
    );
    let (_, only_ops) = call(&c, &server, Method::GET, "/v1/audit?actor=ops", admin, None).await;
    assert!(
        only_ops["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "ops")
    );

    // Security headers on every answer, CORS only for the listed origin.
    for path in ["/healthz", "/v1/keys", "/nope"] {
        let r = c.get(server.url(path)).send().await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h.contains_key("content-security-policy"), "{path}");
    }
    // A decision is read by a service or a proxy, not shown as a page.
    let decisions = [
        c.post(server.url("/v1/check"))
            .json(&json!({"subject": {"user": "7"}})),
        c.get(server.url("/v1/authorize")),
    ];
    for req in decisions {
        let r = req.send().await.unwrap();
        let h = r.headers();
        let at = r.url().path().to_string();
        assert_eq!(h["x-content-type-options"], "nosniff", "{at}");
        assert_eq!(h["cache-control"], "no-store", "{at}");
        assert!(!h.contains_key("x-frame-options"), "{at}");
        assert!(!h.contains_key("content-security-policy"), "{at}");
    }
    let preflight = |origin: &'static str| {
        c.request(Method::OPTIONS, server.url("/v1/keys"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let ok = preflight("https://console.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://console.example"
    );
    let evil = preflight("https://evil.example").await.unwrap();
    assert!(!evil.headers().contains_key("access-control-allow-origin"));

    // No key secret and no admin token in any log line.
    assert!(secrets.len() >= 4, "{secrets:?}");
    let log = server.log_text();
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "a key secret was logged");
        assert!(!log.contains(&s[12..]), "part of a key secret was logged");
    }
    for t in ["admin-token", "operator-token", "viewer-token", SECRET] {
        assert!(!log.contains(t), "{t} was logged");
    }
}

#[tokio::test]
async fn the_admin_api_is_rate_limited_per_caller_and_per_ip() {
    let yaml = format!(
        "admin:\n  tokens:\n    - {{ name: ops, role: operator, sha256: \"{}\" }}\n    - {{ name: ro, role: viewer, sha256: \"{}\" }}\n  rate_limit: {{ per_ip: {{ limit: 8, period: 1h }}, per_token: {{ limit: 3, period: 1h }} }}\n",
        sha256_hex("operator-token"),
        sha256_hex("viewer-token"),
    );
    let server = Server::start_with_env(&yaml, &[("TOLLGATE_ADMIN_TOKEN", "admin-token")]);
    let c = reqwest::Client::new();
    let get = |token: &'static str| c.get(server.url("/v1/config")).bearer_auth(token).send();
    for _ in 0..3 {
        assert_eq!(get("operator-token").await.unwrap().status(), 200);
    }
    let r = get("operator-token").await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 3_600, "{retry}");
    // Another caller has a budget of its own…
    assert_eq!(get("viewer-token").await.unwrap().status(), 200);
    assert_eq!(get("viewer-token").await.unwrap().status(), 200);
    // …and wrong guesses count against the client's address like the rest.
    assert_eq!(get("guess").await.unwrap().status(), 401);
    assert_eq!(get("admin-token").await.unwrap().status(), 200);
    assert_eq!(
        get("admin-token").await.unwrap().status(),
        429,
        "the IP's 8 are spent"
    );
    // Behind a trusted proxy each client has its own budget; a client that is not a
    // proxy cannot pick one by sending X-Forwarded-For.
    let via_proxy = |client: &'static str| {
        c.get(server.url("/v1/config"))
            .bearer_auth("admin-token")
            .header("x-forwarded-for", client)
            .send()
    };
    assert_eq!(
        via_proxy("198.51.100.7").await.unwrap().status(),
        429,
        "127.0.0.1 is not trusted here"
    );
    // Decisions are not admin requests: never limited by these.
    let r = c
        .post(server.url("/v1/check"))
        .json(&json!({"subject": {"user": "1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No CORS without listed origins.
    let r = c
        .request(Method::OPTIONS, server.url("/v1/check"))
        .header("origin", "https://console.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}

fn openssl(args: &[&str], dir: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (installed by ./scripts/test)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Serves `body` at `/jwks.json` on a free loopback port; the task ends with the test.
async fn serve_jwks(body: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/jwks.json")
}

#[tokio::test]
async fn jwts_signed_with_rs256_from_a_jwks_and_es256_from_a_pem_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
        d,
    );
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "other.pem",
        ],
        d,
    );
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ],
        d,
    );
    openssl(
        &["pkey", "-in", "ec.pem", "-pubout", "-out", "ec.pub.pem"],
        d,
    );
    let modulus = openssl(&["rsa", "-in", "rsa.pem", "-noout", "-modulus"], d);
    let hex = modulus.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": base64url(&n), "e": "AQAB"}]});
    let url = serve_jwks(jwks).await;

    let yaml = format!(
        "database: {{}}\nadmin:\n  jwt:\n    issuer: https://idp.test\n    audience: tollgate\n    jwks_url: \"{url}\"\n    public_key_files: [\"{}\"]\n    role_claim: roles\n    leeway: 0s\ntiers: {{ free: {{ limits: [] }} }}\n",
        d.join("ec.pub.pem").display()
    );
    let server = Server::start_with_env(&yaml, &[("TOLLGATE_KEY_SECRET", SECRET)]);
    let c = reqwest::Client::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = |sub: &str, roles: &[&str], exp: i64| json!({"sub": sub, "roles": roles, "iss": "https://idp.test", "aud": "tollgate", "exp": exp, "nbf": now - 10});
    let sign = |alg: jsonwebtoken::Algorithm, kid: Option<&str>, pem: &str, claims: &Value| {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = kid.map(str::to_owned);
        let pem = std::fs::read(d.join(pem)).unwrap();
        let key = match alg {
            jsonwebtoken::Algorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_pem(&pem),
            _ => jsonwebtoken::EncodingKey::from_ec_pem(&pem),
        }
        .unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    };
    let rs = jsonwebtoken::Algorithm::RS256;
    let es = jsonwebtoken::Algorithm::ES256;

    // RS256, key from the JWKS by kid: an operator may create keys, not read the audit.
    let operator = sign(
        rs,
        Some("k1"),
        "rsa.pem",
        &claims("alice", &["viewer", "operator"], now + 300),
    );
    let (status, v) = call(
        &c,
        &server,
        Method::POST,
        "/v1/keys",
        Some(&operator),
        Some(&json!({"name": "n", "owner": "o"})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let (status, _) = call(&c, &server, Method::GET, "/v1/audit", Some(&operator), None).await;
    assert_eq!(status, 403);

    // ES256, key from a PEM file: an admin sees who did it.
    let admin = sign(es, None, "ec.pem", &claims("bob", &["admin"], now + 300));
    let (status, audit) = call(&c, &server, Method::GET, "/v1/audit", Some(&admin), None).await;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(audit["entries"][0]["actor"], "jwt:alice", "{audit}");
    assert_eq!(audit["entries"][0]["role"], "operator", "{audit}");

    // Refused: another key under a known kid, an unknown kid, expired, not yet valid, the
    // wrong issuer or audience, no role, an HS256 token when no secret is configured.
    let mut wrong_iss = claims("eve", &["admin"], now + 300);
    wrong_iss["iss"] = "https://evil.test".into();
    let mut wrong_aud = claims("eve", &["admin"], now + 300);
    wrong_aud["aud"] = "other".into();
    let mut early = claims("eve", &["admin"], now + 300);
    early["nbf"] = (now + 120).into();
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims("eve", &["admin"], now + 300),
        &jsonwebtoken::EncodingKey::from_secret(b"a guessed secret, long enough!!!"),
    )
    .unwrap();
    let refused = [
        (
            "forged",
            sign(
                rs,
                Some("k1"),
                "other.pem",
                &claims("eve", &["admin"], now + 300),
            ),
        ),
        (
            "unknown kid",
            sign(
                rs,
                Some("k9"),
                "other.pem",
                &claims("eve", &["admin"], now + 300),
            ),
        ),
        (
            "expired",
            sign(es, None, "ec.pem", &claims("eve", &["admin"], now - 60)),
        ),
        ("not yet valid", sign(es, None, "ec.pem", &early)),
        ("wrong issuer", sign(es, None, "ec.pem", &wrong_iss)),
        ("wrong audience", sign(es, None, "ec.pem", &wrong_aud)),
        (
            "no role",
            sign(es, None, "ec.pem", &claims("eve", &["root"], now + 300)),
        ),
        ("HS256", hs),
    ];
    for (why, token) in refused {
        let (status, v) = call(&c, &server, Method::GET, "/v1/keys", Some(&token), None).await;
        assert_eq!(status, 401, "{why}: {v}");
        assert!(
            v["detail"].as_str().unwrap().starts_with("JWT refused"),
            "{why}: {v}"
        );
    }
    // Tokens are never logged.
    let log = server.log_text();
    assert!(!log.contains(&operator) && !log.contains(&admin));
}

#[test]
fn hash_token_prints_the_digest_admin_tokens_are_configured_by() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("hash-token")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"operator-token")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        sha256_hex("operator-token")
    );
    // Nothing on stdin is an error, not the digest of nothing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("hash-token")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_admin_budget() {
    let server = Server::start_with_env(
        "admin:\n  rate_limit: { per_ip: { limit: 2, period: 1h } }\n",
        &[
            ("TOLLGATE_ADMIN_TOKEN", "admin-token"),
            ("TOLLGATE_SERVER__TRUSTED_PROXIES", "[127.0.0.1/32]"),
        ],
    );
    let c = reqwest::Client::new();
    let get = |client: &'static str| {
        c.get(server.url("/v1/config"))
            .bearer_auth("admin-token")
            .header("x-forwarded-for", client)
            .send()
    };
    assert_eq!(get("198.51.100.1").await.unwrap().status(), 200);
    assert_eq!(get("198.51.100.1").await.unwrap().status(), 200);
    assert_eq!(get("198.51.100.1").await.unwrap().status(), 429);
    assert_eq!(get("198.51.100.2").await.unwrap().status(), 200);
}

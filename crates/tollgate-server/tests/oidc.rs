//! The dashboard's sign-in through a real OpenID provider (panva's oidc-provider, run by
//! Node from `tests/oidc/provider.mjs`): the whole authorization code flow over HTTP, its
//! login and consent forms posted as a browser would, then admin calls with the session
//! cookie and its CSRF token; a key the provider rotated to fetched when a token names it;
//! a viewer refused a change, claims that give no role, a
//! forged state, a sign-in never begun, a refusal at the provider and an ID token made out
//! to another client, each sent back to the sign-in page with its reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::Server;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};

const SECRET: &str = "the tollgate client's secret at the test provider";

/// The provider, killed and reaped on drop.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_provider(redirect: &str) -> Provider {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    assert!(
        folder.join("node_modules/oidc-provider").exists(),
        "the test provider is not installed: run scripts/test, or  npm ci  in {}",
        folder.display()
    );
    let mut child = Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".into()))
        .arg(folder.join("provider.mjs"))
        .env("OIDC_REDIRECT_URI", redirect)
        .env("OIDC_CLIENT_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs the test provider");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut provider = Provider {
        child,
        issuer: String::new(),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while provider.issuer.is_empty() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the test provider said where it listens");
        if let Some(url) = line.strip_prefix("oidc provider listening on ") {
            provider.issuer = url.trim().to_owned();
        }
    }
    provider
}

/// A provider and a Tollgate (with a database, for the audit log) that signs in with it.
fn start() -> (Provider, Server) {
    let port = tollgate_testkit::free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let provider = start_provider(&format!("{base}/ui/auth/oidc/callback"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client-secret"), SECRET).unwrap();
    let mut server = instance(dir.path(), "tollgate.yaml", port, &provider);
    // The configuration's folder (with the database) lives as long as the server.
    server.dir = dir;
    assert_eq!(server.base, base);
    (provider, server)
}

/// A Tollgate of the fleet whose folder is `dir` (its database and secrets), on `port`,
/// configured in `dir/name`.
fn instance(dir: &std::path::Path, name: &str, port: u16, provider: &Provider) -> Server {
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.join(name);
    std::fs::write(
        &config,
        format!(
            r#"server: {{ listen: "127.0.0.1:{port}" }}
database: {{ url: "sqlite://tollgate.db", flush_interval: 50ms }}
admin:
  oidc:
    name: Test IdP
    issuer: "{issuer}"
    client_id: tollgate
    client_secret_file: client-secret
    redirect_url: "{base}/ui/auth/oidc/callback"
    scopes: [openid, email, groups]
    roles:
      claim: groups
      admin: tollgate-admins
      viewer: [tollgate-viewers]
tiers:
  free:
    limits:
      - {{ name: requests, algorithm: fixed_window, limit: 100, period: 1h }}
"#,
            issuer = provider.issuer
        ),
    )
    .unwrap();
    Server::start_at_with_env(
        config,
        &[(
            "TOLLGATE_KEY_SECRET",
            "a key secret for the dashboard sign-in tests, long enough",
        )],
    )
}

/// A browser: its own cookies, redirects followed by hand so each step can be looked at.
fn browser() -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (client, jar)
}

fn location(r: &reqwest::Response) -> String {
    let to = r
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on {} {}", r.status(), r.url()))
        .to_str()
        .unwrap();
    r.url().join(to).unwrap().to_string()
}

/// The `action` of the page's form.
fn form_action(page: &str, at: &reqwest::Url) -> String {
    let start = page.find("action=\"").expect("a form") + 8;
    let end = start + page[start..].find('"').unwrap();
    at.join(&page[start..end].replace("&amp;", "&"))
        .unwrap()
        .to_string()
}

/// What to do at the provider's login page.
#[derive(Clone, Copy)]
enum AtLogin<'a> {
    SignInAs(&'a str),
    Cancel,
}

/// Begins a sign-in at Tollgate and goes through the provider's pages, up to the redirect
/// back to Tollgate's callback, which is returned unfollowed.
async fn to_callback(c: &reqwest::Client, server: &Server, at_login: AtLogin<'_>) -> String {
    let r = c
        .get(server.url("/ui/auth/oidc/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let pending = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("tollgate_oidc="))
        .expect("the sign-in in progress in a cookie");
    for attr in [
        "Path=/ui/auth/oidc/callback",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=600",
    ] {
        assert!(pending.contains(attr), "{pending}");
    }
    let mut next = location(&r);
    assert!(next.contains("code_challenge_method=S256"), "{next}");
    assert!(next.contains("nonce="), "{next}");
    assert!(next.contains("state="), "{next}");
    for _ in 0..20 {
        if next.starts_with(&server.url("/ui/auth/oidc/callback")) {
            return next;
        }
        let r = c.get(&next).send().await.unwrap();
        if r.status().is_redirection() {
            next = location(&r);
            continue;
        }
        assert_eq!(r.status(), 200, "{next}");
        let url = r.url().clone();
        let page = r.text().await.unwrap();
        let action = form_action(&page, &url);
        let form: Vec<(&str, &str)> = if page.contains("name=\"login\"") {
            match at_login {
                AtLogin::SignInAs(login) => {
                    vec![("prompt", "login"), ("login", login), ("password", "any")]
                }
                AtLogin::Cancel => {
                    next = format!("{action}/abort");
                    continue;
                }
            }
        } else {
            vec![("prompt", "consent")]
        };
        let r = c.post(&action).form(&form).send().await.unwrap();
        assert!(r.status().is_redirection(), "{action}: {}", r.status());
        next = location(&r);
    }
    panic!("the provider never sent the browser back");
}

/// Follows the provider's redirect back to Tollgate: where Tollgate sends the browser.
async fn callback(c: &reqwest::Client, url: &str) -> (String, Vec<String>) {
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303, "{url}");
    let cookies = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    (location(&r), cookies)
}

async fn session(c: &reqwest::Client, server: &Server) -> Value {
    let r = c.get(server.url("/ui/auth/session")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Signs in as `login` and returns the session's CSRF token.
async fn sign_in(c: &reqwest::Client, server: &Server, login: &str) -> String {
    let back = to_callback(c, server, AtLogin::SignInAs(login)).await;
    let (to, cookies) = callback(c, &back).await;
    assert_eq!(to, server.url("/ui/overview"), "{cookies:?}");
    let s = cookies
        .iter()
        .find(|v| v.starts_with("tollgate_session="))
        .expect("a session cookie");
    for attr in ["Path=/", "HttpOnly", "SameSite=Strict"] {
        assert!(s.contains(attr), "{s}");
    }
    // Served over plain HTTP here: not Secure.
    assert!(!s.contains("Secure"), "{s}");
    let state = session(c, server).await;
    assert_eq!(state["signed_in"], true, "{state}");
    state["csrf"].as_str().unwrap().to_owned()
}

/// Whether the server logs `text` within a few seconds (its log is read by a thread of
/// its own, which may be behind the answers).
async fn logged(server: &Server, text: &str) -> bool {
    common::eventually(Duration::from_secs(10), || async {
        server.log_text().contains(text)
    })
    .await
}

#[tokio::test]
async fn an_admin_signs_in_through_the_provider_and_works_with_the_session() {
    let (provider, server) = start();
    let (c, jar) = browser();
    let before = session(&c, &server).await;
    assert_eq!(before["signed_in"], false);
    assert_eq!(before["oidc"]["name"], "Test IdP");
    let csrf = sign_in(&c, &server, "alice").await;
    let state = session(&c, &server).await;
    assert_eq!(state["actor"], "oidc:alice@example.test");
    assert_eq!(state["role"], "admin");

    // The cookie alone is not enough: the session's CSRF token rides along.
    let bare = c.get(server.url("/v1/tiers")).send().await.unwrap();
    assert_eq!(bare.status(), 401);
    let forged = c
        .get(server.url("/v1/tiers"))
        .header("x-tollgate-csrf", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let tiers = c
        .get(server.url("/v1/tiers"))
        .header("x-tollgate-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(tiers.status(), 200);
    let made = c
        .post(server.url("/v1/keys"))
        .header("x-tollgate-csrf", &csrf)
        .json(&json!({"name": "from the dashboard", "owner": "acme", "tier": "free"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());

    // The audit log names the person the provider vouched for.
    let audit: Value = c
        .get(server.url("/v1/audit"))
        .header("x-tollgate-csrf", &csrf)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().expect("entries");
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert!(
        actions.contains(&("oidc:alice@example.test", "POST /v1/keys")),
        "{audit}"
    );
    assert!(
        actions.contains(&("oidc:alice@example.test", "sign-in oidc")),
        "{audit}"
    );

    // Another instance of the fleet (the same database and secret) takes the session.
    let other = instance(
        server.dir.path(),
        "other.yaml",
        tollgate_testkit::free_port().unwrap(),
        &provider,
    );
    let cookie = format!(
        "tollgate_session={}",
        session_cookie(&jar, &server).expect("the session cookie")
    );
    let on_other = |cookie: String| {
        reqwest::Client::new()
            .get(other.url("/v1/tiers"))
            .header("cookie", cookie)
            .header("x-tollgate-csrf", &csrf)
            .send()
    };
    assert_eq!(on_other(cookie.clone()).await.unwrap().status(), 200);

    // Signing out needs the CSRF token too, and ends the session even for a copy of
    // its cookie, on every instance.
    let refused = c.post(server.url("/ui/auth/logout")).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let out = c
        .post(server.url("/ui/auth/logout"))
        .header("x-tollgate-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(session(&c, &server).await["signed_in"], false);
    let replayed = reqwest::Client::new()
        .get(server.url("/v1/tiers"))
        .header("cookie", &cookie)
        .header("x-tollgate-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 401);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = on_other(cookie.clone()).await.unwrap().status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            std::time::Instant::now() < deadline,
            "the other instance still takes a session signed out"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The session cookie's value, read back from the browser's jar.
fn session_cookie(jar: &reqwest::cookie::Jar, server: &Server) -> Option<String> {
    use reqwest::cookie::CookieStore;
    let header = jar.cookies(&server.url("/").parse().unwrap())?;
    header
        .to_str()
        .ok()?
        .split("; ")
        .find_map(|p| p.strip_prefix("tollgate_session=").map(str::to_owned))
}

#[tokio::test]
async fn a_key_the_provider_rotated_to_is_fetched_when_a_token_names_it() {
    let (_provider, server) = start();
    // Alice's sign-in has Tollgate read (and keep) the provider's first key set.
    let (c, _) = browser();
    sign_in(&c, &server, "alice").await;
    // Carol's ID token is signed with a key published only since.
    let (c, _) = browser();
    sign_in(&c, &server, "carol").await;
    assert_eq!(
        session(&c, &server).await["actor"],
        "oidc:carol@example.test"
    );
    assert!(
        logged(&server, "the provider's keys were read again").await,
        "{}",
        server.log_text()
    );
}

#[tokio::test]
async fn a_viewer_sees_but_is_refused_a_change() {
    let (_provider, server) = start();
    let (c, _) = browser();
    let csrf = sign_in(&c, &server, "victor").await;
    assert_eq!(session(&c, &server).await["role"], "viewer");
    let tiers = c
        .get(server.url("/v1/tiers"))
        .header("x-tollgate-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(tiers.status(), 200);
    let made = c
        .post(server.url("/v1/keys"))
        .header("x-tollgate-csrf", &csrf)
        .json(&json!({"name": "nope", "owner": "acme", "tier": "free"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 403);
}

#[tokio::test]
async fn failed_sign_ins_go_back_to_the_sign_in_page_with_their_reason() {
    let (_provider, server) = start();
    let failed = |code: &str| server.url(&format!("/ui/?signin_error={code}"));

    // Claims that give no role.
    let (c, _) = browser();
    let back = to_callback(&c, &server, AtLogin::SignInAs("nobody")).await;
    assert_eq!(callback(&c, &back).await.0, failed("no-role"));
    assert_eq!(session(&c, &server).await["signed_in"], false);

    // An ID token made out to another client, however well signed.
    let (c, _) = browser();
    let back = to_callback(&c, &server, AtLogin::SignInAs("stranger")).await;
    assert_eq!(callback(&c, &back).await.0, failed("token"));
    assert!(logged(&server, "audience").await, "{}", server.log_text());

    // The person refuses at the provider.
    let (c, _) = browser();
    let back = to_callback(&c, &server, AtLogin::Cancel).await;
    assert!(back.contains("error=access_denied"), "{back}");
    assert_eq!(callback(&c, &back).await.0, failed("denied"));

    // A forged state, on a sign-in in progress.
    let (c, _) = browser();
    let back = to_callback(&c, &server, AtLogin::SignInAs("alice")).await;
    let mut url = reqwest::Url::parse(&back).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "forged".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(callback(&c, url.as_str()).await.0, failed("state"));
    // The sign-in in progress was used up: the genuine answer is refused after it.
    assert_eq!(callback(&c, &back).await.0, failed("expired"));

    // An answer with no sign-in in progress in this browser (none begun, or expired).
    let (other, _) = browser();
    let back = to_callback(&c, &server, AtLogin::SignInAs("alice")).await;
    assert_eq!(callback(&other, &back).await.0, failed("expired"));
    assert_eq!(session(&other, &server).await["signed_in"], false);
}

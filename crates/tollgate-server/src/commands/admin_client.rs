//! The admin commands' HTTP client: a blocking wrapper over hyper on a current-thread
//! runtime, with the bearer token and problem+json errors decoded into readable messages.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;

use super::table::field;

/// How long one admin call may take, connection included, before it is given up.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where the server is and how to prove who we are: the options every admin command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Remote {
    /// The server's base URL.
    #[arg(
        long,
        env = "TOLLGATE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// A file holding the admin token (otherwise `TOLLGATE_ADMIN_TOKEN`, if set).
    #[arg(long, value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// Print the server's JSON as it came instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A connection to one server's admin API.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    runtime: tokio::runtime::Runtime,
    http: Client<Https, Full<Bytes>>,
}

impl AdminClient {
    /// A client for `remote`; reads the token file now so that a missing file is said
    /// before anything is sent.
    pub fn new(remote: &Remote) -> anyhow::Result<Self> {
        let token = match &remote.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the admin token from {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => std::env::var("TOLLGATE_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .context("loading the system's TLS roots")?
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        Ok(AdminClient {
            base: remote.url.trim_end_matches('/').to_owned(),
            token,
            runtime,
            http,
        })
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None)
    }

    /// `method path` with a JSON body.
    pub fn send_json(&self, method: Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        let bytes = serde_json::to_vec(body)?;
        self.call(method, path, Some((bytes, "application/json")))
    }

    /// `method path` with a document (YAML or JSON) as it was read.
    pub fn send_document(&self, method: Method, path: &str, doc: Vec<u8>) -> anyhow::Result<Value> {
        self.call(method, path, Some((doc, "application/yaml")))
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::DELETE, path, None)
    }

    /// Sends one request; a success answers its JSON (`null` when empty), a refusal the
    /// server's problem as an error.
    fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let payload = match body {
            Some((bytes, content_type)) => {
                req = req.header("content-type", content_type);
                Bytes::from(bytes)
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(payload))
            .with_context(|| format!("{url} is not a valid URL"))?;
        let (status, bytes) = self.runtime.block_on(async {
            let answer = tokio::time::timeout(TIMEOUT, async {
                let res = self.http.request(req).await?;
                let status = res.status();
                let bytes = res.into_body().collect().await?.to_bytes();
                Ok::<_, anyhow::Error>((status, bytes))
            })
            .await;
            match answer {
                Ok(Ok(a)) => Ok(a),
                Ok(Err(e)) => Err(anyhow!(
                    "could not reach the server at {}: {}",
                    self.base,
                    chain(&*e)
                )),
                Err(_) => Err(anyhow!(
                    "the server at {} did not answer in time",
                    self.base
                )),
            }
        })?;
        if status.is_success() {
            if bytes.trim_ascii().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .with_context(|| format!("the answer of {url} is not JSON"));
        }
        bail!("{}", problem_message(status.as_u16(), &bytes))
    }
}

/// An error and its causes on one line: hyper's outer errors say little on their own.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.dedup();
    parts.join(": ")
}

/// `title: detail`, then each `errors[].path: message` on a line of its own; an answer that
/// is not a problem is shown by its status and text.
pub fn problem_message(status: u16, body: &[u8]) -> String {
    let Ok(problem) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return format!("the server answered {status}: {}", text.trim());
    };
    let title = field(&problem, "title").as_str().unwrap_or("refused");
    let mut out = match field(&problem, "detail").as_str() {
        Some(detail) => format!("{title}: {detail}"),
        None => format!("{title} ({status})"),
    };
    for e in field(&problem, "errors").as_array().into_iter().flatten() {
        let message = field(e, "message").as_str().unwrap_or_default();
        match field(e, "path").as_str() {
            Some(path) if !path.is_empty() => out.push_str(&format!("\n  {path}: {message}")),
            _ => out.push_str(&format!("\n  {message}")),
        }
    }
    out
}

/// A path segment with the characters a URL cannot carry as they are percent-encoded.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path` with the query of the `params` that are given, each value percent-encoded.
pub fn with_query(path: &str, params: &[(&str, Option<String>)]) -> String {
    let query: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| format!("{k}={}", segment(v))))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Reads a document from a file, or from stdin when the path is `-`.
pub fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading stdin")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_as_title_detail_and_paths() {
        let body = br#"{"title":"Invalid request","detail":"the body does not fit","errors":[{"path":"expires_at","message":"not a number"}]}"#;
        assert_eq!(
            problem_message(422, body),
            "Invalid request: the body does not fit\n  expires_at: not a number"
        );
        assert_eq!(
            problem_message(502, b"bad gateway"),
            "the server answered 502: bad gateway"
        );
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("key_1"), "key_1");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}

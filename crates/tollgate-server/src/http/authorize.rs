//! `GET /v1/authorize` (any method): forward-auth for nginx `auth_request`, Traefik
//! `ForwardAuth` and Caddy `forward_auth`. The subject comes from headers; the answer is
//! 200, or 429 with `Retry-After`, the rate-limit headers and a problem body.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tollgate_core::{Code, Mode, Subject};

use super::problem::Problem;
use super::{Peer, set_headers};
use crate::app::App;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_FORWARDED_USER: HeaderName = HeaderName::from_static("x-forwarded-user");
const X_TENANT: HeaderName = HeaderName::from_static("x-tenant");
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// A header's trimmed value, when present, text and not empty. Names are constants so a
/// lookup does not parse them.
fn header<'a>(h: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// nearest untrusted address of `X-Forwarded-For` (or `X-Real-IP`).
pub fn client_ip(app: &App, peer: IpAddr, h: &HeaderMap) -> IpAddr {
    let peer = peer.to_canonical();
    let trusted = |ip: IpAddr| app.trusted.iter().any(|c| c.contains(ip));
    if !trusted(peer) {
        return peer;
    }
    if let Some(xff) = header(h, &X_FORWARDED_FOR) {
        let hops: Vec<IpAddr> = xff
            .split(',')
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect();
        if let Some(ip) = hops.iter().rev().find(|ip| !trusted(**ip)) {
            return *ip;
        }
        if let Some(first) = hops.first() {
            return *first;
        }
    }
    header(h, &X_REAL_IP)
        .and_then(|v| v.parse::<IpAddr>().ok())
        .map_or(peer, |ip| ip.to_canonical())
}

/// Query of `/v1/authorize`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeQuery {
    /// Answer denials with this status instead (401 or 403): nginx's `auth_request` only
    /// passes those on.
    pub deny_status: Option<u16>,
}

/// `/v1/authorize`.
pub async fn authorize(
    State(app): State<Arc<App>>,
    peer: Peer,
    query: Result<Query<AuthorizeQuery>, QueryRejection>,
    // The request itself rather than a `HeaderMap`, which would be a copy of its headers.
    req: Request,
) -> Response {
    let deny_status = match query {
        Ok(Query(AuthorizeQuery { deny_status: None })) => None,
        Ok(Query(AuthorizeQuery {
            deny_status: Some(s @ (401 | 403)),
        })) => StatusCode::from_u16(s).ok(),
        _ => {
            let detail = "expected [?deny_status=401|403]".to_string();
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-request",
                "Bad query",
                detail,
            )
            .into_response();
        }
    };
    let started = Instant::now();
    let mut subject = Subject::new();
    let headers = req.headers();
    let ip = client_ip(&app, peer.0.ip(), headers);
    let method = header(headers, &X_FORWARDED_METHOD)
        .or_else(|| header(headers, &X_ORIGINAL_METHOD))
        .unwrap_or(req.method().as_str());
    let uri = header(headers, &X_FORWARDED_URI).or_else(|| header(headers, &X_ORIGINAL_URI));
    let api_key = header(headers, &X_API_KEY).or_else(|| {
        header(headers, &header::AUTHORIZATION)
            .and_then(|a| {
                a.strip_prefix("Bearer ")
                    .or_else(|| a.strip_prefix("bearer "))
            })
            .map(str::trim)
    });
    let fingerprint = api_key.map(|k| app.fingerprint(k));
    subject.set_ip(ip);
    let attrs = [
        ("method", Some(method)),
        ("path", uri),
        ("user", header(headers, &X_FORWARDED_USER)),
        ("tenant", header(headers, &X_TENANT)),
        ("key", fingerprint.as_deref()),
    ];
    for (name, value) in attrs {
        if let Some(v) = value
            && let Err(e) = subject.set(name, v)
        {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-subject",
                "A forwarded attribute is invalid",
                e.to_string(),
            )
            .into_response();
        }
    }
    let mut key = None;
    if let Some(presented) = api_key {
        match app.verify_key(presented).await {
            Ok(Some(k)) => {
                super::check::identify(&mut subject, &k.record);
                key = Some(k);
            }
            Ok(None) => {}
            Err(code) => {
                let d = tollgate_core::Decision::bare(code, app.now());
                app.record_decision(&d, started, &subject, None, 1);
                let (status, slug, title) = match code {
                    Code::KeyDisabled => (
                        StatusCode::FORBIDDEN,
                        "key-disabled",
                        "The API key is disabled",
                    ),
                    Code::KeyExpired => (
                        StatusCode::FORBIDDEN,
                        "key-expired",
                        "The API key has expired",
                    ),
                    Code::Unavailable => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "The key registry is unavailable",
                    ),
                    _ => (
                        StatusCode::UNAUTHORIZED,
                        "key-invalid",
                        "The API key is not valid",
                    ),
                };
                return Problem::new(status, slug, title, None).into_response();
            }
        }
    }
    let policy = app.limiter.policy();
    let d = app
        .decide(&policy, &subject, key.as_deref(), 1, Mode::Consume)
        .await;
    app.record_decision(&d, started, &subject, key.as_deref(), 1);
    let limit_headers = d.headers();
    let mut res = if d.allowed {
        StatusCode::OK.into_response()
    } else {
        let (status, slug, title) = match d.code {
            Code::Blocked => (StatusCode::FORBIDDEN, "blocked", "The client is blocked"),
            Code::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The limit store is unavailable",
            ),
            Code::QuotaExceeded => (
                StatusCode::TOO_MANY_REQUESTS,
                "quota-exceeded",
                "Quota exceeded",
            ),
            _ => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
        };
        let detail = d
            .denied_by()
            .map(|l| format!("limit {:?} exceeded", l.rule.name));
        Problem::new(deny_status.unwrap_or(status), slug, title, detail).into_response()
    };
    set_headers(&mut res, limit_headers);
    res
}

//! `GET /v1/authorize` (any method): forward-auth for nginx `auth_request`, Traefik
//! `ForwardAuth` and Caddy `forward_auth`. The subject comes from headers; the answer is
//! 200, or 429 with `Retry-After`, the rate-limit headers and a problem body.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tollgate_core::{Code, Subject};
use tollgate_engine::{Attributes, Scope, Verdict};

use super::problem::Problem;
use super::set_headers;
use crate::app::App;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
/// Names the concurrency lease an admitted request took, for `POST /v1/release`.
pub const LEASE_ID: HeaderName = HeaderName::from_static("tollgate-lease-id");

/// A header's trimmed value, when text and not empty.
fn text(v: &HeaderValue) -> Option<&str> {
    v.to_str().ok().map(str::trim).filter(|v| !v.is_empty())
}

/// The headers forward-auth reads, each its first value. Read in one pass over the
/// request's headers: a proxy sends a handful, and looking each of these up by name would
/// hash ten names.
#[derive(Default)]
struct Forwarded<'a> {
    xff: Option<&'a HeaderValue>,
    real_ip: Option<&'a HeaderValue>,
    method: Option<&'a HeaderValue>,
    original_method: Option<&'a HeaderValue>,
    uri: Option<&'a HeaderValue>,
    original_uri: Option<&'a HeaderValue>,
    user: Option<&'a HeaderValue>,
    tenant: Option<&'a HeaderValue>,
    api_key: Option<&'a HeaderValue>,
    authorization: Option<&'a HeaderValue>,
}

impl<'a> Forwarded<'a> {
    fn read(h: &'a HeaderMap) -> Self {
        let mut f = Forwarded::default();
        for (name, value) in h {
            let slot = match name.as_str() {
                "x-forwarded-for" => &mut f.xff,
                "x-real-ip" => &mut f.real_ip,
                "x-forwarded-method" => &mut f.method,
                "x-original-method" => &mut f.original_method,
                "x-forwarded-uri" => &mut f.uri,
                "x-original-uri" => &mut f.original_uri,
                "x-forwarded-user" => &mut f.user,
                "x-tenant" => &mut f.tenant,
                "x-api-key" => &mut f.api_key,
                "authorization" => &mut f.authorization,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        f
    }
}

/// The API key a request presents: `X-API-Key`, else a bearer token.
pub fn presented_key<'a>(
    api_key: Option<&'a HeaderValue>,
    authorization: Option<&'a HeaderValue>,
) -> Option<&'a str> {
    api_key.and_then(text).or_else(|| {
        authorization
            .and_then(text)
            .and_then(|a| {
                a.strip_prefix("Bearer ")
                    .or_else(|| a.strip_prefix("bearer "))
            })
            .map(str::trim)
    })
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// nearest untrusted address of `X-Forwarded-For` (or `X-Real-IP`).
pub fn client_ip(app: &App, peer: IpAddr, h: &HeaderMap) -> IpAddr {
    forwarded_ip(
        app,
        peer,
        h.get(X_FORWARDED_FOR).and_then(text),
        h.get(X_REAL_IP).and_then(text),
    )
}

fn forwarded_ip(app: &App, peer: IpAddr, xff: Option<&str>, real_ip: Option<&str>) -> IpAddr {
    tollgate_engine::door::forwarded_ip(&app.trusted, peer, xff, real_ip)
}

/// The status, problem slug and title of a refused decision (the status before any
/// `deny_status` of forward-auth), as every door answers it (`tollgate_engine::door`).
pub fn refusal(verdict: &Verdict<'_>) -> (StatusCode, &'static str, &'static str) {
    let r = tollgate_engine::door::refusal(verdict);
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    (status, r.slug, r.title)
}

/// Query of `/v1/authorize`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeQuery {
    /// Answer denials with this status instead (401 or 403): nginx's `auth_request` only
    /// passes those on.
    #[param(value_type = Option<DenyStatus>, inline)]
    pub deny_status: Option<u16>,
}

/// The statuses `deny_status` may name.
pub struct DenyStatus;

impl utoipa::PartialSchema for DenyStatus {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .enum_values(Some([401, 403]))
            .into()
    }
}

impl utoipa::ToSchema for DenyStatus {}

/// `/v1/authorize` (any method), from a connection whose peer is `peer`.
#[utoipa::path(
    get,
    path = "/v1/authorize",
    tag = "decisions",
    operation_id = "authorize",
    summary = "Forward-auth: decide a proxied request from its headers",
    description = "For nginx `auth_request`, Traefik `ForwardAuth` and Caddy `forward_auth`; any method \
is answered alike (GET and POST are described). The subject is read from the headers below, the client \
address from the peer (or, behind `server.trusted_proxies`, from `X-Forwarded-For` / `X-Real-IP`). \
The API key, if any, is `X-API-Key`, else a bearer token in `Authorization`.",
    params(
        AuthorizeQuery,
        ("X-Forwarded-Method" = Option<String>, Header, nullable = false, description = "The proxied request's method (Traefik, Caddy)"),
        ("X-Original-Method" = Option<String>, Header, nullable = false, description = "The proxied request's method (nginx)"),
        ("X-Forwarded-Uri" = Option<String>, Header, nullable = false, description = "The proxied request's path (Traefik, Caddy)"),
        ("X-Original-URI" = Option<String>, Header, nullable = false, description = "The proxied request's path (nginx)"),
        ("X-Forwarded-User" = Option<String>, Header, nullable = false, description = "The user"),
        ("X-Tenant" = Option<String>, Header, nullable = false, description = "The tenant"),
        ("X-Forwarded-For" = Option<String>, Header, nullable = false, description = "The client, read only from a trusted proxy"),
        ("X-Real-IP" = Option<String>, Header, nullable = false, description = "The client, read only from a trusted proxy"),
    ),
    security((), ("apiKey" = []), ("apiKeyBearer" = [])),
    responses(
        (status = 200, description = "Allowed: the proxy lets the request through",
            headers(
                ("RateLimit" = String, description = "The limit closest to refusing"),
                ("RateLimit-Policy" = String, description = "Each limit's quota and window"),
                ("Tollgate-Lease-Id" = String, description = "The concurrency lease the request took, for `POST /v1/release`"),
            )),
        (status = 400, description = "A forwarded attribute or the query is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The API key is not valid (`key-invalid`), or a denial with `deny_status=401`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key is disabled or expired, the client is blocked, or a denial with `deny_status=403`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "A limit or quota refused (`rate-limited`, `quota-exceeded`)",
            headers(("Retry-After" = String, description = "Seconds until the request would be admitted")),
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store or the key registry could not answer and the rule fails closed", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn authorize(
    app: &App,
    peer: SocketAddr,
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
    let mut subject = Subject::new();
    let f = Forwarded::read(req.headers());
    let ip = forwarded_ip(
        app,
        peer.ip(),
        f.xff.and_then(text),
        f.real_ip.and_then(text),
    );
    let method = f
        .method
        .and_then(text)
        .or_else(|| f.original_method.and_then(text))
        .unwrap_or(req.method().as_str());
    let uri = f
        .uri
        .and_then(text)
        .or_else(|| f.original_uri.and_then(text));
    let api_key = presented_key(f.api_key, f.authorization);
    subject.set_ip(ip);
    let attrs = [
        ("method", Some(method)),
        ("path", uri),
        ("user", f.user.and_then(text)),
        ("tenant", f.tenant.and_then(text)),
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
    let mut request = tollgate_engine::Request::new(Attributes::Subject(subject));
    request.api_key = api_key;
    let mut scope = Scope::default();
    let verdict = app.engine.decide(&mut scope, request).await;
    let d = &verdict.decision;
    let limit_headers = d.headers();
    let mut res = if d.allowed {
        let mut ok = StatusCode::OK.into_response();
        if let Some(lease) = app.engine.leases(d).into_iter().next()
            && let Ok(v) = HeaderValue::from_str(&lease)
        {
            ok.headers_mut().insert(LEASE_ID, v);
        }
        ok
    } else {
        let (status, slug, title) = refusal(&verdict);
        let detail = d
            .denied_by()
            .map(|l| format!("limit {:?} exceeded", l.rule.name));
        // A refused key is already a 401 or 403, which every proxy passes on.
        let status = match d.code {
            Code::KeyInvalid | Code::KeyDisabled | Code::KeyExpired => status,
            Code::Unavailable if d.limits.is_empty() => status,
            _ => deny_status.unwrap_or(status),
        };
        Problem::new(status, slug, title, detail).into_response()
    };
    set_headers(&mut res, limit_headers);
    res
}

//! The dashboard's sign-in routes under `/ui/auth/`: what the sign-in page offers, the
//! OpenID sign-in (leaving for the provider, coming back), and signing out.
//!
//! A failed sign-in never answers an error page: the browser is sent back to the sign-in
//! page with a short code (`/ui/?signin_error=denied`) that the page turns into a message of
//! its own, so nothing the provider or a forged link says is shown as it came; the detail
//! goes to the log.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tollgate_core::time::now_ms;
use tollgate_registry::AuditEntry;

use super::problem::Problem;
use crate::app::App;
use crate::config::oidc::CALLBACK_PATH;
use crate::oidc::{CSRF_HEADER, Callback, FLOW_TTL, Oidc, PENDING_COOKIE, SESSION_COOKIE};

/// The routes, for merging into the router.
pub fn routes() -> axum::Router<Arc<App>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/ui/auth/session", get(session))
        .route("/ui/auth/oidc/login", get(login))
        .route(CALLBACK_PATH, get(oidc_callback))
        .route("/ui/auth/logout", post(logout))
}

/// The value of the cookie `name` in `headers`.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly` always, `Secure` when the dashboard is served over TLS.
fn set_cookie(
    oidc: &Oidc,
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: u64,
) -> String {
    let secure = if oidc.settings().secure() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    )
}

/// A `303 See Other` to `to`, setting `cookies`.
fn see_other(to: &str, cookies: &[String]) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(to) {
        headers.insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Back to the sign-in page, saying why in a code.
fn failed(code: &str, cookies: &[String]) -> Response {
    see_other(&format!("/ui/?signin_error={code}"), cookies)
}

/// The OpenID provider the sign-in page offers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Provider {
    /// Its name, for the button.
    pub name: String,
    /// Where signing in with it begins.
    pub login: String,
}

/// What the sign-in page needs: whether this browser has a session, and who it is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionState {
    /// Whether a dashboard session is open.
    pub signed_in: bool,
    /// Who, when signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Their role, when signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The token every admin call made with the session carries in `X-Tollgate-CSRF`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
    /// When the session ends (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// The OpenID provider to sign in with, when configured.
    pub oidc: Option<Provider>,
}

/// `GET /ui/auth/session`: the session this browser holds, if any, and what sign-in is
/// offered.
#[utoipa::path(
    get,
    path = "/ui/auth/session",
    tag = "docs",
    operation_id = "dashboard_session",
    summary = "The dashboard session this browser holds, and the sign-in offered",
    responses((status = 200, description = "The session, or none", body = SessionState)),
)]
pub async fn session(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let admin = app.admin.load_full();
    let mut state = SessionState {
        signed_in: false,
        actor: None,
        role: None,
        csrf: None,
        expires: None,
        oidc: admin.oidc().map(|o| Provider {
            name: o.settings().name.clone(),
            login: "/ui/auth/oidc/login".into(),
        }),
    };
    if let (Some(oidc), Some(c)) = (admin.oidc(), cookie(&headers, SESSION_COOKIE))
        && let Some(s) = oidc.session(c, now_ms())
        && !app.sign_outs.refused(&s.id).await
    {
        state.signed_in = true;
        state.actor = Some(s.principal.actor.clone());
        state.role = Some(s.principal.role.name().to_owned());
        state.csrf = Some(oidc.csrf(&s.id));
        state.expires = Some(s.expires);
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(state)).into_response()
}

/// `GET /ui/auth/oidc/login`: leaves for the provider with a new sign-in.
#[utoipa::path(
    get,
    path = "/ui/auth/oidc/login",
    tag = "docs",
    operation_id = "dashboard_oidc_login",
    summary = "Begin signing in to the dashboard with the OpenID provider",
    params(("return_to" = Option<String>, Query, description = "The dashboard's page to return to once signed in (`/ui/…`)")),
    responses((status = 303, description = "To the provider's authorization endpoint, or back to the sign-in page with `signin_error` when OpenID sign-in is off or the provider cannot be reached")),
)]
pub async fn login(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let admin = app.admin.load_full();
    let Some(oidc) = admin.oidc() else {
        return failed("off", &[]);
    };
    let return_to = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned());
    match oidc.begin(now_ms(), return_to).await {
        Ok((url, pending)) => see_other(
            &url,
            &[set_cookie(
                oidc,
                PENDING_COOKIE,
                &pending,
                CALLBACK_PATH,
                "Lax",
                FLOW_TTL.as_secs(),
            )],
        ),
        Err(e) => {
            tracing::warn!(error = %e, "an OpenID sign-in could not begin");
            failed(e.code(), &[])
        }
    }
}

/// The provider's answer, read from the query.
fn callback(query: Option<&str>) -> Callback {
    let mut answer = Callback::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let v = Some(v.into_owned());
        match &*k {
            "code" => answer.code = v,
            "state" => answer.state = v,
            "error" => answer.error = v,
            "error_description" => answer.error_description = v,
            "iss" => answer.iss = v,
            _ => {}
        }
    }
    answer
}

/// `GET /ui/auth/oidc/callback`: the provider's answer; a session on success.
#[utoipa::path(
    get,
    path = "/ui/auth/oidc/callback",
    tag = "docs",
    operation_id = "dashboard_oidc_callback",
    summary = "Where the OpenID provider sends the browser back to",
    params(
        ("code" = Option<String>, Query, description = "The authorization code"),
        ("state" = Option<String>, Query, description = "The state of the sign-in"),
        ("error" = Option<String>, Query, description = "The provider's error (`access_denied`, …)"),
    ),
    responses((status = 303, description = "To the dashboard with a session cookie, or back to the sign-in page with `signin_error`")),
)]
pub async fn oidc_callback(
    State(app): State<Arc<App>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let admin = app.admin.load_full();
    let Some(oidc) = admin.oidc() else {
        return failed("off", &[]);
    };
    // The sign-in in progress is used once, whatever the answer.
    let clear = set_cookie(oidc, PENDING_COOKIE, "", CALLBACK_PATH, "Lax", 0);
    let answer = callback(query.as_deref());
    let now = now_ms();
    let (who, return_to) = match oidc
        .finish(&answer, cookie(&headers, PENDING_COOKIE), now)
        .await
    {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!(error = %e, "an OpenID sign-in was refused");
            return failed(e.code(), &[clear]);
        }
    };
    let Some((sealed, info)) = oidc.open_session(&who, now) else {
        tracing::error!("no randomness for a session id");
        return failed("unavailable", &[clear]);
    };
    tracing::info!(actor = %who.actor, role = who.role.name(), "signed in to the dashboard");
    audit(&app, &who, "sign-in", source(&app, peer, &headers)).await;
    let ttl = u64::try_from(info.expires.saturating_sub(now) / 1000).unwrap_or(0);
    see_other(
        return_to.as_deref().unwrap_or("/ui/overview"),
        &[
            clear,
            set_cookie(oidc, SESSION_COOKIE, &sealed, "/", "Strict", ttl),
        ],
    )
}

/// `POST /ui/auth/logout`: ends this browser's dashboard session.
#[utoipa::path(
    post,
    path = "/ui/auth/logout",
    tag = "docs",
    operation_id = "dashboard_logout",
    summary = "End the dashboard session",
    params(("X-Tollgate-CSRF" = Option<String>, Header, description = "The session's CSRF token, needed when the browser holds a session")),
    responses(
        (status = 204, description = "Signed out; the session cookie is cleared"),
        (status = 403, description = "The CSRF token is missing or wrong", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn logout(
    State(app): State<Arc<App>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let admin = app.admin.load_full();
    let Some(oidc) = admin.oidc() else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let clear = set_cookie(oidc, SESSION_COOKIE, "", "/", "Strict", 0);
    if let Some(c) = cookie(&headers, SESSION_COOKIE)
        && let Some(s) = oidc.session(c, now_ms())
    {
        let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !csrf.is_some_and(|t| oidc.csrf_ok(&s.id, t)) {
            return Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Signing out needs the session's CSRF token",
                Some(format!("send it in the {CSRF_HEADER} header")),
            )
            .into_response();
        }
        app.sign_outs.sign_out(&s.id, s.expires, now_ms()).await;
        audit(&app, &s.principal, "sign-out", source(&app, peer, &headers)).await;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&clear) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// Where a request came from, as the audit log says it.
fn source(
    app: &App,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> String {
    peer.map_or_else(
        || "-".into(),
        |Extension(ConnectInfo(addr))| {
            super::authorize::client_ip(app, addr.ip(), headers).to_string()
        },
    )
}

/// An audit entry for a sign-in or sign-out.
async fn audit(app: &App, who: &crate::auth::Principal, action: &str, source: String) {
    let Some(registry) = &app.registry else {
        return;
    };
    let entry = AuditEntry {
        at: now_ms(),
        actor: who.actor.clone(),
        role: who.role.name().into(),
        action: format!("{action} oidc"),
        target: "/ui/auth".into(),
        source,
        status: 200,
    };
    if let Err(e) = registry.audit(&entry).await {
        tracing::error!(error = %e, action = %entry.action, actor = %entry.actor, "the audit entry could not be written");
    }
}

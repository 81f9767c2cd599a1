//! The reverse proxy's door: each request decided by the engine as forward-auth decides
//! it (the client's address, method, path and host, the API key it presents, and the user
//! and tenant a trusted proxy in front names), refused
//! with forward-auth's problems, or forwarded by `tollgate_proxy` with the decision's
//! rate-limit headers added to the upstream's answer and its concurrency leases held until
//! that answer's body has been sent or dropped.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use smallvec::SmallVec;
use tollgate_core::Subject;
use tollgate_engine::{Attributes, Scope};
use tollgate_proxy::{BoxError, Proxy, ProxyBody};
use tracing::Instrument as _;

use super::authorize::{LEASE_ID, client_ip, presented_key, refusal};
use super::problem::Problem;
use super::set_headers;
use crate::app::App;

/// Answers `req` from `peer`: refused, or forwarded.
pub async fn answer(
    app: &Arc<App>,
    proxy: &Proxy,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<ProxyBody> {
    let h = req.headers();
    let mut subject = Subject::new();
    subject.set_ip(client_ip(app, peer.ip(), h));
    // HTTP/2 names the host in the request's `:authority`, HTTP/1.1 in `Host`.
    let authority = req.uri().authority().cloned().or_else(|| {
        h.get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<axum::http::uri::Authority>().ok())
    });
    let host = authority.as_ref().map(axum::http::uri::Authority::host);
    // The user and tenant a trusted proxy in front names; a client's own say is ignored.
    let trusted = app
        .trusted
        .iter()
        .any(|c| c.contains(peer.ip().to_canonical()));
    let named = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|_| trusted)
    };
    let attrs = [
        ("method", Some(req.method().as_str())),
        ("path", Some(req.uri().path())),
        ("attr.host", host),
        ("user", named("x-forwarded-user")),
        ("tenant", named("x-tenant")),
    ];
    for (name, value) in attrs {
        if let Some(v) = value
            && let Err(e) = subject.set(name, v)
        {
            let problem = Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-subject",
                "A request attribute is invalid",
                e.to_string(),
            );
            return boxed(problem.into_response());
        }
    }
    let api_key = presented_key(h.get("x-api-key"), h.get(axum::http::header::AUTHORIZATION));
    let mut request = tollgate_engine::Request::new(Attributes::Subject(subject));
    request.api_key = api_key;
    let mut scope = Scope::default();
    let verdict = app.engine.decide(&mut scope, request).await;
    let d = &verdict.decision;
    let headers = d.headers();
    if !d.allowed {
        let (status, slug, title) = refusal(&verdict);
        let detail = d
            .denied_by()
            .map(|l| format!("limit {:?} exceeded", l.rule.name));
        let mut res = Problem::new(status, slug, title, detail).into_response();
        set_headers(&mut res, headers);
        return boxed(res);
    }
    let leases = app.engine.leases(d);
    drop(verdict);
    let mut res = if crate::telemetry::sample::traced() {
        upstream(proxy, req, peer).await
    } else {
        proxy.handle(req, peer).await
    };
    set_headers(&mut res, headers);
    if leases.is_empty() {
        return res;
    }
    if let Some(v) = leases.first().and_then(|l| HeaderValue::from_str(l).ok()) {
        res.headers_mut().insert(LEASE_ID, v);
    }
    let guard = Leases {
        app: app.clone(),
        ids: leases,
    };
    res.map(|body| {
        Leased {
            body,
            _guard: guard,
        }
        .boxed_unsync()
    })
}

/// Forwards `req` within a span of its own, whose trace context the upstream receives in
/// place of the client's, so that the upstream's spans are its children.
async fn upstream(
    proxy: &Proxy,
    mut req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<ProxyBody> {
    let span = tracing::info_span!(
        target: crate::telemetry::TRACE,
        "upstream",
        otel.name = "proxy upstream",
        otel.kind = "client",
        http.response.status_code = tracing::field::Empty,
    );
    span.in_scope(|| crate::telemetry::propagate::inject(req.headers_mut()));
    let res = proxy.handle(req, peer).instrument(span.clone()).await;
    span.record(
        "http.response.status_code",
        i64::from(res.status().as_u16()),
    );
    res
}

fn boxed(res: axum::response::Response) -> Response<ProxyBody> {
    res.map(|b| b.map_err(BoxError::from).boxed_unsync())
}

/// Concurrency leases held for an answer in flight, released when dropped.
struct Leases {
    app: Arc<App>,
    ids: SmallVec<[String; 1]>,
}

impl Drop for Leases {
    fn drop(&mut self) {
        let (app, ids) = (self.app.clone(), std::mem::take(&mut self.ids));
        // Dropped on the connection's task, which must not wait for the store.
        tokio::spawn(async move {
            for id in ids {
                if let Err(e) = app.engine.release(&id).await {
                    tracing::warn!(lease = %id, error = %e, "a proxied answer's lease was not released");
                }
            }
        });
    }
}

/// An answer's body, holding its leases until it ends or is dropped.
struct Leased {
    body: ProxyBody,
    _guard: Leases,
}

impl Body for Leased {
    type Data = axum::body::Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

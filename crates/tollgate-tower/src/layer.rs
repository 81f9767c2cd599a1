//! [`TollgateLayer`], its [`Builder`] and the [`Tollgate`] service it wraps around another.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, Request, Response};
use smallvec::SmallVec;
use tollgate_core::policy::matcher::Cidr;
use tollgate_core::subject::Attr;
use tollgate_core::{Headers, Store};
use tollgate_engine::{Attributes, Engine, Scope};
use tower_layer::Layer;
use tower_service::Service;

use crate::answer;
use crate::body::{Leases, TollgateBody};
use crate::error::BuildError;
use crate::extract::{AttrFn, Extract};

/// A [`tower_layer::Layer`] that asks a Tollgate [`Engine`] about every request before the
/// service it wraps sees it.
///
/// Admitted requests go on to the inner service and their responses get the decision's
/// rate-limit headers (`RateLimit`, `RateLimit-Policy`, `X-RateLimit-*`). Refused requests
/// are answered by the layer, as forward-auth answers them: 429 for limits, 401 for an
/// invalid key, 403 for a disabled or expired key and for a blocked client, 503 when the
/// store or the registry is unavailable, each an `application/problem+json` body with
/// `Retry-After` where one applies. A gRPC call (`content-type: application/grpc…`) is
/// refused with the matching gRPC status instead (`RESOURCE_EXHAUSTED` for limits), in
/// trailers-only form.
///
/// The concurrency leases an admitted request takes are released when its response body
/// ends or is dropped.
pub struct TollgateLayer<S> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    engine: Arc<Engine<S>>,
    extract: Extract,
}

impl<S> Clone for TollgateLayer<S> {
    fn clone(&self) -> Self {
        TollgateLayer {
            shared: self.shared.clone(),
        }
    }
}

impl<S> std::fmt::Debug for TollgateLayer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TollgateLayer")
            .field("engine", &self.shared.engine)
            .field("extract", &self.shared.extract)
            .finish()
    }
}

impl<S: Store + 'static> TollgateLayer<S> {
    /// A layer deciding with `engine`, reading the default attributes: `ip` (the peer's
    /// address; no proxy is trusted), `method`, `path`, `user` from a
    /// [`TollgateUser`](crate::TollgateUser) extension, and the API key from `X-Api-Key` or
    /// `Authorization: Bearer`.
    pub fn new(engine: Arc<Engine<S>>) -> Self {
        TollgateLayer {
            shared: Arc::new(Shared {
                engine,
                extract: Extract::default(),
            }),
        }
    }

    /// A builder starting from the defaults of [`new`](Self::new).
    pub fn builder(engine: Arc<Engine<S>>) -> Builder<S> {
        Builder {
            engine,
            extract: Extract::default(),
            error: None,
        }
    }

    /// The engine the layer decides with.
    pub fn engine(&self) -> &Arc<Engine<S>> {
        &self.shared.engine
    }
}

impl<S, T> Layer<T> for TollgateLayer<S> {
    type Service = Tollgate<S, T>;

    fn layer(&self, inner: T) -> Self::Service {
        Tollgate {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Configures which attributes a [`TollgateLayer`] reads of each request. Attribute names
/// are the policy's: `user`, `ip`, `method`, `path`, `tenant`, `key` and `attr.NAME`. When
/// several sources set one attribute, the last read wins, in this order: the client IP,
/// method, path, host, headers, the `TollgateUser` extension, computed attributes.
pub struct Builder<S> {
    engine: Arc<Engine<S>>,
    extract: Extract,
    error: Option<BuildError>,
}

impl<S> std::fmt::Debug for Builder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("extract", &self.extract)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<S: Store + 'static> Builder<S> {
    fn fail(&mut self, e: BuildError) {
        self.error.get_or_insert(e);
    }

    fn attr(&mut self, name: &str) -> Option<Attr> {
        let attr = Attr::parse(name);
        if attr.is_none() {
            self.fail(BuildError::UnknownAttribute(name.to_owned()));
        }
        attr
    }

    /// Whether to set `ip` (default on): the connection's peer, from axum's
    /// `ConnectInfo<SocketAddr>`, tonic's `TcpConnectInfo` or a
    /// [`PeerAddr`](crate::PeerAddr) extension; behind a trusted proxy, the client it names.
    pub fn client_ip(mut self, on: bool) -> Self {
        self.extract.client_ip = on;
        self
    }

    /// Proxies whose `X-Forwarded-For` (and `X-Real-IP`) are believed, as addresses or CIDR
    /// blocks (`10.0.0.0/8`, `2001:db8::/32`). From such a peer the client is the rightmost
    /// hop that is not itself a trusted proxy; from any other peer the headers are ignored,
    /// so clients cannot pick their own address. Adds to those already given.
    pub fn trusted_proxies<I>(mut self, cidrs: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for c in cidrs {
            match Cidr::parse(c.as_ref()) {
                Ok(c) => self.extract.trusted.push(c),
                Err(e) => self.fail(e.into()),
            }
        }
        self
    }

    /// [`trusted_proxies`](Self::trusted_proxies) from blocks already parsed (such as the
    /// server's `server.trusted_proxies`).
    pub fn trusted_cidrs(mut self, cidrs: impl IntoIterator<Item = Cidr>) -> Self {
        self.extract.trusted.extend(cidrs);
        self
    }

    /// Whether to set `method` (default on).
    pub fn method(mut self, on: bool) -> Self {
        self.extract.method = on;
        self
    }

    /// Whether to set `path` (default on): the URI's path, normalised as every door
    /// normalises it.
    pub fn path(mut self, on: bool) -> Self {
        self.extract.path = on;
        self
    }

    /// Sets `attribute` (such as `attr.host`) to the host the request names, without its
    /// port: the URI's authority (HTTP/2's `:authority`), else the `Host` header.
    pub fn host(mut self, attribute: &str) -> Self {
        self.extract.host = self.attr(attribute);
        self
    }

    /// Sets `attribute` to the value of request header `header`, when present (for example
    /// `header("x-tenant", "tenant")`, as forward-auth reads it).
    pub fn header(mut self, header: &str, attribute: &str) -> Self {
        let name = match HeaderName::from_bytes(header.as_bytes()) {
            Ok(n) => Some(n),
            Err(_) => {
                self.fail(BuildError::HeaderName(header.to_owned()));
                None
            }
        };
        if let (Some(name), Some(attr)) = (name, self.attr(attribute)) {
            self.extract.headers.push((name, attr));
        }
        self
    }

    /// Whether to set `user` from a [`TollgateUser`](crate::TollgateUser) request extension
    /// (default on).
    pub fn user_extension(mut self, on: bool) -> Self {
        self.extract.user_extension = on;
        self
    }

    /// Sets `user` to what `f` finds in the request's head (an extension of the
    /// application's own, a claim of a token already checked), when it finds one.
    pub fn user_with<F>(self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        self.attribute_with("user", f)
    }

    /// Sets `attribute` to what `f` finds in the request's head, when it finds one.
    pub fn attribute_with<F>(mut self, attribute: &str, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        if let Some(attr) = self.attr(attribute) {
            let f: AttrFn = Arc::new(f);
            self.extract.computed.push((attr, f));
        }
        self
    }

    /// Whether to read the API key (default on): `X-Api-Key`, else a bearer token of
    /// `Authorization`. The engine verifies it with its registry, or counts it by a
    /// fingerprint when it has none.
    pub fn api_key(mut self, on: bool) -> Self {
        self.extract.api_key = on;
        self
    }

    /// The layer, or the first error of the configuration.
    pub fn build(self) -> Result<TollgateLayer<S>, BuildError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(TollgateLayer {
            shared: Arc::new(Shared {
                engine: self.engine,
                extract: self.extract,
            }),
        })
    }
}

/// The service a [`TollgateLayer`] makes of an inner service `T`.
pub struct Tollgate<S, T> {
    inner: T,
    shared: Arc<Shared<S>>,
}

impl<S, T: Clone> Clone for Tollgate<S, T> {
    fn clone(&self) -> Self {
        Tollgate {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S, T: std::fmt::Debug> std::fmt::Debug for Tollgate<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tollgate")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// What the engine said, in the form the service answers with.
enum Outcome {
    Admit {
        headers: Headers,
        leases: SmallVec<[String; 1]>,
    },
    Refuse(Response<Bytes>),
}

impl<S: Store + 'static> Shared<S> {
    async fn decide(&self, parts: &Parts) -> Outcome {
        let grpc = answer::is_grpc(&parts.headers);
        let subject = match self.extract.subject(parts) {
            Ok(s) => s,
            Err(e) => return Outcome::Refuse(answer::invalid_subject(e.to_string(), grpc)),
        };
        let mut request = tollgate_engine::Request::new(Attributes::Subject(subject));
        request.api_key = self.extract.api_key(parts);
        let mut scope = Scope::default();
        let verdict = self.engine.decide(&mut scope, request).await;
        let headers = verdict.decision.headers();
        if verdict.decision.allowed {
            Outcome::Admit {
                headers,
                leases: self.engine.leases(&verdict.decision),
            }
        } else {
            let refusal = tollgate_engine::door::refusal(&verdict);
            Outcome::Refuse(answer::refusal(&refusal, headers, grpc))
        }
    }
}

type Answer<R, E> = Result<Response<TollgateBody<R>>, E>;

/// The future of a [`Tollgate`] service's response.
pub struct ResponseFuture<R, E> {
    inner: Pin<Box<dyn Future<Output = Answer<R, E>> + Send>>,
}

impl<R, E> Future for ResponseFuture<R, E> {
    type Output = Answer<R, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<R, E> std::fmt::Debug for ResponseFuture<R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, T, B, R> Service<Request<B>> for Tollgate<S, T>
where
    S: Store + 'static,
    T: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    T::Future: Send,
    B: Send + 'static,
    R: Send + 'static,
{
    type Response = Response<TollgateBody<R>>;
    type Error = T::Error;
    type Future = ResponseFuture<R, T::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The service made ready is the one called, later, once the engine has decided; a
        // clone takes its place for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        ResponseFuture {
            inner: Box::pin(async move {
                let (parts, body) = req.into_parts();
                match shared.decide(&parts).await {
                    Outcome::Admit { headers, leases } => {
                        // Held from here, so that an inner service that fails, or a request
                        // abandoned before its answer, releases them too.
                        let leases = Leases::hold(&shared.engine, leases);
                        let res = inner.call(Request::from_parts(parts, body)).await?;
                        let (mut head, body) = res.into_parts();
                        answer::set_headers(&mut head.headers, headers);
                        Ok(Response::from_parts(
                            head,
                            TollgateBody::inner(body, leases),
                        ))
                    }
                    Outcome::Refuse(res) => Ok(res.map(TollgateBody::refused)),
                }
            }),
        }
    }
}

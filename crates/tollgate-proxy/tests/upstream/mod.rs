//! A scripted upstream for the proxy's tests: a real HTTP/1.1 and HTTP/2 server on a free
//! loopback port whose paths fail, stall, reset, rate-limit, stream and upgrade on demand.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, Infallible>;

/// The upstream's counters and switches.
#[derive(Default)]
pub struct State {
    /// Requests that reached it.
    pub hits: AtomicU64,
    /// While set, every request is answered 503.
    pub down: AtomicBool,
    /// `/echo` requests answered.
    pub echoes: AtomicU64,
    per_key: Mutex<HashMap<String, u64>>,
    rng: Mutex<Option<fastrand::Rng>>,
}

/// A running upstream.
pub struct Upstream {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::Relaxed)
    }
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()).boxed());
    *res.status_mut() = status;
    res
}

/// The how-many-th time `key` was asked for (1 for the first).
fn nth(state: &State, key: &str) -> u64 {
    let mut m = state.per_key.lock();
    let n = m.entry(key.to_owned()).or_insert(0);
    *n += 1;
    *n
}

async fn handle(
    state: Arc<State>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    state.hits.fetch_add(1, Ordering::Relaxed);
    if state.down.load(Ordering::Relaxed) {
        return Ok(full(StatusCode::SERVICE_UNAVAILABLE, "down"));
    }
    let q = query(&req);
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let key = q.get("key").cloned().unwrap_or_default();
    let path = req.uri().path().to_owned();
    if req.headers().contains_key(http::header::UPGRADE) {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(io) = on.await {
                let (mut r, mut w) = tokio::io::split(TokioIo::new(io));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let mut res = full(StatusCode::SWITCHING_PROTOCOLS, "");
        res.headers_mut().insert("upgrade", "echo".parse().unwrap());
        res.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        return Ok(res);
    }
    Ok(match path.as_str() {
        "/healthz" => full(StatusCode::OK, "healthy"),
        "/echo" => {
            state.echoes.fetch_add(1, Ordering::Relaxed);
            let mut headers = serde_json::Map::new();
            for (k, v) in req.headers() {
                headers.insert(k.as_str().to_owned(), v.to_str().unwrap_or("").into());
            }
            let method = req.method().to_string();
            let version = format!("{:?}", req.version());
            let uri = req.uri().to_string();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let json = serde_json::json!({
                "method": method, "uri": uri, "headers": headers, "body": body.len(), "version": version,
            });
            let mut res = full(StatusCode::OK, json.to_string());
            res.headers_mut()
                .insert("connection", "x-upstream-private".parse().unwrap());
            res.headers_mut()
                .insert("x-upstream-private", "1".parse().unwrap());
            res
        }
        "/flaky" => {
            if nth(&state, &key) <= num("fail") {
                let status = match num("status") {
                    0 => 503,
                    s => s as u16,
                };
                full(StatusCode::from_u16(status).unwrap(), "failing")
            } else {
                full(StatusCode::OK, "recovered")
            }
        }
        "/reset" => {
            if nth(&state, &key) <= num("fail") {
                // An error from the service closes the connection with no response.
                return Err(std::io::Error::other("scripted reset"));
            }
            full(StatusCode::OK, "after reset")
        }
        "/retry-after" => {
            if nth(&state, &key) <= num("fail") {
                let mut res = full(StatusCode::TOO_MANY_REQUESTS, "slow down");
                res.headers_mut().insert("retry-after", num("secs").into());
                res
            } else {
                full(StatusCode::OK, "allowed now")
            }
        }
        "/random" => {
            let p = q
                .get("p")
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            let roll = {
                let mut rng = state.rng.lock();
                rng.get_or_insert_with(|| fastrand::Rng::with_seed(7)).f64()
            };
            if roll < p {
                full(StatusCode::SERVICE_UNAVAILABLE, "random failure")
            } else {
                full(StatusCode::OK, "ok")
            }
        }
        "/slow" => {
            if nth(&state, &key) <= num("times").max(u64::from(!q.contains_key("times"))) {
                tokio::time::sleep(Duration::from_millis(num("ms"))).await;
            }
            full(StatusCode::OK, "slow")
        }
        "/bytes" => {
            let total = num("n");
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let stream = futures_stream(total, chunk);
            Response::new(StreamBody::new(stream).boxed())
        }
        "/upload" => {
            let mut body = req.into_body();
            let mut n = 0u64;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.map(|f| f.into_data()) {
                    n += data.map_or(0, |d| d.len() as u64);
                }
            }
            full(StatusCode::OK, n.to_string())
        }
        "/quota" => {
            let cred = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            // Credential "Bearer a" has one call left, "Bearer b" many.
            let left: u64 = if cred == "Bearer a" { 1 } else { 1_000 };
            let used = nth(&state, &cred);
            if used > left {
                let mut res = full(StatusCode::TOO_MANY_REQUESTS, "quota spent");
                res.headers_mut()
                    .insert("retry-after", "60".parse().unwrap());
                res.headers_mut()
                    .insert("x-ratelimit-remaining", "0".parse().unwrap());
                res
            } else {
                let mut res = full(StatusCode::OK, cred);
                res.headers_mut()
                    .insert("x-ratelimit-remaining", (left - used).into());
                res
            }
        }
        _ => full(StatusCode::NOT_FOUND, "no such path"),
    })
}

fn futures_stream(
    total: u64,
    chunk: Bytes,
) -> impl futures_core_stream::Stream<Item = Result<Frame<Bytes>, Infallible>> {
    let mut left = total;
    futures_core_stream::from_fn(move || {
        if left == 0 {
            return None;
        }
        let n = left.min(chunk.len() as u64) as usize;
        left -= n as u64;
        Some(Ok(Frame::data(chunk.slice(..n))))
    })
}

/// A minimal `Stream` from a closure, so the test server needs no stream crate.
pub mod futures_core_stream {
    pub use futures_core::Stream;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub struct FromFn<F>(F);

    pub fn from_fn<T, F: FnMut() -> Option<T> + Unpin>(f: F) -> FromFn<F> {
        FromFn(f)
    }

    impl<T, F: FnMut() -> Option<T> + Unpin> Stream for FromFn<F> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
            Poll::Ready((self.0)())
        }
    }
}

/// Starts an upstream on a free loopback port.
pub async fn start() -> Upstream {
    listen(None).await
}

/// Starts an upstream on a free loopback port that speaks TLS with `certs` (HTTP/2 or
/// HTTP/1.1 by ALPN).
pub async fn start_tls(certs: &tollgate_testkit::Certificates) -> Upstream {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certs.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&certs.key).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    listen(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
}

/// Serves the scripted upstream on a free loopback port, over TLS when `tls` is given.
async fn listen(tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(State::default());
    let s = state.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (s, tls) = (s.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => serve(stream, s).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve(stream, s).await;
                        }
                    }
                }
            });
        }
    });
    Upstream { addr, state, task }
}

/// Serves one connection.
async fn serve<I>(io: I, state: Arc<State>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .await;
}

//! The HTTP client the sign-in talks to the provider with: hyper-util with rustls on ring
//! (the build's one crypto provider), no redirects followed, bounded in time and size.

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use thiserror::Error;

/// Why a request to the provider failed.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct HttpError(pub String);

type Hyper = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// Requests to the provider: its discovery document, keys and token endpoint.
#[derive(Clone)]
pub struct Http {
    client: Option<Hyper>,
}

/// The most a provider's answer may hold: discovery documents, key sets and token
/// responses are small.
const MAX_BODY: usize = 1 << 20;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

impl Http {
    /// A client with the system's roots, or one that says why it has none on every request.
    pub fn new() -> Http {
        let client = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| tracing::error!(error = %e, "no TLS roots for the OpenID provider"))
            .ok()
            .map(|b| {
                let https = b.https_or_http().enable_http1().build();
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build(https)
            });
        Http { client }
    }

    /// Sends `req` and reads its answer.
    pub async fn send(
        &self,
        req: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, HttpError> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| HttpError("no TLS roots on this machine".into()))?;
        let (parts, body) = req.into_parts();
        let req = axum::http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let fetch = async {
            let res = client
                .request(req)
                .await
                .map_err(|e| HttpError(error_chain(&e)))?;
            let (parts, body) = res.into_parts();
            let bytes = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| HttpError(e.to_string()))?
                .to_bytes();
            Ok(axum::http::Response::from_parts(parts, bytes.to_vec()))
        };
        tokio::time::timeout(TIMEOUT, fetch)
            .await
            .map_err(|_| HttpError(format!("no answer within {}s", TIMEOUT.as_secs())))?
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send + 'c>,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// An error and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

//! Delivering one alert notice over one channel, and saying whether a failure is worth
//! retrying. Queueing, backoff and dead-lettering belong to the caller.
//!
//! # Channels
//! - [`Webhook`]: a JSON POST in the Standard Webhooks envelope
//!   (`{"type": "alert.fired" | "alert.resolved", "timestamp", "data"}`), with `webhook-id`
//!   (the notice id), `webhook-timestamp` and, when a `whsec_` secret is set,
//!   `webhook-signature` (`v1,` HMAC-SHA-256; see [`sign`] and [`verify`]).
//! - [`Slack`]: an incoming webhook message with `text` and `blocks` (header, body, context);
//!   resolved notices say so.
//! - [`PagerDuty`]: Events API v2, `trigger` on fired and `resolve` on resolved, both by the
//!   notice's `dedup_key`.
//! - [`Email`]: a plain-text UTF-8 message over SMTP (plain, STARTTLS when offered, STARTTLS
//!   required, or implicit TLS), whose Message-ID comes from the notice id and which carries
//!   `Auto-Submitted: auto-generated`.
//!
//! Every HTTP request carries `Idempotency-Key` (the notice id) and `user-agent:
//! tollgate/<version>`; redirects are not followed.
//!
//! # Retry classification
//! [`DeliveryError::retryable`] is true for connection failures, timeouts, HTTP 408, 429 and
//! 5xx, and SMTP transient (4xx) replies; false for other HTTP answers (4xx, 3xx), SMTP
//! permanent (5xx) replies, TLS failures and a server without the STARTTLS that was required.
//! [`DeliveryError::retry_after`] holds the receiver's `Retry-After` (seconds or an HTTP-date)
//! on a retryable answer; it is not capped here.

mod email;
mod error;
mod notice;
mod pagerduty;
mod retry;
mod slack;
mod template;
mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, USER_AGENT as USER_AGENT_HEADER};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub use email::{Email, EmailSettings, SmtpTls};
pub use error::{ChannelError, DeliveryError};
pub use notice::{Notice, NoticeEvent, Severity};
pub use pagerduty::{DEFAULT_EVENTS_URL, PagerDuty};
pub use slack::Slack;
pub use template::{TemplateError, render};
pub use webhook::{VerifyError, Webhook, WebhookSecret, sign, verify};

/// The user agent of every HTTP delivery.
const USER_AGENT: &str = concat!("tollgate/", env!("CARGO_PKG_VERSION"));

/// Where one notice goes.
#[derive(Debug, Clone)]
pub enum Channel {
    /// A signed (or unsigned) JSON webhook.
    Webhook(Webhook),
    /// A Slack incoming webhook.
    Slack(Slack),
    /// A PagerDuty Events API v2 integration.
    PagerDuty(PagerDuty),
    /// An SMTP server and recipients.
    Email(Email),
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Delivers notices: one HTTP client (with timeouts) for every HTTP channel, and one SMTP
/// transport per distinct email settings, kept for reuse.
pub struct Notifier {
    http: Client<Https, Full<Bytes>>,
    timeout: Duration,
    smtp: Mutex<HashMap<email::TransportKey, AsyncSmtpTransport<Tokio1Executor>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Parses an http(s) URL with a host.
pub(crate) fn http_url(url: &str) -> Result<Uri, ChannelError> {
    let parsed: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| ChannelError::Url(e.to_string()))?;
    match parsed.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(ChannelError::Url(format!(
                "scheme {other} is not http or https"
            )));
        }
        None => return Err(ChannelError::Url("no scheme".into())),
    }
    if parsed.host().is_none_or(str::is_empty) {
        return Err(ChannelError::Url("no host".into()));
    }
    Ok(parsed)
}

impl Notifier {
    /// A notifier whose every connection and request (and SMTP command) gives up after
    /// `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, ChannelError> {
        // rustls on ring, as elsewhere in the workspace, with the system's trust store.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
            .map_err(|e| ChannelError::Client(e.to_string()))?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ChannelError::Client(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        // The legacy client follows no redirect: a 3xx is an answer like any other.
        let http = Client::builder(TokioExecutor::new()).build(https);
        Ok(Notifier {
            http,
            timeout,
            smtp: Mutex::new(HashMap::new()),
        })
    }

    /// Delivers `notice` over `channel` once.
    pub async fn deliver(&self, channel: &Channel, notice: &Notice) -> Result<(), DeliveryError> {
        match channel {
            Channel::Webhook(hook) => {
                let body = webhook::body(notice)?;
                let now = unix_now();
                let mut req = post(&hook.url)
                    .header("webhook-id", &notice.id)
                    .header("webhook-timestamp", now.to_string());
                if let Some(secret) = &hook.secret {
                    req = req.header("webhook-signature", sign(secret, &notice.id, now, &body));
                }
                self.send("webhook", req, notice, body).await
            }
            Channel::Slack(slack) => {
                let body = encode(&slack::body(notice))?;
                self.send("Slack", post(&slack.url), notice, body).await
            }
            Channel::PagerDuty(pd) => {
                let body = encode(&pagerduty::body(pd, notice)?)?;
                self.send("PagerDuty", post(&pd.url), notice, body).await
            }
            Channel::Email(mail) => {
                let message = mail.message(notice)?;
                let transport = self.transport(mail)?;
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| email::classify(&e))
            }
        }
    }

    async fn send(
        &self,
        channel: &str,
        req: http::request::Builder,
        notice: &Notice,
        body: Vec<u8>,
    ) -> Result<(), DeliveryError> {
        let req = req
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT_HEADER, HeaderValue::from_static(USER_AGENT))
            .header("idempotency-key", &notice.id)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| DeliveryError::permanent(format!("{channel}: request: {e}")))?;
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| retry::classify_transport(channel, &e))?;
            let (parts, body) = resp.into_parts();
            if parts.status.is_success() {
                return Ok(());
            }
            // The answer's text only explains the failure; failing to read it changes nothing.
            let text = body
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            Err(retry::classify_status(
                channel,
                parts.status,
                &parts.headers,
                &text,
                SystemTime::now(),
            ))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(DeliveryError::transient(format!("{channel}: timed out"))))
    }

    fn transport(&self, mail: &Email) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
        let key = mail.key();
        let mut cache = self
            .smtp
            .lock()
            .map_err(|_| DeliveryError::transient("SMTP transport cache poisoned"))?;
        if let Some(t) = cache.get(&key) {
            return Ok(t.clone());
        }
        let t = mail.transport(self.timeout)?;
        cache.insert(key, t.clone());
        Ok(t)
    }
}

/// A POST to `uri`; the builder's errors surface when its body is set.
fn post(uri: &Uri) -> http::request::Builder {
    Request::post(uri.clone())
}

fn encode(value: &serde_json::Value) -> Result<Vec<u8>, DeliveryError> {
    serde_json::to_vec(value).map_err(|e| DeliveryError::permanent(format!("encoding: {e}")))
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

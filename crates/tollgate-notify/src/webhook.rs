//! Standard Webhooks: the envelope, signing and verifying (`v1`, HMAC-SHA-256 over
//! `id.timestamp.body`).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use http::Uri;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::notice::{Notice, NoticeEvent};
use crate::{ChannelError, DeliveryError};

/// The prefix of a Standard Webhooks secret.
const PREFIX: &str = "whsec_";

/// A webhook signing key (`whsec_<base64>`), kept as its decoded bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// Parses `whsec_<base64>`; the key must not be empty.
    pub fn parse(secret: &str) -> Result<Self, ChannelError> {
        let encoded = secret
            .strip_prefix(PREFIX)
            .ok_or_else(|| ChannelError::Secret("must start with whsec_".into()))?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|e| ChannelError::Secret(format!("not base64 after whsec_: {e}")))?;
        if key.is_empty() {
            return Err(ChannelError::Secret("empty key".into()));
        }
        Ok(WebhookSecret(key))
    }

    /// Makes a secret from raw key bytes.
    pub fn from_bytes(key: Vec<u8>) -> Self {
        WebhookSecret(key)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// A webhook endpoint, optionally signed.
#[derive(Clone)]
pub struct Webhook {
    pub(crate) url: Uri,
    pub(crate) secret: Option<WebhookSecret>,
}

impl Webhook {
    /// An endpoint at `url` (http or https), signed with `secret` (`whsec_<base64>`) when given.
    pub fn new(url: &str, secret: Option<&str>) -> Result<Self, ChannelError> {
        Ok(Webhook {
            url: crate::http_url(url)?,
            secret: secret.map(WebhookSecret::parse).transpose()?,
        })
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("host", &self.url.host())
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

/// The Standard Webhooks envelope: `{"type", "timestamp", "data"}`.
pub(crate) fn body(notice: &Notice) -> Result<Vec<u8>, DeliveryError> {
    let timestamp = notice
        .rfc3339()
        .ok_or_else(|| DeliveryError::permanent("notice time out of range"))?;
    let kind = match notice.event {
        NoticeEvent::Fired => "alert.fired",
        NoticeEvent::Resolved => "alert.resolved",
    };
    let envelope = serde_json::json!({
        "type": kind,
        "timestamp": timestamp,
        "data": {
            "id": notice.id,
            "alert": notice.alert,
            "dedup_key": notice.dedup_key,
            "severity": notice.severity,
            "summary": notice.summary,
            "body": notice.body,
            "data": notice.data,
            "at": notice.at,
        },
    });
    serde_json::to_vec(&envelope).map_err(|e| DeliveryError::permanent(format!("encoding: {e}")))
}

fn mac(secret: &WebhookSecret, id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&secret.0) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => unreachable!("HMAC rejected a key"),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value for a message: `v1,<base64 HMAC-SHA-256>` over
/// `id.timestamp.body`.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// Why a webhook did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// `webhook-timestamp` is not an integer.
    #[error("invalid webhook-timestamp")]
    Timestamp,
    /// The timestamp is further from now than the tolerance (a replay or a skewed clock).
    #[error("webhook-timestamp outside the tolerance")]
    Expired,
    /// No `v1` signature in the header matches.
    #[error("no matching signature")]
    Signature,
}

/// Verifies a received webhook: `headers` is (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`); the signature header may list several space-separated
/// `v1,<base64>` values (during key rotation), any of which may match. `now` is unix seconds.
pub fn verify(
    secret: &WebhookSecret,
    headers: (&str, &str, &str),
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let (id, timestamp, signatures) = headers;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::Timestamp)?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(ts) > tolerance.unsigned_abs() {
        return Err(VerifyError::Expired);
    }
    let expected = mac(secret, id, timestamp.trim(), body)
        .finalize()
        .into_bytes();
    let matched = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        .any(|sig| bool::from(sig.as_slice().ct_eq(expected.as_slice())));
    if matched {
        Ok(())
    } else {
        Err(VerifyError::Signature)
    }
}

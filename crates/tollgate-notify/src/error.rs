//! Errors: a channel that cannot be built, and a delivery that failed (retryable or not).

use std::time::Duration;

use thiserror::Error;

/// Why a channel (or the notifier) could not be built from its settings.
#[derive(Debug, Error)]
pub enum ChannelError {
    /// The URL does not parse or is not http(s).
    #[error("invalid URL: {0}")]
    Url(String),
    /// The webhook secret is not `whsec_` followed by base64.
    #[error("invalid webhook secret: {0}")]
    Secret(String),
    /// An email address does not parse.
    #[error("invalid email address {address:?}: {reason}")]
    Address {
        /// The address as given.
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// Some other setting is invalid (empty routing key, no recipient…).
    #[error("{0}")]
    Invalid(String),
    /// The CA file could not be read or parsed.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// Why it could not be used.
        reason: String,
    },
    /// TLS or HTTP client setup failed.
    #[error("client setup: {0}")]
    Client(String),
}

/// A delivery that failed, with whether trying again later may succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason}")]
pub struct DeliveryError {
    /// True when the failure is likely temporary (network, timeout, 408, 429, 5xx, SMTP 4xx).
    pub retryable: bool,
    /// How long the receiver asked to wait (from `Retry-After`), when it said.
    pub retry_after: Option<Duration>,
    /// What went wrong, for logs and the dead-letter record (never a secret or a URL).
    pub reason: String,
}

impl DeliveryError {
    /// A failure worth retrying.
    pub(crate) fn transient(reason: impl Into<String>) -> Self {
        DeliveryError {
            retryable: true,
            retry_after: None,
            reason: reason.into(),
        }
    }

    /// A failure that will not go away by retrying.
    pub(crate) fn permanent(reason: impl Into<String>) -> Self {
        DeliveryError {
            retryable: false,
            retry_after: None,
            reason: reason.into(),
        }
    }
}

//! The notice: one message about one alert, whatever the channel.

use serde::{Deserialize, Serialize};

/// One message to deliver. `id` is the idempotency key: the same notice retried carries the
/// same id, so receivers can drop duplicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Idempotency key (e.g. `alt_…`): the webhook id, the `Idempotency-Key` header and the
    /// seed of the email's Message-ID.
    pub id: String,
    /// Whether the alert fired or resolved.
    pub event: NoticeEvent,
    /// The rule's name, e.g. `quota-80`.
    pub alert: String,
    /// Stable per alert instance, so a resolve closes what the trigger opened.
    pub dedup_key: String,
    /// How bad it is.
    pub severity: Severity,
    /// One line.
    pub summary: String,
    /// Plain text, already rendered by the caller.
    pub body: String,
    /// Email subject; the summary when absent.
    pub subject: Option<String>,
    /// Structured details (key id, owner, used, limit, period…).
    pub data: serde_json::Value,
    /// Unix seconds when it happened.
    pub at: i64,
}

/// Whether an alert started or stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeEvent {
    /// The condition started.
    Fired,
    /// The condition ended.
    Resolved,
}

/// PagerDuty's four severities, used by every channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Needs someone now.
    Critical,
    /// Something failed.
    Error,
    /// May need attention.
    Warning,
    /// For the record.
    Info,
}

impl Severity {
    /// The lowercase name PagerDuty expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl Notice {
    /// When it happened, as RFC 3339 (UTC), or None when `at` is out of range.
    pub(crate) fn rfc3339(&self) -> Option<String> {
        jiff::Timestamp::from_second(self.at)
            .ok()
            .map(|t| t.to_string())
    }
}

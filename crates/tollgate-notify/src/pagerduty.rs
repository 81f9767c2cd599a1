//! PagerDuty Events API v2: trigger on fired, resolve on resolved, by `dedup_key`.

use std::fmt;

use http::Uri;

use crate::notice::{Notice, NoticeEvent};
use crate::{ChannelError, DeliveryError};

/// Where events go unless told otherwise.
pub const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// PagerDuty's limit on a summary, in characters.
const SUMMARY_MAX: usize = 1024;

/// A PagerDuty service integration (Events API v2).
#[derive(Clone)]
pub struct PagerDuty {
    pub(crate) routing_key: String,
    pub(crate) url: Uri,
}

impl PagerDuty {
    /// The integration with `routing_key`, posting to `events_url` or
    /// [`DEFAULT_EVENTS_URL`].
    pub fn new(routing_key: &str, events_url: Option<&str>) -> Result<Self, ChannelError> {
        let routing_key = routing_key.trim();
        if routing_key.is_empty()
            || routing_key
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ChannelError::Invalid(
                "PagerDuty routing key must be non-empty without spaces".into(),
            ));
        }
        Ok(PagerDuty {
            routing_key: routing_key.to_owned(),
            url: crate::http_url(events_url.unwrap_or(DEFAULT_EVENTS_URL))?,
        })
    }
}

impl fmt::Debug for PagerDuty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDuty")
            .field("host", &self.url.host())
            .finish()
    }
}

/// The event: a trigger with its payload, or a resolve naming only the dedup key.
pub(crate) fn body(pd: &PagerDuty, notice: &Notice) -> Result<serde_json::Value, DeliveryError> {
    Ok(match notice.event {
        NoticeEvent::Resolved => serde_json::json!({
            "routing_key": pd.routing_key,
            "event_action": "resolve",
            "dedup_key": notice.dedup_key,
        }),
        NoticeEvent::Fired => {
            let timestamp = notice
                .rfc3339()
                .ok_or_else(|| DeliveryError::permanent("notice time out of range"))?;
            let summary: String = notice.summary.chars().take(SUMMARY_MAX).collect();
            serde_json::json!({
                "routing_key": pd.routing_key,
                "event_action": "trigger",
                "dedup_key": notice.dedup_key,
                "payload": {
                    "summary": summary,
                    "source": "tollgate",
                    "severity": notice.severity.as_str(),
                    "timestamp": timestamp,
                    "custom_details": {
                        "alert": notice.alert,
                        "notice_id": notice.id,
                        "body": notice.body,
                        "data": notice.data,
                    },
                },
            })
        }
    })
}

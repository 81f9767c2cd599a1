//! Slack incoming webhooks: `{"text", "blocks"}` with a header, the body and a context line.

use std::fmt;

use http::Uri;

use crate::ChannelError;
use crate::notice::{Notice, NoticeEvent};

/// Slack's limit on a header block's text, in characters.
const HEADER_MAX: usize = 150;
/// Slack's limit on a section block's text, in characters.
const SECTION_MAX: usize = 3000;

/// A Slack incoming webhook (its URL is the secret).
#[derive(Clone)]
pub struct Slack {
    pub(crate) url: Uri,
}

impl Slack {
    /// The incoming webhook at `url` (http or https).
    pub fn new(incoming_webhook_url: &str) -> Result<Self, ChannelError> {
        Ok(Slack {
            url: crate::http_url(incoming_webhook_url)?,
        })
    }
}

impl fmt::Debug for Slack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path is the credential.
        f.debug_struct("Slack")
            .field("host", &self.url.host())
            .finish()
    }
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The message body.
pub(crate) fn body(notice: &Notice) -> serde_json::Value {
    let title = match notice.event {
        NoticeEvent::Fired => format!("Firing: {}", notice.summary),
        NoticeEvent::Resolved => format!("Resolved: {}", notice.summary),
    };
    let context = format!(
        "alert `{}` · severity {} · {}",
        escape(&notice.alert),
        notice.severity.as_str(),
        match notice.event {
            NoticeEvent::Fired => "fired",
            NoticeEvent::Resolved => "resolved",
        }
    );
    let mut blocks = vec![serde_json::json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&title, HEADER_MAX)},
    })];
    if !notice.body.trim().is_empty() {
        blocks.push(serde_json::json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&escape(&notice.body), SECTION_MAX)},
        }));
    }
    blocks.push(serde_json::json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": context}],
    }));
    serde_json::json!({ "text": escape(&title), "blocks": blocks })
}

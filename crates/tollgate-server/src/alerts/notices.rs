//! The notices an alert event sends and the delivery jobs that carry them.

use serde_json::{Value, json};
use tollgate_notify::{Notice, NoticeEvent};
use tollgate_registry::{AlertEvent, AlertEventKind, NewJob, OwnerContact};

use super::{AlertRule, AlertSettings, Message};

/// The kind of the jobs that deliver notices.
pub const DELIVER: &str = "deliver";

/// Where one delivery goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A channel of the `alerts` section, by name.
    Channel(String),
    /// An owner's email address, read when delivering.
    OwnerEmail(String),
    /// An owner's webhook, read when delivering.
    OwnerWebhook(String),
}

impl Target {
    /// Its form in a job: `channel:ops`, `owner-email:acme`, `owner-webhook:acme`.
    pub fn encode(&self) -> String {
        match self {
            Target::Channel(c) => format!("channel:{c}"),
            Target::OwnerEmail(o) => format!("owner-email:{o}"),
            Target::OwnerWebhook(o) => format!("owner-webhook:{o}"),
        }
    }

    /// Reads [`Target::encode`]'s form.
    pub fn decode(text: &str) -> Option<Self> {
        let (kind, name) = text.split_once(':')?;
        Some(match kind {
            "channel" => Target::Channel(name.into()),
            "owner-email" => Target::OwnerEmail(name.into()),
            "owner-webhook" => Target::OwnerWebhook(name.into()),
            _ => return None,
        })
    }
}

/// The values a message template may use, for checking templates when the configuration
/// is read.
pub fn sample_vars() -> Value {
    vars(
        &AlertEvent {
            id: 1,
            change: tollgate_registry::AlertChange {
                rule: "included-80".into(),
                subject: "owner:acme@2026-12".into(),
                event: AlertEventKind::Fired,
                severity: "warning".into(),
                value: 80.0,
                summary: "owner acme used 80% of its units".into(),
                at: 0,
            },
        },
        &json!({"account": "acme", "owner": "acme", "tier": "pro", "period": "2026-12",
                "used": 80_000, "limit": 100_000, "percent": 80}),
        Some(&OwnerContact {
            name: "Acme".into(),
            email: Some("billing@acme.example".into()),
            webhook_url: None,
            webhook_secret: None,
            metadata: Value::Null,
        }),
        "acme",
    )
}

/// A template's values: the event, its details (flattened) and the owner.
fn vars(event: &AlertEvent, data: &Value, owner: Option<&OwnerContact>, owner_id: &str) -> Value {
    let mut v = json!({
        "rule": event.change.rule,
        "subject": event.change.subject,
        "event": event.change.event.name(),
        "severity": event.change.severity,
        "summary": event.change.summary,
        "value": event.change.value,
        "account": "",
        "tier": "",
        "period": "",
        "used": 0,
        "limit": 0,
        "percent": 0,
        "owner": {
            "id": owner_id,
            "name": owner.map_or(owner_id, |o| o.name.as_str()),
            "email": owner.and_then(|o| o.email.as_deref()).unwrap_or(""),
        },
    });
    if let (Some(obj), Some(details)) = (v.as_object_mut(), data.as_object()) {
        for (k, x) in details {
            if k != "owner" {
                obj.insert(k.clone(), x.clone());
            }
        }
    }
    v
}

fn text_for(event: &AlertEvent, data: &Value) -> String {
    let mut body = format!("{}.\n", event.change.summary);
    if let Some(details) = data.as_object() {
        for (k, v) in details {
            let shown = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            body.push_str(&format!("\n{k}: {shown}"));
        }
    }
    body
}

/// The notice `event` sends to the rule's channels.
pub fn notice(rule: &AlertRule, event: &AlertEvent, data: &Value, target: &Target) -> Notice {
    Notice {
        id: notice_id(event, target),
        event: match event.change.event {
            AlertEventKind::Fired => NoticeEvent::Fired,
            AlertEventKind::Resolved => NoticeEvent::Resolved,
        },
        alert: rule.name.clone(),
        dedup_key: format!("tollgate/{}/{}", rule.name, event.change.subject),
        severity: rule.severity,
        summary: event.change.summary.clone(),
        body: text_for(event, data),
        subject: None,
        data: data.clone(),
        at: event.change.at.div_euclid(1_000),
    }
}

/// A message's id: one per event and destination, the same on every try.
fn notice_id(event: &AlertEvent, target: &Target) -> String {
    let dest: String = target
        .encode()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("alt_{}_{dest}", event.id)
}

/// The jobs that deliver `event`: one per channel of its rule and, when the rule reaches
/// out and the event is a firing, one per way to reach the account's owner.
pub fn jobs(
    settings: &AlertSettings,
    rule: &AlertRule,
    event: &AlertEvent,
    data: &Value,
    owner: Option<(&str, &OwnerContact)>,
) -> Vec<NewJob> {
    let mut out: Vec<(Target, Notice)> = rule
        .channels
        .iter()
        .map(|c| {
            let target = Target::Channel(c.clone());
            let n = notice(rule, event, data, &target);
            (target, n)
        })
        .collect();
    if let Some((id, contact)) = owner
        && rule.outreach
        && event.change.event == AlertEventKind::Fired
    {
        let message = rule.message.as_ref().unwrap_or(&settings.outreach.message);
        let mut targets = Vec::new();
        if contact.email.is_some() && settings.outreach.email.is_some() {
            targets.push(Target::OwnerEmail(id.into()));
        }
        if contact.webhook_url.is_some() {
            targets.push(Target::OwnerWebhook(id.into()));
        }
        for target in targets {
            let mut n = notice(rule, event, data, &target);
            if let Some((subject, body)) = render(message, event, data, id, contact) {
                n.subject = Some(subject);
                n.body = body;
            }
            out.push((target, n));
        }
    }
    out.into_iter()
        .map(|(target, notice)| NewJob {
            kind: DELIVER.into(),
            idempotency_key: format!("alert:{}:{}", event.id, target.encode()),
            payload: json!({ "target": target.encode(), "notice": notice }),
            max_attempts: settings.delivery.max_attempts,
            run_at: event.change.at,
        })
        .collect()
}

/// The owner's subject and text; none (and the plain notice goes) if a template fails,
/// which the configuration's check makes rare.
fn render(
    message: &Message,
    event: &AlertEvent,
    data: &Value,
    owner_id: &str,
    owner: &OwnerContact,
) -> Option<(String, String)> {
    let v = vars(event, data, Some(owner), owner_id);
    let rendered = tollgate_notify::render(&message.subject, &v)
        .and_then(|s| Ok((s, tollgate_notify::render(&message.body, &v)?)));
    match rendered {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(rule = %event.change.rule, error = %e, "an owner's message did not render");
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip() {
        for t in [
            Target::Channel("ops".into()),
            Target::OwnerEmail("acme".into()),
            Target::OwnerWebhook("a:b".into()),
        ] {
            assert_eq!(Target::decode(&t.encode()), Some(t));
        }
        assert_eq!(Target::decode("nowhere"), None);
    }

    #[test]
    fn the_default_outreach_renders_with_the_details() {
        let v = sample_vars();
        assert_eq!(v["owner"]["name"], "Acme");
        assert_eq!(v["used"], 80_000);
        let m = super::super::Outreach::default().message;
        let body = tollgate_notify::render(&m.body, &v).unwrap();
        assert!(body.contains("Hello Acme"), "{body}");
        assert!(body.contains("80000"), "{body}");
    }
}

//! Rules on the registry's own failure. Alert states and the delivery queue live in the
//! registry, so while it fails neither can be written: each instance watches it and
//! delivers straight to the rules' channels, once when it stops answering and once when it
//! answers again. Such alerts are in no history, and each instance that saw the outage
//! sends its own (with one PagerDuty dedup key, so PagerDuty opens one incident).

use std::sync::Arc;

use tollgate_notify::{Notice, NoticeEvent, Notifier};
use tollgate_registry::Registry;

use super::{AlertRule, AlertSettings, Dependency, RuleKind};

/// Failed pings in a row before the registry counts as failing: one slow answer is not
/// an outage.
const FAILURES_TO_FIRE: u32 = 3;

/// Watches the registry for the rules that ask, if any.
pub fn spawn(registry: Registry, settings: Arc<AlertSettings>) {
    let rules: Vec<AlertRule> = settings
        .rules
        .iter()
        .filter(|r| r.kind == RuleKind::Failing(Dependency::Registry))
        .cloned()
        .collect();
    if rules.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let notifier = match Notifier::new(settings.delivery.timeout) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "the registry watch could not start");
                return;
            }
        };
        let mut tick = tokio::time::interval(settings.evaluate_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u32;
        let mut since: Option<i64> = None;
        loop {
            tick.tick().await;
            let now = tollgate_core::time::now_ms();
            let answer = tokio::time::timeout(settings.delivery.timeout, registry.ping()).await;
            match answer {
                Ok(Ok(())) => {
                    failures = 0;
                    if let Some(start) = since.take() {
                        send(
                            &notifier,
                            &settings,
                            &rules,
                            NoticeEvent::Resolved,
                            start,
                            now,
                            "the registry answers again",
                        )
                        .await;
                    }
                }
                Ok(Err(_)) | Err(_) => {
                    failures = failures.saturating_add(1);
                    if failures == FAILURES_TO_FIRE && since.is_none() {
                        since = Some(now);
                        let why = match answer {
                            Ok(Err(e)) => e.to_string(),
                            _ => "no answer in time".into(),
                        };
                        send(
                            &notifier,
                            &settings,
                            &rules,
                            NoticeEvent::Fired,
                            now,
                            now,
                            &format!("the registry does not answer: {why}"),
                        )
                        .await;
                    }
                }
            }
        }
    });
}

/// Sends one notice per rule and channel, each tried once: the outage may end before a
/// retry would help, and there is nowhere to queue one.
async fn send(
    notifier: &Notifier,
    settings: &AlertSettings,
    rules: &[AlertRule],
    event: NoticeEvent,
    since: i64,
    now: i64,
    summary: &str,
) {
    for rule in rules {
        for name in &rule.channels {
            let Some(channel) = settings.channels.get(name) else {
                continue;
            };
            let notice = Notice {
                id: format!(
                    "alt_registry_{}_{since}_{}",
                    rule.name,
                    match event {
                        NoticeEvent::Fired => "fired",
                        NoticeEvent::Resolved => "resolved",
                    }
                ),
                event,
                alert: rule.name.clone(),
                dedup_key: format!("tollgate/{}/registry", rule.name),
                severity: rule.severity,
                summary: summary.to_owned(),
                body: format!(
                    "{summary}.\n\ninstance: {}",
                    crate::background::instance_name()
                ),
                subject: None,
                data: serde_json::json!({"dependency": "registry", "since": since}),
                at: now.div_euclid(1_000),
            };
            if let Err(e) = notifier.deliver(channel, &notice).await {
                tracing::warn!(rule = %rule.name, channel = %name, reason = %e.reason, "a registry alert was not delivered");
            }
        }
    }
}

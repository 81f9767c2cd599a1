//! Usage events and violations leave the decision path through bounded queues; one writer
//! stores them in batches. A full queue drops and counts, never blocks a decision; a
//! graceful shutdown drains the queues before the process exits.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tollgate_core::subject::Attr;
use tollgate_core::{Decision, Subject};
use tollgate_registry::{KeyRecord, Registry, UsageEvent, Violation};

use tollgate_core::time::now_ms;

/// Events written per transaction, at most.
const BATCH: usize = 2_000;

/// The decision path's end of the queues.
#[derive(Debug, Clone)]
pub struct Effects {
    usage: mpsc::Sender<UsageEvent>,
    violations: mpsc::Sender<Violation>,
}

/// The writer's end.
#[derive(Debug)]
pub struct Queues {
    usage: mpsc::Receiver<UsageEvent>,
    violations: mpsc::Receiver<Violation>,
}

impl Effects {
    /// Queues of `capacity` events each. Usage and violations queue apart, so a flood of
    /// refused requests cannot crowd out the usage that is billed.
    pub fn new(capacity: usize) -> (Self, Queues) {
        let capacity = capacity.max(1);
        let (usage, usage_rx) = mpsc::channel(capacity);
        let (violations, violations_rx) = mpsc::channel(capacity);
        (
            Effects { usage, violations },
            Queues {
                usage: usage_rx,
                violations: violations_rx,
            },
        )
    }

    /// Queues what a consumed decision leaves behind: a usage event when it was made with
    /// a key, a violation when it denied, describing the caller by `caller` (called only
    /// then).
    pub fn after(
        &self,
        d: &Decision<'_>,
        caller: impl FnOnce() -> serde_json::Value,
        key: Option<&KeyRecord>,
        cost: u64,
    ) {
        // Most decisions leave nothing: no key, admitted.
        if key.is_none() && d.allowed {
            return;
        }
        let at = now_ms();
        if let Some(k) = key {
            let event = UsageEvent {
                at,
                key_id: k.id.clone(),
                owner: k.owner.clone(),
                tier: k.tier.clone(),
                allowed: d.allowed,
                code: d.code.as_str().into(),
                cost: i64::try_from(cost).unwrap_or(i64::MAX),
            };
            if self.usage.try_send(event).is_err() {
                metrics::counter!("tollgate_effects_dropped_total", "kind" => "usage", "reason" => "full").increment(1);
            }
        }
        if !d.allowed {
            let rule = d
                .denied_by()
                .map_or_else(String::new, |l| l.rule.name.clone());
            let violation = Violation {
                at,
                key_id: key.map(|k| k.id.clone()),
                rule,
                code: d.code.as_str().into(),
                subject: caller(),
            };
            if self.violations.try_send(violation).is_err() {
                metrics::counter!("tollgate_effects_dropped_total", "kind" => "violation", "reason" => "full").increment(1);
            }
        }
    }
}

/// What a violation keeps of a caller known by attributes: plain attributes, never the
/// presented key.
pub fn summary(subject: &Subject) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    if let Some(ip) = subject.ip() {
        out.insert("ip".into(), ip.to_string().into());
    }
    for name in ["user", "method", "path", "tenant"] {
        if let Some(attr) = Attr::parse(name)
            && let Some(v) = subject.text(&attr)
        {
            out.insert(name.into(), v.into());
        }
    }
    serde_json::Value::Object(out)
}

/// Writes queued events every `interval` (or when a batch fills) until `stop` turns true,
/// then drains the queues and writes what is left.
pub async fn run(
    registry: Registry,
    mut queues: Queues,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut usage = Vec::with_capacity(BATCH);
    let mut violations = Vec::with_capacity(BATCH);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut stopping = false;
        let mut due = false;
        tokio::select! {
            _ = queues.usage.recv_many(&mut usage, BATCH), if usage.len() < BATCH => {}
            _ = queues.violations.recv_many(&mut violations, BATCH), if violations.len() < BATCH => {}
            _ = tick.tick() => due = true,
            _ = stop.wait_for(|s| *s) => stopping = true,
        }
        if stopping {
            while let Ok(e) = queues.usage.try_recv() {
                usage.push(e);
            }
            while let Ok(v) = queues.violations.try_recv() {
                violations.push(v);
            }
        }
        if due || stopping || usage.len() >= BATCH || violations.len() >= BATCH {
            flush(&registry, &mut usage, &mut violations).await;
        }
        if stopping {
            return;
        }
    }
}

/// Writes what is queued, a batch per transaction.
async fn flush(registry: &Registry, usage: &mut Vec<UsageEvent>, violations: &mut Vec<Violation>) {
    while !usage.is_empty() || !violations.is_empty() {
        let u: Vec<_> = usage.drain(..usage.len().min(BATCH)).collect();
        let v: Vec<_> = violations.drain(..violations.len().min(BATCH)).collect();
        write_batch(registry, &u, &v).await;
    }
}

/// Writes one batch, retrying a failing database a few times before counting it lost.
async fn write_batch(registry: &Registry, usage: &[UsageEvent], violations: &[Violation]) {
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=4 {
        match registry.write_usage(usage, violations).await {
            Ok(()) => {
                metrics::counter!("tollgate_usage_events_written_total")
                    .increment(usage.len() as u64);
                metrics::counter!("tollgate_violations_written_total")
                    .increment(violations.len() as u64);
                return;
            }
            Err(e) if attempt < 4 => {
                tracing::warn!(error = %e, attempt, "writing usage failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
            Err(e) => {
                tracing::error!(error = %e, usage = usage.len(), violations = violations.len(), "writing usage failed; the batch is lost");
                metrics::counter!("tollgate_effects_dropped_total", "kind" => "usage", "reason" => "database").increment(usage.len() as u64);
                metrics::counter!("tollgate_effects_dropped_total", "kind" => "violation", "reason" => "database").increment(violations.len() as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tollgate_core::Code;
    use tollgate_registry::KeyStatus;

    use super::*;

    fn key() -> KeyRecord {
        KeyRecord {
            id: "key_1".into(),
            name: "k".into(),
            owner: "acme".into(),
            tier: "free".into(),
            prefix: "tg_live_abcd".into(),
            status: KeyStatus::Active,
            expires_at: None,
            metadata: serde_json::Value::Null,
            overrides: serde_json::Value::Null,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
        }
    }

    #[test]
    fn a_full_queue_drops_instead_of_waiting() {
        let (effects, mut queues) = Effects::new(2);
        let subject = Subject::new().with("ip", "192.0.2.1").unwrap();
        let denied = Decision::bare(Code::RateLimited, 0);
        for _ in 0..5 {
            effects.after(&denied, || summary(&subject), Some(&key()), 1);
        }
        let mut usage = 0;
        while queues.usage.try_recv().is_ok() {
            usage += 1;
        }
        let mut violations = Vec::new();
        while let Ok(v) = queues.violations.try_recv() {
            violations.push(v);
        }
        assert_eq!((usage, violations.len()), (2, 2));
        assert_eq!(
            violations[0].subject,
            serde_json::json!({"ip": "192.0.2.1"})
        );
        assert_eq!(violations[0].code, "RATE_LIMITED");
    }

    #[test]
    fn only_decisions_with_a_key_leave_usage_and_only_denials_violations() {
        let (effects, mut queues) = Effects::new(8);
        let subject = Subject::new();
        effects.after(&Decision::bare(Code::Ok, 0), || summary(&subject), None, 1);
        assert!(queues.usage.try_recv().is_err());
        assert!(queues.violations.try_recv().is_err());
        effects.after(
            &Decision::bare(Code::Ok, 0),
            || summary(&subject),
            Some(&key()),
            3,
        );
        let event = queues.usage.try_recv().unwrap();
        assert_eq!(
            (event.allowed, event.cost, event.key_id.as_str()),
            (true, 3, "key_1")
        );
        assert!(queues.violations.try_recv().is_err());
    }
}

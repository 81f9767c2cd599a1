//! The delivery worker every instance runs: it claims delivery jobs, sends each notice
//! once, and queues a failed one again after a backoff with full jitter (never sooner
//! than the receiver's `Retry-After`), or dead-letters it.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tollgate_notify::{Channel, DeliveryError, Email, Notice, Notifier, Webhook};
use tollgate_registry::{Job, Registry};
use tracing::Instrument as _;

use super::notices::{DELIVER, Target};
use super::{AlertSettings, DeliverySettings};

/// How many jobs one claim takes.
const BATCH: u32 = 32;
/// How often an idle worker looks for due jobs it was not woken for.
const POLL: Duration = Duration::from_millis(500);

/// The wait before the next try of a job that failed its `attempts`-th try: a uniform
/// share (`jitter`, 0 to 1) of a ceiling doubling from `backoff` up to `max_backoff`,
/// and at least the receiver's `Retry-After` (capped at `max_backoff`).
pub fn retry_delay(
    settings: &DeliverySettings,
    attempts: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let doublings = attempts.saturating_sub(1).min(32);
    let ceiling = settings
        .backoff
        .checked_mul(1_u32 << doublings.min(31))
        .unwrap_or(settings.max_backoff)
        .min(settings.max_backoff);
    let wait = ceiling.mul_f64(jitter.clamp(0.0, 1.0));
    match retry_after {
        Some(asked) => wait.max(asked.min(settings.max_backoff)),
        None => wait,
    }
}

/// A share from 0 to 1 drawn from the job and its try, so that jobs failing together
/// spread out and each try of one job waits differently.
fn jitter(job: &Job) -> f64 {
    let mut h = foldhash::fast::FixedState::with_seed(0x746f_6c6c).build_hasher();
    h.write(job.id.as_bytes());
    h.write_u32(job.attempts);
    (h.finish() >> 11) as f64 / (1_u64 << 53) as f64
}

/// Runs the worker named `worker` until `stop` turns true; `wake` cuts an idle wait short
/// when this instance has just queued deliveries.
pub async fn run(
    registry: Registry,
    settings: Arc<AlertSettings>,
    worker: String,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let notifier = match Notifier::new(settings.delivery.timeout) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "the alert delivery worker could not start");
            return;
        }
    };
    // A try holds its job for the time it may take, and then some.
    let lease = settings
        .delivery
        .timeout
        .saturating_mul(2)
        .saturating_add(Duration::from_secs(5));
    while !*stop.borrow() {
        let now = tollgate_core::time::now_ms();
        let jobs = match registry
            .claim_jobs(&worker, &[DELIVER], BATCH, lease, now)
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %e, "claiming deliveries failed");
                Vec::new()
            }
        };
        if jobs.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = wake.notified() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let tries = jobs.iter().map(|job| {
            let attempted = async {
                let span = tracing::info_span!(
                    target: crate::telemetry::TRACE,
                    "delivery",
                    otel.name = "alert delivery",
                    otel.kind = "client",
                    tollgate.job = job.id.as_str(),
                    tollgate.attempt = i64::from(job.attempts),
                );
                async {
                    let outcome = attempt(&registry, &settings, &notifier, job).await;
                    settle(&registry, &settings.delivery, &worker, job, outcome).await;
                }
                .instrument(span)
                .await;
            };
            crate::telemetry::sample::within(crate::telemetry::sample::root(), attempted)
        });
        futures_util::future::join_all(tries).await;
    }
}

/// One try of one job.
async fn attempt(
    registry: &Registry,
    settings: &AlertSettings,
    notifier: &Notifier,
    job: &Job,
) -> Result<(), DeliveryError> {
    let permanent = |reason: String| DeliveryError {
        retryable: false,
        retry_after: None,
        reason,
    };
    let target = job
        .payload
        .get("target")
        .and_then(|t| t.as_str())
        .and_then(Target::decode)
        .ok_or_else(|| permanent("the job names no target".into()))?;
    let notice: Notice = job
        .payload
        .get("notice")
        .cloned()
        .and_then(|n| serde_json::from_value(n).ok())
        .ok_or_else(|| permanent("the job holds no notice".into()))?;
    let channel = match &target {
        Target::Channel(name) => settings
            .channels
            .get(name)
            .cloned()
            .ok_or_else(|| permanent(format!("channel {name:?} is no longer configured")))?,
        Target::OwnerEmail(owner) | Target::OwnerWebhook(owner) => {
            let contact = registry
                .owner_contact(owner)
                .await
                .map_err(|e| DeliveryError {
                    retryable: true,
                    retry_after: None,
                    reason: format!("reading owner {owner}: {e}"),
                })?
                .ok_or_else(|| permanent(format!("owner {owner} no longer exists")))?;
            owner_channel(settings, &target, owner, contact).map_err(permanent)?
        }
    };
    notifier.deliver(&channel, &notice).await
}

/// The channel reaching an owner by email or webhook.
fn owner_channel(
    settings: &AlertSettings,
    target: &Target,
    owner: &str,
    contact: tollgate_registry::OwnerContact,
) -> Result<Channel, String> {
    if matches!(target, Target::OwnerEmail(_)) {
        let mut mail = settings
            .outreach
            .email
            .clone()
            .ok_or("alerts.outreach.email is no longer configured")?;
        mail.to = vec![
            contact
                .email
                .ok_or_else(|| format!("owner {owner} has no email address any more"))?,
        ];
        return Email::new(mail)
            .map(Channel::Email)
            .map_err(|e| e.to_string());
    }
    let url = contact
        .webhook_url
        .ok_or_else(|| format!("owner {owner} has no webhook any more"))?;
    Webhook::new(&url, contact.webhook_secret.as_deref())
        .map(Channel::Webhook)
        .map_err(|e| e.to_string())
}

/// Records a try's outcome.
async fn settle(
    registry: &Registry,
    delivery: &DeliverySettings,
    worker: &str,
    job: &Job,
    outcome: Result<(), DeliveryError>,
) {
    let now = tollgate_core::time::now_ms();
    let recorded = match outcome {
        Ok(()) => {
            metrics::counter!("tollgate_deliveries_total", "outcome" => "delivered").increment(1);
            registry
                .complete_job(&job.id, worker, now)
                .await
                .map(|_| ())
        }
        Err(e) => {
            let retry_at = (e.retryable && job.attempts < job.max_attempts).then(|| {
                let wait = retry_delay(delivery, job.attempts, e.retry_after, jitter(job));
                now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
            });
            let outcome = if retry_at.is_some() {
                "retried"
            } else {
                "dead"
            };
            metrics::counter!("tollgate_deliveries_total", "outcome" => outcome).increment(1);
            tracing::warn!(job = %job.id, attempts = job.attempts, reason = %e.reason, outcome, "a delivery failed");
            registry
                .fail_job(&job.id, worker, &e.reason, retry_at, now)
                .await
                .map(|_| ())
        }
    };
    if let Err(e) = recorded {
        tracing::warn!(job = %job.id, error = %e, "recording a delivery's outcome failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeliverySettings {
        DeliverySettings {
            max_attempts: 10,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let s = settings();
        assert_eq!(retry_delay(&s, 1, None, 1.0), Duration::from_secs(1));
        assert_eq!(retry_delay(&s, 2, None, 1.0), Duration::from_secs(2));
        assert_eq!(retry_delay(&s, 4, None, 1.0), Duration::from_secs(8));
        assert_eq!(retry_delay(&s, 7, None, 1.0), Duration::from_secs(60));
        assert_eq!(retry_delay(&s, 99, None, 1.0), Duration::from_secs(60));
        assert_eq!(retry_delay(&s, 4, None, 0.5), Duration::from_secs(4));
        assert_eq!(retry_delay(&s, 4, None, 0.0), Duration::ZERO);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let s = settings();
        let asked = Some(Duration::from_secs(30));
        assert_eq!(retry_delay(&s, 1, asked, 0.5), Duration::from_secs(30));
        let too_long = Some(Duration::from_secs(3_600));
        assert_eq!(retry_delay(&s, 1, too_long, 0.5), Duration::from_secs(60));
    }

    #[test]
    fn jitter_differs_per_job_and_try() {
        let job = |id: &str, attempts| Job {
            id: id.into(),
            kind: DELIVER.into(),
            payload: serde_json::Value::Null,
            idempotency_key: id.into(),
            state: tollgate_registry::JobState::Running,
            attempts,
            max_attempts: 5,
            run_at: 0,
            leased_by: None,
            last_error: None,
            created_at: 0,
            updated_at: 0,
        };
        let a = jitter(&job("a", 1));
        assert!((0.0..1.0).contains(&a));
        assert_ne!(a, jitter(&job("b", 1)));
        assert_ne!(a, jitter(&job("a", 2)));
    }
}

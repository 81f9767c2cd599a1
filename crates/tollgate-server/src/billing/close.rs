//! Closing finished periods into final records, and projecting the current one.

use serde::Serialize;
use tollgate_registry::{BillingRecord, BillingScope, Registry, RegistryError};

use super::{BillingSettings, Period, Plan};

/// How many finished periods a close looks back over: a fleet that was down over a
/// period boundary closes what it missed when it returns.
const LOOK_BACK: usize = 3;

/// One tier's line of an account's current period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Projection {
    /// The account (owner or key id).
    pub account: String,
    /// The tier.
    pub tier: String,
    /// The period's name in its zone (`2026-12`).
    pub period: String,
    /// Its first instant (ms).
    pub period_start: i64,
    /// The instant after its last (ms).
    pub period_end: i64,
    /// The currency.
    pub currency: String,
    /// Units admitted so far.
    pub units: i64,
    /// Units the base fee includes.
    pub included: i64,
    /// Units beyond them so far.
    pub overage_units: i64,
    /// The base fee.
    pub base_fee: i64,
    /// The overage so far.
    pub overage_amount: i64,
    /// What the period costs so far.
    pub amount: i64,
}

/// Why a period could not be closed or projected.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// An instant outside the calendar, or a sum too large for its integers.
    #[error("{0}")]
    Range(&'static str),
}

/// The records of `tier`'s accounts for `period`, priced by `plan`.
pub async fn records(
    registry: &Registry,
    settings: &BillingSettings,
    tier: &str,
    plan: &Plan,
    period: Period,
    now: i64,
) -> Result<Vec<BillingRecord>, BillingError> {
    let used = registry
        .billed_usage(settings.scope, tier, period.start, period.end)
        .await?;
    used.into_iter()
        .map(|u| {
            let charge = plan
                .charge(u.units)
                .ok_or(BillingError::Range("the charge overflows"))?;
            Ok(BillingRecord {
                scope: settings.scope,
                account: u.account,
                owner: u.owner,
                tier: tier.into(),
                period_start: period.start,
                period_end: period.end,
                currency: plan.currency.clone(),
                units: u.units,
                included: plan.included,
                overage_units: charge.overage_units,
                base_fee: plan.base_fee,
                overage_amount: charge.overage_amount,
                amount: charge.amount,
                closed_at: now,
            })
        })
        .collect()
}

/// Closes every finished period, up to [`LOOK_BACK`] of them, that is due (ended at
/// least `close_after` ago) and not closed yet. Gives the records stored.
pub async fn close_due(
    registry: &Registry,
    settings: &BillingSettings,
    now: i64,
) -> Result<u64, BillingError> {
    let after = i64::try_from(settings.close_after.as_millis()).unwrap_or(i64::MAX);
    let mut period = settings
        .calendar
        .period_of(now.saturating_sub(after))
        .ok_or(BillingError::Range("now is outside the calendar"))?;
    let mut stored = 0u64;
    for _ in 0..LOOK_BACK {
        period = settings
            .calendar
            .before(period)
            .ok_or(BillingError::Range("a period before the calendar"))?;
        for (tier, plan) in &settings.plans {
            if registry
                .billing_closed(settings.scope, tier, period.start)
                .await?
            {
                continue;
            }
            let records = records(registry, settings, tier, plan, period, now).await?;
            let batch: Vec<_> = records.into_iter().map(|r| (r, Vec::new())).collect();
            stored = stored.saturating_add(registry.close_billing(&batch, now).await?);
        }
    }
    Ok(stored)
}

/// The line of an account that has used nothing of `tier` yet this period: its base fee.
pub fn zero(
    settings: &BillingSettings,
    account: &str,
    tier: &str,
    now: i64,
) -> Result<Vec<Projection>, BillingError> {
    let Some(plan) = settings.plans.get(tier) else {
        return Ok(Vec::new());
    };
    let period = settings
        .calendar
        .period_of(now)
        .ok_or(BillingError::Range("now is outside the calendar"))?;
    Ok(vec![Projection {
        account: account.into(),
        tier: tier.into(),
        period: settings.calendar.name(period),
        period_start: period.start,
        period_end: period.end,
        currency: plan.currency.clone(),
        units: 0,
        included: plan.included,
        overage_units: 0,
        base_fee: plan.base_fee,
        overage_amount: 0,
        amount: plan.base_fee,
    }])
}

/// What `account` has used and owes so far in the period holding `now`, per billed tier.
pub async fn current(
    registry: &Registry,
    settings: &BillingSettings,
    scope: BillingScope,
    account: &str,
    now: i64,
) -> Result<Vec<Projection>, BillingError> {
    let period = settings
        .calendar
        .period_of(now)
        .ok_or(BillingError::Range("now is outside the calendar"))?;
    let used = registry
        .account_usage(scope, account, period.start, period.end)
        .await?;
    let mut out = Vec::new();
    for u in used {
        let Some(plan) = settings.plans.get(&u.tier) else {
            continue;
        };
        let charge = plan
            .charge(u.units)
            .ok_or(BillingError::Range("the charge overflows"))?;
        out.push(Projection {
            account: u.account,
            tier: u.tier,
            period: settings.calendar.name(period),
            period_start: period.start,
            period_end: period.end,
            currency: plan.currency.clone(),
            units: u.units,
            included: plan.included,
            overage_units: charge.overage_units,
            base_fee: plan.base_fee,
            overage_amount: charge.overage_amount,
            amount: charge.amount,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use jiff::Timestamp;
    use tollgate_registry::{BillingFilter, Granularity, KeySecret, NewKey, Registry, UsageEvent};

    use super::*;
    use crate::billing::{Calendar, PeriodKind};

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn settings() -> BillingSettings {
        BillingSettings {
            scope: BillingScope::Owner,
            calendar: Calendar {
                kind: PeriodKind::Month,
                zone: jiff::tz::TimeZone::get("America/New_York").unwrap(),
            },
            close_after: Duration::from_secs(300),
            plans: BTreeMap::from([(
                "pro".to_string(),
                Plan {
                    currency: "USD".into(),
                    base_fee: 4_900,
                    included: 10,
                    overage_price: 200,
                    overage_per: 1_000,
                },
            )]),
        }
    }

    /// A month of usage across the New York month boundary (05:00 UTC on 1 December),
    /// closed twice and by two instances at once: one record per month, each billing
    /// exactly the admitted units the usage history holds for that month.
    async fn exact(a: &Registry, b: &Registry) {
        let s = settings();
        let (key, _) = a
            .create_key(
                &NewKey {
                    env: "test".into(),
                    name: "main".into(),
                    owner: "acme".into(),
                    tier: "pro".into(),
                    expires_at: None,
                    metadata: serde_json::Value::Null,
                    overrides: serde_json::Value::Null,
                },
                ms("2026-11-01T04:00:00Z"),
            )
            .await
            .unwrap();
        let at = |t: &str, cost: i64, allowed: bool| UsageEvent {
            at: ms(t),
            key_id: key.id.clone(),
            owner: "acme".into(),
            tier: "pro".into(),
            allowed,
            code: if allowed { "OK" } else { "RATE_LIMITED" }.into(),
            cost,
        };
        let events = vec![
            // November in New York, though December in UTC for the last two.
            at("2026-11-01T04:00:00Z", 4, true),
            at("2026-11-15T12:00:00Z", 2_500, true),
            at("2026-12-01T00:30:00Z", 6, true),
            at("2026-12-01T04:59:59.999Z", 1, true),
            at("2026-12-01T04:59:59.999Z", 100, false),
            // December in New York.
            at("2026-12-01T05:00:00Z", 3, true),
        ];
        a.write_usage(&events, &[]).await.unwrap();

        // Before the close delay, November stays open; after it, it closes once.
        let nov_end = ms("2026-12-01T05:00:00Z");
        assert_eq!(close_due(a, &s, nov_end + 1_000).await.unwrap(), 0);
        let later = nov_end + 301_000;
        let (x, y) = tokio::join!(close_due(a, &s, later), close_due(b, &s, later));
        assert_eq!(x.unwrap() + y.unwrap(), 1);
        assert_eq!(close_due(a, &s, later + 60_000).await.unwrap(), 0);
        let records = a.billing_records(&BillingFilter::default()).await.unwrap();
        assert_eq!(records.len(), 1);
        let nov = &records[0];
        assert_eq!(
            (nov.period_start, nov.period_end),
            (ms("2026-11-01T04:00:00Z"), nov_end)
        );
        // The record bills what the usage history admitted in the month.
        let history: i64 = a
            .owner_usage_history("acme", Granularity::Hour, nov.period_start, nov.period_end)
            .await
            .unwrap()
            .iter()
            .map(|b| b.units)
            .sum();
        assert_eq!((nov.units, history), (2_511, 2_511));
        // 2,501 units over at 2.00 per 1,000: 5.002, charged 5.01.
        assert_eq!(
            (nov.overage_units, nov.overage_amount, nov.amount),
            (2_501, 501, 5_401)
        );

        // December so far, projected live.
        let dec = current(a, &s, BillingScope::Owner, "acme", nov_end + 3_600_000)
            .await
            .unwrap();
        assert_eq!(dec.len(), 1);
        assert_eq!((dec[0].period.as_str(), dec[0].units), ("2026-12", 3));
        assert_eq!(dec[0].amount, 4_900);
    }

    fn secret() -> KeySecret {
        KeySecret::new(b"a server secret of at least 32 bytes!".to_vec()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closes_exactly_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let a = Registry::open(&url, secret()).await.unwrap();
        let b = Registry::open(&url, secret()).await.unwrap();
        exact(&a, &b).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closes_exactly_on_postgres() {
        let pg = tollgate_testkit::Postgres::start().unwrap();
        let a = Registry::open(&pg.url(), secret()).await.unwrap();
        let b = Registry::open(&pg.url(), secret()).await.unwrap();
        exact(&a, &b).await;
    }
}

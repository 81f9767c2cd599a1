//! One evaluation of every rule on the fleet's leader: measure, compare with what is
//! firing, and record each change with its deliveries in one transaction.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;
use tollgate_registry::{
    AlertChange, AlertEventKind, BillingScope, FiringAlert, OwnerContact, Registry, RegistryError,
};

use super::conditions::{Condition, reconcile};
use super::spike::Baselines;
use super::usage::{AccountUsage, UsageSums, calendar};
use super::{AlertRule, AlertSettings, Dependency, RuleKind, UsageLimit, notices};
use crate::billing::BillingSettings;
use crate::slo::SloSettings;
use crate::slo::burn::{WINDOWS, burn_rate, burning, starts};
use crate::store::AnyStore;

const MINUTE_MS: i64 = 60_000;
/// The busiest subjects a denial rule looks at in one evaluation.
const DENIAL_SUBJECTS: u32 = 1_000;

/// A spike rule's means and what its last whole minute found.
struct SpikeState {
    baselines: Baselines,
    minute: Option<i64>,
    found: Vec<Condition>,
}

/// The leader's evaluation state, kept between evaluations.
pub struct Evaluator {
    settings: Arc<AlertSettings>,
    billing: Option<BillingSettings>,
    slo: Arc<SloSettings>,
    usage: UsageSums,
    spikes: HashMap<String, SpikeState>,
}

impl Evaluator {
    /// An evaluator of `settings`' rules; usage rules count in `billing`'s periods and
    /// burn rules watch `slo`'s objectives.
    pub fn new(
        settings: Arc<AlertSettings>,
        billing: Option<BillingSettings>,
        slo: Arc<SloSettings>,
    ) -> Self {
        Evaluator {
            settings,
            billing,
            slo,
            usage: UsageSums::default(),
            spikes: HashMap::new(),
        }
    }

    /// Evaluates every rule at `now` (ms); gives how many alerts changed.
    pub async fn run(&mut self, registry: &Registry, store: &AnyStore, now: i64) -> usize {
        let settings = Arc::clone(&self.settings);
        let mut changed = 0usize;
        for rule in &settings.rules {
            let found = match self.measure(rule, registry, store, now).await {
                Ok(Some(found)) => found,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(rule = %rule.name, error = %e, "evaluating an alert rule failed");
                    continue;
                }
            };
            match apply(&settings, rule, registry, found, now).await {
                Ok(n) => changed = changed.saturating_add(n),
                Err(e) => {
                    tracing::warn!(rule = %rule.name, error = %e, "recording an alert failed");
                }
            }
        }
        changed
    }

    /// What `rule` finds true now; none for rules evaluated elsewhere.
    async fn measure(
        &mut self,
        rule: &AlertRule,
        registry: &Registry,
        store: &AnyStore,
        now: i64,
    ) -> Result<Option<Vec<Condition>>, RegistryError> {
        Ok(Some(match &rule.kind {
            RuleKind::Usage { per, percent, of } => {
                let cal = calendar(self.billing.as_ref());
                let Some(period) = cal.period_of(now) else {
                    return Ok(None);
                };
                let rows = self.usage.current(registry, *per, period, now).await?;
                let limits = Limits {
                    per: *per,
                    percent: *percent,
                    of: *of,
                    billing: self.billing.as_ref(),
                    period: &cal.name(period),
                };
                usage_conditions(&rows, &limits)
            }
            RuleKind::Denials {
                per_rule,
                at_least,
                window,
            } => {
                let from =
                    now.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
                let counts = registry
                    .denial_counts(*per_rule, from, now.saturating_add(1), DENIAL_SUBJECTS)
                    .await?;
                let what = if *per_rule { "rule" } else { "key" };
                counts
                    .into_iter()
                    .filter(|(_, n)| u64::try_from(*n).is_ok_and(|n| n >= *at_least))
                    .map(|(id, n)| Condition {
                        subject: format!("{what}:{id}"),
                        value: n as f64,
                        summary: format!(
                            "{what} {id} was denied {n} times in the last {}",
                            crate::config::duration::human(*window)
                        ),
                        data: json!({ what: id, "denials": n, "window_seconds": window.as_secs() }),
                    })
                    .collect()
            }
            RuleKind::Spike {
                factor,
                at_least,
                half_life,
            } => {
                let state = self
                    .spikes
                    .entry(rule.name.clone())
                    .or_insert_with(|| SpikeState {
                        baselines: Baselines::new(*half_life),
                        minute: None,
                        found: Vec::new(),
                    });
                // The last whole minute, once: its denials have had a minute to be written.
                let last = now.div_euclid(MINUTE_MS).saturating_sub(1);
                if state.minute.is_none_or(|m| m < last) {
                    let start = last.saturating_mul(MINUTE_MS);
                    let counts = registry
                        .denial_counts(false, start, start.saturating_add(MINUTE_MS), 10_000)
                        .await?;
                    let counts: Vec<(String, u64)> = counts
                        .into_iter()
                        .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
                        .collect();
                    state.found = state
                        .baselines
                        .observe(&counts, *factor, *at_least)
                        .into_iter()
                        .map(|s| Condition {
                            subject: format!("key:{}", s.key),
                            value: s.count as f64,
                            summary: format!(
                                "key {} was denied {} times in a minute, {:.1} times its usual {:.1}",
                                s.key,
                                s.count,
                                // A key new to denials has a baseline of nothing; a tenth
                                // of a denial a minute keeps the ratio finite.
                                s.count as f64 / s.baseline.max(0.1),
                                s.baseline
                            ),
                            data: json!({"key": s.key, "denials": s.count, "baseline": s.baseline}),
                        })
                        .collect();
                    state.minute = Some(last);
                }
                state.found.clone()
            }
            RuleKind::Failing(Dependency::Store) => match store.health().await {
                Ok(()) => Vec::new(),
                Err(why) => vec![Condition {
                    subject: Dependency::Store.name().into(),
                    value: 1.0,
                    summary: format!("the store does not answer: {why}"),
                    data: json!({"dependency": "store", "error": why}),
                }],
            },
            RuleKind::Burn { objective } => {
                let Some(o) = self.slo.objectives.iter().find(|o| &o.name == objective) else {
                    return Ok(None);
                };
                burn_conditions(registry, &o.name, o.target, now).await?
            }
            // The registry's own failure cannot be recorded in it: see `registry_watch`.
            RuleKind::Failing(Dependency::Registry) => return Ok(None),
        }))
    }
}

/// The objective's burn over the fleet's requests, when a pair of windows burns.
async fn burn_conditions(
    registry: &Registry,
    objective: &str,
    target: f64,
    now: i64,
) -> Result<Vec<Condition>, RegistryError> {
    let froms: Vec<i64> = starts(now).collect();
    // One read for every window, so that they agree on which writes they see.
    let sums = registry
        .slo_sums_since(objective, &froms, now.saturating_add(1))
        .await?;
    let rates: Vec<(&str, f64)> = WINDOWS
        .iter()
        .zip(sums)
        .map(|((name, _), (good, total))| (*name, burn_rate(good, total, target)))
        .collect();
    let rate = |w: &str| rates.iter().find(|(n, _)| *n == w).map_or(0.0, |(_, r)| *r);
    let pairs = burning(rate);
    let Some(worst) = pairs.first() else {
        return Ok(Vec::new());
    };
    let shown: serde_json::Map<String, serde_json::Value> = rates
        .iter()
        .map(|(n, r)| ((*n).to_owned(), json!(r)))
        .collect();
    Ok(vec![Condition {
        subject: format!("slo:{objective}"),
        value: rate(worst.long),
        summary: format!(
            "objective {objective} burns its error budget {:.1} times too fast over {} and {:.1} times over {}",
            rate(worst.long),
            worst.long,
            rate(worst.short),
            worst.short
        ),
        data: json!({
            "objective": objective,
            "target": target,
            "burn_rates": shown,
            "windows": pairs.iter().map(|p| format!("{}/{}", p.long, p.short)).collect::<Vec<_>>(),
            "page": worst.page,
        }),
    }])
}

/// What a usage rule compares against.
struct Limits<'a> {
    per: BillingScope,
    percent: u32,
    of: UsageLimit,
    billing: Option<&'a BillingSettings>,
    period: &'a str,
}

/// The accounts whose units reach the rule's share of their limit.
fn usage_conditions(rows: &[AccountUsage], l: &Limits<'_>) -> Vec<Condition> {
    // Per account: (owner, tier, units); a fixed limit counts every tier together.
    let mut accounts: Vec<(String, String, String, i64, i64)> = Vec::new();
    match l.of {
        UsageLimit::Included => {
            for r in rows {
                let included = l
                    .billing
                    .and_then(|b| b.plans.get(&r.tier))
                    .map_or(0, |p| p.included);
                if included > 0 {
                    accounts.push((
                        r.account.clone(),
                        r.owner.clone(),
                        r.tier.clone(),
                        r.units,
                        included,
                    ));
                }
            }
        }
        UsageLimit::Units(limit) => {
            let mut sums: std::collections::BTreeMap<&str, (String, String, i64)> =
                std::collections::BTreeMap::new();
            for r in rows {
                let e = sums
                    .entry(r.account.as_str())
                    .or_insert_with(|| (r.owner.clone(), r.tier.clone(), 0));
                e.2 = e.2.saturating_add(r.units);
            }
            for (account, (owner, tier, units)) in sums {
                accounts.push((account.to_owned(), owner, tier, units, limit));
            }
        }
    }
    let scope = l.per.name();
    accounts
        .into_iter()
        .filter(|(_, _, _, units, limit)| {
            // units / limit >= percent / 100, in integers: both products fit in i128.
            i128::from(*units).saturating_mul(100)
                >= i128::from(*limit).saturating_mul(i128::from(l.percent))
        })
        .map(|(account, owner, tier, units, limit)| {
            let used_percent = i128::from(units)
                .saturating_mul(100)
                .checked_div(i128::from(limit))
                .map_or(0.0, |p| p as f64);
            Condition {
                subject: format!("{scope}:{account}@{}", l.period),
                value: used_percent,
                summary: format!(
                    "{scope} {account} has used {}% of its {limit} units in {} ({units} units)",
                    l.percent, l.period
                ),
                data: json!({
                    "scope": scope, "account": account, "owner": owner, "tier": tier,
                    "period": l.period, "used": units, "limit": limit, "percent": l.percent,
                }),
            }
        })
        .collect()
}

/// Records the changes `found` makes to `rule`'s alerts, each with its deliveries.
async fn apply(
    settings: &AlertSettings,
    rule: &AlertRule,
    registry: &Registry,
    found: Vec<Condition>,
    now: i64,
) -> Result<usize, RegistryError> {
    let firing = registry.firing_alerts(Some(&rule.name)).await?;
    let (fire, resolve) = reconcile(found, &firing);
    let mut changed = 0usize;
    for c in fire {
        let owner_id = c
            .data
            .get("owner")
            .and_then(|o| o.as_str())
            .map(str::to_owned);
        let contact = match (&owner_id, rule.outreach) {
            (Some(id), true) if !id.is_empty() => registry.owner_contact(id).await?,
            _ => None,
        };
        let change = AlertChange {
            rule: rule.name.clone(),
            subject: c.subject.clone(),
            event: AlertEventKind::Fired,
            severity: rule.severity.as_str().into(),
            value: c.value,
            summary: c.summary.clone(),
            at: now,
        };
        let owner = owner_id.as_deref().zip(contact.as_ref());
        let recorded = registry
            .change_alert(&change, |event| {
                notices::jobs(settings, rule, event, &c.data, owner)
            })
            .await?;
        if recorded.is_some() {
            tracing::info!(rule = %rule.name, subject = %c.subject, "alert fired");
            changed = changed.saturating_add(1);
        }
    }
    for f in resolve {
        if resolved(settings, rule, registry, f, now).await? {
            changed = changed.saturating_add(1);
        }
    }
    Ok(changed)
}

async fn resolved(
    settings: &AlertSettings,
    rule: &AlertRule,
    registry: &Registry,
    f: &FiringAlert,
    now: i64,
) -> Result<bool, RegistryError> {
    let change = AlertChange {
        rule: rule.name.clone(),
        subject: f.subject.clone(),
        event: AlertEventKind::Resolved,
        severity: rule.severity.as_str().into(),
        value: f.value,
        summary: format!("{} is over: {}", rule.name, f.subject),
        at: now,
    };
    let data = json!({ "subject": f.subject, "since": f.since });
    let no_owner: Option<(&str, &OwnerContact)> = None;
    let recorded = registry
        .change_alert(&change, |event| {
            notices::jobs(settings, rule, event, &data, no_owner)
        })
        .await?;
    if recorded.is_some() {
        tracing::info!(rule = %rule.name, subject = %f.subject, "alert resolved");
    }
    Ok(recorded.is_some())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::billing::{Calendar, PeriodKind, Plan};

    fn row(account: &str, tier: &str, units: i64) -> AccountUsage {
        AccountUsage {
            account: account.into(),
            owner: account.into(),
            tier: tier.into(),
            units,
        }
    }

    fn billing() -> BillingSettings {
        let mut plans = BTreeMap::new();
        plans.insert(
            "pro".into(),
            Plan {
                currency: "EUR".into(),
                base_fee: 0,
                included: 1_000,
                overage_price: 0,
                overage_per: 1,
            },
        );
        BillingSettings {
            scope: BillingScope::Owner,
            calendar: Calendar {
                kind: PeriodKind::Month,
                zone: jiff::tz::TimeZone::UTC,
            },
            close_after: Duration::from_secs(300),
            plans,
        }
    }

    #[test]
    fn usage_reaches_a_share_of_included_units_exactly() {
        let b = billing();
        let limits = Limits {
            per: BillingScope::Owner,
            percent: 80,
            of: UsageLimit::Included,
            billing: Some(&b),
            period: "2026-12",
        };
        let found = usage_conditions(
            &[
                row("a", "pro", 799),
                row("b", "pro", 800),
                row("c", "free", 5_000),
            ],
            &limits,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].subject, "owner:b@2026-12");
        assert_eq!(found[0].data["limit"], 1_000);
        assert_eq!(found[0].data["used"], 800);
    }

    #[test]
    fn a_fixed_limit_counts_every_tier() {
        let limits = Limits {
            per: BillingScope::Key,
            percent: 100,
            of: UsageLimit::Units(100),
            billing: None,
            period: "2026-12",
        };
        let found = usage_conditions(&[row("k", "free", 60), row("k", "pro", 40)], &limits);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].subject, "key:k@2026-12");
        assert_eq!(found[0].value, 100.0);
    }
}

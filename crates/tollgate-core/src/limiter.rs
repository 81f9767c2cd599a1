//! The limiter: a policy snapshot, a store, and the decision path between them.

use std::sync::{Arc, OnceLock};

use arc_swap::{ArcSwap, Guard};
use smallvec::SmallVec;

use crate::decision::{Code, Decision, LimitStatus};
use crate::outcome::Outcome;
use crate::policy::{FailPolicy, Listed, Policy};
use crate::store::{Check, MemoryStore, MemoryStoreConfig, Outcomes, Store, StoreError};
use crate::subject::Subject;
use crate::time::Nanos;

/// Decides requests against a swappable policy and a store.
///
/// The policy is read through [`policy`](Self::policy) once per request and the decision
/// borrows from that snapshot, so a reload ([`set_policy`](Self::set_policy)) never changes
/// a decision midway.
pub struct Limiter<S> {
    store: S,
    policy: ArcSwap<Policy>,
    fallback: OnceLock<MemoryStore>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Limiter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("store", &self.store)
            .field("rules", &self.policy.load().rules().len())
            .finish()
    }
}

/// Whether a decision consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Consume when admitted.
    Consume,
    /// Report what would happen, consuming nothing (a dry run).
    Preview,
}

impl<S: Store> Limiter<S> {
    /// A limiter over `store` starting with `policy`.
    pub fn new(store: S, policy: Policy) -> Self {
        Limiter {
            store,
            policy: ArcSwap::from_pointee(policy),
            fallback: OnceLock::new(),
        }
    }

    /// The current policy snapshot.
    pub fn policy(&self) -> Guard<Arc<Policy>> {
        self.policy.load()
    }

    /// Replaces the policy atomically. Counters of rules whose identity (name, algorithm,
    /// key template, window) is unchanged carry on.
    pub fn set_policy(&self, policy: Policy) {
        self.policy.store(Arc::new(policy));
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Decides a request of `subject` costing `cost` units at `now`, under `policy`
    /// (normally `&self.policy()`).
    pub async fn decide<'p>(
        &self,
        policy: &'p Policy,
        subject: &Subject,
        cost: u64,
        now: Nanos,
        mode: Mode,
    ) -> Decision<'p> {
        self.decide_plan(policy.plan(subject, cost), now, mode)
            .await
    }

    /// Decides a prepared plan (from [`Policy::plan`] or [`Policy::plan_keyed`]).
    pub async fn decide_plan<'p>(
        &self,
        plan: crate::policy::Plan<'p>,
        now: Nanos,
        mode: Mode,
    ) -> Decision<'p> {
        if let Some(decided) = listed(plan.listed, now) {
            return decided;
        }
        self.decide_checks(plan.checks, now, mode).await
    }

    /// Decides prepared checks (the path every door shares once it has a plan).
    ///
    /// Every door awaits this inside its own future, which holds this one's state, so the
    /// common case (every limit enforced) keeps little across its one await; shadow limits
    /// take a boxed path of their own.
    pub async fn decide_checks<'p>(
        &self,
        checks: SmallVec<[Check<'p>; 4]>,
        now: Nanos,
        mode: Mode,
    ) -> Decision<'p> {
        if checks.iter().any(|c| c.rule.shadow) {
            return Box::pin(self.decide_with_shadow(checks, now, mode)).await;
        }
        let answer = self.run(&self.store, &checks, now, mode).await;
        self.conclude(checks, answer, now, mode)
    }

    /// [`decide_plan`](Self::decide_plan) in place, for a store that
    /// [answers at once](Store::answers_at_once) and a plan without shadow limits: a door
    /// then decides without the futures of the awaited path. `None` when either is not so.
    pub fn decide_plan_now<'p>(
        &self,
        plan: crate::policy::Plan<'p>,
        now: Nanos,
        mode: Mode,
    ) -> Option<Decision<'p>> {
        if let Some(decided) = listed(plan.listed, now) {
            return Some(decided);
        }
        if plan.checks.iter().any(|c| c.rule.shadow) {
            return None;
        }
        let answer = if plan.checks.is_empty() {
            Ok(Outcomes::new())
        } else {
            self.store
                .decide_now(&plan.checks, now, mode == Mode::Consume)?
        };
        Some(self.conclude(plan.checks, answer, now, mode))
    }

    /// The decision of `checks` once the store answered, by the rules' fail policies
    /// where it failed.
    fn conclude<'p>(
        &self,
        checks: SmallVec<[Check<'p>; 4]>,
        answer: Result<Outcomes, StoreError>,
        now: Nanos,
        mode: Mode,
    ) -> Decision<'p> {
        let (outcomes, degraded) = match answer {
            Ok(o) => (o, false),
            Err(_) => (self.fail_over(&checks, now, mode), true),
        };
        let limits = checks
            .into_iter()
            .zip(outcomes)
            .map(|(check, outcome)| LimitStatus {
                rule: check.rule,
                key: check.key.into_owned(),
                outcome,
                degraded,
            })
            .collect();
        Decision::from_limits(limits, now)
    }

    /// [`decide_checks`](Self::decide_checks) when some limits are shadow limits.
    async fn decide_with_shadow<'p>(
        &self,
        checks: SmallVec<[Check<'p>; 4]>,
        now: Nanos,
        mode: Mode,
    ) -> Decision<'p> {
        // Enforced limits apply as one unit; shadow limits each on their own, afterwards.
        let mut enforced: SmallVec<[Check<'p>; 4]> = SmallVec::new();
        let mut shadow: SmallVec<[(usize, Check<'p>); 2]> = SmallVec::new();
        let mut positions: SmallVec<[usize; 4]> = SmallVec::new();
        for (i, check) in checks.into_iter().enumerate() {
            if check.rule.shadow {
                shadow.push((i, check));
            } else {
                positions.push(i);
                enforced.push(check);
            }
        }
        let (outcomes, degraded) = match self.run(&self.store, &enforced, now, mode).await {
            Ok(o) => (o, false),
            Err(_) => (self.fail_over(&enforced, now, mode), true),
        };
        let allowed = outcomes.iter().all(|o| o.allowed);
        let mut limits: SmallVec<[(usize, LimitStatus<'p>); 4]> = positions
            .into_iter()
            .zip(enforced)
            .zip(outcomes)
            .map(|((i, check), outcome)| {
                let status = LimitStatus {
                    rule: check.rule,
                    key: check.key.into_owned(),
                    outcome,
                    degraded,
                };
                (i, status)
            })
            .collect();
        // A shadow limit counts what it would have admitted and never denies.
        let shadow_mode = if allowed { mode } else { Mode::Preview };
        for (i, check) in shadow {
            let result = self
                .run(&self.store, std::slice::from_ref(&check), now, shadow_mode)
                .await;
            let q = check.rule.limit.quota();
            let (outcome, degraded) = match result.ok().and_then(|o| o.first().copied()) {
                Some(o) => (o, false),
                None => (Outcome::allow(q, q, 0), true),
            };
            limits.push((
                i,
                LimitStatus {
                    rule: check.rule,
                    key: check.key.into_owned(),
                    outcome,
                    degraded,
                },
            ));
        }
        limits.sort_by_key(|(i, _)| *i);
        let limits = limits.into_iter().map(|(_, l)| l).collect();
        Decision::from_limits(limits, now)
    }

    async fn run<T: Store>(
        &self,
        store: &T,
        checks: &[Check<'_>],
        now: Nanos,
        mode: Mode,
    ) -> Result<Outcomes, StoreError> {
        if checks.is_empty() {
            return Ok(Outcomes::new());
        }
        match mode {
            Mode::Consume => store.acquire(checks, now).await,
            Mode::Preview => store.preview(checks, now).await,
        }
    }

    /// Answers checks by their rules' fail policies after the store failed.
    fn fail_over(&self, checks: &[Check<'_>], now: Nanos, mode: Mode) -> Outcomes {
        let local: SmallVec<[Check<'_>; 4]> = checks
            .iter()
            .filter(|c| c.rule.on_store_error == FailPolicy::Local)
            .cloned()
            .collect();
        // For rules whose fail policy is `local`; sized for a degraded spell, not a fleet.
        let fallback = self
            .fallback
            .get_or_init(|| MemoryStore::new(MemoryStoreConfig { capacity: 65_536 }));
        let mut local_outcomes = fallback
            .answer(&local, now, mode == Mode::Consume)
            .unwrap_or_default()
            .into_iter();
        checks
            .iter()
            .map(|c| {
                let q = c.rule.limit.quota();
                match c.rule.on_store_error {
                    FailPolicy::Allow => Outcome::allow(q, q, 0),
                    FailPolicy::Deny => Outcome::deny(q, 0, 0, None),
                    FailPolicy::Local => local_outcomes
                        .next()
                        .unwrap_or_else(|| Outcome::deny(q, 0, 0, None)),
                }
            })
            .collect()
    }
}

/// The decision of a subject on the allow or deny list, which no limit changes.
fn listed<'p>(listed: Option<Listed>, now: Nanos) -> Option<Decision<'p>> {
    match listed? {
        Listed::Denied => Some(Decision::bare(Code::Blocked, now)),
        Listed::Allowed => Some(Decision::bare(Code::Ok, now)),
    }
}

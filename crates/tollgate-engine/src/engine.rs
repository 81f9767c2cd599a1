//! [`Engine`]: the decision path every door calls.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::Guard;
use smallvec::SmallVec;
use tollgate_core::algorithm::Limit;
use tollgate_core::policy::Rule;
use tollgate_core::policy::descriptor_plan::{DescriptorPlan, DescriptorRequest};
use tollgate_core::time::{Clock, FastClock, Nanos};
use tollgate_core::{Check, Code, Decision, Limiter, Mode, Policy, Store, Subject};
use tollgate_registry::Registry;
use tracing::Instrument as _;

use crate::effects::{self, Effects};
use crate::identity::Fingerprints;
use crate::keys::{KeyCache, KeyCacheConfig, KeyEntry};
use crate::lease::{Lease, LeaseError};
use crate::overrides::Overrides;
use crate::record;
use crate::request::{Attributes, DescriptorIn, Request, Verdict};
use crate::scope::Scope;

/// What an engine is made with besides its store and policy.
#[derive(Debug, Default)]
pub struct EngineConfig {
    /// The registry keys are verified against; none, and presented keys are counted by
    /// fingerprint.
    pub registry: Option<Registry>,
    /// How verified keys are cached.
    pub key_cache: KeyCacheConfig,
    /// Where usage events and violations go; none, and they are not kept.
    pub effects: Option<Effects>,
    /// How presented keys are fingerprinted and lease ids tagged; none, and a secret is
    /// made up for this process.
    pub fingerprints: Option<Fingerprints>,
}

/// The hot state of the decision path: the policy and store, the key cache, the effects
/// queues, the clock. Admin state (credentials, audit, configuration writes) lives with the
/// server, not here.
pub struct Engine<S> {
    limiter: Limiter<S>,
    clock: FastClock,
    keys: Option<KeyCache>,
    effects: Option<Effects>,
    fingerprints: Fingerprints,
    overrides: Overrides,
}

/// The target of spans meant for traces: the server exports them when traces are on, and
/// no log line shows them.
pub const TRACE: &str = "tollgate::trace";

impl<S> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("registry", &self.keys.is_some())
            .field("effects", &self.effects.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Store> Engine<S> {
    /// An engine deciding under `policy` in `store`.
    pub fn new(store: S, policy: Policy, config: EngineConfig) -> Self {
        let fingerprints = config.fingerprints.unwrap_or_else(Fingerprints::local);
        Engine {
            limiter: Limiter::new(store, policy),
            clock: FastClock::new(),
            keys: config.registry.map(|r| KeyCache::new(r, config.key_cache)),
            effects: config.effects,
            fingerprints,
            overrides: Overrides::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Guard<Arc<Policy>> {
        self.limiter.policy()
    }

    /// Puts `policy` in force. Cached key verifications are forgotten: they hold limits
    /// compiled against the old tiers.
    pub fn set_policy(&self, policy: Policy) {
        self.limiter.set_policy(policy);
        self.forget_keys();
    }

    /// Forgets every cached key verification, so that a key changed on this instance
    /// takes effect at once.
    pub fn forget_keys(&self) {
        if let Some(keys) = &self.keys {
            keys.forget();
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        self.limiter.store()
    }

    /// The registry, when one is configured.
    pub fn registry(&self) -> Option<&Registry> {
        self.keys.as_ref().map(KeyCache::registry)
    }

    /// How unverified keys are fingerprinted and lease ids tagged.
    pub fn fingerprints(&self) -> &Fingerprints {
        &self.fingerprints
    }

    /// The instant decisions are made at.
    pub fn now(&self) -> Nanos {
        self.clock.now()
    }

    /// Decides `request`. The verdict borrows from `scope`, which holds the policy
    /// snapshot it was decided under.
    pub async fn decide<'s>(&self, scope: &'s mut Scope, request: Request<'_>) -> Verdict<'s> {
        let span = tracing::info_span!(
            target: TRACE,
            "decision",
            tollgate.outcome = tracing::field::Empty,
            tollgate.allowed = tracing::field::Empty,
            tollgate.rules = tracing::field::Empty,
            tollgate.degraded = tracing::field::Empty,
        );
        if span.is_disabled() {
            // A store that answers at once, and a request that needs no wait for its key,
            // are decided in place: the nested futures of the awaited path each move their
            // child's state as they await it, which costs more than the decision itself.
            if self.limiter.store().answers_at_once()
                && (request.api_key.is_none() || self.keys.is_none())
                && matches!(request.attributes, Attributes::Subject(_))
            {
                let policy = self.limiter.policy();
                if !policy.has_shadow_rules() {
                    return self.decide_at_once(scope, request, policy);
                }
            }
            // Boxed, so that the future of every door's decision is only as large as the
            // path decided in place needs.
            return Box::pin(self.decide_now(scope, request)).await;
        }
        let verdict = Box::pin(self.decide_now(scope, request).instrument(span.clone())).await;
        let d = &verdict.decision;
        let rules: Vec<&str> = d.limits.iter().map(|l| l.rule.name.as_str()).collect();
        span.record("tollgate.outcome", d.code.as_str());
        span.record("tollgate.allowed", d.allowed);
        span.record("tollgate.rules", rules.join(",").as_str());
        span.record("tollgate.degraded", d.limits.iter().any(|l| l.degraded));
        verdict
    }

    async fn decide_now<'s>(&self, scope: &'s mut Scope, request: Request<'_>) -> Verdict<'s> {
        let started = Instant::now();
        let policy = self.limiter.policy();
        let verified = match (request.api_key, &self.keys) {
            // Boxed: a lookup's future (the cache's and the registry's) is large, and an
            // unboxed one would make every decision's future that large, keyless ones too.
            (Some(presented), Some(keys)) => Box::pin(keys.verify(presented, &policy))
                .instrument(tracing::info_span!(target: TRACE, "key.verify"))
                .await
                .map(Some),
            _ => Ok(None),
        };
        scope.policy = Some(policy);
        match verified {
            Ok(key) => scope.key = key,
            Err(code) => {
                let decision = Decision::bare(code, self.now());
                let Request {
                    attributes,
                    api_key,
                    cost,
                    mode,
                } = &request;
                // A refused key is recorded by its fingerprint, never by itself.
                let identity = api_key.map(|k| self.fingerprints.of(k));
                self.record(
                    &decision,
                    attributes,
                    None,
                    identity.as_deref(),
                    *cost,
                    *mode,
                    started,
                );
                return Verdict::bare(decision);
            }
        }
        self.decide_in(scope, request, started).await
    }

    /// Decides `request` as made with the key of `entry`, already verified (what a key's
    /// own page shows of its limits).
    pub async fn decide_for_key<'s>(
        &self,
        scope: &'s mut Scope,
        entry: Arc<KeyEntry>,
        request: Request<'_>,
    ) -> Verdict<'s> {
        scope.policy = Some(self.limiter.policy());
        scope.key = Some(entry);
        self.decide_in(scope, request, Instant::now()).await
    }

    /// Decides `request` once `scope` holds its policy and verified key.
    async fn decide_in<'s>(
        &self,
        scope: &'s mut Scope,
        request: Request<'_>,
        started: Instant,
    ) -> Verdict<'s> {
        let Request {
            attributes,
            api_key,
            cost,
            mode,
        } = request;
        self.prepare(scope, &attributes, api_key);
        let scope: &'s Scope = scope;
        let Some(policy) = scope.policy.as_deref() else {
            // Set by every caller; this arm is never taken.
            return Verdict::bare(Decision::bare(Code::Unavailable, self.now()));
        };
        let key = scope.key.as_deref();
        let identity = key.map_or(scope.identity.as_str(), |k| k.record.id.as_str());
        let now = self.now();
        let (decision, descriptors) = match &attributes {
            Attributes::Subject(subject) => {
                let plan = subject_plan(policy, subject, cost, identity, key);
                let d = self
                    .limiter
                    .decide_plan(plan, now, mode)
                    .instrument(tracing::info_span!(target: TRACE, "store.acquire"))
                    .await;
                (d, Vec::new())
            }
            Attributes::Descriptors {
                domain,
                descriptors,
            } => {
                let plan =
                    self.plan_descriptors(policy, scope, domain, descriptors, cost, identity);
                let d = self
                    .limiter
                    .decide_checks(plan.checks, now, mode)
                    .instrument(tracing::info_span!(target: TRACE, "store.acquire"))
                    .await;
                (d, plan.descriptors)
            }
        };
        self.record(
            &decision,
            &attributes,
            key,
            api_key.map(|_| identity),
            cost,
            mode,
            started,
        );
        Verdict {
            decision,
            descriptors,
            key: key.map(|k| &k.record),
        }
    }

    /// [`decide_in`](Self::decide_in) in place, for a subject's request with no key to
    /// verify, under `policy` (without shadow rules), in a store that answers at once.
    fn decide_at_once<'s>(
        &self,
        scope: &'s mut Scope,
        request: Request<'_>,
        policy: Guard<Arc<Policy>>,
    ) -> Verdict<'s> {
        let started = Instant::now();
        scope.policy = Some(policy);
        let Request {
            attributes,
            api_key,
            cost,
            mode,
        } = request;
        self.prepare(scope, &attributes, api_key);
        let scope: &'s Scope = scope;
        let now = self.now();
        let (Some(policy), Attributes::Subject(subject)) = (scope.policy.as_deref(), &attributes)
        else {
            // The caller checked both; this arm is never taken.
            return Verdict::bare(Decision::bare(Code::Unavailable, now));
        };
        let identity = scope.identity.as_str();
        let plan = subject_plan(policy, subject, cost, identity, None);
        let decision = self
            .limiter
            .decide_plan_now(plan, now, mode)
            .unwrap_or_else(|| Decision::bare(Code::Unavailable, now));
        self.record(
            &decision,
            &attributes,
            None,
            api_key.map(|_| identity),
            cost,
            mode,
            started,
        );
        Verdict::bare(decision)
    }

    /// What `scope` holds besides the policy and key before a request is planned: the
    /// overrides its descriptors name, and the fingerprint of a key not verified.
    fn prepare(&self, scope: &mut Scope, attributes: &Attributes<'_>, api_key: Option<&str>) {
        if let Attributes::Descriptors {
            domain,
            descriptors,
        } = attributes
        {
            scope.overrides = descriptors
                .iter()
                .map(|d| d.limit.and_then(|o| self.overrides.rule(domain, o)))
                .collect();
        }
        if scope.key.is_none()
            && let Some(presented) = api_key
        {
            scope.identity = self.fingerprints.of(presented);
        }
    }

    /// The plan of a descriptor request: each descriptor's limits, with the entry that
    /// carried a key counted by the key's identity, and the key's tier limits joining that
    /// descriptor.
    fn plan_descriptors<'s>(
        &self,
        policy: &'s Policy,
        scope: &'s Scope,
        domain: &str,
        descriptors: &[DescriptorIn<'_>],
        cost: u64,
        identity: &str,
    ) -> DescriptorPlan<'s> {
        let requests: SmallVec<[DescriptorRequest<'_, 's>; 4]> = descriptors
            .iter()
            .enumerate()
            .map(|(i, d)| DescriptorRequest {
                entries: d
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(j, &(k, v))| {
                        if d.key_entry == Some(j) {
                            (k, identity)
                        } else {
                            (k, v)
                        }
                    })
                    .collect(),
                cost: d.cost.unwrap_or(cost),
                limit: scope.overrides.get(i).and_then(|o| o.as_deref()),
            })
            .collect();
        let mut plan = policy.plan_descriptors(domain, &requests);
        let Some(k) = scope.key.as_deref() else {
            return plan;
        };
        let Some(carrier) = descriptors.iter().position(|d| d.key_entry.is_some()) else {
            return plan;
        };
        let mut subject = Subject::new();
        identify(&mut subject, identity, Some(k));
        let cost = descriptors
            .get(carrier)
            .and_then(|d| d.cost)
            .unwrap_or(cost);
        for (rule, _) in policy.key_limits(Some(&k.record.tier), &k.limits) {
            if let Some(key) = rule.key.render(&subject, policy.options().ipv6_prefix) {
                if let Some(p) = plan.descriptors.get_mut(carrier) {
                    p.checks.push(plan.checks.len());
                }
                plan.checks.push(Check {
                    rule,
                    key: key.into(),
                    cost,
                });
            }
        }
        plan
    }

    /// Counts a decision and, when it consumed, queues what it leaves behind.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        decision: &Decision<'_>,
        attributes: &Attributes<'_>,
        key: Option<&KeyEntry>,
        identity: Option<&str>,
        cost: u64,
        mode: Mode,
        started: Instant,
    ) {
        if mode == Mode::Preview {
            return;
        }
        record::decision(decision, started);
        if let Some(effects) = &self.effects {
            effects.after(
                decision,
                || caller(attributes, identity),
                key.map(|k| &k.record),
                cost,
            );
        }
    }

    /// The leases a decision took, as ids a caller can hand back.
    pub fn leases(&self, decision: &Decision<'_>) -> SmallVec<[String; 1]> {
        decision
            .limits
            .iter()
            .filter_map(|l| {
                let id = l.outcome.lease?;
                let lease = Lease {
                    rule: l.rule.name.clone(),
                    key: l.key.clone(),
                    id,
                };
                Some(lease.to_id(&self.fingerprints))
            })
            .collect()
    }

    /// Ends the lease a lease id names; `Ok(false)` when it had already ended (released
    /// before, or expired). Releasing twice is harmless.
    pub async fn release(&self, lease_id: &str) -> Result<bool, LeaseError> {
        let lease = Lease::from_id(lease_id, &self.fingerprints)?;
        let policy = self.limiter.policy();
        let rule = concurrency_rule(&policy, &lease.rule)
            .ok_or_else(|| LeaseError::UnknownRule(lease.rule.clone()))?;
        let released = self
            .limiter
            .store()
            .release(rule, &lease.key, lease.id.get(), self.now())
            .await?;
        Ok(released)
    }

    /// Gives the lease a lease id names its rule's `lease_ttl` again, from now, for work
    /// that outlasts one; `Ok(false)` when it had already ended (a lease that ran out is
    /// not brought back: its place may be taken).
    pub async fn renew(&self, lease_id: &str) -> Result<bool, LeaseError> {
        let lease = Lease::from_id(lease_id, &self.fingerprints)?;
        let policy = self.limiter.policy();
        let rule = concurrency_rule(&policy, &lease.rule)
            .ok_or_else(|| LeaseError::UnknownRule(lease.rule.clone()))?;
        let renewed = self
            .limiter
            .store()
            .renew(rule, &lease.key, lease.id.get(), self.now())
            .await?;
        Ok(renewed)
    }
}

/// The concurrency limit named `name`: a rule, or a tier's limit.
fn concurrency_rule<'p>(policy: &'p Policy, name: &str) -> Option<&'p Rule> {
    let is_concurrency = |r: &&Rule| matches!(r.limit, Limit::Concurrency(_)) && r.name == name;
    policy.rules().iter().find(is_concurrency).or_else(|| {
        policy
            .tiers()
            .iter()
            .find_map(|t| t.limits.iter().find(is_concurrency))
    })
}

/// The plan of a subject's request, made by `identity` (with verified `key`, if any).
fn subject_plan<'p>(
    policy: &'p Policy,
    subject: &Subject,
    cost: u64,
    identity: &str,
    key: Option<&'p KeyEntry>,
) -> tollgate_core::policy::Plan<'p> {
    let mut subject = subject.clone();
    identify(&mut subject, identity, key);
    match key {
        Some(k) => policy.plan_keyed(&subject, cost, Some(&k.record.tier), &k.limits),
        None => policy.plan(&subject, cost),
    }
}

/// Sets who is asking: `key` to the verified key's id or the presented key's fingerprint,
/// and for a verified key `attr.tier` and `attr.owner` (over any the caller sent), so rules
/// can match and key on them.
fn identify(subject: &mut Subject, identity: &str, key: Option<&KeyEntry>) {
    if !identity.is_empty() {
        // Ids and fingerprints are short, plain values.
        let _ = subject.set("key", identity);
    }
    if let Some(k) = key {
        for (name, value) in [
            ("attr.tier", &k.record.tier),
            ("attr.owner", &k.record.owner),
        ] {
            // Records hold short, plain values; one that does not fit is left unset.
            let _ = subject.set(name, value);
        }
    }
}

/// What a violation keeps of the caller.
fn caller(attributes: &Attributes<'_>, identity: Option<&str>) -> serde_json::Value {
    match attributes {
        Attributes::Subject(subject) => effects::summary(subject),
        Attributes::Descriptors {
            domain,
            descriptors,
        } => {
            let shown: Vec<serde_json::Value> = descriptors
                .iter()
                .map(|d| {
                    let entries: serde_json::Map<String, serde_json::Value> = d
                        .entries
                        .iter()
                        .enumerate()
                        .map(|(j, (k, v))| {
                            // The presented key never enters a record.
                            let v = if d.key_entry == Some(j) {
                                identity.unwrap_or_default()
                            } else {
                                v
                            };
                            ((*k).to_owned(), (*v).into())
                        })
                        .collect();
                    serde_json::Value::Object(entries)
                })
                .collect();
            serde_json::json!({"domain": domain, "descriptors": shown})
        }
    }
}

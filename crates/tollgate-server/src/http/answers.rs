//! The JSON answers of the HTTP routes, as types: the handlers serialise these, and the
//! OpenAPI description (`openapi`) takes their schemas from the same types.
//!
//! A few are described here but written elsewhere: the decision, which `decision_json`
//! writes by hand on the hot path; the lease answers, whose field is named after the action;
//! an alert rule's description; and the live snapshot, sent as Server-Sent Events. Those
//! carry `#[allow(dead_code)]`, and the contract tests (schemathesis against a live server)
//! are what keeps them and their writers in step.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use tollgate_core::Code;
use tollgate_registry::{
    AlertEvent, AuditRecord, BillingRecord, BillingScope, DeadLetterSummary, FiringAlert, Job,
    JobCount, KeyRecord, Owner, UsageBucket, ViolationRecord,
};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::billing::close::Projection;

/// Declares `$name`, a schema that is one of the named schemas `$ty…` (which it registers).
macro_rules! one_of {
    ($name:ident, $doc:literal, $($ty:ty),+) => {
        #[doc = $doc]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                utoipa::openapi::schema::OneOfBuilder::new()
                    $(.item(utoipa::openapi::Ref::from_schema_name(
                        <$ty as utoipa::ToSchema>::name(),
                    )))+
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn schemas(
                out: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)>,
            ) {
                $(
                    out.push((
                        <$ty as utoipa::ToSchema>::name().into(),
                        <$ty as utoipa::PartialSchema>::schema(),
                    ));
                    <$ty as utoipa::ToSchema>::schemas(out);
                )+
            }
        }
    };
}
pub(crate) use one_of;

one_of!(
    CheckAnswer,
    "The answer of `POST /v1/check`: a decision, or one per check of a batch.",
    Decision,
    BatchDecision
);
one_of!(
    ReleaseAnswer,
    "The answer of `POST /v1/release`: one lease's, or a batch's.",
    Released,
    ReleasedBatch
);
one_of!(
    RenewAnswer,
    "The answer of `POST /v1/renew`: one lease's, or a batch's.",
    Renewed,
    RenewedBatch
);
one_of!(
    LeaseBody,
    "The body of `POST /v1/release` and `POST /v1/renew`: one lease, or a batch.",
    OneLease,
    LeaseBatch
);

/// One lease to act on.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct OneLease {
    /// The lease's id, from a decision's `lease_id`.
    lease_id: String,
}

/// A batch of leases to act on.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct LeaseBatch {
    /// At most 100 lease ids.
    #[schema(max_items = 100)]
    lease_ids: Vec<String>,
}

/// A decision's code, as the schema names its values.
pub struct DecisionCode;

impl PartialSchema for DecisionCode {
    fn schema() -> RefOr<Schema> {
        let codes = [
            Code::Ok,
            Code::RateLimited,
            Code::QuotaExceeded,
            Code::Blocked,
            Code::KeyInvalid,
            Code::KeyDisabled,
            Code::KeyExpired,
            Code::Unavailable,
        ];
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes.into_iter().map(Code::as_str)))
            .description(Some("Why the decision is what it is; `OK` when allowed."))
            .into()
    }
}

impl ToSchema for DecisionCode {}

/// Where one limit stands after a decision.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LimitStatus {
    /// The rule's (or tier limit's) name.
    name: String,
    /// The counter key the rule rendered for this subject.
    key: String,
    /// The limit.
    limit: u64,
    /// What is left of it.
    remaining: u64,
    /// When it is whole again (ms from now).
    reset_ms: u64,
    /// The limit's window (ms); null for limits without one (concurrency).
    window_ms: Option<u64>,
    /// Whether this limit refuses the request.
    exceeded: bool,
    /// A shadow limit: reported, never enforced.
    shadow: bool,
    /// Answered by the rule's `on_store_error` because the store could not answer.
    degraded: bool,
    /// The concurrency lease this limit took, when it took one.
    #[schema(required = false)]
    lease_id: String,
}

/// The answer to one check: the decision, each limit, and the headers to set.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Decision {
    /// Whether the request may go ahead.
    allowed: bool,
    /// Why.
    #[schema(value_type = DecisionCode)]
    code: String,
    /// When the cost would be admitted (ms); null when allowed or when it never would be.
    retry_after_ms: Option<u64>,
    /// The first concurrency lease the decision took, to end with `POST /v1/release`.
    #[schema(required = false)]
    lease_id: String,
    /// Every limit that applied, in order.
    limits: Vec<LimitStatus>,
    /// The rate-limit headers a service sets on its own answer, by lower-case name
    /// (`ratelimit`, `ratelimit-policy`, `retry-after`, `x-ratelimit-*`).
    headers: BTreeMap<String, String>,
}

/// The answer to a batch of checks: one decision per check, in order.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BatchDecision {
    /// The decisions.
    results: Vec<Decision>,
}

/// The answer to releasing one lease.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Released {
    /// The lease.
    lease_id: String,
    /// True if this call ended it; false if it had already ended.
    released: bool,
    /// Set, in a batch, when the id is not one Tollgate gave out.
    #[schema(required = false)]
    error: String,
}

/// The answer to releasing a batch of leases.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReleasedBatch {
    /// One answer per lease, in order.
    results: Vec<Released>,
}

/// The answer to renewing one lease.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Renewed {
    /// The lease.
    lease_id: String,
    /// True if it was renewed; false if it had already ended.
    renewed: bool,
    /// Set, in a batch, when the id is not one Tollgate gave out.
    #[schema(required = false)]
    error: String,
}

/// The answer to renewing a batch of leases.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RenewedBatch {
    /// One answer per lease, in order.
    results: Vec<Renewed>,
}

/// A key just made (or rotated): its record and its secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key's record.
    pub key: KeyRecord,
    /// The secret to present (`tg_live_…`); never shown again.
    pub secret: String,
}

/// A page of keys.
#[derive(Serialize, ToSchema)]
pub struct KeyPage {
    /// The keys, by id.
    pub keys: Vec<KeyRecord>,
    /// The `after` of the following page; null on the last.
    pub next: Option<String>,
}

/// Whether a presented key may be used.
#[derive(Serialize, ToSchema)]
pub struct Verified {
    /// Whether it may.
    pub valid: bool,
    /// The key's record, when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub key: Option<KeyRecord>,
    /// Why not (`KEY_INVALID`, `KEY_DISABLED`, `KEY_EXPIRED`), when not valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub code: Option<String>,
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// The entries, oldest first.
    pub entries: Vec<AuditRecord>,
    /// The `after` of the following page; null on the last.
    pub next: Option<i64>,
}

/// One rule's view of a counter.
#[derive(Serialize, ToSchema)]
pub struct CounterView {
    /// The rule.
    pub rule: String,
    /// The counter key.
    pub key: String,
    /// The rule's limit.
    pub limit: u64,
    /// What is left.
    pub remaining: u64,
    /// When it is whole again (ms from now).
    pub reset_ms: u64,
}

/// Each rule's view of a counter.
#[derive(Serialize, ToSchema)]
pub struct Counters {
    /// One per rule.
    pub counters: Vec<CounterView>,
}

/// A counter forgotten.
#[derive(Serialize, ToSchema)]
pub struct CounterReset {
    /// The counter key.
    pub key: String,
    /// The rules whose counter was reset.
    pub reset: Vec<String>,
}

/// Every tier, by name.
#[derive(Serialize, ToSchema)]
pub struct Tiers {
    /// Each tier's spec (`limits`, …), as in the policy's `tiers` section.
    #[schema(value_type = BTreeMap<String, Object>)]
    pub tiers: serde_json::Map<String, Value>,
}

/// A page of owner records.
#[derive(Serialize, ToSchema)]
pub struct OwnerPage {
    /// The records, by id.
    pub owners: Vec<Owner>,
    /// The `after` of the following page; null on the last.
    pub next: Option<String>,
}

/// A page of the proxy's dead letters.
#[derive(Serialize, ToSchema)]
pub struct DeadLetterList {
    /// The dead letters, newest first, without their headers and bodies.
    pub dead_letters: Vec<DeadLetterSummary>,
    /// When the page is full: the `before` of the next page.
    pub next: Option<i64>,
}

/// One header of a dead letter.
#[derive(Serialize, ToSchema)]
pub struct HeaderPair {
    /// Its name, in lower case.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A dead letter, whole.
#[derive(Serialize, ToSchema)]
pub struct DeadLetterView {
    /// What a list shows of it.
    #[serde(flatten)]
    pub summary: DeadLetterSummary,
    /// Its headers as they were forwarded, in order; credentials (`Authorization`,
    /// `X-API-Key`, `Proxy-Authorization`), cookies and the route's `remove_headers` are
    /// never kept.
    pub headers: Vec<HeaderPair>,
    /// Its body as kept, in base64.
    pub body_base64: String,
    /// Its body as kept, when it is UTF-8 text.
    pub body_text: Option<String>,
}

/// How a dead letter's replay went.
#[derive(Serialize, ToSchema)]
pub struct ReplayOutcome {
    /// Whether the upstream took it (an answer that is not retried); it is then removed.
    pub delivered: bool,
    /// The status the client would have had.
    pub status: u16,
    /// The route it took.
    pub route: String,
    /// The upstream it went to.
    pub upstream: String,
    /// When not delivered: how the last try failed.
    pub failure: Option<String>,
    /// When not delivered: the dead letter as it now stands.
    pub dead_letter: Option<DeadLetterSummary>,
}

/// Jobs and the count per state.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    /// The jobs, newest first.
    pub jobs: Vec<Job>,
    /// How many jobs are in each state that has any.
    pub counts: Vec<JobCount>,
}

/// What an alert rule watches and where it sends, as `GET /v1/alerts` shows it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AlertRuleView {
    /// The rule's name.
    name: String,
    /// `info`, `warning` or `critical`.
    severity: String,
    /// The channels it delivers to.
    channels: Vec<String>,
    /// Whether the key's owner is told too.
    outreach: bool,
    /// Usage against a limit: `{per, percent, of}`.
    #[schema(required = false)]
    usage: Object,
    /// Denials in a window: `{per, at_least, window_seconds}`.
    #[schema(required = false)]
    denials: Object,
    /// A spike over the usual rate: `{factor, at_least, half_life_seconds}`.
    #[schema(required = false)]
    spike: Object,
    /// A dependency that fails: its name.
    #[schema(required = false)]
    failing: String,
    /// A service-level objective whose budget burns: its name.
    #[schema(required = false)]
    slo: String,
}

/// A free-form JSON object.
type Object = BTreeMap<String, Value>;

/// The alert rules, the alerts firing now and a page of their history.
#[derive(Serialize, ToSchema)]
pub struct Alerts {
    /// The configured rules.
    #[schema(value_type = Vec<AlertRuleView>)]
    pub rules: Vec<Value>,
    /// The alerts firing now.
    pub firing: Vec<FiringAlert>,
    /// Fired and resolved events, newest first.
    pub events: Vec<AlertEvent>,
    /// The `before` of the following page; null on the last.
    pub next_before: Option<i64>,
}

/// Where one of a key's limits stands now.
#[derive(Serialize, ToSchema)]
pub struct UsageLimit {
    /// The limit's name.
    pub name: String,
    /// Its algorithm.
    pub algorithm: &'static str,
    /// Its counter key.
    pub key: String,
    /// The limit.
    pub limit: u64,
    /// What is left.
    pub remaining: u64,
    /// What is used.
    pub used: u64,
    /// When it is whole again (ms from now).
    pub reset_ms: u64,
    /// Its window (ms); null for limits without one.
    pub window_ms: Option<u64>,
    /// Answered by the fail policy because the store could not answer.
    pub degraded: bool,
}

/// A key's limits and where each stands, read without consuming.
#[derive(Serialize, ToSchema)]
pub struct KeyUsage {
    /// The key.
    pub key_id: String,
    /// Its tier.
    pub tier: String,
    /// Its owner.
    pub owner: String,
    /// Each limit that applies.
    pub limits: Vec<UsageLimit>,
}

/// One of a key's limits.
#[derive(Serialize, ToSchema)]
pub struct KeyLimit {
    /// The limit's name.
    pub name: String,
    /// `tier` for the tier's own, `override` for the key's.
    pub source: &'static str,
    /// Its algorithm.
    pub algorithm: &'static str,
    /// Its quota.
    pub limit: u64,
    /// Its window (ms); null for limits without one.
    pub window_ms: Option<u64>,
    /// The counter key's template.
    pub counter: String,
    /// A shadow limit: reported, never enforced.
    pub shadow: bool,
}

/// A key's tier limits with its overrides applied.
#[derive(Serialize, ToSchema)]
pub struct KeyLimits {
    /// The key.
    pub key_id: String,
    /// Its tier.
    pub tier: String,
    /// Whether the policy defines that tier.
    pub tier_defined: bool,
    /// The key's own limits over its tier's.
    pub overrides: Value,
    /// The limits that apply.
    pub limits: Vec<KeyLimit>,
}

/// Decisions per period, of one key or of every key of an owner.
#[derive(Serialize, ToSchema)]
pub struct UsageHistory {
    /// `minute`, `hour` or `day`.
    pub granularity: &'static str,
    /// The range's start (ms).
    pub from: i64,
    /// The range's end (ms, not included).
    pub to: i64,
    /// The periods that saw decisions, oldest first.
    pub buckets: Vec<UsageBucket>,
    /// The key, for a key's history.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub key_id: Option<String>,
    /// The owner, for an owner's history.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub owner: Option<String>,
}

/// A page of violations.
#[derive(Serialize, ToSchema)]
pub struct ViolationPage {
    /// The violations, oldest first.
    pub violations: Vec<ViolationRecord>,
    /// The `after` of the following page; null on the last.
    pub next: Option<i64>,
}

/// What an owner has used and owes so far this period.
#[derive(Serialize, ToSchema)]
pub struct CurrentBill {
    /// The owner.
    pub owner: String,
    /// Whether accounts are owners or keys.
    pub scope: BillingScope,
    /// A line per billed tier (per key, when billing is per key).
    pub lines: Vec<Projection>,
    /// The lines' sum, when they are all in one currency; else null.
    pub total: Option<i64>,
}

/// Closed periods' records.
#[derive(Serialize, ToSchema)]
pub struct BillingRecords {
    /// The records, oldest period first.
    pub records: Vec<BillingRecord>,
}

/// The allow or deny list entry that decides.
#[derive(Serialize, ToSchema)]
pub struct ListedBy {
    /// `allow` or `deny`.
    pub list: &'static str,
    /// The entry.
    pub entry: String,
}

/// What a check would get now, and why.
#[derive(Serialize, ToSchema)]
pub struct Explanation {
    /// The rules planning looked at.
    pub rules_examined: usize,
    /// The policy's rules.
    pub rules_total: usize,
    /// The list entry that decides; null when none does.
    pub listed: Option<ListedBy>,
    /// Always false: nothing is consumed.
    pub consumed: bool,
    /// The answer `POST /v1/check` would give.
    #[schema(value_type = Decision)]
    pub decision: Value,
}

/// Decision latency over the last second.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Latency {
    /// The median (the upper bound of its bucket, ms); null without decisions.
    p50: Option<f64>,
    /// The 99th percentile, likewise.
    p99: Option<f64>,
}

/// The counter store's health.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StoreHealth {
    /// Whether it answers.
    healthy: bool,
    /// A warning or the failure; null when there is nothing to say.
    detail: Option<String>,
}

/// A rule's denials since the start.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RuleDenials {
    /// The rule.
    rule: String,
    /// Its denials.
    denied: f64,
}

/// One event of `GET /v1/live`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LiveEvent {
    /// Always `snapshot`.
    event: String,
    /// A `LiveSnapshot` in JSON.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// The data of a `snapshot` event of `GET /v1/live`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LiveSnapshot {
    /// When (ms).
    at: i64,
    /// Decisions over the last second.
    decisions_per_second: f64,
    /// Denials over the last second.
    denials_per_second: f64,
    /// Decisions since the start.
    decisions_total: f64,
    /// Denials since the start.
    denials_total: f64,
    /// Latency over the last second.
    latency_ms: Latency,
    /// The store's health.
    store: StoreHealth,
    /// The rules that denied most since the start.
    top_denied_rules: Vec<RuleDenials>,
}

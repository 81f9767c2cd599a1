//! Alerts: rules the fleet's leader evaluates against the records, each alert fired once
//! and resolved once with its state in the registry, and notices delivered through the
//! job queue by every instance's worker.

pub mod conditions;
pub mod deliver;
pub mod evaluate;
pub mod notices;
pub mod registry_watch;
pub mod spike;
pub mod usage;

use std::collections::BTreeMap;
use std::time::Duration;

use tollgate_notify::{Channel, EmailSettings, Severity};
use tollgate_registry::BillingScope;

/// The `alerts` section, read at start.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// How often the leader evaluates the rules.
    pub evaluate_every: Duration,
    /// Retries of failed deliveries.
    pub delivery: DeliverySettings,
    /// Channels by name.
    pub channels: BTreeMap<String, Channel>,
    /// The rules, in order.
    pub rules: Vec<AlertRule>,
    /// How the owners of keys are told, when a rule reaches out to them.
    pub outreach: Outreach,
}

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Tries before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// The ceiling of the first retry's wait, doubled on each retry.
    pub backoff: Duration,
    /// The longest wait between tries, and the cap on a receiver's `Retry-After`.
    pub max_backoff: Duration,
    /// How long one try may take.
    pub timeout: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            max_attempts: 12,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One alert rule.
#[derive(Debug, Clone)]
pub struct AlertRule {
    /// Its name, unique in the section.
    pub name: String,
    /// What it watches.
    pub kind: RuleKind,
    /// How bad it is when it fires.
    pub severity: Severity,
    /// The channels it is delivered to.
    pub channels: Vec<String>,
    /// Whether the owner of the account it is about is told too (usage rules).
    pub outreach: bool,
    /// The owner's message, when it differs from the outreach default.
    pub message: Option<Message>,
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// An account's admitted units in the current billing period reach a share of a limit.
    Usage {
        /// Per key or per owner.
        per: BillingScope,
        /// The share, in percent.
        percent: u32,
        /// Of what.
        of: UsageLimit,
    },
    /// Denials of one key (or one rule) in the last `window` reach `at_least`.
    Denials {
        /// Per key, or per rule when true.
        per_rule: bool,
        /// The threshold.
        at_least: u64,
        /// The window.
        window: Duration,
    },
    /// A key's denials in the last whole minute exceed `factor` times its usual rate
    /// (an exponentially weighted mean of its past minutes) and reach `at_least`.
    Spike {
        /// How many times the baseline.
        factor: f64,
        /// The least count that can fire.
        at_least: u64,
        /// How fast the baseline forgets: a minute this old weighs half as much.
        half_life: Duration,
    },
    /// The store or the registry does not answer.
    Failing(Dependency),
    /// A service-level objective's error budget burns fast over a long and a short window
    /// at once (the fleet's requests).
    Burn {
        /// The objective's name.
        objective: String,
    },
}

/// What a usage rule's share is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageLimit {
    /// The included units of the account's tier's price plan.
    Included,
    /// A fixed number of units per period.
    Units(i64),
}

/// A dependency whose failure a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// The counters' store (Redis).
    Store,
    /// The records' database.
    Registry,
}

impl Dependency {
    /// Its name in the configuration and in alert subjects.
    pub fn name(self) -> &'static str {
        match self {
            Dependency::Store => "store",
            Dependency::Registry => "registry",
        }
    }
}

/// A message to an owner, as templates over the alert's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The email subject.
    pub subject: String,
    /// The text.
    pub body: String,
}

/// How owners are told.
#[derive(Debug, Clone)]
pub struct Outreach {
    /// The SMTP server and sender for owners' email (the recipient is the owner's); without
    /// it owners are told by webhook only.
    pub email: Option<EmailSettings>,
    /// The message unless a rule has its own.
    pub message: Message,
}

impl Default for Outreach {
    fn default() -> Self {
        Outreach {
            email: None,
            message: Message {
                subject: "{{ summary }}".into(),
                body: "Hello {{ owner.name }},\n\n{{ summary }}.\n\nPeriod: {{ period }}\nUsed: {{ used }} units\nLimit: {{ limit }} units\n".into(),
            },
        }
    }
}

//! A compiled rule: what to match, which counter to use and which limit to apply.

use std::hash::BuildHasher;

use crate::algorithm::Limit;
use crate::policy::matcher::Condition;
use crate::policy::template::KeyTemplate;
use crate::time::Nanos;

/// What a decision does with a rule when its store cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailPolicy {
    /// Fail open: the rule admits.
    #[default]
    Allow,
    /// Fail closed: the rule denies.
    Deny,
    /// Fall back to an in-process limit of the same size.
    Local,
}

impl FailPolicy {
    /// Parses `allow`, `deny` or `local`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "allow" => FailPolicy::Allow,
            "deny" => FailPolicy::Deny,
            "local" => FailPolicy::Local,
            _ => return None,
        })
    }

    /// The policy's name.
    pub fn name(self) -> &'static str {
        match self {
            FailPolicy::Allow => "allow",
            FailPolicy::Deny => "deny",
            FailPolicy::Local => "local",
        }
    }
}

/// One compiled rule.
///
/// Its *identity* — name, algorithm, key template and window — names its counters, so a
/// reload that only changes the limit, the burst or the flags keeps every counter.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's unique name.
    pub name: String,
    /// The limit it applies.
    pub limit: Limit,
    /// The counter key template.
    pub key: KeyTemplate,
    /// Conditions on the subject, all of which must hold.
    pub conditions: Vec<Condition>,
    /// When set, a denial blocks the counter for this long.
    pub block_for: Option<Nanos>,
    /// Report, never enforce.
    pub shadow: bool,
    /// What to do when the store cannot answer.
    pub on_store_error: FailPolicy,
    identity: String,
    seed: u64,
}

impl Rule {
    /// A rule named `name` applying `limit` to counters keyed by `key`, matching every
    /// subject that has the template's attributes.
    pub fn new(name: impl Into<String>, limit: Limit, key: KeyTemplate) -> Self {
        let name = name.into();
        let window = match &limit {
            Limit::Quota(q) => format!(
                "{:?}@{}",
                q.calendar,
                q.time_zone.iana_name().unwrap_or("fixed")
            ),
            other => other.window(0).unwrap_or(0).to_string(),
        };
        let identity = format!("{name}|{}|{window}|{}", limit.kind().name(), key.source());
        // A fixed hasher: the seed must be the same in every process sharing a store.
        let seed = foldhash::fast::FixedState::with_seed(0x746f_6c6c_6761_7465).hash_one(&identity);
        Rule {
            name,
            limit,
            key,
            conditions: Vec::new(),
            block_for: None,
            shadow: false,
            on_store_error: FailPolicy::Allow,
            seed,
            identity,
        }
    }

    /// The identity string naming this rule's counters (`name|algorithm|window|template`).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// A 64-bit digest of [`identity`](Self::identity), stable across processes.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

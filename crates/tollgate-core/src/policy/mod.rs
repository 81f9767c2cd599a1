//! Policies: rules parsed from YAML, validated with every error's path, and compiled into
//! an index so planning a decision costs O(rules that match).

pub mod check;
pub mod descriptor_plan;
pub mod descriptors;
mod document;
pub mod duration;
mod index;
pub mod lists;
pub mod matcher;
pub mod parse;
pub mod reference;
pub mod rule;
pub mod settings;
pub mod template;
pub mod tiers;

use smallvec::SmallVec;

pub use lists::Lists;
pub use parse::{ConfigError, ConfigErrors};
pub use rule::{FailPolicy, Rule};
pub use tiers::{Tier, Tiers};

use crate::subject::Subject;
use check::Check;

/// Policy-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyOptions {
    /// IPv6 clients are counted by their network of this prefix length (default 64: one
    /// customer's allocation), so rotating through a /64 does not escape a limit.
    pub ipv6_prefix: u8,
}

impl Default for PolicyOptions {
    fn default() -> Self {
        PolicyOptions { ipv6_prefix: 64 }
    }
}

/// An immutable, compiled policy.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<Rule>,
    /// Whether any rule only reports: read on every decision, so kept rather than counted.
    shadow: bool,
    index: index::Index,
    allow: Lists,
    deny: Lists,
    options: PolicyOptions,
    descriptors: descriptors::Descriptors,
    tiers: Tiers,
}

/// A subject's standing on the allow and deny lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// On the allow list: no limit applies.
    Allowed,
    /// On the deny list: refused.
    Denied,
}

/// What a decision must check: the list verdict or the checks of every matching rule, in
/// policy order.
#[derive(Debug, Clone)]
pub struct Plan<'p> {
    /// Set when an allow or deny list decides alone.
    pub listed: Option<Listed>,
    /// One check per matching rule.
    pub checks: SmallVec<[Check<'p>; 4]>,
}

impl Policy {
    /// A policy of `rules` (in order), allow and deny lists, and options.
    pub fn new(rules: Vec<Rule>, allow: Lists, deny: Lists, options: PolicyOptions) -> Self {
        Policy {
            index: index::Index::build(&rules),
            shadow: rules.iter().any(|r| r.shadow),
            rules,
            allow,
            deny,
            options,
            descriptors: descriptors::Descriptors::default(),
            tiers: Tiers::default(),
        }
    }

    /// This policy with Envoy descriptor limits (the `envoy` section).
    pub fn with_descriptors(mut self, descriptors: descriptors::Descriptors) -> Self {
        self.descriptors = descriptors;
        self
    }

    /// This policy with tiers (the `tiers` section).
    pub fn with_tiers(mut self, tiers: Tiers) -> Self {
        self.tiers = tiers;
        self
    }

    /// The tiers, by name.
    pub fn tiers(&self) -> &Tiers {
        &self.tiers
    }

    /// The Envoy descriptor limits, by domain.
    pub fn descriptors(&self) -> &descriptors::Descriptors {
        &self.descriptors
    }

    /// Parses, validates and compiles a YAML policy.
    ///
    /// ```
    /// let err = tollgate_core::policy::Policy::from_yaml("rules: [{name: a, limit: 0, period: 1 mintue}]")
    ///     .unwrap_err();
    /// assert_eq!(err.0.len(), 2);
    /// assert_eq!(err.0[1].to_string(), r#"rules[0].period: "1 mintue" is not a duration (e.g. 500ms, 10s, 1m, 1h, 1d)"#);
    /// ```
    pub fn from_yaml(text: &str) -> Result<Self, ConfigErrors> {
        document::compile(&parse::parse_yaml(text)?, &[])
    }

    /// Compiles a document already parsed; top-level fields in `others` belong to the
    /// caller and are skipped.
    pub fn from_value(doc: &serde_json::Value, others: &[&str]) -> Result<Self, ConfigErrors> {
        document::compile(doc, others)
    }

    /// The rules, in policy order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether any rule only reports (`shadow: true`).
    pub fn has_shadow_rules(&self) -> bool {
        self.shadow
    }

    /// The rule named `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The policy-wide options.
    pub fn options(&self) -> PolicyOptions {
        self.options
    }

    /// The list that decides for `subject` alone, and the entry it is on (`deny`,
    /// `ips: 10.0.0.0/8`), as [`Policy::plan`] consults them: the deny list first.
    pub fn listed_by(&self, subject: &Subject) -> Option<(Listed, String)> {
        self.deny
            .entry(subject)
            .map(|e| (Listed::Denied, e))
            .or_else(|| self.allow.entry(subject).map(|e| (Listed::Allowed, e)))
    }

    /// The checks a request of `subject` costing `cost` units must pass.
    pub fn plan<'p>(&'p self, subject: &Subject, cost: u64) -> Plan<'p> {
        if self.deny.contains(subject) {
            return Plan {
                listed: Some(Listed::Denied),
                checks: SmallVec::new(),
            };
        }
        if self.allow.contains(subject) {
            return Plan {
                listed: Some(Listed::Allowed),
                checks: SmallVec::new(),
            };
        }
        let mut checks = SmallVec::new();
        for id in self.index.candidates(subject) {
            let Some(rule) = self.rules.get(id as usize) else {
                continue;
            };
            if !rule.conditions.iter().all(|c| c.matches(subject)) {
                continue;
            }
            if let Some(key) = rule.key.render(subject, self.options.ipv6_prefix) {
                checks.push(Check {
                    rule,
                    key: key.into(),
                    cost,
                });
            }
        }
        Plan {
            listed: None,
            checks,
        }
    }

    /// The checks for a request made with a verified key: those of [`plan`](Self::plan),
    /// then the limits of the key's `tier`, where the key's own limits (`own`, from
    /// [`tiers::compile_overrides`]) replace those of the same name and add the rest.
    pub fn plan_keyed<'p>(
        &'p self,
        subject: &Subject,
        cost: u64,
        tier: Option<&str>,
        own: &'p [Rule],
    ) -> Plan<'p> {
        let mut plan = self.plan(subject, cost);
        if plan.listed.is_some() {
            return plan;
        }
        for (rule, _) in self.key_limits(tier, own) {
            if let Some(key) = rule.key.render(subject, self.options.ipv6_prefix) {
                plan.checks.push(Check {
                    rule,
                    key: key.into(),
                    cost,
                });
            }
        }
        plan
    }

    /// The limits of a key of `tier` whose own limits are `own`, in order: the tier's, each
    /// replaced by the key's own of the same name, then the key's others. The flag is set
    /// for the key's own.
    pub fn key_limits<'p>(
        &'p self,
        tier: Option<&str>,
        own: &'p [Rule],
    ) -> impl Iterator<Item = (&'p Rule, bool)> + 'p {
        let tier_limits = tier
            .and_then(|t| self.tiers.get(t))
            .map_or(&[][..], |t| &t.limits[..]);
        let from_tier = tier_limits
            .iter()
            .map(|r| match own.iter().find(|o| o.name == r.name) {
                Some(o) => (o, true),
                None => (r, false),
            });
        let extra = own
            .iter()
            .filter(|o| !tier_limits.iter().any(|r| r.name == o.name))
            .map(|o| (o, true));
        from_tier.chain(extra)
    }

    /// How many rules planning examines for `subject` (matching or not): the work the
    /// index leaves, for tests and `tollgate explain`.
    pub fn candidate_count(&self, subject: &Subject) -> usize {
        self.index.candidates(subject).len()
    }
}

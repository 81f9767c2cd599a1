//! A check: one limit a decision applies, as a plan gives it to a store.

use std::borrow::Cow;

use super::rule::Rule;

/// One limit to apply in a decision: a rule, the counter key it rendered, and the cost.
#[derive(Debug, Clone)]
pub struct Check<'a> {
    /// The rule (its identity names the counter, its limit says how to count).
    pub rule: &'a Rule,
    /// The counter key, rendered from the rule's template (or borrowed, for callers that
    /// hold their keys).
    pub key: Cow<'a, str>,
    /// Units to consume; 0 only looks.
    pub cost: u64,
}

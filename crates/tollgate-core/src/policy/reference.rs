//! The policy's part of the configuration reference: each of its mappings with the table
//! of settings its parser checks fields against.

use super::descriptors::{DOMAIN_FIELDS, NODE_FIELDS, RATE_LIMIT_FIELDS, REPLACES_FIELDS};
use super::document::{LIST_FIELDS, SUBJECT_FIELDS, TOP_FIELDS};
use super::parse::{ON_EXCEED_FIELDS, RULE_FIELDS};
use super::settings::{Section, Setting};
use super::tiers::{TIER_FIELDS, limit_fields};

/// The top-level fields of a policy document.
pub fn top_level() -> &'static [Setting] {
    TOP_FIELDS
}

/// The policy's mappings, in the order a document holds them.
pub fn sections() -> Vec<Section> {
    // A descriptor's own limits are rules whose name, key and match come from the tree.
    let descriptor_limit: Vec<Setting> = RULE_FIELDS
        .iter()
        .copied()
        .filter(|s| !matches!(s.name, "name" | "key" | "match"))
        .collect();
    vec![
        Section::new(
            "rules[]",
            "One rule: which requests it applies to, how it names its counters, and its limit.",
            RULE_FIELDS,
        ),
        Section::new(
            "rules[].on_exceed",
            "A penalty box after a denial.",
            ON_EXCEED_FIELDS,
        ),
        Section::new(
            "allow",
            "Subjects on this list bypass every limit (any one entry is enough).",
            LIST_FIELDS,
        ),
        Section::new(
            "deny",
            "Subjects on this list are always refused with `BLOCKED`.",
            LIST_FIELDS,
        ),
        Section::new(
            "subject",
            "How request attributes are normalised.",
            SUBJECT_FIELDS,
        ),
        Section::new(
            "tiers.<name>",
            "One tier: the limits every API key of the tier gets.",
            TIER_FIELDS,
        ),
        Section::new(
            "tiers.<name>.limits[]",
            "A tier limit: a rule without `match`, counted per key unless told otherwise.",
            &limit_fields(),
        ),
        Section::new(
            "envoy[]",
            "One envoyproxy/ratelimit document (see [Envoy rate limit service](../envoy.md)).",
            DOMAIN_FIELDS,
        ),
        Section::new(
            "envoy[].descriptors[]",
            "One descriptor, at any level of the tree (`descriptors` nest).",
            NODE_FIELDS,
        ),
        Section::new(
            "envoy[].descriptors[].rate_limit",
            "envoyproxy/ratelimit's limit of a descriptor.",
            RATE_LIMIT_FIELDS,
        ),
        Section::new(
            "envoy[].descriptors[].rate_limit.replaces[]",
            "A limit this one replaces.",
            REPLACES_FIELDS,
        ),
        Section::new(
            "envoy[].descriptors[].limits[]",
            "One of a descriptor's own limits: a rule's fields but `name`, `key` and `match`.",
            &descriptor_limit,
        ),
    ]
}

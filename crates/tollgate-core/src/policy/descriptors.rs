//! Envoy rate limit descriptors: the configuration format of envoyproxy/ratelimit
//! (`domain`, nested `descriptors` with `key`, `value`, `rate_limit`, `shadow_mode`,
//! `detailed_metric`, `value_to_metric`, `share_threshold`, `metadata`), compiled into a
//! tree matched the way envoyproxy/ratelimit matches it, with Tollgate's own additions:
//! several limits per descriptor with any algorithm and any window (`limits:`).
//!
//! Matching walks the request's entries down the tree. At each level an entry matches the
//! child with its key and value, else the first child of its key (in the order written)
//! whose wildcard value matches it (each `*` stands for any run of characters), else the
//! child with its key and no value. The limits of the node reached by the last entry
//! apply; an entry that matches nothing ends the walk with no limit. The counter of a
//! match is named by the domain and every entry's key and value, so a key-only descriptor
//! counts each value apart; an entry matched by a wildcard with `share_threshold` is named
//! by the wildcard instead, so every value it matches shares one counter.
//!
//! Loading refuses what envoyproxy/ratelimit's loader refuses: an empty domain or key, a limit
//! without `requests_per_unit` (required by its documentation), two
//! descriptors of one level with the same composite key (`key` or `key_value`, also across
//! files of one domain), an unknown unit, a unit beside `unlimited`, an empty `replaces`
//! entry or one naming its own limit, `share_threshold` on a value without a wildcard, and
//! unknown fields.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::parse::{Errors, as_map, check_fields, compile_rule, get_bool, get_u64, join, show};
use super::rule::Rule;
use super::settings::Setting;
use crate::algorithm::{Anchor, FixedWindow, Limit};
use crate::policy::template::KeyTemplate;
use crate::time::{NANOS_PER_SEC, Nanos};

/// The time units of envoyproxy/ratelimit and their lengths (a month is 30 days and a year
/// 365, as there).
pub const UNITS: [(&str, Nanos); 7] = [
    ("second", NANOS_PER_SEC),
    ("minute", 60 * NANOS_PER_SEC),
    ("hour", 3_600 * NANOS_PER_SEC),
    ("day", 86_400 * NANOS_PER_SEC),
    ("week", 7 * 86_400 * NANOS_PER_SEC),
    ("month", 30 * 86_400 * NANOS_PER_SEC),
    ("year", 365 * 86_400 * NANOS_PER_SEC),
];

/// The unit named `name` (any case) and its length.
pub fn unit(name: &str) -> Option<(&'static str, Nanos)> {
    let lower = name.to_ascii_lowercase();
    UNITS.iter().copied().find(|(n, _)| *n == lower)
}

/// What a matched descriptor applies.
#[derive(Debug)]
pub struct DescriptorLimits {
    /// The limits: one from `rate_limit`, or those of `limits:`.
    pub rules: Vec<Rule>,
    /// `rate_limit.unlimited`: never limited, nothing counted.
    pub unlimited: bool,
    /// `shadow_mode`: counted and reported, never enforced.
    pub shadow: bool,
    /// `rate_limit.name`, reported in `current_limit.name` and matched by `replaces`.
    pub name: Option<String>,
    /// Names of limits this one replaces when both apply to a request
    /// (`rate_limit.replaces`, and for compatibility `replaces` beside `rate_limit`).
    pub replaces: Vec<String>,
    /// `detailed_metric`: metrics name the full descriptor.
    pub detailed_metric: bool,
    /// `metadata`: free-form data kept with the limit, for a door to hand back (as
    /// envoyproxy/ratelimit does in a response's dynamic metadata).
    pub metadata: Option<Map<String, Value>>,
}

/// One level of the tree: its descriptors by key.
#[derive(Debug, Default)]
struct Level {
    keys: HashMap<String, Keyed>,
    /// Composite keys (`key` or `key_value`) defined here: envoyproxy/ratelimit names
    /// descriptors so and refuses a name taken twice.
    composite: HashSet<String>,
}

/// The descriptors of one key at one level.
#[derive(Debug, Default)]
struct Keyed {
    nodes: Vec<Node>,
    /// By exact value, wildcard values included (a request value equal to a wildcard value
    /// matches it as an exact value, before any wildcard is tried).
    values: HashMap<String, usize>,
    /// Wildcard values, in the order written.
    wildcards: Vec<(Pattern, usize)>,
    /// The descriptor without a value.
    bare: Option<usize>,
}

impl Keyed {
    /// The node `value` selects, and how.
    fn select(&self, value: &str) -> Option<(&Node, How)> {
        let (at, how) = if let Some(&at) = self.values.get(value) {
            (at, How::Exact)
        } else if let Some((_, at)) = self.wildcards.iter().find(|(p, _)| p.matches(value)) {
            (*at, How::Wildcard)
        } else {
            (self.bare?, How::Bare)
        };
        self.nodes.get(at).map(|n| (n, how))
    }
}

/// How a request entry matched a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    Exact,
    Wildcard,
    Bare,
}

/// A wildcard value split at its `*`s (at least two parts).
#[derive(Debug)]
struct Pattern {
    parts: Vec<String>,
}

impl Pattern {
    /// `Some` when `value` holds a `*`.
    fn new(value: &str) -> Option<Self> {
        value.contains('*').then(|| Pattern {
            parts: value.split('*').map(str::to_owned).collect(),
        })
    }

    /// Whether `value` starts with the first part, ends with the last, and holds the
    /// middle ones in order between them, none overlapping.
    fn matches(&self, value: &str) -> bool {
        let (Some(first), Some(last)) = (self.parts.first(), self.parts.last()) else {
            return false;
        };
        let Some(rest) = value.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some(mut rest) = rest.strip_suffix(last.as_str()) else {
            return false;
        };
        let middle = self
            .parts
            .get(1..self.parts.len().saturating_sub(1))
            .unwrap_or_default();
        for part in middle {
            match rest.find(part.as_str()) {
                Some(at) => rest = rest.get(at.saturating_add(part.len())..).unwrap_or(""),
                None => return false,
            }
        }
        true
    }
}

#[derive(Debug)]
struct Node {
    limits: Option<DescriptorLimits>,
    children: Level,
    /// The configured value (a wildcard value as written), if any.
    value: Option<String>,
    /// `share_threshold`: when matched by its wildcard, the entry's counter is named by the
    /// wildcard, so every value it matches shares one counter.
    share_threshold: bool,
    /// `value_to_metric`: metrics name this entry by the request's value.
    value_to_metric: bool,
}

/// A request descriptor matched in the tree: what applies and how it is named.
#[derive(Debug)]
pub struct DescriptorMatch<'a> {
    /// The limits of the node the last entry reached.
    pub limits: &'a DescriptorLimits,
    /// The counter key: as [`counter_key`], with the wildcard in place of the value for
    /// entries matched by a `share_threshold` wildcard.
    pub counter_key: String,
    /// The name the descriptor's own metric takes, when it has one: with
    /// `detailed_metric`, its counter key; else, when a level on its path sets
    /// `value_to_metric`, the domain and each entry's key with, at those levels, the
    /// request's value, elsewhere the configured value (or wildcard) if any.
    pub metric_key: Option<String>,
}

/// Every domain's descriptor tree.
#[derive(Debug, Default)]
pub struct Descriptors {
    domains: HashMap<String, Level>,
}

impl Descriptors {
    /// Whether no domain is configured.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// How many domains are configured.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// The limits for one request descriptor of `domain`, if any node matches all of its
    /// `entries`.
    pub fn lookup(&self, domain: &str, entries: &[(&str, &str)]) -> Option<&DescriptorLimits> {
        self.find(domain, entries).map(|m| m.limits)
    }

    /// The match of one request descriptor of `domain`, if a node with limits matches all
    /// of its `entries`, with its counter and metric names.
    pub fn find(&self, domain: &str, entries: &[(&str, &str)]) -> Option<DescriptorMatch<'_>> {
        let mut level = self.domains.get(domain)?;
        let mut path: smallvec::SmallVec<[(&Node, How); 4]> = smallvec::SmallVec::new();
        let mut limits = None;
        let last = entries.len().checked_sub(1)?;
        for (i, (key, value)) in entries.iter().enumerate() {
            let (node, how) = level.keys.get(*key)?.select(value)?;
            path.push((node, how));
            if i == last {
                limits = node.limits.as_ref();
                break;
            }
            // Entries left over after a leaf match nothing.
            if node.children.keys.is_empty() {
                return None;
            }
            level = &node.children;
        }
        let limits = limits?;
        let named = entries.iter().zip(&path).map(|(&(k, v), &(node, how))| {
            let shared = (how == How::Wildcard && node.share_threshold)
                .then_some(node.value.as_deref())
                .flatten();
            (k, shared.unwrap_or(v))
        });
        let counter_key = counter_key(domain, named);
        let metric_key = if limits.detailed_metric {
            Some(counter_key.clone())
        } else if path.iter().any(|(n, _)| n.value_to_metric) {
            Some(metric_key(domain, entries, &path))
        } else {
            None
        };
        Some(DescriptorMatch {
            limits,
            counter_key,
            metric_key,
        })
    }
}

/// The `value_to_metric` name of a matched path (see [`DescriptorMatch::metric_key`]).
fn metric_key(domain: &str, entries: &[(&str, &str)], path: &[(&Node, How)]) -> String {
    let mut out = String::with_capacity(64);
    escape_into(domain, &mut out);
    for (&(k, v), &(node, how)) in entries.iter().zip(path) {
        let value = match how {
            How::Exact => Some(v),
            How::Wildcard if node.share_threshold => node.value.as_deref(),
            How::Wildcard if node.value_to_metric => Some(v),
            How::Wildcard => node.value.as_deref(),
            How::Bare if node.value_to_metric => Some(v),
            How::Bare => None,
        };
        out.push('/');
        escape_into(k, &mut out);
        if let Some(value) = value {
            out.push('=');
            escape_into(value, &mut out);
        }
    }
    out
}

/// The counter key of a request descriptor: the domain and every entry, each part escaped
/// so that no two descriptors share a key.
pub fn counter_key<'a>(
    domain: &str,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut out = String::with_capacity(64);
    escape_into(domain, &mut out);
    for (k, v) in entries {
        out.push('/');
        escape_into(k, &mut out);
        out.push('=');
        escape_into(v, &mut out);
    }
    out
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, '/' | '=' | '%') {
            out.push_str(match c {
                '/' => "%2F",
                '=' => "%3D",
                _ => "%25",
            });
        } else {
            out.push(c);
        }
    }
}

/// A fixed, clock-aligned window of `requests` per `period`, as envoyproxy/ratelimit counts.
/// Zero requests refuses every request that consumes (envoyproxy/ratelimit's way to block a
/// descriptor).
pub fn window_rule(name: String, requests: u64, period: Nanos) -> Rule {
    let window = if requests == 0 {
        // `FixedWindow::new` raises a limit to one; a descriptor may ask for none.
        FixedWindow {
            limit: 0,
            period: period.max(1),
            anchor: Anchor::Clock,
        }
    } else {
        FixedWindow::new(requests, period, Anchor::Clock)
    };
    // Descriptor counters are keyed by the caller; the template only names the kind.
    Rule::new(
        name,
        Limit::FixedWindow(window),
        KeyTemplate::literal("descriptor"),
    )
}

/// The fields of one envoyproxy/ratelimit document.
pub(crate) const DOMAIN_FIELDS: &[Setting] = &[
    Setting::new(
        "domain",
        "string",
        "The tree's name, which Envoy sends. Documents of one domain merge into one tree.",
    )
    .range("not empty; required"),
    Setting::new(
        "descriptors",
        "list of descriptors",
        "The tree's first level.",
    )
    .default("none"),
];

/// The fields of one descriptor, at any level of the tree.
pub(crate) const NODE_FIELDS: &[Setting] = &[
    Setting::new("key", "string", "The entry key this descriptor matches.")
        .range("not empty; required"),
    Setting::new(
        "value",
        "string",
        "The entry value it matches; `*` stands for any run of characters. Without one, each \
         value counts apart.",
    )
    .default("any value"),
    Setting::new(
        "rate_limit",
        "mapping",
        "envoyproxy/ratelimit's limit: `unit`, `requests_per_unit`, `unlimited`, `name`, \
         `replaces`.",
    )
    .default("no limit at this level"),
    Setting::new(
        "limits",
        "list of limits",
        "Instead of `rate_limit`: limits with any algorithm and window, each a rule's fields \
         but `name`, `key` and `match`.",
    ),
    Setting::new(
        "descriptors",
        "list of descriptors",
        "The next level of the tree.",
    )
    .default("none"),
    Setting::new("shadow_mode", "boolean", "Count and report, never enforce.").default("`false`"),
    Setting::new(
        "detailed_metric",
        "boolean",
        "Also count in `tollgate_envoy_descriptor_total`, labelled by the full key with the \
         request's values.",
    )
    .default("`false`"),
    Setting::new(
        "value_to_metric",
        "boolean",
        "Label that metric with the request's value at this level.",
    )
    .default("`false`"),
    Setting::new(
        "share_threshold",
        "boolean",
        "On a wildcard value: every value it matches shares one counter.",
    )
    .default("`false`"),
    Setting::new(
        "quota_mode",
        "boolean",
        "Accepted as `false` only: Tollgate decides all the limits of a request as one.",
    )
    .default("`false`")
    .range("`false`"),
    Setting::new(
        "metadata",
        "mapping",
        "Kept with the limit and handed to the door with the plan.",
    ),
    Setting::new(
        "replaces",
        "list of `{name}`",
        "As `rate_limit.replaces`, for files of Tollgate's earlier releases.",
    ),
];

/// The fields of a descriptor's `rate_limit`.
pub(crate) const RATE_LIMIT_FIELDS: &[Setting] = &[
    Setting::new(
        "unit",
        "string",
        "The window, clock-aligned: `month` is 30 days, `year` 365. Any case.",
    )
    .range(
        "`second`, `minute`, `hour`, `day`, `week`, `month`, `year`; required unless `unlimited`",
    ),
    Setting::new(
        "requests_per_unit",
        "integer",
        "Requests per window; 0 refuses every request.",
    )
    .range("0 to 4294967295; required unless `unlimited`"),
    Setting::new("unlimited", "boolean", "Never limited; nothing is counted.").default("`false`"),
    Setting::new(
        "name",
        "string",
        "Reported in `current_limit.name`; what `replaces` names.",
    ),
    Setting::new(
        "replaces",
        "list of `{name}`",
        "Limits that drop out when this one applies to the same request.",
    ),
];

/// The fields of a `replaces` entry.
pub(crate) const REPLACES_FIELDS: &[Setting] =
    &[Setting::new("name", "string", "The name of the limit replaced.").range("not empty")];

/// A string field as envoyproxy/ratelimit reads it: a YAML string, integer or boolean
/// taken as written; null or absent is `None`.
fn get_text(m: &Map<String, Value>, field: &str, path: &str, errs: &mut Errors) -> Option<String> {
    match m.get(field)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        other => {
            errs.push(
                &join(path, field),
                format!("expected a string, found {}", show(other)),
            );
            None
        }
    }
}

/// A boolean field; null or absent is `false`.
fn get_flag(m: &Map<String, Value>, field: &str, path: &str, errs: &mut Errors) -> bool {
    match m.get(field) {
        None | Some(Value::Null) => false,
        Some(_) => get_bool(m, field, path, errs).unwrap_or(false),
    }
}

/// A field that must be a list when present; null is an empty list.
fn get_list<'v>(
    m: &'v Map<String, Value>,
    field: &str,
    path: &str,
    what: &str,
    errs: &mut Errors,
) -> &'v [Value] {
    match m.get(field) {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(other) => {
            errs.push(
                &join(path, field),
                format!("expected a list of {what}, found {}", show(other)),
            );
            &[]
        }
    }
}

/// Compiles the `envoy` section: a list of envoyproxy/ratelimit configurations (each a
/// `domain` and its `descriptors`). Documents of one domain are merged, as
/// envoyproxy/ratelimit merges them with `MERGE_DOMAIN_CONFIG`, and a descriptor defined in
/// two of them is refused.
pub(crate) fn compile(v: &Value, path: &str, errs: &mut Errors) -> Descriptors {
    let mut out = Descriptors::default();
    let Value::Array(items) = v else {
        errs.push(
            path,
            format!(
                "expected a list of {{domain, descriptors}}, found {}",
                show(v)
            ),
        );
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(m) = as_map(item, &p, errs) else {
            continue;
        };
        check_fields(m, &p, DOMAIN_FIELDS, errs);
        let domain = match get_text(m, "domain", &p, errs) {
            Some(d) if !d.is_empty() => d,
            Some(_) => {
                errs.push(&join(&p, "domain"), "must not be empty");
                continue;
            }
            None => {
                if m.get("domain").is_none_or(Value::is_null) {
                    errs.push(&join(&p, "domain"), "missing");
                }
                continue;
            }
        };
        let level = out.domains.entry(domain.clone()).or_default();
        let items = get_list(m, "descriptors", &p, "descriptors", errs);
        compile_level(items, &join(&p, "descriptors"), &domain, level, errs);
    }
    out
}

fn compile_level(items: &[Value], path: &str, parent: &str, level: &mut Level, errs: &mut Errors) {
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(m) = as_map(item, &p, errs) else {
            continue;
        };
        check_fields(m, &p, NODE_FIELDS, errs);
        let key = match get_text(m, "key", &p, errs) {
            Some(k) if !k.is_empty() => k,
            Some(_) => {
                errs.push(&join(&p, "key"), "must not be empty");
                continue;
            }
            None => {
                if m.get("key").is_none_or(Value::is_null) {
                    errs.push(&join(&p, "key"), "missing");
                }
                continue;
            }
        };
        let value = get_text(m, "value", &p, errs).filter(|v| !v.is_empty());
        let composite = match &value {
            Some(v) => format!("{key}_{v}"),
            None => key.clone(),
        };
        let here = format!("{parent}.{composite}");
        if !level.composite.insert(composite) {
            errs.push(
                &p,
                format!("duplicate descriptor composite key {here:?}: defined twice in its domain at this level"),
            );
            continue;
        }
        let share_threshold = get_flag(m, "share_threshold", &p, errs);
        let pattern = value.as_deref().and_then(Pattern::new);
        if share_threshold && pattern.is_none() {
            errs.push(
                &join(&p, "share_threshold"),
                format!(
                    "can only be used with a wildcard value (containing '*'), but {here:?} has none"
                ),
            );
        }
        if get_flag(m, "quota_mode", &p, errs) {
            errs.push(
                &join(&p, "quota_mode"),
                "is not supported: Tollgate decides all the limits of a request as one",
            );
        }
        let value_to_metric = get_flag(m, "value_to_metric", &p, errs);
        let limits = compile_limits(m, &p, &here, errs);
        let mut children = Level::default();
        let items = get_list(m, "descriptors", &p, "descriptors", errs);
        compile_level(items, &join(&p, "descriptors"), &here, &mut children, errs);
        let node = Node {
            limits,
            children,
            value: value.clone(),
            share_threshold,
            value_to_metric,
        };
        let keyed = level.keys.entry(key).or_default();
        let at = keyed.nodes.len();
        keyed.nodes.push(node);
        match value {
            None => keyed.bare = Some(at),
            Some(v) => {
                if let Some(pattern) = pattern {
                    keyed.wildcards.push((pattern, at));
                }
                keyed.values.insert(v, at);
            }
        }
    }
}

/// The `replaces` list at `path` (`[{name}]`), each name checked as envoyproxy/ratelimit
/// checks it.
fn compile_replaces(
    items: &[Value],
    path: &str,
    own: Option<&str>,
    out: &mut Vec<String>,
    errs: &mut Errors,
) {
    for (i, r) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(rm) = as_map(r, &p, errs) else {
            continue;
        };
        check_fields(rm, &p, REPLACES_FIELDS, errs);
        match get_text(rm, "name", &p, errs) {
            Some(n) if !n.is_empty() => {
                if own == Some(n.as_str()) {
                    errs.push(
                        &join(&p, "name"),
                        format!("{n:?} is this limit's own name: a limit cannot replace itself"),
                    );
                } else {
                    out.push(n);
                }
            }
            Some(_) | None => {
                if rm
                    .get("name")
                    .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
                {
                    errs.push(
                        &join(&p, "name"),
                        "must not be empty: name the limit to replace",
                    );
                }
            }
        }
    }
}

fn compile_limits(
    m: &Map<String, Value>,
    path: &str,
    here: &str,
    errs: &mut Errors,
) -> Option<DescriptorLimits> {
    let shadow = get_flag(m, "shadow_mode", path, errs);
    let detailed_metric = get_flag(m, "detailed_metric", path, errs);
    let metadata = match m.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(md)) => (!md.is_empty()).then(|| md.clone()),
        Some(other) => {
            errs.push(
                &join(path, "metadata"),
                format!("expected a mapping, found {}", show(other)),
            );
            None
        }
    };
    let rate_limit = m.get("rate_limit").filter(|v| !v.is_null());
    let mut name = None;
    let mut unlimited = false;
    let mut rules = Vec::new();
    let mut replaces = Vec::new();
    if let Some(rl) = rate_limit {
        let p = join(path, "rate_limit");
        if let Some(rm) = as_map(rl, &p, errs) {
            check_fields(rm, &p, RATE_LIMIT_FIELDS, errs);
            name = get_text(rm, "name", &p, errs).filter(|n| !n.is_empty());
            unlimited = get_flag(rm, "unlimited", &p, errs);
            let unit_name = get_text(rm, "unit", &p, errs);
            let period = unit_name.as_deref().and_then(unit).map(|(_, len)| len);
            // Read even when unlimited, so that a value no file may hold is refused.
            // Absent is refused, not read as zero (which would block every request):
            // envoyproxy/ratelimit documents the field as required.
            let given = rm.get("requests_per_unit").filter(|v| !v.is_null());
            let requests = match given {
                None => None,
                Some(_) => get_u64(rm, "requests_per_unit", &p, errs),
            };
            let requests = match requests {
                Some(n) if n > u64::from(u32::MAX) => {
                    errs.push(
                        &join(&p, "requests_per_unit"),
                        format!(
                            "{n} is more than {} (envoyproxy/ratelimit's 32-bit limit)",
                            u32::MAX
                        ),
                    );
                    None
                }
                n => n,
            };
            if unlimited {
                if period.is_some() {
                    errs.push(&join(&p, "unit"), "must not be set when unlimited is true");
                }
            } else {
                match (period, unit_name) {
                    (Some(_), _) => {}
                    (None, Some(u)) => {
                        let names: Vec<_> = UNITS.iter().map(|(n, _)| *n).collect();
                        errs.push(
                            &join(&p, "unit"),
                            format!(
                                "{u:?} is not a unit (expected one of: {})",
                                names.join(", ")
                            ),
                        );
                    }
                    (None, None) => {
                        if rm.get("unit").is_none_or(Value::is_null) {
                            errs.push(&join(&p, "unit"), "missing (or set unlimited: true)");
                        }
                    }
                }
                if given.is_none() {
                    errs.push(&join(&p, "requests_per_unit"), "missing");
                }
                if let (Some(period), Some(requests)) = (period, requests) {
                    rules.push(window_rule(here.to_owned(), requests, period));
                }
            }
            let items = get_list(rm, "replaces", &p, "{name}", errs);
            compile_replaces(
                items,
                &join(&p, "replaces"),
                name.as_deref(),
                &mut replaces,
                errs,
            );
        }
    }
    // `replaces` beside `rate_limit`: how Tollgate read it first, still accepted.
    let items = get_list(m, "replaces", path, "{name}", errs);
    compile_replaces(
        items,
        &join(path, "replaces"),
        name.as_deref(),
        &mut replaces,
        errs,
    );
    let limits = m.get("limits").filter(|v| !v.is_null());
    if let Some(ls) = limits {
        let p = join(path, "limits");
        if rate_limit.is_some() {
            errs.push(&p, "use rate_limit or limits, not both");
        }
        match ls {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let lp = format!("{p}[{i}]");
                    let Some(lm) = as_map(item, &lp, errs) else {
                        continue;
                    };
                    // A limit is a rule without name, key or match: those come from the
                    // descriptor.
                    for field in ["name", "key", "match"] {
                        if lm.contains_key(field) {
                            errs.push(&join(&lp, field), "comes from the descriptor");
                        }
                    }
                    let mut full = lm.clone();
                    full.insert("name".into(), Value::String("descriptor-limit".into()));
                    full.insert("key".into(), Value::String("descriptor".into()));
                    if let Some(parsed) = compile_rule(&Value::Object(full), &lp, errs) {
                        // Named for its place in the tree, which names its counters.
                        let mut rule = Rule::new(format!("{here}#{i}"), parsed.limit, parsed.key);
                        rule.block_for = parsed.block_for;
                        rule.on_store_error = parsed.on_store_error;
                        rules.push(rule);
                    }
                }
            }
            other => errs.push(
                &p,
                format!("expected a list of limits, found {}", show(other)),
            ),
        }
    }
    if rate_limit.is_none() && limits.is_none() {
        return None;
    }
    for r in &mut rules {
        r.shadow = shadow;
    }
    Some(DescriptorLimits {
        rules,
        unlimited,
        shadow,
        name,
        replaces,
        detailed_metric,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::Policy;

    fn limit_of(p: &Policy, domain: &str, entries: &[(&str, &str)]) -> Option<u64> {
        p.descriptors()
            .lookup(domain, entries)
            .and_then(|l| l.rules.first())
            .map(|r| r.limit.quota())
    }

    #[test]
    fn value_before_key_then_wildcards_and_depth() {
        let p = Policy::from_yaml(
            r#"
envoy:
  - domain: d
    descriptors:
      - key: remote_address
        rate_limit: { unit: second, requests_per_unit: 10 }
      - key: remote_address
        value: 10.0.0.1
        rate_limit: { unit: second, requests_per_unit: 100 }
      - key: path
        value: "/api/*"
        rate_limit: { unit: minute, requests_per_unit: 7 }
      - key: tenant
        descriptors:
          - key: plan
            value: pro
            rate_limit: { unit: hour, requests_per_unit: 1000 }
"#,
        )
        .unwrap();
        assert_eq!(
            limit_of(&p, "d", &[("remote_address", "10.0.0.2")]),
            Some(10)
        );
        assert_eq!(
            limit_of(&p, "d", &[("remote_address", "10.0.0.1")]),
            Some(100)
        );
        assert_eq!(limit_of(&p, "d", &[("path", "/api/users")]), Some(7));
        assert_eq!(limit_of(&p, "d", &[("path", "/web")]), None);
        assert_eq!(
            limit_of(&p, "d", &[("tenant", "a"), ("plan", "pro")]),
            Some(1000)
        );
        // A node without a limit, or entries past a leaf, give none.
        assert_eq!(limit_of(&p, "d", &[("tenant", "a")]), None);
        assert_eq!(
            limit_of(&p, "d", &[("tenant", "a"), ("plan", "free")]),
            None
        );
        assert_eq!(
            limit_of(&p, "d", &[("remote_address", "x"), ("extra", "y")]),
            None
        );
        assert_eq!(limit_of(&p, "other", &[("remote_address", "x")]), None);
    }

    #[test]
    fn errors_carry_paths() {
        let errs = Policy::from_yaml(
            "envoy:\n  - domain: d\n    descriptors:\n      - key: a\n        rate_limit: { unit: fortnight, requests_per_unit: -1 }\n      - value: b\n",
        )
        .unwrap_err();
        let text: Vec<String> = errs
            .0
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        for want in [
            "envoy[0].descriptors[0].rate_limit.unit",
            "envoy[0].descriptors[0].rate_limit.requests_per_unit",
            "envoy[0].descriptors[1].key",
        ] {
            assert!(
                text.iter().any(|t| t.starts_with(want)),
                "{want} not in {text:?}"
            );
        }
    }

    #[test]
    fn wildcards_match_anywhere_in_the_value() {
        let p = |s: &str| Pattern::new(s).unwrap();
        assert!(p("foo*").matches("foo"));
        assert!(p("foo*").matches("foobar"));
        assert!(!p("foo*").matches("fo"));
        assert!(p("*").matches(""));
        assert!(p("/api/*/action").matches("/api/1/action"));
        assert!(p("/api/*/action").matches("/api//action"));
        assert!(!p("/api/*/action").matches("/api/1/other"));
        assert!(p("a*b*c").matches("abc"));
        assert!(p("a*b*c").matches("axxbyyc"));
        assert!(!p("a*b*c").matches("acb"));
        // Prefix and suffix may not overlap.
        assert!(!p("ab*ba").matches("aba"));
        assert!(p("ab*ba").matches("abba"));
        assert!(p("*x*").matches("yxy"));
        assert!(!p("*x*").matches("yy"));
        assert!(Pattern::new("plain").is_none());
    }

    #[test]
    fn a_request_value_equal_to_a_wildcard_is_an_exact_match() {
        let p = Policy::from_yaml(
            r#"
envoy:
  - domain: d
    descriptors:
      - key: k
        value: "a*"
        rate_limit: { unit: second, requests_per_unit: 1 }
      - key: k
        value: "a*b"
        share_threshold: true
        rate_limit: { unit: second, requests_per_unit: 2 }
"#,
        )
        .unwrap();
        assert_eq!(limit_of(&p, "d", &[("k", "axb")]), Some(1));
        assert_eq!(limit_of(&p, "d", &[("k", "a*b")]), Some(2));
    }

    #[test]
    fn composite_keys_collide_as_in_envoyproxy_ratelimit() {
        let errs = Policy::from_yaml(
            "envoy:\n  - domain: d\n    descriptors:\n      - key: a\n        value: b\n      - key: a_b\n",
        )
        .unwrap_err();
        assert_eq!(errs.0.len(), 1, "{errs:?}");
        assert_eq!(errs.0[0].path, "envoy[0].descriptors[1]");
        assert!(errs.0[0].message.contains("\"d.a_b\""), "{errs:?}");
    }

    #[test]
    fn zero_requests_per_unit_blocks() {
        let rule = window_rule("z".into(), 0, NANOS_PER_SEC);
        assert_eq!(rule.limit.quota(), 0);
        let rule = window_rule("one".into(), 1, NANOS_PER_SEC);
        assert_eq!(rule.limit.quota(), 1);
    }

    #[test]
    fn counter_keys_do_not_collide() {
        assert_ne!(
            counter_key("d", [("a", "b/c=d")]),
            counter_key("d", [("a", "b"), ("c", "d")])
        );
    }
}

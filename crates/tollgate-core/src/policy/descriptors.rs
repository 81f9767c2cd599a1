//! Envoy rate limit descriptors: the configuration format of envoyproxy/ratelimit
//! (`domain`, nested `descriptors` with `key`, `value`, `rate_limit`), compiled into a tree
//! matched the way envoyproxy/ratelimit matches it, with Tollgate's own additions: several
//! limits per descriptor with any algorithm and any window (`limits:`).
//!
//! Matching walks the request's entries down the tree. At each level an entry matches the
//! child with its key and value, else a child whose value ends in `*` and prefixes it, else
//! the child with its key and no value. The limits of the node reached by the last entry
//! apply; an entry that matches nothing ends the walk with no limit. The counter of a
//! match is named by the domain and every entry's key and value, so a key-only descriptor
//! counts each value apart.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::parse::{
    Errors, as_map, check_fields, compile_rule, get_bool, get_str, get_u64, join, show,
};
use super::rule::Rule;
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
    /// Names of limits this one replaces when both apply to a request.
    pub replaces: Vec<String>,
    /// `detailed_metric`: metrics name the full descriptor.
    pub detailed_metric: bool,
}

/// One level of the tree: its descriptors by key.
#[derive(Debug, Default)]
struct Level {
    keys: HashMap<String, Keyed>,
}

/// The descriptors of one key at one level.
#[derive(Debug, Default)]
struct Keyed {
    /// By exact value.
    values: HashMap<String, Node>,
    /// Values ending in `*`, by the prefix before it, in the order written.
    wildcards: Vec<(String, Node)>,
    /// The descriptor without a value.
    bare: Option<Node>,
}

#[derive(Debug)]
struct Node {
    limits: Option<DescriptorLimits>,
    children: Level,
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
    pub fn lookup<'a>(
        &self,
        domain: &str,
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Option<&DescriptorLimits> {
        let mut level = self.domains.get(domain)?;
        let mut found = None;
        let mut entries = entries.into_iter().peekable();
        while let Some((key, value)) = entries.next() {
            let keyed = level.keys.get(key)?;
            let node = keyed
                .values
                .get(value)
                .or_else(|| {
                    keyed
                        .wildcards
                        .iter()
                        .find(|(prefix, _)| value.starts_with(prefix.as_str()))
                        .map(|(_, n)| n)
                })
                .or(keyed.bare.as_ref())?;
            if entries.peek().is_none() {
                found = node.limits.as_ref();
            }
            if node.children.keys.is_empty() {
                break;
            }
            level = &node.children;
        }
        // Entries left over after a leaf match nothing.
        if entries.peek().is_some() {
            return None;
        }
        found
    }
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
pub fn window_rule(name: String, requests: u64, period: Nanos) -> Rule {
    let limit = Limit::FixedWindow(FixedWindow::new(requests.max(1), period, Anchor::Clock));
    // Descriptor counters are keyed by the caller; the template only names the kind.
    Rule::new(name, limit, KeyTemplate::literal("descriptor"))
}

const DOMAIN_FIELDS: &[&str] = &["domain", "descriptors"];
const NODE_FIELDS: &[&str] = &[
    "key",
    "value",
    "rate_limit",
    "limits",
    "descriptors",
    "shadow_mode",
    "detailed_metric",
    "replaces",
];

/// Compiles the `envoy` section: a list of envoyproxy/ratelimit configurations (each a
/// `domain` and its `descriptors`).
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
        let Some(domain) = get_str(m, "domain", &p, errs) else {
            errs.push(&join(&p, "domain"), "missing");
            continue;
        };
        if domain.is_empty() {
            errs.push(&join(&p, "domain"), "must not be empty");
        }
        let level = out.domains.entry(domain.to_owned()).or_default();
        if let Some(d) = m.get("descriptors") {
            compile_level(d, &join(&p, "descriptors"), domain, level, errs);
        }
    }
    out
}

fn compile_level(v: &Value, path: &str, prefix: &str, level: &mut Level, errs: &mut Errors) {
    let Value::Array(items) = v else {
        errs.push(
            path,
            format!("expected a list of descriptors, found {}", show(v)),
        );
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(m) = as_map(item, &p, errs) else {
            continue;
        };
        check_fields(m, &p, NODE_FIELDS, errs);
        let Some(key) = get_str(m, "key", &p, errs) else {
            errs.push(&join(&p, "key"), "missing");
            continue;
        };
        let value = get_str(m, "value", &p, errs).filter(|v| !v.is_empty());
        let keyed = level.keys.entry(key.to_owned()).or_default();
        let taken = match value {
            None => keyed.bare.is_some(),
            Some(v) => match v.strip_suffix('*') {
                Some(prefix) => keyed.wildcards.iter().any(|(w, _)| w == prefix),
                None => keyed.values.contains_key(v),
            },
        };
        let label = match value {
            Some(v) => format!("{key}_{v}"),
            None => key.to_owned(),
        };
        if taken {
            errs.push(&p, format!("duplicate descriptor {label:?} at this level"));
            continue;
        }
        let here = format!("{prefix}.{label}");
        let limits = compile_limits(m, &p, &here, errs);
        let mut children = Level::default();
        if let Some(d) = m.get("descriptors") {
            compile_level(d, &join(&p, "descriptors"), &here, &mut children, errs);
        }
        let node = Node { limits, children };
        let keyed = level.keys.entry(key.to_owned()).or_default();
        match value {
            None => keyed.bare = Some(node),
            Some(v) => match v.strip_suffix('*') {
                Some(prefix) => keyed.wildcards.push((prefix.to_owned(), node)),
                None => {
                    keyed.values.insert(v.to_owned(), node);
                }
            },
        }
    }
}

fn compile_limits(
    m: &Map<String, Value>,
    path: &str,
    here: &str,
    errs: &mut Errors,
) -> Option<DescriptorLimits> {
    let shadow = get_bool(m, "shadow_mode", path, errs).unwrap_or(false);
    let detailed_metric = get_bool(m, "detailed_metric", path, errs).unwrap_or(false);
    let mut replaces = Vec::new();
    match m.get("replaces") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, r) in items.iter().enumerate() {
                let p = format!("{}[{i}]", join(path, "replaces"));
                if let Some(rm) = as_map(r, &p, errs) {
                    check_fields(rm, &p, &["name"], errs);
                    match get_str(rm, "name", &p, errs) {
                        Some(n) => replaces.push(n.to_owned()),
                        None => errs.push(&join(&p, "name"), "missing"),
                    }
                }
            }
        }
        Some(other) => errs.push(
            &join(path, "replaces"),
            format!("expected a list of {{name}}, found {}", show(other)),
        ),
    }
    let mut name = None;
    let mut unlimited = false;
    let mut rules = Vec::new();
    if let Some(rl) = m.get("rate_limit") {
        let p = join(path, "rate_limit");
        if let Some(rm) = as_map(rl, &p, errs) {
            check_fields(
                rm,
                &p,
                &["unit", "requests_per_unit", "unlimited", "name"],
                errs,
            );
            name = get_str(rm, "name", &p, errs).map(str::to_owned);
            unlimited = get_bool(rm, "unlimited", &p, errs).unwrap_or(false);
            if !unlimited {
                let period = match get_str(rm, "unit", &p, errs) {
                    Some(u) => match unit(u) {
                        Some((_, len)) => Some(len),
                        None => {
                            let names: Vec<_> = UNITS.iter().map(|(n, _)| *n).collect();
                            errs.push(
                                &join(&p, "unit"),
                                format!(
                                    "{u:?} is not a unit (expected one of: {})",
                                    names.join(", ")
                                ),
                            );
                            None
                        }
                    },
                    None => {
                        errs.push(&join(&p, "unit"), "missing");
                        None
                    }
                };
                let requests = match get_u64(rm, "requests_per_unit", &p, errs) {
                    Some(0) => {
                        errs.push(&join(&p, "requests_per_unit"), "must be at least 1");
                        None
                    }
                    None if !rm.contains_key("requests_per_unit") => {
                        errs.push(&join(&p, "requests_per_unit"), "missing");
                        None
                    }
                    n => n,
                };
                if let (Some(period), Some(requests)) = (period, requests) {
                    rules.push(window_rule(here.to_owned(), requests, period));
                }
            }
        }
    }
    if let Some(ls) = m.get("limits") {
        let p = join(path, "limits");
        if m.contains_key("rate_limit") {
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
    let has_limit = unlimited || !rules.is_empty();
    if !has_limit && !m.contains_key("rate_limit") && !m.contains_key("limits") {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    fn limit_of(p: &Policy, domain: &str, entries: &[(&str, &str)]) -> Option<u64> {
        p.descriptors()
            .lookup(domain, entries.iter().copied())
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
            "envoy:\n  - domain: d\n    descriptors:\n      - key: a\n        rate_limit: { unit: fortnight, requests_per_unit: 0 }\n      - value: b\n",
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
    fn counter_keys_do_not_collide() {
        assert_ne!(
            counter_key("d", [("a", "b/c=d")]),
            counter_key("d", [("a", "b"), ("c", "d")])
        );
    }
}

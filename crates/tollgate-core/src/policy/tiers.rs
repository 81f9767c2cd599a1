//! Tiers: the limits a verified API key gets from its plan (`free`, `pro`, …), and the
//! key's own overrides of them.
//!
//! ```yaml
//! tiers:
//!   free:
//!     limits:
//!       - { name: requests, algorithm: gcra, limit: 10, period: 1s }
//!       - { name: monthly, algorithm: quota, limit: 10000, period: month, rollover_cap: 5000 }
//!       - { name: team, limit: 100, period: 1m, per: owner }   # shared by the owner's keys
//! ```
//!
//! A tier limit is a rule without `match`: it applies to every request made with a key of
//! that tier. It counts per key (`per: key`, the default) or per owner (`per: owner`: every
//! key of one owner shares it — an identity), or by any `key` template. Its name is what
//! callers see in the `RateLimit` headers; a limit of the same name, algorithm and window in
//! two tiers is one counter, so a key that changes tier keeps what it has used.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::ConfigErrors;
use super::parse::{
    Errors, RULE_FIELDS, as_map, check_fields, compile_rule, get_str, join, show, valid_name,
};
use super::rule::Rule;
use super::settings::Setting;

/// The fields of a tier.
pub(crate) const TIER_FIELDS: &[Setting] = &[
    Setting::new(
        "limits",
        "list of limits",
        "The limits every key of the tier gets.",
    )
    .default("none")
    .range("at most 32"),
    Setting::new(
        "description",
        "string",
        "Shown beside the tier in the admin API and the dashboard.",
    ),
];

/// Whose counter a tier limit is, beside a rule's fields.
const PER: Setting = Setting::new(
    "per",
    "string",
    "Counts per key, or per owner (every key of one owner shares the counter). Set either \
     `per` or `key`.",
)
.default("`key`")
.range("`key`, `owner`");

/// Fields a tier limit takes: a rule's, without `match`, with `per`.
pub(crate) fn limit_fields() -> Vec<Setting> {
    RULE_FIELDS
        .iter()
        .copied()
        .filter(|f| f.name != "match")
        .chain([PER])
        .collect()
}

/// The most limits one tier (or one key's overrides) may hold.
const MAX_LIMITS: usize = 32;

/// One tier: its limits, compiled, and their sources for overrides to start from.
#[derive(Debug, Clone)]
pub struct Tier {
    /// The tier's name.
    pub name: String,
    /// Its limits, in order.
    pub limits: Vec<Rule>,
    sources: Vec<Map<String, Value>>,
}

/// Every tier, by name.
#[derive(Debug, Clone, Default)]
pub struct Tiers(BTreeMap<String, Tier>);

impl Tiers {
    /// The tier named `name`.
    pub fn get(&self, name: &str) -> Option<&Tier> {
        self.0.get(name)
    }

    /// Whether no tier is defined.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tiers, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Tier> {
        self.0.values()
    }
}

/// Compiles the `tiers` section; `rule_names` are the policy's rules, which tier limits
/// must not shadow.
pub(crate) fn compile(
    v: &Value,
    path: &str,
    rule_names: &HashSet<&str>,
    errs: &mut Errors,
) -> Tiers {
    let mut tiers = Tiers::default();
    let Some(map) = as_map(v, path, errs) else {
        return tiers;
    };
    for (name, spec) in map {
        let at = join(path, name);
        if !valid_name(name) {
            errs.push(
                &at,
                format!("{name:?} is not a tier name (letters, digits, _ - . /; at most 128)"),
            );
            continue;
        }
        if let Some(tier) = compile_tier(name, spec, &at, rule_names, errs) {
            tiers.0.insert(name.clone(), tier);
        }
    }
    tiers
}

/// Compiles one tier's spec (`{limits: [...]}`), as `PUT /v1/tiers/{name}` takes it.
fn compile_tier(
    name: &str,
    spec: &Value,
    path: &str,
    rule_names: &HashSet<&str>,
    errs: &mut Errors,
) -> Option<Tier> {
    let before = errs.0.len();
    let map = as_map(spec, path, errs)?;
    check_fields(map, path, TIER_FIELDS, errs);
    if let Some(d) = map.get("description")
        && !d.is_string()
    {
        errs.push(
            &join(path, "description"),
            format!("expected a string, found {}", show(d)),
        );
    }
    let items = match map.get("limits") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            errs.push(
                &join(path, "limits"),
                format!("expected a list of limits, found {}", show(other)),
            );
            return None;
        }
    };
    if items.len() > MAX_LIMITS {
        errs.push(
            &join(path, "limits"),
            format!("{} limits; a tier holds at most {MAX_LIMITS}", items.len()),
        );
    }
    let mut tier = Tier {
        name: name.to_owned(),
        limits: Vec::new(),
        sources: Vec::new(),
    };
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate().take(MAX_LIMITS) {
        let at = format!("{}[{i}]", join(path, "limits"));
        let Some(spec) = as_map(item, &at, errs) else {
            continue;
        };
        if let Some(n) = spec.get("name").and_then(Value::as_str) {
            if !seen.insert(n.to_owned()) {
                errs.push(
                    &join(&at, "name"),
                    format!("duplicate limit name {n:?} in this tier"),
                );
            }
            if rule_names.contains(n) {
                errs.push(
                    &join(&at, "name"),
                    format!("{n:?} is also a rule's name; a tier limit needs a name of its own"),
                );
            }
        }
        if let Some(rule) = compile_limit(spec, &at, errs) {
            tier.limits.push(rule);
            tier.sources.push(spec.clone());
        }
    }
    (errs.0.len() == before).then_some(tier)
}

/// Compiles one tier limit: a rule with no conditions, keyed per key by default.
fn compile_limit(spec: &Map<String, Value>, path: &str, errs: &mut Errors) -> Option<Rule> {
    let fields = limit_fields();
    check_fields(spec, path, &fields, errs);
    let mut rule: Map<String, Value> = spec
        .iter()
        .filter(|(k, _)| fields.iter().any(|f| f.name == k.as_str()) && *k != "per")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let per = get_str(spec, "per", path, errs);
    let template = match per {
        None | Some("key") => "key:{key}",
        Some("owner") => "owner:{attr.owner}",
        Some(other) => {
            errs.push(
                &join(path, "per"),
                format!("{other:?} is not a counter owner (expected key or owner)"),
            );
            return None;
        }
    };
    if per.is_some() && spec.contains_key("key") {
        errs.push(&join(path, "key"), "set either per or key, not both");
        return None;
    }
    rule.entry("key").or_insert_with(|| template.into());
    compile_rule(&Value::Object(rule), path, errs)
}

/// Compiles a key's own limits: `overrides` maps a limit name to the fields that change
/// (`{"requests": {"limit": 5000}}`), merged over the tier's limit of that name, or to a
/// whole limit the tier lacks. A field set to `null` drops the tier's value. Errors name
/// their path under `path`.
pub fn compile_overrides(
    tier: Option<&Tier>,
    overrides: &Value,
    path: &str,
) -> Result<Vec<Rule>, ConfigErrors> {
    let mut errs = Errors::default();
    let map = match overrides {
        Value::Null => return Ok(Vec::new()),
        v => match as_map(v, path, &mut errs) {
            Some(m) => m,
            None => return Err(ConfigErrors(errs.0)),
        },
    };
    if map.len() > MAX_LIMITS {
        errs.push(
            path,
            format!("{} overrides; at most {MAX_LIMITS}", map.len()),
        );
    }
    let mut rules = Vec::new();
    for (name, change) in map.iter().take(MAX_LIMITS) {
        let at = join(path, name);
        let Some(change) = as_map(change, &at, &mut errs) else {
            continue;
        };
        if change.contains_key("name") {
            errs.push(&join(&at, "name"), "an override is named by its key");
            continue;
        }
        let mut spec = tier
            .and_then(|t| {
                t.sources
                    .iter()
                    .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
            })
            .cloned()
            .unwrap_or_default();
        for (field, value) in change {
            if value.is_null() {
                spec.remove(field);
            } else {
                spec.insert(field.clone(), value.clone());
            }
        }
        spec.insert("name".into(), Value::String(name.clone()));
        if let Some(rule) = compile_limit(&spec, &at, &mut errs) {
            rules.push(rule);
        }
    }
    errs.finish(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;
    use crate::subject::Subject;

    const DOC: &str = r#"
rules:
  - { name: per-ip, key: "ip:{ip}", limit: 100, period: 1m }
tiers:
  free:
    limits:
      - { name: requests, limit: 10, period: 1s }
      - { name: monthly, algorithm: quota, limit: 1000, period: month, rollover_cap: 500 }
  pro:
    description: For paying customers
    limits:
      - { name: requests, limit: 100, period: 1s, burst: 20 }
      - { name: team, algorithm: fixed_window, limit: 1000, period: 1m, per: owner }
"#;

    fn keyed() -> Subject {
        Subject::new()
            .with("ip", "192.0.2.1")
            .and_then(|s| s.with("key", "key_1"))
            .and_then(|s| s.with("attr.owner", "acme"))
            .unwrap()
    }

    #[test]
    fn a_key_gets_the_rules_that_match_and_its_tier_limits() {
        let p = Policy::from_yaml(DOC).unwrap();
        let plan = p.plan_keyed(&keyed(), 1, Some("pro"), &[]);
        let got: Vec<_> = plan
            .checks
            .iter()
            .map(|c| (c.rule.name.as_str(), c.key.as_ref()))
            .collect();
        assert_eq!(
            got,
            [
                ("per-ip", "ip:192.0.2.1"),
                ("requests", "key:key_1"),
                ("team", "owner:acme")
            ]
        );
        // An unknown tier adds nothing; no tier, nothing either.
        assert_eq!(p.plan_keyed(&keyed(), 1, Some("gold"), &[]).checks.len(), 1);
        assert_eq!(p.plan_keyed(&keyed(), 1, None, &[]).checks.len(), 1);
    }

    #[test]
    fn a_tier_limit_of_the_same_shape_is_one_counter_across_tiers() {
        let p = Policy::from_yaml(DOC).unwrap();
        let free = &p.tiers().get("free").unwrap().limits[0];
        let pro = &p.tiers().get("pro").unwrap().limits[0];
        assert_eq!(free.identity(), pro.identity());
    }

    #[test]
    fn overrides_merge_over_the_tier_and_win() {
        let p = Policy::from_yaml(DOC).unwrap();
        let tier = p.tiers().get("pro");
        let own = compile_overrides(
            tier,
            &serde_json::json!({"requests": {"limit": 5000, "burst": null}, "daily": {"algorithm": "quota", "limit": 50, "period": "day"}}),
            "overrides",
        )
        .unwrap();
        let plan = p.plan_keyed(&keyed(), 1, Some("pro"), &own);
        let got: Vec<_> = plan
            .checks
            .iter()
            .map(|c| (c.rule.name.as_str(), c.rule.limit.quota()))
            .collect();
        assert_eq!(
            got,
            [
                ("per-ip", 100),
                ("requests", 5000),
                ("team", 1000),
                ("daily", 50)
            ]
        );
    }

    #[test]
    fn bad_overrides_name_their_path() {
        let p = Policy::from_yaml(DOC).unwrap();
        let err = compile_overrides(
            p.tiers().get("free"),
            &serde_json::json!({"requests": {"limit": 0}, "x": {"limit": 5}, "y": 3}),
            "overrides",
        )
        .unwrap_err();
        let text: Vec<_> = err.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "overrides.requests.limit: must be at least 1",
                "overrides.x.period: missing",
                "overrides.y: expected a mapping, found 3",
            ]
        );
    }

    #[test]
    fn tier_errors_name_their_path() {
        let err = Policy::from_yaml(
            r#"
rules: [{ name: r, key: "ip:{ip}", limit: 1, period: 1s }]
tiers:
  free:
    limits:
      - { name: r, limit: 1, period: 1s }
      - { name: a, limit: 1, period: 1s, per: team }
      - { name: b, limit: 1, period: 1s, match: { user: x } }
  "bad name!": {}
"#,
        )
        .unwrap_err();
        let text: Vec<_> = err.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                r#"tiers.bad name!: "bad name!" is not a tier name (letters, digits, _ - . /; at most 128)"#,
                r#"tiers.free.limits[0].name: "r" is also a rule's name; a tier limit needs a name of its own"#,
                r#"tiers.free.limits[1].per: "team" is not a counter owner (expected key or owner)"#,
                "tiers.free.limits[2].match: unknown field (expected one of: name, key, algorithm, limit, period, burst, anchor, lease_ttl, time_zone, rollover_cap, on_exceed, shadow, on_store_error, per)",
            ]
        );
    }
}

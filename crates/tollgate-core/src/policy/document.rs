//! A whole policy document compiled: its rules, lists, Envoy domains and tiers, every error
//! at once with its path.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::lists::Lists;
use super::parse::{
    ConfigErrors, Errors, MAX_RULES, as_map, check_fields, check_names, compile_rule, get_cidrs,
    get_strings, get_u64, join, show,
};
use super::settings::Setting;
use super::{Policy, PolicyOptions, descriptors, tiers};

/// The policy's sections: the top-level fields of a policy document.
pub(crate) const TOP_FIELDS: &[Setting] = &[
    Setting::new(
        "rules",
        "list of rules",
        "The rules every request is checked against.",
    )
    .default("none")
    .range("at most 100,000"),
    Setting::new("allow", "mapping", "Subjects no limit applies to."),
    Setting::new(
        "deny",
        "mapping",
        "Subjects always refused (`BLOCKED`); deny wins over allow.",
    ),
    Setting::new(
        "subject",
        "mapping",
        "How attributes are read into subjects.",
    ),
    Setting::new(
        "envoy",
        "list of documents",
        "envoyproxy/ratelimit configurations, for the Envoy rate limit service.",
    ),
    Setting::new(
        "tiers",
        "mapping of tiers",
        "The limits an API key gets from its tier, by tier name.",
    ),
];

/// The fields of `subject`.
pub(crate) const SUBJECT_FIELDS: &[Setting] = &[Setting::new(
    "ipv6_prefix",
    "integer",
    "IPv6 clients are counted by their network of this prefix length, so rotating through \
     one allocation does not escape a limit.",
)
.default("`64`")
.range("0 to 128")];

/// The fields of `allow` and `deny`.
pub(crate) const LIST_FIELDS: &[Setting] = &[
    Setting::new(
        "ips",
        "CIDR or list of CIDRs",
        "Client addresses or networks.",
    ),
    Setting::new("users", "string or list", "User ids."),
    Setting::new("keys", "string or list", "API key ids."),
    Setting::new("tenants", "string or list", "Tenants."),
];

/// Compiles the policy held by `doc`. Fields named in `others` belong to the caller (the
/// server's `server`, `store`, …) and are skipped; any other unknown field is an error.
pub fn compile(doc: &Value, others: &[&str]) -> Result<Policy, ConfigErrors> {
    let mut errs = Errors::default();
    let empty = Map::new();
    let map = match doc {
        Value::Null => &empty,
        v => as_map(v, "", &mut errs).unwrap_or(&empty),
    };
    let allowed: Vec<&str> = TOP_FIELDS
        .iter()
        .map(|s| s.name)
        .chain(others.iter().copied())
        .collect();
    check_names(map, "", &allowed, &mut errs);

    let mut options = PolicyOptions::default();
    if let Some(v) = map.get("subject")
        && let Some(m) = as_map(v, "subject", &mut errs)
    {
        check_fields(m, "subject", SUBJECT_FIELDS, &mut errs);
        if let Some(p) = get_u64(m, "ipv6_prefix", "subject", &mut errs) {
            match u8::try_from(p) {
                Ok(p) if p <= 128 => options.ipv6_prefix = p,
                _ => errs.push(
                    "subject.ipv6_prefix",
                    format!("{p} is not a prefix length (0 to 128)"),
                ),
            }
        }
    }

    let mut rules = Vec::new();
    match map.get("rules") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            if items.len() > MAX_RULES {
                errs.push(
                    "rules",
                    format!("{} rules; at most {MAX_RULES} are allowed", items.len()),
                );
            }
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for (i, item) in items.iter().enumerate().take(MAX_RULES) {
                let path = format!("rules[{i}]");
                if let Some(name) = item.get("name").and_then(Value::as_str)
                    && let Some(first) = seen.insert(name, i)
                {
                    errs.push(
                        &join(&path, "name"),
                        format!("duplicate rule name {name:?} (first used at rules[{first}])"),
                    );
                }
                if let Some(rule) = compile_rule(item, &path, &mut errs) {
                    rules.push(rule);
                }
            }
        }
        Some(other) => errs.push(
            "rules",
            format!("expected a list of rules, found {}", show(other)),
        ),
    }
    let allow = map
        .get("allow")
        .map(|v| compile_lists(v, "allow", &mut errs))
        .unwrap_or_default();
    let deny = map
        .get("deny")
        .map(|v| compile_lists(v, "deny", &mut errs))
        .unwrap_or_default();
    let descriptors = map
        .get("envoy")
        .map(|v| descriptors::compile(v, "envoy", &mut errs))
        .unwrap_or_default();
    let rule_names: HashSet<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    let tiers = map
        .get("tiers")
        .map(|v| tiers::compile(v, "tiers", &rule_names, &mut errs))
        .unwrap_or_default();
    if !errs.is_empty() {
        return Err(ConfigErrors(errs.0));
    }
    Ok(Policy::new(rules, allow, deny, options)
        .with_descriptors(descriptors)
        .with_tiers(tiers))
}

fn compile_lists(v: &Value, path: &str, errs: &mut Errors) -> Lists {
    let mut lists = Lists::default();
    let Some(map) = as_map(v, path, errs) else {
        return lists;
    };
    check_fields(map, path, LIST_FIELDS, errs);
    if let Some(v) = map.get("ips") {
        lists.ips = get_cidrs(v, &join(path, "ips"), errs);
    }
    for (field, set) in [
        ("users", &mut lists.users),
        ("keys", &mut lists.keys),
        ("tenants", &mut lists.tenants),
    ] {
        if let Some(v) = map.get(field) {
            set.extend(
                get_strings(v, &join(path, field), errs)
                    .into_iter()
                    .map(Into::into),
            );
        }
    }
    lists
}

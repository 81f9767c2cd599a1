//! Reading a policy's YAML: values into settings, every error at once with its path, and
//! one rule compiled from its fields (whole documents are compiled in `document`).

use std::fmt;

use jiff::tz::TimeZone;
use serde_json::{Map, Value};
use thiserror::Error;

use super::duration::parse_duration;
use super::matcher::{Cidr, Condition, Pattern};
use super::rule::{FailPolicy, Rule};
use super::settings::{Setting, names};
use super::template::KeyTemplate;
use crate::algorithm::{
    AlgorithmKind, Anchor, Calendar, Concurrency, FixedWindow, Gcra, Limit, MAX_LOG_LIMIT, Quota,
    SlidingLog, SlidingWindow, TokenBucket,
};
use crate::subject::Attr;
use crate::time::{NANOS_PER_SEC, Nanos};

/// The largest `limit` (and `limit + burst`) any rule accepts.
pub const MAX_LIMIT: u64 = 1_000_000_000_000;

/// The most rules one policy may hold.
pub const MAX_RULES: usize = 100_000;

/// One configuration error, at a path such as `rules[2].period`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Where: `rules[2].period`, or empty for the whole document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Every error found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects errors while a document is walked.
#[derive(Debug, Default)]
pub struct Errors(pub(crate) Vec<ConfigError>);

impl Errors {
    /// Records `message` at `path`.
    pub fn push(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(ConfigError {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors, or `Ok(value)` when there are none.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.0))
        }
    }
}

/// `base.field`, or `field` at the root.
pub fn join(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_owned()
    } else {
        format!("{base}.{field}")
    }
}

/// Parses YAML into a document tree; syntax errors carry their line and column.
pub fn parse_yaml(text: &str) -> Result<Value, ConfigErrors> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            path: String::new(),
            message: format!("invalid YAML: {e}"),
        }])
    })
}

/// A short rendering of a value for messages.
pub fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        let cut = (0..=57).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

/// Reports every field of `map` that is not one of the `allowed` settings: the table a
/// parser passes here is also the one the configuration reference is printed from.
pub fn check_fields(map: &Map<String, Value>, path: &str, allowed: &[Setting], errs: &mut Errors) {
    check_names(map, path, &names(allowed), errs);
}

/// Reports every field of `map` not in `allowed`, for mappings whose fields are the
/// sections described each on their own (the document's top level).
pub(crate) fn check_names(
    map: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
    errs: &mut Errors,
) {
    for k in map.keys() {
        if !allowed.contains(&k.as_str()) {
            errs.push(
                &join(path, k),
                format!("unknown field (expected one of: {})", allowed.join(", ")),
            );
        }
    }
}

/// `value` as a map, or an error.
pub fn as_map<'v>(
    value: &'v Value,
    path: &str,
    errs: &mut Errors,
) -> Option<&'v Map<String, Value>> {
    match value {
        Value::Object(m) => Some(m),
        other => {
            errs.push(path, format!("expected a mapping, found {}", show(other)));
            None
        }
    }
}

/// A string field.
pub fn get_str<'v>(
    map: &'v Map<String, Value>,
    field: &str,
    path: &str,
    errs: &mut Errors,
) -> Option<&'v str> {
    match map.get(field)? {
        Value::String(s) => Some(s),
        other => {
            errs.push(
                &join(path, field),
                format!("expected a string, found {}", show(other)),
            );
            None
        }
    }
}

/// A non-negative integer field.
pub fn get_u64(
    map: &Map<String, Value>,
    field: &str,
    path: &str,
    errs: &mut Errors,
) -> Option<u64> {
    let v = map.get(field)?;
    match v.as_u64() {
        Some(n) => Some(n),
        None => {
            errs.push(
                &join(path, field),
                format!("expected a non-negative integer, found {}", show(v)),
            );
            None
        }
    }
}

/// A boolean field.
pub fn get_bool(
    map: &Map<String, Value>,
    field: &str,
    path: &str,
    errs: &mut Errors,
) -> Option<bool> {
    let v = map.get(field)?;
    match v.as_bool() {
        Some(b) => Some(b),
        None => {
            errs.push(
                &join(path, field),
                format!("expected true or false, found {}", show(v)),
            );
            None
        }
    }
}

/// A duration field: a string such as `1m` or a number of seconds.
pub fn get_duration(
    map: &Map<String, Value>,
    field: &str,
    path: &str,
    errs: &mut Errors,
) -> Option<Nanos> {
    let v = map.get(field)?;
    let parsed = match v {
        Value::String(s) => parse_duration(s),
        Value::Number(n) => n.as_u64().and_then(|s| s.checked_mul(NANOS_PER_SEC)),
        _ => None,
    };
    if parsed.is_none() {
        errs.push(
            &join(path, field),
            format!(
                "{} is not a duration (e.g. 500ms, 10s, 1m, 1h, 1d)",
                show(v)
            ),
        );
    }
    parsed
}

/// A string or a list of strings.
/// A CIDR block or address, or a list of them; each bad one is an error at `path[i]`.
pub fn get_cidrs(v: &Value, path: &str, errs: &mut Errors) -> Vec<Cidr> {
    let mut out = Vec::new();
    for (i, text) in get_strings(v, path, errs).iter().enumerate() {
        match Cidr::parse(text) {
            Ok(c) => out.push(c),
            Err(e) => errs.push(&format!("{path}[{i}]"), e.to_string()),
        }
    }
    out
}

pub(crate) fn get_strings(v: &Value, path: &str, errs: &mut Errors) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                other => {
                    errs.push(
                        &format!("{path}[{i}]"),
                        format!("expected a string, found {}", show(other)),
                    );
                    None
                }
            })
            .collect(),
        other => {
            errs.push(
                path,
                format!(
                    "expected a string or a list of strings, found {}",
                    show(other)
                ),
            );
            Vec::new()
        }
    }
}

/// The fields of a rule (and, but for `match`, of a tier limit).
pub(crate) const RULE_FIELDS: &[Setting] = &[
    Setting::new(
        "name",
        "string",
        "Names the limit in headers, metrics and errors; unique among the rules and tier limits.",
    )
    .range("letters, digits, `_ - . /`; at most 128; required"),
    Setting::new(
        "match",
        "mapping",
        "Conditions that must all hold: `user`, `ip`, `method`, `path`, `tenant`, `key` or \
         `attr.NAME`, each to a value or a list of values (globs with `*` and `?`; CIDR blocks \
         for `ip`).",
    )
    .default("every request"),
    Setting::new(
        "key",
        "template",
        "The counter key, over attributes: `user:{user}`, `{tenant}/{path}`. A request without \
         an attribute the template names is not counted by the rule.",
    )
    .default("one counter for every request"),
    Setting::new("algorithm", "string", "How the rule counts (see [Algorithms](../concepts/algorithms.md)).")
        .default("`gcra`")
        .range("`gcra`, `token_bucket`, `sliding_window`, `sliding_log`, `fixed_window`, `concurrency`, `quota`"),
    Setting::new("limit", "integer", "Units per period (for `concurrency`: units in flight).")
        .range("1 to 10¹²; `sliding_window` up to 2³²−1, `sliding_log` up to 100,000; required"),
    Setting::new(
        "period",
        "duration",
        "The window. For `quota`, a calendar period instead: `hour`, `day`, `week`, `month` or \
         `year`. `concurrency` takes none.",
    )
    .range("longer than zero; required but for `concurrency`"),
    Setting::new(
        "burst",
        "integer",
        "`gcra` and `token_bucket`: units admitted at once beyond `limit`.",
    )
    .default("`0`")
    .range("`limit + burst` at most 10¹²"),
    Setting::new(
        "anchor",
        "string",
        "`fixed_window`: windows start on the clock, or at their counter's first request.",
    )
    .default("`clock`")
    .range("`clock`, `first_hit`"),
    Setting::new(
        "lease_ttl",
        "duration",
        "`concurrency`: the longest a lease lasts unreleased.",
    )
    .default("`60s`")
    .range("longer than zero"),
    Setting::new(
        "time_zone",
        "string",
        "`quota`: the IANA time zone calendar periods are cut in.",
    )
    .default("`UTC`")
    .range("an IANA name, e.g. `Europe/Paris`"),
    Setting::new(
        "rollover_cap",
        "integer",
        "`quota`: the most unused units a period carries into the next.",
    )
    .default("`0`")
    .range("0 to 2³²−1"),
    Setting::new(
        "on_exceed",
        "mapping",
        "A penalty after a denial: `{ block_for: 10m }` refuses every request on the counter \
         (`BLOCKED`) for that long.",
    )
    .default("no penalty"),
    Setting::new("shadow", "boolean", "Count and report the rule, never deny by it.")
        .default("`false`"),
    Setting::new(
        "on_store_error",
        "string",
        "What the rule answers when the store fails: admit, refuse (`UNAVAILABLE`), or count \
         in this process alone.",
    )
    .default("`allow`")
    .range("`allow`, `deny`, `local`"),
];

/// The fields of a rule's `on_exceed`.
pub(crate) const ON_EXCEED_FIELDS: &[Setting] = &[Setting::new(
    "block_for",
    "duration",
    "How long a counter refuses every request after a denial.",
)
.range("longer than zero")];

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
}

pub(crate) fn compile_rule(v: &Value, path: &str, errs: &mut Errors) -> Option<Rule> {
    let map = as_map(v, path, errs)?;
    let before = errs.0.len();
    check_fields(map, path, RULE_FIELDS, errs);
    let at = |f: &str| join(path, f);

    let name = get_str(map, "name", path, errs);
    match name {
        None if !map.contains_key("name") => {
            errs.push(&at("name"), "missing (every rule needs a unique name)")
        }
        Some(n) if !valid_name(n) => errs.push(
            &at("name"),
            format!("{n:?} is not a rule name (letters, digits, _ - . /; at most 128)"),
        ),
        _ => {}
    }

    let conditions = map
        .get("match")
        .map(|m| compile_match(m, &at("match"), errs))
        .unwrap_or_default();

    let text = get_str(map, "key", path, errs).unwrap_or("");
    let key = match KeyTemplate::parse(text) {
        Ok(t) => Some(t),
        Err(e) => {
            errs.push(&at("key"), format!("{text:?}: {e}"));
            None
        }
    };

    let kind = match get_str(map, "algorithm", path, errs) {
        None => Some(AlgorithmKind::Gcra),
        Some(a) => {
            let k = AlgorithmKind::from_name(a);
            if k.is_none() {
                let names: Vec<_> = AlgorithmKind::ALL.iter().map(|k| k.name()).collect();
                errs.push(
                    &at("algorithm"),
                    format!(
                        "{a:?} is not an algorithm (expected one of: {})",
                        names.join(", ")
                    ),
                );
            }
            k
        }
    };

    let limit = match (map.get("limit"), get_u64(map, "limit", path, errs)) {
        (None, _) => {
            errs.push(&at("limit"), "missing");
            None
        }
        (_, Some(0)) => {
            errs.push(&at("limit"), "must be at least 1");
            None
        }
        (_, Some(n)) if n > MAX_LIMIT => {
            errs.push(
                &at("limit"),
                format!("{n} is above the maximum of {MAX_LIMIT}"),
            );
            None
        }
        (_, n) => n,
    };

    // The algorithm's own fields are checked even when the limit is wrong, so every error
    // shows at once.
    let compiled = kind.and_then(|kind| compile_limit(kind, limit.unwrap_or(1), map, path, errs));

    let block_for = map.get("on_exceed").and_then(|v| {
        let p = at("on_exceed");
        let m = as_map(v, &p, errs)?;
        check_fields(m, &p, ON_EXCEED_FIELDS, errs);
        let d = get_duration(m, "block_for", &p, errs)?;
        if d == 0 {
            errs.push(&join(&p, "block_for"), "must be longer than zero");
        }
        Some(d)
    });
    let shadow = get_bool(map, "shadow", path, errs).unwrap_or(false);
    let on_store_error = match get_str(map, "on_store_error", path, errs) {
        None => FailPolicy::default(),
        Some(s) => FailPolicy::from_name(s).unwrap_or_else(|| {
            errs.push(
                &at("on_store_error"),
                format!("{s:?} is not a fail policy (expected allow, deny or local)"),
            );
            FailPolicy::default()
        }),
    };

    if errs.0.len() > before {
        return None;
    }
    let mut rule = Rule::new(name?, compiled?, key?);
    rule.conditions = conditions;
    rule.block_for = block_for;
    rule.shadow = shadow;
    rule.on_store_error = on_store_error;
    Some(rule)
}

fn compile_match(v: &Value, path: &str, errs: &mut Errors) -> Vec<Condition> {
    let Some(map) = as_map(v, path, errs) else {
        return Vec::new();
    };
    let mut conditions = Vec::new();
    for (name, value) in map {
        let p = join(path, name);
        let Some(attr) = Attr::parse(name) else {
            errs.push(&p, format!("unknown attribute {name:?} (expected user, ip, method, path, tenant, key or attr.NAME)"));
            continue;
        };
        let texts = get_strings(value, &p, errs);
        if texts.is_empty() && matches!(value, Value::Array(_)) {
            errs.push(&p, "an empty list matches nothing");
        }
        let mut patterns = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            match Pattern::parse(&attr, text) {
                Ok(pat) => patterns.push(pat),
                Err(e) => {
                    let ip = if matches!(value, Value::Array(_)) {
                        format!("{p}[{i}]")
                    } else {
                        p.clone()
                    };
                    errs.push(&ip, e.to_string());
                }
            }
        }
        conditions.push(Condition { attr, patterns });
    }
    conditions
}

/// Parameters that belong to some algorithms only.
const SPECIFIC: &[(&str, &[AlgorithmKind])] = &[
    ("burst", &[AlgorithmKind::Gcra, AlgorithmKind::TokenBucket]),
    ("anchor", &[AlgorithmKind::FixedWindow]),
    ("lease_ttl", &[AlgorithmKind::Concurrency]),
    ("time_zone", &[AlgorithmKind::Quota]),
    ("rollover_cap", &[AlgorithmKind::Quota]),
];

fn compile_limit(
    kind: AlgorithmKind,
    limit: u64,
    map: &Map<String, Value>,
    path: &str,
    errs: &mut Errors,
) -> Option<Limit> {
    let at = |f: &str| join(path, f);
    let before = errs.0.len();
    for (field, kinds) in SPECIFIC {
        if map.contains_key(*field) && !kinds.contains(&kind) {
            let names: Vec<_> = kinds.iter().map(|k| k.name()).collect();
            errs.push(
                &at(field),
                format!("applies only to {}", names.join(" and ")),
            );
        }
    }
    let period = match kind {
        AlgorithmKind::Concurrency => {
            if map.contains_key("period") {
                errs.push(
                    &at("period"),
                    "concurrency limits have no period; use lease_ttl",
                );
            }
            None
        }
        AlgorithmKind::Quota => None,
        _ => match get_duration(map, "period", path, errs) {
            Some(0) => {
                errs.push(&at("period"), "must be longer than zero");
                None
            }
            Some(p) => Some(p),
            None => {
                if !map.contains_key("period") {
                    errs.push(&at("period"), "missing");
                }
                None
            }
        },
    };
    let burst = get_u64(map, "burst", path, errs).unwrap_or(0);
    if limit.saturating_add(burst) > MAX_LIMIT {
        errs.push(
            &at("burst"),
            format!("limit + burst is above the maximum of {MAX_LIMIT}"),
        );
    }
    let compiled = match kind {
        AlgorithmKind::Gcra => period.map(|p| Limit::Gcra(Gcra::new(limit, p, burst))),
        AlgorithmKind::TokenBucket => {
            period.map(|p| Limit::TokenBucket(TokenBucket::new(limit, p, burst)))
        }
        AlgorithmKind::SlidingWindow => {
            if limit > u64::from(u32::MAX) {
                errs.push(
                    &at("limit"),
                    format!("sliding_window counts up to {}", u32::MAX),
                );
            }
            period.map(|p| Limit::SlidingWindow(SlidingWindow::new(limit, p)))
        }
        AlgorithmKind::SlidingLog => {
            if limit > MAX_LOG_LIMIT {
                errs.push(&at("limit"), format!("sliding_log keeps one entry per request and accepts at most {MAX_LOG_LIMIT}; use sliding_window for more"));
            }
            period.map(|p| Limit::SlidingLog(SlidingLog::new(limit, p)))
        }
        AlgorithmKind::FixedWindow => {
            let anchor = match get_str(map, "anchor", path, errs) {
                None | Some("clock") => Anchor::Clock,
                Some("first_hit") => Anchor::FirstHit,
                Some(other) => {
                    errs.push(
                        &at("anchor"),
                        format!("{other:?} is not an anchor (expected clock or first_hit)"),
                    );
                    Anchor::Clock
                }
            };
            period.map(|p| Limit::FixedWindow(FixedWindow::new(limit, p, anchor)))
        }
        AlgorithmKind::Concurrency => {
            let ttl = get_duration(map, "lease_ttl", path, errs).unwrap_or(60 * NANOS_PER_SEC);
            if ttl == 0 {
                errs.push(&at("lease_ttl"), "must be longer than zero");
            }
            Some(Limit::Concurrency(Concurrency::new(limit, ttl)))
        }
        AlgorithmKind::Quota => {
            let calendar = match map.get("period") {
                None => {
                    errs.push(&at("period"), "missing (hour, day, week, month or year)");
                    None
                }
                Some(Value::String(s)) => {
                    let c = Calendar::from_name(s);
                    if c.is_none() {
                        errs.push(&at("period"), format!("{s:?} is not a calendar period (expected hour, day, week, month or year)"));
                    }
                    c
                }
                Some(other) => {
                    errs.push(
                        &at("period"),
                        format!(
                            "expected hour, day, week, month or year, found {}",
                            show(other)
                        ),
                    );
                    None
                }
            };
            let tz = match get_str(map, "time_zone", path, errs) {
                None | Some("UTC") | Some("utc") => Some(TimeZone::UTC),
                Some(name) => match TimeZone::get(name) {
                    Ok(tz) => Some(tz),
                    Err(_) => {
                        errs.push(
                            &at("time_zone"),
                            format!("{name:?} is not an IANA time zone (e.g. Europe/Paris)"),
                        );
                        None
                    }
                },
            };
            let cap = get_u64(map, "rollover_cap", path, errs).unwrap_or(0);
            if cap > u64::from(u32::MAX) {
                errs.push(&at("rollover_cap"), format!("at most {}", u32::MAX));
            }
            match (calendar, tz) {
                (Some(c), Some(tz)) => Some(Limit::Quota(Quota::new(limit, c, tz, cap))),
                _ => None,
            }
        }
    };
    if errs.0.len() > before {
        return None;
    }
    compiled
}

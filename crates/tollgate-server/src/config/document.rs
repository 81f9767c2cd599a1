//! The document's two parts: the server's sections and the policy.

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{ConfigErrors, parse_yaml};
use tollgate_core::policy::settings::Setting;

/// Top-level sections that belong to the server, not the policy.
pub const SERVER_SECTIONS: &[&str] = &[
    "server",
    "store",
    "admin",
    "envoy_files",
    "database",
    "proxy",
    "billing",
    "alerts",
    "slo",
    "telemetry",
    "debug",
];

/// The server's sections as top-level fields, described for the reference.
pub(crate) const SECTION_FIELDS: &[Setting] = &[
    Setting::new("server", "mapping", "Listeners, timeouts and sizes."),
    Setting::new("store", "mapping", "Where counters live: memory or Redis."),
    Setting::new(
        "admin",
        "mapping",
        "Who may use the admin API, its own limits, CORS.",
    ),
    Setting::new(
        "envoy_files",
        "list of paths",
        "envoyproxy/ratelimit files added to `envoy`, relative to the configuration's folder; a \
         `*` or `?` in a file name takes every matching file of its folder.",
    )
    .default("none"),
    Setting::new(
        "database",
        "mapping",
        "The records: API keys, usage, violations, audit. Absent: no API keys.",
    ),
    Setting::new(
        "proxy",
        "mapping",
        "The reverse proxy. Absent: no proxy listens.",
    ),
    Setting::new(
        "billing",
        "mapping",
        "Billing periods and each tier's price plan; needs `database`.",
    ),
    Setting::new(
        "alerts",
        "mapping",
        "Alert channels and rules, and owner outreach; needs `database`.",
    ),
    Setting::new("slo", "mapping", "Service-level objectives."),
    Setting::new(
        "telemetry",
        "mapping",
        "Traces over OTLP. Absent (and no `OTEL_EXPORTER_OTLP_ENDPOINT`): no traces.",
    ),
    Setting::new(
        "debug",
        "mapping",
        "The debugging routes. Absent: not served.",
    ),
];

/// Parses YAML read from `name` (a file's path), whose syntax errors point into it by that
/// name.
pub fn parse_named(text: &str, name: &str) -> Result<Value, ConfigErrors> {
    parse_yaml(text).map_err(|mut errs| {
        for e in &mut errs.0 {
            e.message = e.message.replace("<input>", name);
        }
        errs
    })
}

/// Settings a running server reads once, at start: a reload that changes them leaves them
/// as they were until the next start. Everything else (the policy, `envoy_files`, admin
/// credentials and the admin API's limits) changes on reload.
const READ_AT_START: &[&str] = &[
    "server",
    "store",
    "database",
    "proxy",
    "billing",
    "alerts",
    "slo",
    "telemetry",
    "debug",
    "admin.cors_origins",
];

/// The settings read only at start that differ between `old` and `new`, as paths
/// (`server.listen`), in document order.
pub fn restart_needed(old: &Value, new: &Value) -> Vec<String> {
    let mut changed = Vec::new();
    for path in READ_AT_START {
        let empty = Value::Object(Map::new());
        let (a, b) = (at(old, path), at(new, path));
        // A section added or taken away is its fields changing one by one.
        let (a, b) = match (a, b) {
            (None, Some(Value::Object(_))) => (Some(&empty), b),
            (Some(Value::Object(_)), None) => (a, Some(&empty)),
            other => other,
        };
        match (a, b) {
            (Some(Value::Object(a)), Some(Value::Object(b))) => {
                let mut fields: Vec<&String> = a.keys().chain(b.keys()).collect();
                fields.sort();
                fields.dedup();
                for field in fields {
                    if a.get(field) != b.get(field) {
                        changed.push(format!("{path}.{field}"));
                    }
                }
            }
            (a, b) if a != b => changed.push((*path).to_owned()),
            _ => {}
        }
    }
    changed
}

/// The value at a dotted `path` of `doc`.
fn at<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |node, part| node.get(part))
}

/// The policy part of a document: its top-level fields other than the server sections.
pub fn policy_part(doc: &Value) -> Value {
    match doc {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !SERVER_SECTIONS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => Value::Object(Map::new()),
    }
}

/// `doc` with its policy part replaced by `policy`.
pub fn with_policy(doc: &Value, policy: &Value) -> Value {
    let mut out = match doc {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| SERVER_SECTIONS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Map::new(),
    };
    if let Value::Object(p) = policy {
        for (k, v) in p {
            if !SERVER_SECTIONS.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn settings_read_at_start_are_named_when_they_change() {
        let old = json!({
            "server": {"listen": "127.0.0.1:8080", "max_body": "64KiB"},
            "admin": {"tokens": [], "cors_origins": ["https://a.example"]},
            "rules": [],
        });
        let new = json!({
            "server": {"listen": "127.0.0.1:9090", "max_body": "64KiB", "idle_timeout": "5s"},
            "store": {"kind": "redis"},
            "admin": {"tokens": [{"name": "b"}], "cors_origins": ["https://b.example"]},
            "rules": [{"name": "x"}],
        });
        assert_eq!(
            restart_needed(&old, &new),
            [
                "server.idle_timeout",
                "server.listen",
                "store.kind",
                "admin.cors_origins"
            ]
        );
        assert!(restart_needed(&new, &new).is_empty());
    }
}

//! Hostile input never panics: random YAML, random documents and random attributes each
//! give a policy, a subject or errors with paths.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod common;

use common::block_on;
use proptest::prelude::*;
use serde_json::{Map, Value};
use tollgate_core::time::NANOS_PER_SEC as S;
use tollgate_core::{Limiter, MemoryStore, MemoryStoreConfig, Mode, Policy, Subject};

const FIELDS: &[&str] = &[
    "rules",
    "allow",
    "deny",
    "subject",
    "name",
    "match",
    "key",
    "algorithm",
    "limit",
    "period",
    "burst",
    "anchor",
    "lease_ttl",
    "time_zone",
    "rollover_cap",
    "on_exceed",
    "block_for",
    "shadow",
    "on_store_error",
    "ips",
    "users",
    "ipv6_prefix",
    "user",
    "ip",
    "path",
    "method",
    "attr.plan",
];

const WORDS: &[&str] = &[
    "gcra",
    "token_bucket",
    "sliding_window",
    "sliding_log",
    "fixed_window",
    "concurrency",
    "quota",
    "1m",
    "0",
    "-1",
    "1 mintue",
    "day",
    "month",
    "Europe/Paris",
    "first_hit",
    "allow",
    "deny",
    "local",
    "{user}",
    "{ip}:{path}",
    "{nope}",
    "{",
    "*",
    "/api/*",
    "10.0.0.0/8",
    "::/0",
    "300.0.0.1",
    "18446744073709551615",
    "99999999999999999999999",
    "ms",
    "",
];

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..100).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(WORDS).prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..8).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(FIELDS).prop_map(|f| format!("{f}: ")),
        prop::sample::select(WORDS).prop_map(str::to_string),
        prop::sample::select(
            &[
                "\n", "\n  ", "\n  - ", "- ", "[", "]", "{", "}", ", ", ": ", "&a ", "*a",
                "!!str ", "'", "\"", "#", "|", ">", "---", "..."
            ][..]
        )
        .prop_map(str::to_string),
        "[ -~]{0,8}",
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn random_yaml_gives_a_policy_or_errors(text in yamlish()) {
        if let Err(errs) = Policy::from_yaml(&text) {
            prop_assert!(!errs.0.is_empty());
            prop_assert!(errs.0.iter().all(|e| !e.message.is_empty()));
        }
    }

    #[test]
    fn random_documents_give_a_policy_or_errors_with_paths(doc in value()) {
        let doc = match doc {
            Value::Object(mut m) => {
                // Steer most documents into the rules list, where most of the checks are.
                if let Some(v) = m.remove("rules") {
                    m.insert("rules".into(), Value::Array(vec![v]));
                }
                Value::Object(m)
            }
            other => other,
        };
        match Policy::from_value(&doc, &[]) {
            Ok(p) => {
                let s = Subject::new().with("user", "1").unwrap().with("ip", "10.1.1.1").unwrap();
                let _ = p.plan(&s, 1);
            }
            Err(errs) => {
                prop_assert!(!errs.0.is_empty());
                for e in &errs.0 {
                    // Inside a mapping every error names where it is.
                    if matches!(doc, Value::Object(_)) {
                        prop_assert!(!e.path.is_empty(), "{}", e);
                    }
                    prop_assert!(!e.message.is_empty());
                }
            }
        }
    }

    #[test]
    fn random_attributes_give_a_subject_or_an_error(
        pairs in prop::collection::vec((prop_oneof![prop::sample::select(&["user", "ip", "method", "path", "tenant", "key", "attr.plan", "attr.", "x"][..]).prop_map(str::to_string), ".{0,12}"], prop_oneof![".{0,40}", "[ -~]{0,2000}", prop::sample::select(&["::ffff:1.2.3.4", "[::1]", "/a/../../b/%2e%2E/c?x", "get", "1.2.3.4", "fe80::1%eth0"][..]).prop_map(str::to_string)]), 0..12),
        cost in 0u64..1_000_000_000_000_000,
    ) {
        let policy = Policy::from_yaml(
            "rules:
  - {name: a, key: '{user}:{ip}', limit: 3, period: 1s}
  - {name: b, match: {path: '/a*', method: [GET, POST]}, key: '{path}', algorithm: sliding_log, limit: 2, period: 1s}
  - {name: c, match: {attr.plan: '*'}, key: '{attr.plan}', algorithm: quota, limit: 5, period: month, rollover_cap: 2}
  - {name: d, match: {ip: '1.0.0.0/8'}, key: '{ip}', algorithm: concurrency, limit: 2}",
        ).unwrap();
        let limiter = Limiter::new(MemoryStore::new(MemoryStoreConfig { capacity: 10_000 }), policy);
        let mut s = Subject::new();
        for (name, value) in &pairs {
            let _ = s.set(name, value);
        }
        let p = limiter.policy();
        let d = block_on(limiter.decide(&p, &s, cost, 1_767_571_200 * S, Mode::Consume));
        let _ = d.headers();
        prop_assert!(d.allowed || !d.limits.is_empty());
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let deep = format!("rules: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(Policy::from_yaml(&deep).is_err());
    let deep = "- ".repeat(50_000);
    let _ = Policy::from_yaml(&deep);
}

#[test]
fn alias_bombs_are_refused() {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
            p = i - 1
        ));
    }
    assert!(Policy::from_yaml(&yaml).is_err());
}

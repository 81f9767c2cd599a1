//! Parsing, validation and compilation of policies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs
)]

use tollgate_core::policy::{Listed, Policy};
use tollgate_core::subject::Subject;

const ISSUE_EXAMPLE: &str = r#"
rules:
  - name: per-user
    match: { user: "*" }
    key: "user:{user}"
    algorithm: gcra
    limit: 100
    period: 1m
    burst: 20
    on_exceed: { block_for: 10m }
    shadow: false
    on_store_error: allow
  - name: login
    match: { method: POST, path: "/login" }
    key: "ip:{ip}"
    limit: 5
    period: 1m
allow: { ips: ["10.0.0.0/8"], users: ["ops"] }
deny:  { ips: ["203.0.113.0/24"] }
"#;

fn subject(pairs: &[(&str, &str)]) -> Subject {
    let mut s = Subject::new();
    for (k, v) in pairs {
        s.set(k, v).unwrap();
    }
    s
}

#[test]
fn the_documented_example_compiles_and_plans() {
    let p = Policy::from_yaml(ISSUE_EXAMPLE).unwrap();
    assert_eq!(p.rules().len(), 2);
    let s = subject(&[
        ("user", "42"),
        ("ip", "198.51.100.1"),
        ("method", "post"),
        ("path", "/a/../login/"),
    ]);
    let plan = p.plan(&s, 1);
    let keys: Vec<_> = plan
        .checks
        .iter()
        .map(|c| (c.rule.name.as_str(), &*c.key))
        .collect();
    assert_eq!(
        keys,
        [("per-user", "user:42"), ("login", "ip:198.51.100.1")]
    );

    let anonymous_get = subject(&[
        ("ip", "198.51.100.1"),
        ("method", "GET"),
        ("path", "/login"),
    ]);
    assert!(p.plan(&anonymous_get, 1).checks.is_empty());

    assert_eq!(
        p.plan(&subject(&[("ip", "10.1.2.3"), ("user", "1")]), 1)
            .listed,
        Some(Listed::Allowed)
    );
    assert_eq!(
        p.plan(&subject(&[("user", "ops")]), 1).listed,
        Some(Listed::Allowed)
    );
    // Deny wins over allow.
    assert_eq!(
        p.plan(&subject(&[("ip", "203.0.113.9"), ("user", "ops")]), 1)
            .listed,
        Some(Listed::Denied)
    );
}

#[test]
fn every_error_is_reported_with_its_path() {
    let yaml = r#"
rules:
  - name: a
    limit: 0
    period: 1 mintue
    colour: red
  - name: a
    key: "user:{usr}"
    limit: 5
    period: 1m
  - name: b
    algorithm: leaky
    limit: "ten"
  - name: c
    algorithm: sliding_window
    limit: 10
    period: 1s
    burst: 3
    match: { ip: "300.1.1.1", shoe: x }
  - name: d
    algorithm: quota
    limit: 10
    period: fortnight
    time_zone: Mars/Olympus
  - name: e
    limit: 10
    period: 1s
    on_store_error: maybe
    on_exceed: { block_for: soon }
    shadow: "yes"
deny: { ips: [nope] }
extra: 1
"#;
    let errs = Policy::from_yaml(yaml).unwrap_err();
    let got: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
    let expected = [
        "extra: unknown field",
        "rules[0].colour: unknown field",
        "rules[0].limit: must be at least 1",
        r#"rules[0].period: "1 mintue" is not a duration"#,
        r#"rules[1].name: duplicate rule name "a" (first used at rules[0])"#,
        r#"rules[1].key: "user:{usr}": key template names unknown attribute `usr`"#,
        r#"rules[2].algorithm: "leaky" is not an algorithm"#,
        r#"rules[2].limit: expected a non-negative integer, found "ten""#,
        "rules[3].match.ip: `300.1.1.1` is not an IP address or CIDR block",
        r#"rules[3].match.shoe: unknown attribute "shoe""#,
        "rules[3].burst: applies only to gcra and token_bucket",
        r#"rules[4].period: "fortnight" is not a calendar period"#,
        r#"rules[4].time_zone: "Mars/Olympus" is not an IANA time zone"#,
        r#"rules[5].on_exceed.block_for: "soon" is not a duration"#,
        r#"rules[5].shadow: expected true or false, found "yes""#,
        r#"rules[5].on_store_error: "maybe" is not a fail policy"#,
        "deny.ips[0]: `nope` is not an IP address or CIDR block",
    ];
    for want in expected {
        assert!(
            got.iter().any(|g| g.starts_with(want)),
            "missing {want:?} in:\n{}",
            got.join("\n")
        );
    }
    assert_eq!(got.len(), expected.len(), "{}", got.join("\n"));
}

#[test]
fn yaml_syntax_errors_say_where() {
    let errs = Policy::from_yaml("rules:\n  - name: a\n   limit: [1\n").unwrap_err();
    assert_eq!(errs.0.len(), 1);
    assert!(errs.0[0].message.contains("line"), "{}", errs.0[0].message);
}

#[test]
fn missing_fields_and_algorithm_specific_fields() {
    let errs = Policy::from_yaml(
        "rules: [{key: x}, {name: c, algorithm: concurrency, limit: 3, period: 1s}]",
    )
    .unwrap_err();
    let got: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
    assert!(
        got.contains(&"rules[0].name: missing (every rule needs a unique name)".to_string()),
        "{got:?}"
    );
    assert!(
        got.contains(&"rules[0].limit: missing".to_string()),
        "{got:?}"
    );
    assert!(
        got.contains(&"rules[0].period: missing".to_string()),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|g| g.starts_with("rules[1].period: concurrency limits have no period")),
        "{got:?}"
    );
}

#[test]
fn rules_apply_only_when_their_attributes_are_present() {
    let p = Policy::from_yaml("rules: [{name: t, key: 'tenant:{tenant}', limit: 1, period: 1s}]")
        .unwrap();
    assert!(p.plan(&subject(&[("user", "1")]), 1).checks.is_empty());
    assert_eq!(p.plan(&subject(&[("tenant", "acme")]), 1).checks.len(), 1);
}

#[test]
fn globs_lists_and_cidrs_match() {
    let p = Policy::from_yaml(
        r#"
rules:
  - { name: api, match: { path: "/api/*", method: [GET, head] }, key: "{path}", limit: 1, period: 1s }
  - { name: v6, match: { ip: "2001:db8::/32" }, key: "{ip}", limit: 1, period: 1s }
  - { name: plan, match: { attr.plan: [pro, enterprise] }, key: "{attr.plan}", limit: 1, period: 1s }
"#,
    )
    .unwrap();
    let names = |s: &Subject| {
        p.plan(s, 1)
            .checks
            .iter()
            .map(|c| c.rule.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&subject(&[("path", "/api/orders"), ("method", "HEAD")])),
        ["api"]
    );
    assert!(names(&subject(&[("path", "/api/orders"), ("method", "POST")])).is_empty());
    assert_eq!(names(&subject(&[("ip", "2001:db8:1::5")])), ["v6"]);
    let s = subject(&[("ip", "2001:db8:1:2:3::5")]);
    assert_eq!(p.plan(&s, 1).checks[0].key, "2001:db8:1:2::/64");
    assert_eq!(names(&subject(&[("attr.plan", "pro")])), ["plan"]);
    assert!(names(&subject(&[("attr.plan", "free")])).is_empty());
}

#[test]
fn ten_thousand_rules_plan_in_the_work_of_those_that_match() {
    let mut yaml = String::from("rules:\n");
    for i in 0..2_500 {
        yaml.push_str(&format!("  - {{ name: path-{i}, match: {{ path: \"/r/{i}\" }}, key: \"{{user}}\", limit: 5, period: 1m }}\n"));
        yaml.push_str(&format!("  - {{ name: glob-{i}, match: {{ path: \"/g/{i}/*\" }}, key: \"{{user}}\", limit: 5, period: 1m }}\n"));
        yaml.push_str(&format!("  - {{ name: tenant-{i}, match: {{ tenant: \"t{i}\" }}, key: \"{{tenant}}\", limit: 5, period: 1m }}\n"));
        yaml.push_str(&format!("  - {{ name: net-{i}, match: {{ ip: \"10.{}.{}.0/24\" }}, key: \"{{ip}}\", limit: 5, period: 1m }}\n", i / 256, i % 256));
    }
    yaml.push_str(
        "  - { name: everyone, match: { user: \"*\" }, key: \"{user}\", limit: 5, period: 1m }\n",
    );
    let p = Policy::from_yaml(&yaml).unwrap();
    assert_eq!(p.rules().len(), 10_001);

    let s = subject(&[
        ("user", "u"),
        ("path", "/r/1234"),
        ("tenant", "t77"),
        ("ip", "10.4.1.9"),
    ]);
    let names: Vec<_> = p
        .plan(&s, 1)
        .checks
        .iter()
        .map(|c| c.rule.name.clone())
        .collect();
    // Policy order: tenant-77 is rule 310, net-1025 rule 4103, path-1234 rule 4936.
    assert_eq!(names, ["tenant-77", "net-1025", "path-1234", "everyone"]);
    // Only the rules that match are examined: the index leaves no scan.
    assert_eq!(p.candidate_count(&s), 4);

    let s = subject(&[("user", "u"), ("path", "/g/42/x/y")]);
    assert_eq!(p.candidate_count(&s), 2);
    let names: Vec<_> = p
        .plan(&s, 1)
        .checks
        .iter()
        .map(|c| c.rule.name.clone())
        .collect();
    assert_eq!(names, ["glob-42", "everyone"]);

    // And the time to plan does not depend on the number of rules.
    let small = Policy::from_yaml(
        "rules: [{ name: everyone, match: { user: \"*\" }, key: \"{user}\", limit: 5, period: 1m }]",
    )
    .unwrap();
    let s = subject(&[
        ("user", "u"),
        ("path", "/nothing"),
        ("tenant", "none"),
        ("ip", "192.0.2.1"),
    ]);
    assert_eq!(p.candidate_count(&s), small.candidate_count(&s));
}

#[test]
fn reloaded_rules_keep_their_identity_unless_it_changes() {
    let a = Policy::from_yaml("rules: [{name: r, key: '{user}', limit: 5, period: 1m}]").unwrap();
    let b = Policy::from_yaml("rules: [{name: r, key: '{user}', limit: 50, period: 1m, burst: 3}]")
        .unwrap();
    let c = Policy::from_yaml("rules: [{name: r, key: '{user}', limit: 5, period: 2m}]").unwrap();
    assert_eq!(a.rules()[0].identity(), b.rules()[0].identity());
    assert_ne!(a.rules()[0].identity(), c.rules()[0].identity());
}

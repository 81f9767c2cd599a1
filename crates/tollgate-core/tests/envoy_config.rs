//! envoyproxy/ratelimit configuration files, written here in its format, loaded as it loads
//! them: the valid ones planned and counted request by request (time injected), the invalid
//! ones refused with the path and reason of every fault.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use common::block_on;
use serde_json::{Value, json};
use smallvec::SmallVec;
use tollgate_core::policy::ConfigErrors;
use tollgate_core::policy::descriptor_plan::{DescriptorPlan, DescriptorRequest};
use tollgate_core::policy::parse::parse_yaml;
use tollgate_core::time::{NANOS_PER_SEC as S, Nanos};
use tollgate_core::{MemoryStore, MemoryStoreConfig, Policy, Store};

/// The start of an hour, so that minute and hour windows all open here.
const T0: Nanos = 1_767_571_200 * S;

/// The files of one configuration folder, as `envoy_files` hands them to the policy.
fn load(files: &[&str]) -> Result<Policy, ConfigErrors> {
    let docs: Vec<Value> = files.iter().map(|f| parse_yaml(f).unwrap()).collect();
    Policy::from_value(&json!({ "envoy": docs }), &[])
}

fn policy(files: &[&str]) -> Policy {
    load(files).unwrap_or_else(|e| panic!("{e}"))
}

/// `path: message` of every error.
fn errors(files: &[&str]) -> Vec<String> {
    match load(files) {
        Ok(_) => panic!("accepted: {files:?}"),
        Err(e) => {
            e.0.iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect()
        }
    }
}

/// Asserts that some error starts with `path: ` and holds `message`.
fn refused(files: &[&str], path: &str, message: &str) {
    let errs = errors(files);
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(message)),
        "no `{path}: …{message}…` in {errs:#?}"
    );
}

type Entries<'a> = &'a [(&'a str, &'a str)];

fn plan<'p>(p: &'p Policy, domain: &str, descriptors: &[Entries<'_>]) -> DescriptorPlan<'p> {
    let requests: Vec<DescriptorRequest<'_, 'p>> = descriptors
        .iter()
        .map(|e| DescriptorRequest {
            entries: e.iter().copied().collect::<SmallVec<_>>(),
            cost: 1,
            limit: None,
        })
        .collect();
    p.plan_descriptors(domain, &requests)
}

/// A policy and a memory store: requests are planned, acquired at a given time, and each
/// descriptor's answer rendered as `-` (no limit), or `ok` / `over` with `remaining/limit`
/// (of the limit that denied, else of its first) and `:name` when the limit has one.
struct Service {
    policy: Policy,
    store: MemoryStore,
}

impl Service {
    fn new(files: &[&str]) -> Self {
        Service {
            policy: policy(files),
            store: MemoryStore::new(MemoryStoreConfig { capacity: 10_000 }),
        }
    }

    fn ask(&self, domain: &str, descriptors: &[Entries<'_>], now: Nanos) -> Vec<String> {
        let plan = plan(&self.policy, domain, descriptors);
        let outcomes = block_on(self.store.acquire(&plan.checks, now)).unwrap();
        plan.descriptors
            .iter()
            .map(|d| {
                // The check that denied, else the first.
                let Some(o) = d
                    .checks
                    .iter()
                    .map(|&i| &outcomes[i])
                    .find(|o| !o.allowed)
                    .or_else(|| d.checks.first().map(|&i| &outcomes[i]))
                else {
                    return "-".to_owned();
                };
                let code = if o.allowed { "ok" } else { "over" };
                let mut s = format!("{code} {}/{}", o.remaining, o.limit);
                if let Some(n) = d.name {
                    s.push(':');
                    s.push_str(n);
                }
                s
            })
            .collect()
    }

    /// Sends the same one-descriptor request `n` times at `now`; the answers in order.
    fn repeat(&self, domain: &str, entries: Entries<'_>, n: usize, now: Nanos) -> Vec<String> {
        (0..n)
            .map(|_| self.ask(domain, &[entries], now).remove(0))
            .collect()
    }
}

fn counter_keys(p: &Policy, domain: &str, entries: Entries<'_>) -> Vec<String> {
    plan(p, domain, &[entries])
        .checks
        .iter()
        .map(|c| c.key.to_string())
        .collect()
}

fn metric_key(p: &Policy, domain: &str, entries: Entries<'_>) -> Option<String> {
    plan(p, domain, &[entries]).descriptors[0].detailed.clone()
}

// ---------------------------------------------------------------------------------------
// Valid files: the examples of envoyproxy/ratelimit's documentation and more.
// ---------------------------------------------------------------------------------------

const MONGO: &str = r#"
domain: mongo_cps
descriptors:
  - key: database
    value: users
    rate_limit:
      unit: second
      requests_per_unit: 2

  - key: database
    value: default
    rate_limit:
      unit: second
      requests_per_unit: 3
"#;

#[test]
fn values_at_the_top_level() {
    let s = Service::new(&[MONGO]);
    assert_eq!(
        s.repeat("mongo_cps", &[("database", "users")], 3, T0),
        ["ok 1/2", "ok 0/2", "over 0/2"]
    );
    assert_eq!(
        s.ask("mongo_cps", &[&[("database", "default")]], T0),
        ["ok 2/3"]
    );
    // No descriptor for this value, none without a value: no limit.
    assert_eq!(s.ask("mongo_cps", &[&[("database", "other")]], T0), ["-"]);
    // The next second is a new window (windows are aligned to the clock).
    assert_eq!(
        s.ask("mongo_cps", &[&[("database", "users")]], T0 + S),
        ["ok 1/2"]
    );
    assert_eq!(s.ask("unknown", &[&[("database", "users")]], T0), ["-"]);
}

const MESSAGING: &str = r#"
domain: messaging
descriptors:
  # Only allow 2 marketing messages a day
  - key: message_type
    value: marketing
    descriptors:
      - key: to_number
        rate_limit:
          unit: day
          requests_per_unit: 2

  # Only allow 3 messages a day to any unique phone number
  - key: to_number
    rate_limit:
      unit: day
      requests_per_unit: 3
"#;

#[test]
fn nested_descriptors_and_several_in_one_request() {
    let s = Service::new(&[MESSAGING]);
    let marketing: Entries = &[("message_type", "marketing"), ("to_number", "2061111111")];
    let number: Entries = &[("to_number", "2061111111")];
    assert_eq!(
        s.ask("messaging", &[marketing, number], T0),
        ["ok 1/2", "ok 2/3"]
    );
    assert_eq!(
        s.ask("messaging", &[marketing, number], T0),
        ["ok 0/2", "ok 1/3"]
    );
    // Over on one descriptor: the other answers but nothing is consumed.
    assert_eq!(
        s.ask("messaging", &[marketing, number], T0),
        ["over 0/2", "ok 1/3"]
    );
    // Each number counts apart under a key without a value.
    assert_eq!(
        s.ask(
            "messaging",
            &[&[("message_type", "marketing"), ("to_number", "2062222222")]],
            T0
        ),
        ["ok 1/2"]
    );
    // A placeholder without a limit limits nothing.
    assert_eq!(
        s.ask("messaging", &[&[("message_type", "marketing")]], T0),
        ["-"]
    );
    assert_eq!(
        counter_keys(&s.policy, "messaging", marketing),
        ["messaging/message_type=marketing/to_number=2061111111"]
    );
}

const PER_IP: &str = r#"
domain: edge_proxy_per_ip
descriptors:
  - key: remote_address
    rate_limit:
      unit: second
      requests_per_unit: 10

  # Black list IP
  - key: remote_address
    value: 50.0.0.5
    rate_limit:
      unit: second
      requests_per_unit: 0
"#;

#[test]
fn a_value_wins_over_the_key_and_zero_blocks() {
    let s = Service::new(&[PER_IP]);
    assert_eq!(
        s.ask(
            "edge_proxy_per_ip",
            &[&[("remote_address", "50.0.0.1")]],
            T0
        ),
        ["ok 9/10"]
    );
    assert_eq!(
        s.repeat(
            "edge_proxy_per_ip",
            &[("remote_address", "50.0.0.5")],
            2,
            T0
        ),
        ["over 0/0", "over 0/0"]
    );
}

#[test]
fn the_depth_of_the_request_must_be_the_depth_of_the_tree() {
    let flat = r#"
domain: example4
descriptors:
  - key: key
    value: value
    rate_limit:
      requests_per_unit: 300
      unit: second
"#;
    let nested = r#"
domain: example4
descriptors:
  - key: key
    value: value
    descriptors:
      - key: subkey
        rate_limit:
          requests_per_unit: 300
          unit: second
"#;
    let two: Entries = &[("key", "value"), ("subkey", "subvalue")];
    assert_eq!(Service::new(&[flat]).ask("example4", &[two], T0), ["-"]);
    assert_eq!(
        Service::new(&[nested]).ask("example4", &[two], T0),
        ["ok 299/300"]
    );
    assert_eq!(
        Service::new(&[nested]).ask("example4", &[&[("key", "value")]], T0),
        ["-"]
    );
}

#[test]
fn unlimited_descriptors_count_nothing() {
    let s = Service::new(&[r#"
domain: internal
descriptors:
  - key: ldap
    rate_limit:
      unlimited: true

  - key: azure
    rate_limit:
      unit: minute
      requests_per_unit: 100

  # envoyproxy/ratelimit accepts a count beside unlimited (and ignores it).
  - key: dns
    rate_limit:
      unlimited: true
      requests_per_unit: 5
      name: dns
"#]);
    assert_eq!(
        s.ask("internal", &[&[("ldap", "x")], &[("azure", "y")]], T0),
        ["-", "ok 99/100"]
    );
    let p = plan(&s.policy, "internal", &[&[("dns", "z")]]);
    assert!(p.checks.is_empty());
    assert_eq!(p.descriptors[0].name, Some("dns"));
}

#[test]
fn shadow_mode_is_planned_as_shadow() {
    let p = policy(&[r#"
domain: example6
descriptors:
  - key: service
    descriptors:
      - key: user
        value: user-a
        rate_limit:
          requests_per_unit: 10
          unit: second
        shadow_mode: true
      - key: user
        value: user-b
        rate_limit:
          requests_per_unit: 20
          unit: second
"#]);
    let a = plan(
        &p,
        "example6",
        &[&[("service", "auth"), ("user", "user-a")]],
    );
    assert!(a.descriptors[0].shadow);
    assert!(a.checks[0].rule.shadow);
    let b = plan(
        &p,
        "example6",
        &[&[("service", "auth"), ("user", "user-b")]],
    );
    assert!(!b.descriptors[0].shadow);
    assert_eq!(b.checks[0].rule.limit.quota(), 20);
}

const REPLACES: &str = r#"
domain: example7
descriptors:
  - key: key_1
    value: value_1
    descriptors:
      - key: user
        value: bkthomps
        rate_limit:
          name: specific_limit
          requests_per_unit: 5
          unit: second
  - key: key_2
    value: value_2
    descriptors:
      - key: user
        value: bkthomps
        rate_limit:
          replaces:
            - name: specific_limit
          requests_per_unit: 10
          unit: second
"#;

#[test]
fn replaces_inside_rate_limit() {
    let s = Service::new(&[REPLACES]);
    let one: Entries = &[("key_1", "value_1"), ("user", "bkthomps")];
    let two: Entries = &[("key_2", "value_2"), ("user", "bkthomps")];
    assert_eq!(s.ask("example7", &[one], T0), ["ok 4/5:specific_limit"]);
    assert_eq!(s.ask("example7", &[two], T0), ["ok 9/10"]);
    // Both apply: the replaced limit drops out and is left as it was.
    assert_eq!(s.ask("example7", &[one, two], T0), ["-", "ok 8/10"]);
    assert_eq!(s.ask("example7", &[one], T0), ["ok 3/5:specific_limit"]);
}

#[test]
fn replaces_beside_rate_limit_is_still_accepted() {
    let s = Service::new(&[r#"
domain: web
descriptors:
  - key: remote_address
    rate_limit: { name: per-ip, unit: minute, requests_per_unit: 10 }
  - key: path
    value: /login
    rate_limit: { name: login, unit: minute, requests_per_unit: 3 }
    replaces: [{ name: per-ip }]
  - key: health
    rate_limit: { unlimited: true, replaces: [{ name: login }] }
"#]);
    let ip: Entries = &[("remote_address", "192.0.2.1")];
    let login: Entries = &[("path", "/login")];
    assert_eq!(s.ask("web", &[ip, login], T0), ["-", "ok 2/3:login"]);
    // An unlimited limit replaces too.
    assert_eq!(
        s.ask("web", &[ip, login, &[("health", "x")]], T0),
        ["-", "-", "-"]
    );
    assert_eq!(s.ask("web", &[ip], T0), ["ok 9/10:per-ip"]);
}

#[test]
fn detailed_metric_names_the_full_descriptor() {
    let p = policy(&[r#"
domain: example8
descriptors:
  - key: key1
    detailed_metric: true
    rate_limit:
      unit: minute
      requests_per_unit: 10
  - key: key1
    value: value1
    rate_limit:
      unit: minute
      requests_per_unit: 20
"#]);
    assert_eq!(
        metric_key(&p, "example8", &[("key1", "unspecified_value")]).as_deref(),
        Some("example8/key1=unspecified_value")
    );
    assert_eq!(metric_key(&p, "example8", &[("key1", "value1")]), None);
}

const WILDCARDS: &str = r#"
domain: example9
descriptors:
  - key: wild
    value: foo*
    rate_limit:
      unit: minute
      requests_per_unit: 20
  - key: noWild
    value: foo
    rate_limit:
      unit: minute
      requests_per_unit: 21
  - key: midWild
    value: bar*b
    rate_limit:
      unit: minute
      requests_per_unit: 22
  - key: multiWild
    value: foo*bar*baz
    rate_limit:
      unit: minute
      requests_per_unit: 23
  - key: path
    value: /api/*/action
    rate_limit:
      unit: minute
      requests_per_unit: 24
  - key: path
    value: /api/*
    rate_limit:
      unit: minute
      requests_per_unit: 25
  - key: nestedWild
    value: val1
    descriptors:
      - key: wild
        value: goo*
        rate_limit:
          unit: minute
          requests_per_unit: 26
"#;

#[test]
fn wildcards_trailing_middle_and_several() {
    let p = policy(&[WILDCARDS]);
    let limit = |entries: Entries| {
        p.descriptors()
            .lookup("example9", entries)
            .and_then(|l| l.rules.first())
            .map(|r| r.limit.quota())
    };
    assert_eq!(limit(&[("wild", "foo")]), Some(20));
    assert_eq!(limit(&[("wild", "foo123")]), Some(20));
    assert_eq!(limit(&[("wild", "fo")]), None);
    assert_eq!(limit(&[("noWild", "foo")]), Some(21));
    assert_eq!(limit(&[("noWild", "foo1")]), None);
    assert_eq!(limit(&[("midWild", "barb")]), Some(22));
    assert_eq!(limit(&[("midWild", "bar-anything-b")]), Some(22));
    assert_eq!(limit(&[("midWild", "bar-anything-c")]), None);
    assert_eq!(limit(&[("multiWild", "foo1bar2baz")]), Some(23));
    assert_eq!(limit(&[("multiWild", "foobarbaz")]), Some(23));
    assert_eq!(limit(&[("multiWild", "foo1baz2bar")]), None);
    // The first wildcard written that matches wins.
    assert_eq!(limit(&[("path", "/api/123/action")]), Some(24));
    assert_eq!(limit(&[("path", "/api/123/other")]), Some(25));
    assert_eq!(
        limit(&[("nestedWild", "val1"), ("wild", "goose")]),
        Some(26)
    );
    assert_eq!(limit(&[("nestedWild", "val2"), ("wild", "goose")]), None);
    // Without share_threshold every value counts apart.
    assert_eq!(
        counter_keys(&p, "example9", &[("wild", "foo123")]),
        ["example9/wild=foo123"]
    );
}

#[test]
fn value_to_metric_names_metrics_by_the_request_values() {
    let p = policy(&[
        r#"
domain: example10
descriptors:
  - key: route
    value_to_metric: true
    descriptors:
      - key: http_method
        value_to_metric: true
        descriptors:
          - key: subject_id
            rate_limit:
              unit: minute
              requests_per_unit: 60
"#,
        r#"
domain: example10_wildcard
descriptors:
  - key: user
    value_to_metric: true
    descriptors:
      - key: action
        value: read*
        value_to_metric: true
        descriptors:
          - key: resource
            rate_limit:
              unit: minute
              requests_per_unit: 100
  - key: plain
    descriptors:
      - key: action
        value: read*
        descriptors:
          - key: resource
            value_to_metric: true
            rate_limit:
              unit: minute
              requests_per_unit: 100
"#,
    ]);
    assert_eq!(
        metric_key(
            &p,
            "example10",
            &[
                ("route", "api"),
                ("http_method", "GET"),
                ("subject_id", "123")
            ]
        )
        .as_deref(),
        Some("example10/route=api/http_method=GET/subject_id")
    );
    assert_eq!(
        metric_key(
            &p,
            "example10_wildcard",
            &[
                ("user", "alice"),
                ("action", "readfile"),
                ("resource", "documents")
            ]
        )
        .as_deref(),
        Some("example10_wildcard/user=alice/action=readfile/resource")
    );
    // Without value_to_metric a wildcard level is named by its wildcard.
    assert_eq!(
        metric_key(
            &p,
            "example10_wildcard",
            &[
                ("plain", "p"),
                ("action", "readfile"),
                ("resource", "documents")
            ]
        )
        .as_deref(),
        Some("example10_wildcard/plain/action=read*/resource=documents")
    );
    // Metric names never change counters: each subject counts apart.
    assert_eq!(
        counter_keys(
            &p,
            "example10",
            &[
                ("route", "api"),
                ("http_method", "GET"),
                ("subject_id", "123")
            ]
        ),
        ["example10/route=api/http_method=GET/subject_id=123"]
    );
}

const SHARE: &str = r#"
domain: example11
descriptors:
  # With share_threshold: true, all files/* matches share the same threshold
  - key: files
    value: files/*
    share_threshold: true
    rate_limit:
      unit: hour
      requests_per_unit: 10

  # Without share_threshold, each files_no_share/* match has its own isolated threshold
  - key: files_no_share
    value: files_no_share/*
    share_threshold: false
    rate_limit:
      unit: hour
      requests_per_unit: 10
"#;

#[test]
fn share_threshold_shares_one_counter_among_wildcard_matches() {
    let s = Service::new(&[SHARE]);
    for _ in 0..5 {
        s.ask("example11", &[&[("files", "files/a.pdf")]], T0);
        s.ask("example11", &[&[("files", "files/b.csv")]], T0);
    }
    assert_eq!(
        s.ask("example11", &[&[("files", "files/c.txt")]], T0),
        ["over 0/10"]
    );
    for _ in 0..10 {
        s.ask(
            "example11",
            &[&[("files_no_share", "files_no_share/a.pdf")]],
            T0,
        );
    }
    assert_eq!(
        s.ask(
            "example11",
            &[&[("files_no_share", "files_no_share/a.pdf")]],
            T0
        ),
        ["over 0/10"]
    );
    assert_eq!(
        s.ask(
            "example11",
            &[&[("files_no_share", "files_no_share/b.csv")]],
            T0
        ),
        ["ok 9/10"]
    );
    assert_eq!(
        counter_keys(&s.policy, "example11", &[("files", "files/a.pdf")]),
        ["example11/files=files%2F*"]
    );
    // The next hour starts afresh.
    assert_eq!(
        s.ask("example11", &[&[("files", "files/c.txt")]], T0 + 3_600 * S),
        ["ok 9/10"]
    );
}

/// envoyproxy/ratelimit's own share_threshold cases, rewritten.
const SHARE_CASES: &str = r#"
domain: test-domain
descriptors:
  - key: nested
    value: parent
    descriptors:
      - key: files
        value: nested/*
        share_threshold: true
        rate_limit:
          unit: minute
          requests_per_unit: 200
  # The same key at two levels, both shared.
  - key: files
    value: top/*
    share_threshold: true
    descriptors:
      - key: files
        value: nested/*
        share_threshold: true
        rate_limit:
          unit: minute
          requests_per_unit: 300
  - key: route
    value: api/*
    share_threshold: true
    value_to_metric: true
    descriptors:
      - key: method
        rate_limit:
          unit: minute
          requests_per_unit: 60
  - key: service
    value: svc/*
    share_threshold: true
    descriptors:
      - key: endpoint
        detailed_metric: true
        rate_limit:
          unit: minute
          requests_per_unit: 80
  # Shared at the first level only.
  - key: path
    value: path/*
    share_threshold: true
    descriptors:
      - key: file
        value: file/*
        share_threshold: false
        descriptors:
          - key: type
            rate_limit:
              unit: minute
              requests_per_unit: 120
  # An exact value wins over a shared wildcard.
  - key: file
    value: test1
    rate_limit:
      unit: minute
      requests_per_unit: 50
  - key: file
    value: test*
    share_threshold: true
    rate_limit:
      unit: minute
      requests_per_unit: 100
  - key: midpath
    value: /api*v1
    share_threshold: true
    rate_limit:
      unit: minute
      requests_per_unit: 100
  - key: multiroute
    value: svc*ep*rpc
    share_threshold: true
    rate_limit:
      unit: minute
      requests_per_unit: 50
"#;

#[test]
fn share_threshold_at_every_depth() {
    let p = policy(&[SHARE_CASES]);
    let key = |e: Entries| counter_keys(&p, "test-domain", e);
    assert_eq!(
        key(&[("nested", "parent"), ("files", "nested/x")]),
        ["test-domain/nested=parent/files=nested%2F*"]
    );
    assert_eq!(
        key(&[("files", "top/a"), ("files", "nested/b")]),
        ["test-domain/files=top%2F*/files=nested%2F*"]
    );
    assert_eq!(
        key(&[("path", "path/a"), ("file", "file/b"), ("type", "pdf")]),
        ["test-domain/path=path%2F*/file=file%2Fb/type=pdf"]
    );
    assert_eq!(key(&[("file", "test1")]), ["test-domain/file=test1"]);
    assert_eq!(key(&[("file", "test2")]), ["test-domain/file=test*"]);
    assert_eq!(
        key(&[("midpath", "/api/x/v1")]),
        ["test-domain/midpath=%2Fapi*v1"]
    );
    assert_eq!(
        key(&[("multiroute", "svcAepBrpc")]),
        ["test-domain/multiroute=svc*ep*rpc"]
    );
    assert_eq!(key(&[("multiroute", "svcArpc")]), Vec::<String>::new());
    // With value_to_metric a shared level is named by its wildcard; with detailed_metric
    // too.
    assert_eq!(
        metric_key(&p, "test-domain", &[("route", "api/v1"), ("method", "GET")]).as_deref(),
        Some("test-domain/route=api%2F*/method")
    );
    assert_eq!(
        metric_key(
            &p,
            "test-domain",
            &[("service", "svc/a"), ("endpoint", "e1")]
        )
        .as_deref(),
        Some("test-domain/service=svc%2F*/endpoint=e1")
    );
    // Shared counters: two paths, one count.
    let s = Service::new(&[SHARE_CASES]);
    assert_eq!(
        s.ask("test-domain", &[&[("multiroute", "svc1ep1rpc")]], T0),
        ["ok 49/50"]
    );
    assert_eq!(
        s.ask("test-domain", &[&[("multiroute", "svc2ep2rpc")]], T0),
        ["ok 48/50"]
    );
}

#[test]
fn documents_of_one_domain_merge() {
    let s = Service::new(&[
        r#"
# Basic configuration which will be merged with the next file.
domain: test-domain
descriptors:
  - key: key1
    value: value1
    rate_limit:
      unit: minute
      requests_per_unit: 10
"#,
        r#"
domain: test-domain
descriptors:
  - key: key2
    value: value2
    rate_limit:
      unit: minute
      requests_per_unit: 20
"#,
    ]);
    assert_eq!(
        s.ask(
            "test-domain",
            &[&[("key1", "value1")], &[("key2", "value2")]],
            T0
        ),
        ["ok 9/10", "ok 19/20"]
    );
}

#[test]
fn metadata_travels_with_the_limit() {
    let p = policy(&[r#"
domain: test-domain
descriptors:
  - key: key1
    value: value1
    descriptors:
      - key: subkey1
        rate_limit:
          unit: second
          requests_per_unit: 5
        metadata:
          name: service_1
      - key: subkey1
        value: subvalue1
        rate_limit:
          unit: second
          requests_per_unit: 10
  - key: key2
    rate_limit:
      unit: minute
      requests_per_unit: 20
    metadata:
      service_with_quota:
        name: service_2
        tags: [a, b]
"#]);
    let d = plan(
        &p,
        "test-domain",
        &[
            &[("key1", "value1"), ("subkey1", "x")],
            &[("key1", "value1"), ("subkey1", "subvalue1")],
            &[("key2", "y")],
        ],
    );
    assert_eq!(
        d.descriptors[0].metadata.map(|m| Value::Object(m.clone())),
        Some(json!({"name": "service_1"}))
    );
    assert!(d.descriptors[1].metadata.is_none());
    assert_eq!(
        d.descriptors[2].metadata.map(|m| Value::Object(m.clone())),
        Some(json!({"service_with_quota": {"name": "service_2", "tags": ["a", "b"]}}))
    );
}

#[test]
fn scalars_nulls_and_unit_case_as_envoyproxy_ratelimit_reads_them() {
    let s = Service::new(&[r#"
domain: 42
descriptors:
  - key: status
    value: 429
    rate_limit: { unit: SECOND, requests_per_unit: 1 }
  - key: internal
    value: true
    rate_limit: { unit: Minute, requests_per_unit: 2 }
  - key: empty_value
    value: ""
    rate_limit: { unit: hour, requests_per_unit: 3 }
  - key: whitelisted
    rate_limit:
  - key: no_children
    descriptors:
  - key: blocked
    rate_limit: { unit: day, requests_per_unit: 0 }
"#]);
    assert_eq!(s.ask("42", &[&[("status", "429")]], T0), ["ok 0/1"]);
    assert_eq!(s.ask("42", &[&[("internal", "true")]], T0), ["ok 1/2"]);
    // An empty value is no value: every value of the key counts apart.
    assert_eq!(s.ask("42", &[&[("empty_value", "v")]], T0), ["ok 2/3"]);
    assert_eq!(s.ask("42", &[&[("whitelisted", "v")]], T0), ["-"]);
    assert_eq!(s.ask("42", &[&[("no_children", "v")]], T0), ["-"]);
    // Zero requests per unit blocks.
    assert_eq!(s.ask("42", &[&[("blocked", "v")]], T0), ["over 0/0"]);
}

#[test]
fn tollgate_limits_sit_beside_envoyproxy_ratelimit_descriptors() {
    let s = Service::new(&[r#"
domain: api
descriptors:
  - key: api_key
    limits:
      - { algorithm: gcra, limit: 100, period: 90s, burst: 20 }
      - { algorithm: fixed_window, limit: 2, period: 1d }
  - key: ip
    value: "10.*"
    share_threshold: true
    limits:
      - { algorithm: sliding_window, limit: 1, period: 1m }
"#]);
    let p = plan(&s.policy, "api", &[&[("api_key", "k1")]]);
    assert_eq!(p.checks.len(), 2);
    assert_eq!(
        s.repeat("api", &[("api_key", "k1")], 3, T0)
            .last()
            .map(String::as_str),
        Some("over 0/2")
    );
    assert_eq!(s.ask("api", &[&[("ip", "10.0.0.1")]], T0), ["ok 0/1"]);
    assert_eq!(s.ask("api", &[&[("ip", "10.9.9.9")]], T0), ["over 0/1"]);
}

// ---------------------------------------------------------------------------------------
// Invalid files: refused as envoyproxy/ratelimit refuses them, every fault with its path.
// ---------------------------------------------------------------------------------------

#[test]
fn a_bad_unit_is_refused() {
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: key1\n    value: value1\n    rate_limit:\n      unit: foo\n      requests_per_unit: 5\n",
        ],
        "envoy[0].descriptors[0].rate_limit.unit",
        "\"foo\" is not a unit",
    );
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      unit: unknown\n      requests_per_unit: 5\n",
        ],
        "envoy[0].descriptors[0].rate_limit.unit",
        "is not a unit",
    );
    refused(
        &["domain: d\ndescriptors:\n  - key: k\n    rate_limit: { requests_per_unit: 5 }\n"],
        "envoy[0].descriptors[0].rate_limit.unit",
        "missing",
    );
    refused(
        &["domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: second }\n"],
        "envoy[0].descriptors[0].rate_limit.requests_per_unit",
        "missing",
    );
}

#[test]
fn a_unit_beside_unlimited_is_refused() {
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: foo\n    rate_limit:\n      unlimited: true\n      unit: day\n      requests_per_unit: 25\n",
        ],
        "envoy[0].descriptors[0].rate_limit.unit",
        "must not be set when unlimited is true",
    );
}

#[test]
fn a_composite_key_defined_twice_is_refused() {
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: key1\n    value: value1\n\n  - key: key1\n    value: value1\n",
        ],
        "envoy[0].descriptors[1]",
        "duplicate descriptor composite key \"d.key1_value1\"",
    );
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: b\n      - key: b\n",
        ],
        "envoy[0].descriptors[0].descriptors[1]",
        "\"d.a.b\"",
    );
    // `key_value` and a key spelled so collide, as in envoyproxy/ratelimit.
    refused(
        &["domain: d\ndescriptors:\n  - key: a\n    value: b\n  - key: a_b\n"],
        "envoy[0].descriptors[1]",
        "\"d.a_b\"",
    );
    // The same key at another level, or with another value, is no duplicate.
    policy(&[
        "domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: a\n  - key: a\n    value: x\n  - key: b\n    value: a\n",
    ]);
}

#[test]
fn a_descriptor_defined_in_two_files_of_one_domain_is_refused() {
    let first = "domain: edge\ndescriptors:\n  - key: remote_address\n    rate_limit: { unit: second, requests_per_unit: 1 }\n";
    let second = "domain: edge\ndescriptors:\n  - key: path\n    rate_limit: { unit: second, requests_per_unit: 1 }\n  - key: remote_address\n    rate_limit: { unit: minute, requests_per_unit: 9 }\n";
    refused(
        &[first, second],
        "envoy[1].descriptors[1]",
        "duplicate descriptor composite key \"edge.remote_address\"",
    );
    assert_eq!(errors(&[first, second]).len(), 1);
    // In another domain it is another descriptor.
    policy(&[first, &second.replace("edge", "other")]);
}

#[test]
fn empty_domains_and_keys_are_refused() {
    refused(
        &["domain: \"\"\ndescriptors: []\n"],
        "envoy[0].domain",
        "must not be empty",
    );
    refused(&["descriptors: []\n"], "envoy[0].domain", "missing");
    refused(
        &["domain: d\ndescriptors:\n  - value: value1\n"],
        "envoy[0].descriptors[0].key",
        "missing",
    );
    refused(
        &["domain: d\ndescriptors:\n  - key: \"\"\n"],
        "envoy[0].descriptors[0].key",
        "must not be empty",
    );
}

#[test]
fn unknown_and_misspelled_fields_are_refused() {
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: key1\n    value: value1\n    ratelimit:\n      unit: day\n      requests_per_unit: 5\n",
        ],
        "envoy[0].descriptors[0].ratelimit",
        "unknown field",
    );
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: key1\n    value: value1\n    rate_limit:\n      unit: day\n      requestsperunit: 5\n",
        ],
        "envoy[0].descriptors[0].rate_limit.requestsperunit",
        "unknown field",
    );
    refused(
        &["domain: d\ndescript0rs: []\n"],
        "envoy[0].descript0rs",
        "unknown field",
    );
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: day, requests_per_unit: 1, replaces: [{ name: x, also: y }] }\n",
        ],
        "envoy[0].descriptors[0].rate_limit.replaces[0].also",
        "unknown field",
    );
}

#[test]
fn lists_of_other_than_mappings_are_refused() {
    refused(
        &["domain: d\ndescriptors:\n  - a\n  - b\n"],
        "envoy[0].descriptors[0]",
        "expected a mapping",
    );
    refused(
        &["domain: d\ndescriptors: {key: a}\n"],
        "envoy[0].descriptors",
        "expected a list of descriptors",
    );
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: day, requests_per_unit: 1, replaces: [x] }\n",
        ],
        "envoy[0].descriptors[0].rate_limit.replaces[0]",
        "expected a mapping",
    );
}

#[test]
fn a_non_string_top_level_key_is_refused() {
    let file = "0.25: test-domain\ndescriptors:\n  - key: key1\n    value: value1\n    rate_limit:\n      unit: day\n      requests_per_unit: 5\n";
    refused(&[file], "envoy[0].0.25", "unknown field");
    refused(&[file], "envoy[0].domain", "missing");
}

#[test]
fn bad_replaces_entries_are_refused() {
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: key1\n    value: value1\n    descriptors:\n      - key: subkey1\n        rate_limit:\n          name: self\n          replaces:\n            - name:\n          unit: second\n          requests_per_unit: 5\n",
        ],
        "envoy[0].descriptors[0].descriptors[0].rate_limit.replaces[0].name",
        "must not be empty",
    );
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: key1\n    value: value1\n    descriptors:\n      - key: subkey1\n        rate_limit:\n          name: self\n          replaces:\n            - name: self\n          unit: second\n          requests_per_unit: 5\n",
        ],
        "envoy[0].descriptors[0].descriptors[0].rate_limit.replaces[0].name",
        "cannot replace itself",
    );
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { name: n, unit: day, requests_per_unit: 1 }\n    replaces: [{ name: n }]\n",
        ],
        "envoy[0].descriptors[0].replaces[0].name",
        "cannot replace itself",
    );
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: day, requests_per_unit: 1, replaces: { name: n } }\n",
        ],
        "envoy[0].descriptors[0].rate_limit.replaces",
        "expected a list of {name}",
    );
}

#[test]
fn share_threshold_needs_a_wildcard() {
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: files\n    value: files/a\n    share_threshold: true\n    rate_limit: { unit: day, requests_per_unit: 1 }\n",
        ],
        "envoy[0].descriptors[0].share_threshold",
        "can only be used with a wildcard value",
    );
    refused(
        &["domain: d\ndescriptors:\n  - key: files\n    share_threshold: true\n"],
        "envoy[0].descriptors[0].share_threshold",
        "\"d.files\"",
    );
    // false is fine anywhere.
    policy(&["domain: d\ndescriptors:\n  - key: files\n    share_threshold: false\n"]);
}

#[test]
fn values_no_file_may_hold_are_refused() {
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: day, requests_per_unit: 4294967296 }\n",
        ],
        "envoy[0].descriptors[0].rate_limit.requests_per_unit",
        "4294967295",
    );
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: day, requests_per_unit: -1 }\n",
        ],
        "envoy[0].descriptors[0].rate_limit.requests_per_unit",
        "non-negative integer",
    );
    refused(
        &["domain: d\ndescriptors:\n  - key: k\n    value: 1.5\n"],
        "envoy[0].descriptors[0].value",
        "expected a string",
    );
    refused(
        &["domain: d\ndescriptors:\n  - key: k\n    shadow_mode: yes please\n"],
        "envoy[0].descriptors[0].shadow_mode",
        "expected true or false",
    );
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: k\n    metadata: [a]\n    rate_limit: { unit: day, requests_per_unit: 1 }\n",
        ],
        "envoy[0].descriptors[0].metadata",
        "expected a mapping",
    );
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: k\n    quota_mode: true\n    rate_limit: { unit: day, requests_per_unit: 1 }\n",
        ],
        "envoy[0].descriptors[0].quota_mode",
        "not supported",
    );
    refused(
        &[
            "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: day, requests_per_unit: 1 }\n    limits: [{ algorithm: gcra, limit: 1, period: 1s }]\n",
        ],
        "envoy[0].descriptors[0].limits",
        "not both",
    );
}

#[test]
fn every_fault_of_a_file_is_reported_at_once() {
    let errs = errors(&[r#"
domain: d
descriptors:
  - key: a
    rate_limit: { unit: fortnight, requests_per_unit: 1 }
  - key: b
    rate_limit: { unlimited: true, unit: hour }
  - key: c
    value: "x"
    share_threshold: true
  - key: a
  - key: e
    descriptors:
      - key: f
        rate_limit: { name: g, unit: day, requests_per_unit: 1, replaces: [{ name: g }] }
"#]);
    let paths: Vec<&str> = errs.iter().map(|e| e.split(": ").next().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "envoy[0].descriptors[0].rate_limit.unit",
            "envoy[0].descriptors[1].rate_limit.unit",
            "envoy[0].descriptors[2].share_threshold",
            "envoy[0].descriptors[3]",
            "envoy[0].descriptors[4].descriptors[0].rate_limit.replaces[0].name",
        ],
        "{errs:#?}"
    );
}

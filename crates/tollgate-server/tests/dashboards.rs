//! Every metric the Grafana dashboards (`deploy/grafana/dashboards/*.json`) and the alert
//! rules (`deploy/prometheus/tollgate-alerts.yml`) query is one the server exports.
//!
//! Two real servers are driven until every metric they can export is on `/metrics`: one on
//! the memory store with its records in a real PostgreSQL (every door, a key, a denial, a
//! shadow denial, an Envoy descriptor, a refused and an accepted reload, then the
//! database's tables locked so that the usage writer falls behind and key lookups are
//! shed), one on a real Redis in `consistency: approximate` (the approximate-mode gauges).
//! The metric names of every expression are then looked up in the two scrapes together.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Server, eventually};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use serde_json::{Value, json};

const SECRET: &str = "a server secret of at least 32 bytes!!";

/// Series Prometheus adds to every target itself: never in a scrape, always queryable.
const SYNTHETIC: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

// ------------------------------------------------------------------ the expressions

/// Every PromQL expression of the dashboards (panel targets, variable queries), with
/// where it is.
fn dashboard_queries() -> Vec<(String, String)> {
    let dir = deploy().join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboard in {}", dir.display());
    let mut out = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let dash: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for v in dash["templating"]["list"].as_array().into_iter().flatten() {
            if v["type"] != "query" {
                continue;
            }
            let q = v["query"]["query"]
                .as_str()
                .or_else(|| v["query"].as_str())
                .unwrap_or_default();
            if let Some(expr) = variable_expr(q) {
                out.push((format!("{name}: variable {}", v["name"]), expr));
            }
        }
        let mut panels: Vec<&Value> = dash["panels"].as_array().into_iter().flatten().collect();
        while let Some(p) = panels.pop() {
            panels.extend(p["panels"].as_array().into_iter().flatten());
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push((format!("{name}: panel {}", p["title"]), expr.to_owned()));
                }
            }
        }
        for a in dash["annotations"]["list"].as_array().into_iter().flatten() {
            if let Some(expr) = a["expr"].as_str() {
                out.push((format!("{name}: annotation {}", a["name"]), expr.to_owned()));
            }
        }
    }
    out
}

/// The PromQL in a Grafana variable query: `label_values(SELECTOR, label)` queries
/// SELECTOR; `label_values(label)`, `label_names()` and `metrics(…)` query no metric.
fn variable_expr(q: &str) -> Option<String> {
    let q = q.trim();
    if let Some(inner) = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let (selector, _label) = inner.rsplit_once(',')?;
        return Some(selector.trim().to_owned());
    }
    if let Some(inner) = q
        .strip_prefix("query_result(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return Some(inner.to_owned());
    }
    if q.is_empty() || q.starts_with("label_names(") || q.starts_with("metrics(") {
        return None;
    }
    Some(q.to_owned())
}

/// Every rule's expression in the alert rules file.
fn rule_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(deploy().join("prometheus/tollgate-alerts.yml")).unwrap();
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    let mut out = Vec::new();
    for group in doc["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["alert"].as_str().or(rule["record"].as_str()).unwrap();
            out.push((
                format!("tollgate-alerts.yml: {name}"),
                rule["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

// ------------------------------------------------------------------ the tokenizer

/// Aggregation operators: followed by `by`/`without` or by their parenthesis.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "group",
    "count_values",
    "topk",
    "bottomk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Keywords that are never metric names.
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The index just past the string literal opening at `at` (`"…"`, `'…'` with escapes,
/// `` `…` `` raw).
fn past_string(s: &[char], at: usize) -> Result<usize, String> {
    let quote = s[at];
    let mut i = at + 1;
    while i < s.len() {
        match s[i] {
            '\\' if quote != '`' => i += 2,
            c if c == quote => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(format!("unterminated string at {at}"))
}

/// The index just past the bracket closing the one opening at `at`, strings skipped.
fn past_group(s: &[char], at: usize) -> Result<usize, String> {
    let (open, close) = match s[at] {
        '(' => ('(', ')'),
        '{' => ('{', '}'),
        '[' => ('[', ']'),
        c => return Err(format!("{c:?} at {at} opens nothing")),
    };
    let mut depth = 0usize;
    let mut i = at;
    while i < s.len() {
        match s[i] {
            '"' | '\'' | '`' => {
                i = past_string(s, i)?;
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(format!("{open:?} at {at} is never closed"))
}

fn next_non_space(s: &[char], mut i: usize) -> Option<(usize, char)> {
    while i < s.len() {
        if !s[i].is_whitespace() {
            return Some((i, s[i]));
        }
        i += 1;
    }
    None
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The metric names `expr` selects: identifiers standing alone or before a `{…}` matcher
/// or a `[…]` range, never a function (an identifier before `(`), an aggregation, a
/// keyword, a label name (inside `{…}` and the label lists of `by (…)`, `on (…)` and the
/// like), a string, a number or a duration.
fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let s: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Whether the last token was a metric name, which a `{…}` may follow.
    let mut after_name = false;
    while i < s.len() {
        let c = s[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let was_name = std::mem::replace(&mut after_name, false);
        match c {
            '#' => {
                while i < s.len() && s[i] != '\n' {
                    i += 1;
                }
            }
            '"' | '\'' | '`' => i = past_string(&s, i)?,
            '{' => {
                if !was_name {
                    return Err(format!("a selector without a metric name at {i}: {expr}"));
                }
                i = past_group(&s, i)?;
            }
            '[' => i = past_group(&s, i)?,
            // Grafana's variables outside strings (`$__range` and the like in a range are
            // skipped with it).
            '$' => {
                i += 1;
                if s.get(i) == Some(&'{') {
                    i = past_group(&s, i)?;
                } else {
                    while i < s.len() && is_ident(s[i]) {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_digit()
                || (c == '.' && s.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                // Numbers, durations (`1h30m`), hexadecimals, exponents.
                while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == '.' || s[i] == '_') {
                    i += 1;
                }
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < s.len() && is_ident(s[i]) {
                    i += 1;
                }
                let ident: String = s[start..i].iter().collect();
                let next = next_non_space(&s, i);
                if LABEL_LISTS.contains(&ident.as_str()) {
                    if let Some((at, '(')) = next {
                        i = past_group(&s, at)?;
                    }
                } else if AGGREGATIONS.contains(&ident.as_str())
                    || KEYWORDS.contains(&ident.as_str())
                    || matches!(next, Some((_, '(')))
                {
                    // An operator, a keyword or a function: not a metric.
                } else {
                    names.insert(ident);
                    after_name = true;
                }
            }
            _ => i += 1,
        }
    }
    Ok(names)
}

#[test]
fn the_tokenizer_finds_metric_names_only() {
    let names = |e: &str| metric_names(e).unwrap().into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"sum by (job, instance) (rate(a_total{code="OK", x=~"$job"}[$__rate_interval]))
                / on (job) group_left (rule) b:recorded unless c offset 1h"#
        ),
        ["a_total", "b:recorded", "c"]
    );
    assert_eq!(
        names(
            "histogram_quantile(0.99, sum without (x) (rate(d_bucket[5m])) ) > 0.005 and e > bool 1e3"
        ),
        ["d_bucket", "e"]
    );
    assert_eq!(
        names("topk(10, max(f{y='a}b'}) by (rule)) or vector(0) * group_left g"),
        ["f", "g"]
    );
    assert_eq!(names("sum(h) # a comment naming i\n + j"), ["h", "j"]);
    assert!(metric_names(r#"{__name__="k"}"#).is_err());
    assert!(metric_names(r#"m{a="b}"#).is_err());
}

#[test]
fn variable_queries_name_their_selector() {
    assert_eq!(
        variable_expr(r#"label_values(tollgate_x{job=~"$job"}, instance)"#).as_deref(),
        Some(r#"tollgate_x{job=~"$job"}"#)
    );
    assert_eq!(variable_expr("label_values(job)"), None);
    assert_eq!(variable_expr("label_names()"), None);
}

// ------------------------------------------------------------------ the scrapes

/// The sample names of a Prometheus text exposition.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            l.split(|c: char| c == '{' || c.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

async fn has(server: &Server, metric: &str) -> bool {
    sample_names(&server.metrics().await).contains(metric)
}

/// `psql`: on the PATH, or beside the PostgreSQL server binaries.
fn psql() -> PathBuf {
    if Command::new("psql")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return "psql".into();
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin/psql"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("psql (postgresql-client) is not installed")
}

/// A psql connection locking the tables of keys, usage events and violations until [`release`]
/// ends it: the writer's next batch waits, so its queue fills, and lookups of uncached
/// keys wait, so the ones after them are shed.
fn lock_tables(url: &str) -> Child {
    let mut child = Command::new(psql())
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stdin stays open: the transaction lasts until it is told to commit.
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"BEGIN;\nLOCK TABLE keys, usage_events, violations IN ACCESS EXCLUSIVE MODE;\n")
        .unwrap();
    child
}

fn locks_held(url: &str) -> bool {
    let out = Command::new(psql())
        .args(["-X", "-tA", url, "-c"])
        .arg(
            "SELECT count(*) FROM pg_locks WHERE granted AND mode = 'AccessExclusiveLock' \
             AND relation IN ('keys'::regclass, 'usage_events'::regclass, 'violations'::regclass)",
        )
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "3"
}

fn release(mut child: Child) {
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"COMMIT;\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rls_request(domain: &str, user: &str) -> RateLimitRequest {
    RateLimitRequest {
        domain: domain.into(),
        descriptors: vec![RateLimitDescriptor {
            entries: vec![Entry {
                key: "user".into(),
                value: user.into(),
            }],
            ..Default::default()
        }],
        hits_addend: 0,
    }
}

const POLICY: &str = r#"
rules:
  - { name: per-user, key: "user:{user}", match: { user: "*" }, algorithm: fixed_window, anchor: first_hit, limit: 2, period: 1h }
  - { name: watch, key: "watch:{user}", match: { user: "*" }, algorithm: fixed_window, anchor: first_hit, limit: 1, period: 1h, shadow: true }
tiers:
  free:
    limits:
      - { name: requests, algorithm: fixed_window, anchor: first_hit, limit: 100000, period: 1h }
envoy:
  - domain: d
    descriptors:
      - key: user
        detailed_metric: true
        rate_limit: { unit: hour, requests_per_unit: 1 }
"#;

/// The memory-store server, driven through every door and every effect; its scrape.
async fn memory_and_postgres() -> String {
    let pg = tollgate_testkit::Postgres::start().unwrap();
    let database = format!(
        "database: {{ url: \"{}\", cache_ttl: 1h, usage_queue: 1, flush_interval: 10ms }}\n",
        pg.url()
    );
    // A proxy to an origin nothing listens on: its tries fail, are retried and trip
    // nothing before the scrape, so every proxy series shows.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = format!(
        "proxy: {{ listen: \"127.0.0.1:0\", routes: [{{upstream: api, retry: {{backoff: 1ms}}}}], \
         upstreams: {{api: {{origins: [\"http://{dead}\"], budget: {{ratio: 0, min_per_second: 0}}}}}} }}\n"
    );
    // Objectives met and missed, so that both outcomes and the target show.
    let slo = "slo: { flush_every: 100ms, objectives: [{ name: up, route: /v1/check, target: 99.9% }, \
               { name: instant, route: /v1/check, latency: 1ns, target: 99% }] }\n";
    let server = Server::start_with_env(
        &format!("{database}{proxy}{slo}{POLICY}"),
        &[("TOLLGATE_KEY_SECRET", SECRET)],
    );
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let check = |subject: Value| {
        let (c, url) = (c.clone(), server.url("/v1/check"));
        async move {
            let r = c
                .post(url)
                .json(&json!({ "subject": subject }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };

    // Through the proxy: a 502 after the budget refuses the retry.
    let r = c
        .get(format!("{}/", server.proxy.as_deref().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);

    // An admin call: a key.
    let created: Value = c
        .post(server.url("/v1/keys"))
        .json(&json!({"name": "app", "owner": "acme", "tier": "free"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["secret"]
        .as_str()
        .expect("a key's secret")
        .to_owned();

    // POST /v1/check: admitted, denied (and a shadow denial), keyed.
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(check(json!({"user": "u1"})).await["code"].clone());
    }
    assert_eq!(codes, ["OK", "OK", "RATE_LIMITED"]);
    assert_eq!(check(json!({"api_key": key})).await["code"], "OK");
    // GET /v1/authorize, with the key.
    let r = c
        .get(server.url("/v1/authorize"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Envoy's gRPC door: a descriptor counted by its full name, over its limit.
    let mut rls =
        RateLimitServiceClient::connect(format!("http://{}", server.grpc.as_deref().unwrap()))
            .await
            .unwrap();
    for _ in 0..2 {
        rls.should_rate_limit(rls_request("d", "u2")).await.unwrap();
    }

    // A refused reload, then one accepted.
    let good = std::fs::read_to_string(&server.config).unwrap();
    std::fs::write(&server.config, format!("{good}\nrules: [").as_bytes()).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            server
                .metrics()
                .await
                .contains("tollgate_reloads_total{result=\"failed\"}")
        })
        .await,
        "no refused reload counted"
    );
    std::fs::write(&server.config, &good).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            server
                .metrics()
                .await
                .contains("tollgate_reloads_total{result=\"ok\"}")
        })
        .await,
        "no reload counted"
    );

    // A reload forgets the verified keys (they were compiled against the old policy): the
    // key is verified, and cached, again.
    assert_eq!(check(json!({"api_key": key})).await["code"], "OK");
    // The writer stores the key's usage and the denial.
    assert!(
        eventually(Duration::from_secs(10), || async {
            has(&server, "tollgate_usage_events_written_total").await
        })
        .await,
        "usage was never written"
    );

    // The writer's tables and the keys locked: the writer's batch waits, so its queue of
    // one fills and the next usage events are dropped; lookups of made-up keys hold every
    // turn and the next ones are shed.
    let lock = lock_tables(&pg.url());
    assert!(
        eventually(Duration::from_secs(10), || async { locks_held(&pg.url()) }).await,
        "the tables were not locked"
    );
    let made_up: Vec<_> = (0..64)
        .map(|_| {
            let made_up = tollgate_registry::key::generate("live").unwrap();
            let request = c
                .post(server.url("/v1/check"))
                .json(&json!({"subject": {"api_key": made_up}}));
            tokio::spawn(async move {
                let r = request.send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            })
        })
        .collect();
    let dropped = eventually(Duration::from_secs(10), || async {
        // The key is cached: it is answered, and its usage event queued.
        assert_eq!(check(json!({"api_key": key})).await["code"], "OK");
        has(&server, "tollgate_effects_dropped_total").await
    })
    .await;
    let shed = eventually(Duration::from_secs(10), || async {
        has(&server, "tollgate_key_lookups_shed_total").await
    })
    .await;
    release(lock);
    // Refused, unverifiable, or past the request timeout while the lock was held.
    for answer in made_up {
        let (status, v) = answer.await.unwrap();
        assert!(
            (status == 200 && (v["code"] == "KEY_INVALID" || v["code"] == "UNAVAILABLE"))
                || status == 408,
            "{status} {v}"
        );
    }
    assert!(dropped, "no usage event dropped while the writer waited");
    assert!(shed, "no key lookup shed while lookups waited");

    // The sweeper's first round publishes the memory store's gauges and evictions.
    assert!(
        eventually(Duration::from_secs(15), || async {
            has(&server, "tollgate_store_resident_counters").await
                && has(&server, "tollgate_live_counters").await
        })
        .await
    );
    let text = server.metrics().await;
    drop(server);
    drop(pg);
    text
}

/// A server on Redis in approximate mode: its scrape.
async fn redis_approximate() -> String {
    let redis = tollgate_testkit::Single::start().unwrap();
    let server = Server::start(&format!(
        "store: {{ kind: redis, url: \"{}\", timeout: 2s, consistency: approximate, sync: 20ms }}\n\
         rules:\n  - {{ name: approx, key: \"user:{{user}}\", match: {{ user: \"*\" }}, algorithm: fixed_window, limit: 100, period: 1h }}\n",
        redis.url()
    ));
    let r = reqwest::Client::new()
        .post(server.url("/v1/check"))
        .json(&json!({"subject": {"user": "u"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            has(&server, "tollgate_approximate_overshoot_units").await
        })
        .await
    );
    server.metrics().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboards_and_alerts_query_is_exported() {
    let queries: Vec<(String, String)> = dashboard_queries()
        .into_iter()
        .chain(rule_queries())
        .collect();
    // Tokenize first: a file that does not parse fails before any server starts.
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut bad = Vec::new();
    for (at, expr) in &queries {
        match metric_names(expr) {
            Ok(names) if names.is_empty() => bad.push(format!("{at}: no metric in {expr}")),
            Ok(names) => {
                for n in names {
                    wanted.entry(n).or_default().insert(at.clone());
                }
            }
            Err(e) => bad.push(format!("{at}: {e}")),
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(
        queries.len() > 50,
        "only {} expressions found",
        queries.len()
    );

    let mut exported = sample_names(&memory_and_postgres().await);
    exported.extend(sample_names(&redis_approximate().await));
    exported.extend(SYNTHETIC.iter().map(|s| (*s).to_owned()));

    let missing: Vec<String> = wanted
        .iter()
        .filter(|(name, _)| !exported.contains(*name))
        .map(|(name, at)| {
            format!(
                "{name}, queried by {}",
                at.iter().cloned().collect::<Vec<_>>().join("; ")
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "metrics queried but not exported:\n{}\n\nexported: {exported:?}",
        missing.join("\n")
    );
}

//! Conformance vectors: each algorithm's specification as data, runnable on any [`Store`].
//!
//! The vectors live in `tests/vectors/<algorithm>.json` beside this crate. A file holds
//! cases; a case names a rule (the policy fields of one rule) and steps. A step happens at
//! `t_ms` after the file's `start` and either acquires `cost` units or `release`s the lease
//! taken at an earlier step; the fields it names (`allowed`, `limit`, `remaining`,
//! `reset_ms`, `retry_after_ms`, where `null` means never, `released`) must match. `repeat`
//! runs a step several times. Each case runs on its own counter key.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::policy::{Policy, Rule};
use crate::store::{Check, Store};
use crate::time::{NANOS_PER_MILLI, Nanos};

/// The folder holding the vector files of this crate.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// One vector file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorFile {
    /// The algorithm every case uses.
    pub algorithm: String,
    /// The instant `t_ms = 0` stands for (RFC 3339).
    pub start: String,
    /// The cases.
    pub cases: Vec<Case>,
}

/// One case: a rule and a sequence of steps.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows.
    pub name: String,
    /// The rule's policy fields (without `name` and `algorithm`).
    pub rule: Value,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step and what it must answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Milliseconds after the file's start.
    pub t_ms: u64,
    /// Units to acquire (default 1) unless `release` is set.
    #[serde(default)]
    pub cost: Option<u64>,
    /// Release the lease taken at this earlier step number.
    #[serde(default)]
    pub release: Option<usize>,
    /// Run the step this many times (default 1).
    #[serde(default)]
    pub repeat: Option<u32>,
    /// Expected admission.
    #[serde(default)]
    pub allowed: Option<bool>,
    /// Expected limit.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Expected remaining units.
    #[serde(default)]
    pub remaining: Option<u64>,
    /// Expected reset, in milliseconds.
    #[serde(default)]
    pub reset_ms: Option<u64>,
    /// Expected retry-after in milliseconds; `null` for never.
    #[serde(default, deserialize_with = "some_nullable")]
    pub retry_after_ms: Option<Option<u64>>,
    /// Expected result of a release.
    #[serde(default)]
    pub released: Option<bool>,
}

fn some_nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

/// Reads every vector file of [`vectors_dir`].
pub fn load_all() -> Result<Vec<VectorFile>, String> {
    let dir = vectors_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect()
}

fn ms(ns: Nanos) -> u64 {
    ns / NANOS_PER_MILLI
}

/// Runs one case on `store`, returning every mismatch (empty when the store conforms).
/// `key` should be unique to the case within the store.
pub async fn run_case<S: Store>(
    store: &S,
    file: &VectorFile,
    case: &Case,
    key: &str,
) -> Vec<String> {
    let mut failures = Vec::new();
    let start: Timestamp = match file.start.parse() {
        Ok(t) => t,
        Err(e) => return vec![format!("bad start {:?}: {e}", file.start)],
    };
    let start = u64::try_from(start.as_nanosecond()).unwrap_or(0);
    let rule = match build_rule(&file.algorithm, &case.rule) {
        Ok(r) => r,
        Err(e) => return vec![format!("{}: rule does not compile: {e}", case.name)],
    };
    let mut leases: Vec<Option<u64>> = Vec::new();
    for (i, step) in case.steps.iter().enumerate() {
        let at = format!("{} step {i} (t={}ms)", case.name, step.t_ms);
        let now = step
            .t_ms
            .checked_mul(NANOS_PER_MILLI)
            .and_then(|t| start.checked_add(t));
        let Some(now) = now else {
            failures.push(format!(
                "{at}: the time is past what nanoseconds since 1970 hold"
            ));
            leases.push(None);
            continue;
        };
        if let Some(of) = step.release {
            let lease = leases.get(of).copied().flatten();
            let released = match lease {
                Some(id) => store.release(&rule, key, id, now).await.unwrap_or(false),
                None => false,
            };
            if step.released.is_some_and(|want| want != released) {
                failures.push(format!(
                    "{at}: released {released}, expected {:?}",
                    step.released
                ));
            }
            leases.push(None);
            continue;
        }
        let cost = step.cost.unwrap_or(1);
        let mut lease = None;
        let repeat = step.repeat.unwrap_or(1).max(1);
        for n in 0..repeat {
            let check = Check {
                rule: &rule,
                key: key.into(),
                cost,
            };
            let o = match store.acquire(std::slice::from_ref(&check), now).await {
                Ok(o) => match o.first() {
                    Some(o) => *o,
                    None => {
                        failures.push(format!("{at}: no outcome"));
                        break;
                    }
                },
                Err(e) => {
                    failures.push(format!("{at}: store error {e}"));
                    break;
                }
            };
            lease = o.lease.map(|l| l.get()).or(lease);
            // n < repeat, so n + 1 does not saturate.
            let last = n.saturating_add(1) == repeat;
            let mut expect = |what: &str, got: Option<u64>, want: Option<Option<u64>>| {
                if let Some(want) = want
                    && got != want
                {
                    failures.push(format!("{at}#{n}: {what} = {got:?}, expected {want:?}"));
                }
            };
            expect(
                "allowed",
                Some(u64::from(o.allowed)),
                step.allowed.map(|b| Some(u64::from(b))),
            );
            if last {
                expect("limit", Some(o.limit), step.limit.map(Some));
                expect("remaining", Some(o.remaining), step.remaining.map(Some));
                expect("reset_ms", Some(ms(o.reset)), step.reset_ms.map(Some));
                expect("retry_after_ms", o.retry_after.map(ms), step.retry_after_ms);
            }
        }
        leases.push(lease);
    }
    failures
}

fn build_rule(algorithm: &str, fields: &Value) -> Result<Rule, String> {
    let mut rule = fields
        .as_object()
        .cloned()
        .ok_or("rule must be a mapping")?;
    rule.insert("name".into(), Value::from("vector"));
    rule.insert("algorithm".into(), Value::from(algorithm));
    rule.entry("key").or_insert_with(|| Value::from("k"));
    let doc = serde_json::json!({ "rules": [Value::Object(rule)] });
    let policy = Policy::from_value(&doc, &[]).map_err(|e| e.to_string())?;
    policy
        .rules()
        .first()
        .cloned()
        .ok_or_else(|| "no rule".into())
}

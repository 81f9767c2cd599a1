//! A decision's metrics, through the `metrics` facade.
//!
//! Handles are looked up once per thread and label set and kept: looking a labelled metric
//! up in the recorder on every decision hashes its name and labels each time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use metrics::{Counter, Histogram};
use tollgate_core::Decision;

/// The decision latency histogram's name.
pub const LATENCY: &str = "tollgate_decision_seconds";

struct RuleCounters {
    outcomes: [Counter; 3],
    store_errors: Counter,
    degraded: Counter,
}

impl RuleCounters {
    fn new(rule: &str, fail_policy: &'static str) -> Self {
        let outcome = |o: &'static str| metrics::counter!("tollgate_decisions_total", "rule" => rule.to_owned(), "outcome" => o);
        RuleCounters {
            outcomes: [
                outcome("allowed"),
                outcome("denied"),
                outcome("shadow_denied"),
            ],
            store_errors: metrics::counter!("tollgate_store_errors_total", "rule" => rule.to_owned()),
            degraded: metrics::counter!("tollgate_degraded_decisions_total", "rule" => rule.to_owned(), "fail_policy" => fail_policy),
        }
    }
}

/// Per-thread maps keyed by codes and rule names from the configuration, never by request
/// data, so a fast unkeyed hash is safe here.
type LocalMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

struct Handles {
    latency: Histogram,
    requests: LocalMap<&'static str, Counter>,
    rules: LocalMap<Box<str>, RuleCounters>,
}

thread_local! {
    static HANDLES: RefCell<Handles> = RefCell::new(Handles {
        latency: metrics::histogram!(LATENCY),
        requests: LocalMap::default(),
        rules: LocalMap::default(),
    });
}

/// Counts decision `d`, begun at `started`.
pub(crate) fn decision(d: &Decision<'_>, started: Instant) {
    HANDLES.with(|cell| {
        let mut h = cell.borrow_mut();
        h.latency.record(started.elapsed().as_secs_f64());
        let code = d.code.as_str();
        h.requests
            .entry(code)
            .or_insert_with(|| metrics::counter!("tollgate_requests_total", "code" => code))
            .increment(1);
        for l in &d.limits {
            let outcome = match (l.exceeded(), l.shadow()) {
                (false, _) => 0,
                (true, false) => 1,
                (true, true) => 2,
            };
            // Looked up by `&str` first: the owned key is made once per rule.
            let rule = match h.rules.get_mut(l.rule.name.as_str()) {
                Some(rule) => rule,
                None => h
                    .rules
                    .entry(l.rule.name.as_str().into())
                    .or_insert_with(|| {
                        RuleCounters::new(&l.rule.name, l.rule.on_store_error.name())
                    }),
            };
            if let Some(counter) = rule.outcomes.get(outcome) {
                counter.increment(1);
            }
            if l.degraded {
                rule.store_errors.increment(1);
                rule.degraded.increment(1);
            }
        }
    });
}

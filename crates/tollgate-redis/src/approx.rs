//! `consistency: approximate`: window counters decided locally and synced with Redis every
//! interval, trading a bounded over-admission for no Redis call on the decision path.
//!
//! Each instance keeps, per counter, the fleet's total for the current (and, for sliding
//! windows, the previous) window as last read from Redis, plus what it admitted since.
//! Every `interval` it adds what it admitted to Redis (`INCRBY` on one integer per window)
//! and reads the totals back. Between two syncs each instance can admit what is left of the
//! limit as it last saw it, so a fleet of `n` instances admits at most `n × limit` in the
//! worst case, and in practice about `limit + (n − 1) × rate × interval`; the units
//! admitted beyond a limit are counted in [`Approx::overshoot`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::Value;
use smallvec::SmallVec;
use tollgate_core::Check;
use tollgate_core::algorithm::{Anchor, Limit, State};
use tollgate_core::store::Outcomes;
use tollgate_core::time::{Nanos, window_start};

use crate::conn::Conn;

/// Whether a limit is counted locally in approximate mode: clock-aligned windows only.
pub(crate) fn eligible(limit: &Limit) -> bool {
    match limit {
        Limit::FixedWindow(f) => f.anchor == Anchor::Clock,
        Limit::SlidingWindow(_) => true,
        _ => false,
    }
}

#[derive(Debug)]
struct Entry {
    period: Nanos,
    limit: u64,
    /// Start of the current window.
    start: Nanos,
    /// The fleet's total in the previous window, as last read.
    prev: u64,
    /// The fleet's total in the current window, as last read.
    known: u64,
    /// Admitted here in the current window and not yet added to Redis.
    pending: u64,
    /// Admissions of past windows not yet added: (window start, units).
    old: SmallVec<[(Nanos, u64); 1]>,
    last_used: Nanos,
}

impl Entry {
    fn roll(&mut self, now: Nanos) {
        let aligned = window_start(now, self.period);
        if aligned == self.start {
            return;
        }
        if self.pending > 0 {
            self.old.push((self.start, self.pending));
        }
        self.prev = if aligned == self.start.saturating_add(self.period) {
            self.known.saturating_add(self.pending)
        } else {
            0
        };
        self.start = aligned;
        self.known = 0;
        self.pending = 0;
    }

    fn state(&self, limit: &Limit) -> State {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        match limit {
            Limit::SlidingWindow(_) => State::Window {
                start: self.start,
                prev: clamp(self.prev),
                cur: clamp(self.known.saturating_add(self.pending)),
            },
            _ => State::Fixed {
                start: self.start,
                count: self.known.saturating_add(self.pending),
            },
        }
    }
}

/// The local counters and the sync between them and Redis.
pub(crate) struct Approx {
    interval: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, Entry>>,
    overshoot: AtomicU64,
    sync_errors: AtomicU64,
    /// The latest instant a decision passed, for telling idle counters.
    latest: AtomicU64,
    started: std::sync::Once,
}

/// One counter's sync: what to add to which window, and what came back.
struct Flush {
    key: String,
    start: Nanos,
    period: Nanos,
    limit: u64,
    add: u64,
    current: bool,
}

fn window_key(key: &str, start: Nanos) -> String {
    format!("{key}:w{}", start / 1_000_000)
}

impl Approx {
    pub(crate) fn new(interval: Duration, capacity: usize) -> Self {
        Approx {
            interval: interval.max(Duration::from_millis(1)),
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
            overshoot: AtomicU64::new(0),
            sync_errors: AtomicU64::new(0),
            latest: AtomicU64::new(0),
            started: std::sync::Once::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Units admitted beyond a limit, across the fleet, as seen by this instance's syncs.
    pub(crate) fn overshoot(&self) -> u64 {
        self.overshoot.load(Ordering::Relaxed)
    }

    /// Syncs that failed (the local counters carry on meanwhile).
    pub(crate) fn sync_errors(&self) -> u64 {
        self.sync_errors.load(Ordering::Relaxed)
    }

    /// Starts the sync task on the current runtime, once.
    pub(crate) fn start(self: &Arc<Self>, conn: &Conn) {
        self.started.call_once(|| {
            let weak = Arc::downgrade(self);
            let conn = conn.clone();
            let interval = self.interval;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    // The store is gone: stop.
                    let Some(approx) = weak.upgrade() else { break };
                    approx.sync(&conn, interval).await;
                }
            });
        });
    }

    /// Decides `checks` (all [`eligible`]) locally, all-or-nothing; `None` when a counter
    /// is new and the local table is full (the caller then counts exactly).
    pub(crate) fn decide(
        &self,
        checks: &[(Check<'_>, String)],
        now: Nanos,
        commit: bool,
    ) -> Option<Outcomes> {
        self.latest.fetch_max(now, Ordering::Relaxed);
        let mut entries = self.lock();
        for (check, key) in checks {
            if !entries.contains_key(key) {
                if entries.len() >= self.capacity {
                    return None;
                }
                let period = check.rule.limit.window(now).unwrap_or(1).max(1);
                entries.insert(
                    key.clone(),
                    Entry {
                        period,
                        limit: check.rule.limit.quota(),
                        start: window_start(now, period),
                        prev: 0,
                        known: 0,
                        pending: 0,
                        old: SmallVec::new(),
                        last_used: now,
                    },
                );
            }
        }
        let mut outcomes = Outcomes::new();
        for (check, key) in checks {
            let e = entries.get_mut(key)?;
            e.roll(now);
            e.last_used = now;
            outcomes.push(
                check
                    .rule
                    .limit
                    .check(&e.state(&check.rule.limit), now, check.cost),
            );
        }
        if outcomes.iter().all(|o| o.allowed) {
            if commit {
                for (check, key) in checks {
                    if let Some(e) = entries.get_mut(key) {
                        e.pending = e.pending.saturating_add(check.cost);
                    }
                }
            }
        } else {
            for ((check, key), o) in checks.iter().zip(outcomes.iter_mut()) {
                if o.allowed
                    && let Some(e) = entries.get(key)
                {
                    *o = check.rule.limit.check(&e.state(&check.rule.limit), now, 0);
                }
            }
        }
        Some(outcomes)
    }

    /// Adds what this instance admitted to Redis and reads the fleet's totals back.
    async fn sync(&self, conn: &Conn, timeout: Duration) {
        let flushes = self.take_flushes();
        let calls = flushes.iter().map(|f| async move {
            let mut pipe = redis::pipe();
            let cur = window_key(&f.key, f.start);
            let ttl_ms = (f.period / 1_000_000)
                .saturating_mul(2)
                .saturating_add(1_000);
            pipe.cmd("INCRBY").arg(&cur).arg(f.add);
            pipe.cmd("PEXPIRE").arg(&cur).arg(ttl_ms).ignore();
            pipe.cmd("GET")
                .arg(window_key(&f.key, f.start.saturating_sub(f.period)));
            let result =
                tokio::time::timeout(timeout.max(Duration::from_millis(50)), conn.pipe(&pipe))
                    .await;
            (f, result)
        });
        // Concurrent calls share the multiplexed connection, which pipelines them.
        let results = futures_util::future::join_all(calls).await;
        let mut entries = self.lock();
        for (f, result) in results {
            let totals = match result {
                Ok(Ok(values)) => values,
                _ => {
                    self.sync_errors.fetch_add(1, Ordering::Relaxed);
                    // Keep the units to add on the next sync.
                    if f.add > 0
                        && let Some(e) = entries.get_mut(&f.key)
                    {
                        if f.current && e.start == f.start {
                            e.known = e.known.saturating_sub(f.add);
                            e.pending = e.pending.saturating_add(f.add);
                        } else {
                            e.old.push((f.start, f.add));
                        }
                    }
                    continue;
                }
            };
            let int = |v: Option<&Value>| match v {
                Some(Value::Int(i)) => u64::try_from(*i).unwrap_or(0),
                Some(Value::BulkString(b)) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                _ => 0,
            };
            let total = int(totals.first());
            let before = total.saturating_sub(f.add);
            let over = total.saturating_sub(before.max(f.limit)).min(f.add);
            self.overshoot.fetch_add(over, Ordering::Relaxed);
            if f.current
                && let Some(e) = entries.get_mut(&f.key)
                && e.start == f.start
            {
                e.known = total;
                e.prev = e.prev.max(int(totals.get(1)));
            }
        }
    }

    /// Moves every pending admission out for flushing, and lists the counters used lately
    /// for a refresh; counters idle for two windows are dropped.
    fn take_flushes(&self) -> Vec<Flush> {
        let now = self.latest.load(Ordering::Relaxed);
        let mut entries = self.lock();
        let mut out = Vec::new();
        entries.retain(|key, e| {
            for (start, add) in e.old.drain(..) {
                out.push(Flush {
                    key: key.clone(),
                    start,
                    period: e.period,
                    limit: e.limit,
                    add,
                    current: false,
                });
            }
            if e.pending > 0 || e.last_used.saturating_add(e.period) > now {
                out.push(Flush {
                    key: key.clone(),
                    start: e.start,
                    period: e.period,
                    limit: e.limit,
                    add: e.pending,
                    current: true,
                });
                // In flight: still counted here until Redis's total replaces it.
                e.known = e.known.saturating_add(e.pending);
                e.pending = 0;
            }
            e.last_used.saturating_add(e.period.saturating_mul(2)) > now
        });
        out
    }
}

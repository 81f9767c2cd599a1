//! The Lua side: one script assembled from the files under `scripts/`, and the arguments
//! each check passes to it.

use std::sync::LazyLock;

use redis::Cmd;
use tollgate_core::Check;
use tollgate_core::algorithm::{Anchor, Limit};
use tollgate_core::time::Nanos;

use crate::keys;

/// The decision script: helpers, one file per algorithm, then the driver. One script so a
/// decision over several algorithms is one atomic call.
pub(crate) static DECIDE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(concat!(
        include_str!("../scripts/lib.lua"),
        include_str!("../scripts/gcra.lua"),
        include_str!("../scripts/token_bucket.lua"),
        include_str!("../scripts/sliding_window.lua"),
        include_str!("../scripts/sliding_log.lua"),
        include_str!("../scripts/fixed_window.lua"),
        include_str!("../scripts/concurrency.lua"),
        include_str!("../scripts/quota.lua"),
        include_str!("../scripts/decide.lua"),
    ))
});

/// Integers the script answers per check.
pub(crate) const REPLY_PER_CHECK: usize = 7;

/// Lua numbers are doubles: integers above this lose exactness.
const EXACT: u64 = 1 << 53;

fn micros(ns: Nanos) -> u64 {
    ns.div_ceil(1_000)
}

/// The algorithm's name and six parameters, in microseconds where they are times.
pub(crate) fn params(limit: &Limit, now: Nanos) -> (&'static str, [u64; 6]) {
    let name = limit.kind().name();
    let p = match limit {
        Limit::Gcra(g) => {
            let capacity = g.limit.saturating_add(g.burst);
            let interval = micros(g.period).div_ceil(g.limit.max(1)).max(1);
            [
                interval,
                capacity,
                capacity.saturating_mul(interval),
                0,
                0,
                0,
            ]
        }
        Limit::TokenBucket(b) => [
            b.limit.max(1),
            micros(b.period).max(1),
            b.limit.saturating_add(b.burst),
            0,
            0,
            0,
        ],
        Limit::SlidingWindow(w) => [w.limit, micros(w.period).max(1), 0, 0, 0, 0],
        Limit::SlidingLog(l) => [l.limit, micros(l.period).max(1), 0, 0, 0, 0],
        Limit::FixedWindow(f) => {
            let anchor = u64::from(f.anchor == Anchor::FirstHit);
            [f.limit, micros(f.period).max(1), anchor, 0, 0, 0]
        }
        Limit::Concurrency(c) => [c.limit, micros(c.lease_ttl).max(1), 0, 0, 0, 0],
        Limit::Quota(q) => {
            let [prev, start, end, next] = q.boundaries(now).map(|t| t / 1_000);
            [q.limit, q.rollover_cap, prev, start, end, next]
        }
    };
    (name, p)
}

/// Why the Redis store cannot count `limit` exactly, if it cannot: the script's arithmetic
/// must stay below 2^53.
pub fn unsupported(limit: &Limit) -> Option<String> {
    let (product, what) = match limit {
        Limit::Gcra(g) => {
            let capacity = g.limit.saturating_add(g.burst);
            let interval = micros(g.period).div_ceil(g.limit.max(1));
            (
                capacity.saturating_mul(interval),
                "(limit + burst) × period / limit",
            )
        }
        Limit::TokenBucket(b) => (
            b.limit
                .saturating_add(b.burst)
                .saturating_mul(micros(b.period)),
            "(limit + burst) × period",
        ),
        Limit::SlidingWindow(w) => (w.limit.saturating_mul(micros(w.period)), "limit × period"),
        _ => return None,
    };
    (product >= EXACT).then(|| {
        format!("{what} is {product} µs, above the 2^53 the Redis store counts exactly; use a shorter period or a smaller limit")
    })
}

/// One check's part of a decision call: its two keys (the counter, then its penalty box)
/// and the eleven fields the script reads (algorithm, cost, limit, six parameters,
/// `block_for`, lease id). Numbers stay numbers until they are written into the command,
/// so a check costs its two key names and nothing else on its way to Redis.
pub(crate) struct CheckCall {
    counter: String,
    penalty: String,
    algorithm: &'static str,
    numbers: [u64; 10],
}

impl CheckCall {
    /// The call for `check`, counted at `counter`, decided at `now`, taking lease `lease`
    /// (0 for none).
    pub(crate) fn new(counter: String, check: &Check<'_>, now: Nanos, lease: u64) -> Self {
        let limit = &check.rule.limit;
        let (algorithm, [p1, p2, p3, p4, p5, p6]) = params(limit, now);
        let block_for = check.rule.block_for.map_or(0, micros);
        CheckCall {
            penalty: keys::penalty(&counter),
            counter,
            algorithm,
            numbers: [
                check.cost,
                limit.quota(),
                p1,
                p2,
                p3,
                p4,
                p5,
                p6,
                block_for,
                lease,
            ],
        }
    }

    /// The counter's key name.
    pub(crate) fn counter(&self) -> &str {
        &self.counter
    }
}

/// The start of a decision script call over `n` checks: `EVALSHA`, the script, and every
/// check's two keys. The caller appends the arguments (`decide.lua` documents them).
pub(crate) fn eval_keys<'a>(n: usize, checks: impl IntoIterator<Item = &'a CheckCall>) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(DECIDE.get_hash()).arg(n.saturating_mul(2));
    for c in checks {
        cmd.arg(&c.counter).arg(&c.penalty);
    }
    cmd
}

/// Appends the fields of `checks`, in order.
pub(crate) fn push_fields(cmd: &mut Cmd, checks: &[CheckCall]) {
    for c in checks {
        cmd.arg(c.algorithm).arg(&c.numbers[..]);
    }
}

/// One decision's call, uncoalesced: its checks' keys, the instant (empty for the server's
/// clock), the mode (`a`, `p` or `r`), then the fields.
pub(crate) fn decide_cmd(time: &str, mode: &str, checks: &[CheckCall]) -> Cmd {
    let mut cmd = eval_keys(checks.len(), checks);
    cmd.arg(time).arg(mode);
    push_fields(&mut cmd, checks);
    cmd
}

//! [`RedisStore`]: the core's `Store` trait over Redis.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Value;
use smallvec::SmallVec;
use tokio::sync::oneshot;
use tollgate_core::algorithm::Limit;
use tollgate_core::policy::Rule;
use tollgate_core::store::Outcomes;
use tollgate_core::time::Nanos;
use tollgate_core::{Check, Outcome, Store, StoreError};

use crate::approx::{self, Approx};
use crate::batch;
use crate::breaker::{Breaker, BreakerConfig, BreakerState};
use crate::conn::{Conn, Topology};
use crate::keys;
use crate::memory::{self, MemoryPolicy, MemoryWarning};
use crate::near::NearCache;
use crate::script::{self, CheckCall, DECIDE, REPLY_PER_CHECK};

/// Whose clock a decision reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// Redis's `TIME`: every instance sharing the store agrees, whatever its own clock says.
    #[default]
    Server,
    /// The `now` each call passes in (conformance tests, replays).
    Caller,
}

/// Redis store settings.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Where Redis is.
    pub topology: Topology,
    /// The longest any call may take; past it the decision follows its rules' fail policies.
    pub timeout: Duration,
    /// Prefix of every key the store writes.
    pub prefix: String,
    /// Whose clock decides.
    pub clock: Clock,
    /// When to stop calling a failing Redis.
    pub breaker: BreakerConfig,
    /// Denied counters remembered locally so that repeated requests for them need no
    /// call until they could pass; 0 turns it off.
    pub near_cache: u64,
    /// How exactly window counters are shared.
    pub consistency: Consistency,
}

/// How window counters are shared across instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Every decision is counted in Redis.
    #[default]
    Exact,
    /// Fixed (clock-aligned) and sliding windows are counted locally and synced with Redis
    /// every `sync`; other algorithms stay exact. See `docs/redis.md` for the bound.
    Approximate {
        /// Time between syncs.
        sync: Duration,
    },
}

impl RedisConfig {
    /// Defaults for `topology`: 50 ms timeout, prefix `tg`, server time, near cache of
    /// 100,000 counters.
    pub fn new(topology: Topology) -> Self {
        RedisConfig {
            topology,
            timeout: Duration::from_millis(50),
            prefix: "tg".into(),
            clock: Clock::Server,
            breaker: BreakerConfig::default(),
            near_cache: 100_000,
            consistency: Consistency::Exact,
        }
    }
}

/// Counters in Redis, shared by every instance pointing at it.
///
/// A decision is one `EVALSHA` of one script holding every algorithm; concurrent decisions
/// share one connection per node and are pipelined on it. On a Cluster, a decision whose
/// counters sit in different slots reserves slot by slot and refunds what it reserved when
/// a later slot denies (see `docs/redis.md`).
pub struct RedisStore {
    conn: Conn,
    config: RedisConfig,
    /// One breaker off a Cluster; on a Cluster one per range of slots, so a failing
    /// primary opens the circuit only for the decisions whose counters it holds.
    breakers: Vec<Breaker>,
    near: Option<NearCache>,
    approx: Option<Arc<Approx>>,
    /// The tasks that coalesce decisions, one per runtime, started on first use.
    batchers: batch::Batchers,
    next_lease: AtomicU64,
    cluster: bool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("topology", &self.config.topology)
            .field("breaker", &self.breaker_state())
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Acquire,
    Preview,
    /// Takes back an acquire (a decision across Cluster slots that a later slot denied).
    Refund,
}

impl Op {
    fn arg(self) -> &'static str {
        match self {
            Op::Acquire => "a",
            Op::Preview => "p",
            Op::Refund => "r",
        }
    }
}

/// Breakers on a Cluster: one per 1,024 slots.
const SLOT_RANGES: usize = 16;

/// Lease ids stay below 2^53 so the script's numbers hold them; each store starts at a
/// random point so instances do not hand out the same ids.
const LEASE_MASK: u64 = (1 << 53) - 1;

impl RedisStore {
    /// A store for `config`. It connects on first use, so it can start while Redis is
    /// down (decisions then follow their fail policies).
    pub fn new(config: RedisConfig) -> Result<Self, StoreError> {
        // `rediss://` needs a process-wide rustls provider; keep one the program chose.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let conn = Conn::open(&config.topology, config.timeout)
            .map_err(|e| StoreError::Unavailable(format!("redis: {e}")))?;
        let start = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), 0x1ea5e_u64)
            & LEASE_MASK;
        Ok(RedisStore {
            cluster: matches!(config.topology, Topology::Cluster { .. }),
            near: (config.near_cache > 0).then(|| NearCache::new(config.near_cache)),
            approx: match config.consistency {
                Consistency::Exact => None,
                Consistency::Approximate { sync } => Some(Arc::new(Approx::new(sync, 1_000_000))),
            },
            breakers: {
                let n = if matches!(config.topology, Topology::Cluster { .. }) {
                    SLOT_RANGES
                } else {
                    1
                };
                (0..n).map(|_| Breaker::new(config.breaker)).collect()
            },
            next_lease: AtomicU64::new(start.max(1)),
            batchers: batch::Batchers::new(config.topology.clone(), config.timeout),
            conn,
            config,
        })
    }

    /// The circuit breaker's state: on a Cluster, the worst over its slot ranges.
    pub fn breaker_state(&self) -> BreakerState {
        let states = self.breakers.iter().map(Breaker::state);
        let mut worst = BreakerState::Closed;
        for s in states {
            match s {
                BreakerState::Open => return BreakerState::Open,
                BreakerState::HalfOpen => worst = BreakerState::HalfOpen,
                BreakerState::Closed => {}
            }
        }
        worst
    }

    #[allow(
        clippy::indexing_slicing,
        reason = "there is at least one breaker (see `new`), and the index is at most the last"
    )]
    fn breaker(&self, slot: u16) -> &Breaker {
        let last = self.breakers.len().saturating_sub(1);
        // Slots are below 16,384, so the index is below the number of breakers.
        let i = usize::from(slot).saturating_mul(self.breakers.len()) / 16_384;
        &self.breakers[i.min(last)]
    }

    /// Whether Redis answers a `PING` within the timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let cmd = redis::cmd("PING");
        match tokio::time::timeout(self.config.timeout, self.conn.query(&cmd)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!("redis: {e}"))),
            Err(_) => Err(StoreError::Timeout),
        }
    }

    /// The memory settings of the Redis this store talks to (`CONFIG GET maxmemory*`,
    /// within the timeout); on a Cluster, of the node whose settings warn, if any.
    /// `Ok(None)` when the server will not run `CONFIG` (renamed or disabled, denied by an
    /// ACL, or hidden by a managed service); an error only when it cannot be reached.
    pub async fn memory_policy(&self) -> Result<Option<MemoryPolicy>, StoreError> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("maxmemory*");
        match tokio::time::timeout(self.config.timeout, self.conn.query(&cmd)).await {
            Ok(Ok(value)) => Ok(MemoryPolicy::from_answer(&value)),
            Ok(Err(e)) if memory::config_refused(&e) => Ok(None),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!("redis: {e}"))),
            Err(_) => Err(StoreError::Timeout),
        }
    }

    /// What `tollgate check-config` and `/readyz` should warn about the Redis this store
    /// talks to: no `maxmemory`, or `maxmemory-policy noeviction` (see
    /// [`MemoryPolicy::warning`]). `Ok(None)` also when the server will not say.
    pub async fn memory_warning(&self) -> Result<Option<MemoryWarning>, StoreError> {
        Ok(self.memory_policy().await?.and_then(|p| p.warning()))
    }

    /// In approximate mode: units admitted beyond a limit across the fleet, as this
    /// instance's syncs saw them, and the syncs that failed.
    pub fn approximate_stats(&self) -> Option<(u64, u64)> {
        self.approx
            .as_ref()
            .map(|a| (a.overshoot(), a.sync_errors()))
    }

    /// The Redis key holding counter (`rule`, `key`), for operators inspecting Redis.
    pub fn counter_key(&self, rule: &Rule, key: &str) -> String {
        keys::counter(&self.config.prefix, rule, key)
    }

    fn lease_for(&self, limit: &Limit) -> u64 {
        match limit {
            Limit::Concurrency(_) => {
                let id = self.next_lease.fetch_add(1, Ordering::Relaxed) & LEASE_MASK;
                id.max(1)
            }
            _ => 0,
        }
    }

    fn time_arg(&self, now: Nanos) -> String {
        match self.config.clock {
            Clock::Server => String::new(),
            Clock::Caller => (now / 1_000).to_string(),
        }
    }

    /// Runs `call`, on the counters of `slot`, behind their breaker and the timeout.
    async fn guarded<T>(
        &self,
        slot: u16,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let breaker = self.breaker(slot);
        let Some(permit) = breaker.allow(Instant::now()) else {
            return Err(StoreError::Unavailable("redis: circuit open".into()));
        };
        let result = match tokio::time::timeout(self.config.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!("redis: {e}"))),
            Err(_) => Err(StoreError::Timeout),
        };
        if let Err(e) = &result
            && breaker.state() == BreakerState::Closed
        {
            tracing::warn!(error = %e, "redis store call failed");
        }
        breaker.record(permit, result.is_ok(), Instant::now());
        result
    }

    /// One script call over `checks` (all in one slot): their outcomes and the instant
    /// (µs) the script decided at.
    async fn call(
        &self,
        checks: &[Check<'_>],
        leases: &[u64],
        now: Nanos,
        op: Op,
        time: String,
    ) -> Result<(Outcomes, u64), StoreError> {
        let calls: SmallVec<[CheckCall; 1]> = checks
            .iter()
            .zip(leases)
            .map(|(check, &lease)| {
                CheckCall::new(self.counter_key(check.rule, &check.key), check, now, lease)
            })
            .collect();
        let slot = calls.first().map_or(0, |c| self.slot_of(c.counter()));
        if op != Op::Refund && self.batches() {
            let queue = self.batchers.queue();
            let (reply, answer) = oneshot::channel();
            let job = batch::Job {
                checks: calls,
                mode: op.arg(),
                reply,
            };
            let gone = || redis::RedisError::from((redis::ErrorKind::Io, "batch sender stopped"));
            let queued = async move {
                queue?.send(job).await.map_err(|_| gone())?;
                answer.await.map_err(|_| gone())?
            };
            let (ints, at) = self.guarded(slot, queued).await?;
            return outcomes_of(&ints, at, checks.len());
        }
        let cmd = script::decide_cmd(&time, op.arg(), &calls);
        // Boxed: the client's future is about 7 KB, and every layer awaiting it by value
        // would copy it.
        let eval = Box::pin(self.conn.evalsha(&DECIDE, &cmd));
        let reply = self.guarded(slot, eval).await?;
        parse(&reply, checks.len())
    }

    /// Whether decisions are coalesced: off a Cluster (a batch must sit on one node) and on
    /// Redis's clock (a batch decides at one instant).
    fn batches(&self) -> bool {
        !self.cluster && self.config.clock == Clock::Server
    }

    fn time_of(&self, server_us: u64, now: Nanos) -> String {
        match self.config.clock {
            Clock::Server => server_us.to_string(),
            Clock::Caller => (now / 1_000).to_string(),
        }
    }

    async fn decide(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
        op: Op,
    ) -> Result<Outcomes, StoreError> {
        let Some(approx) = &self.approx else {
            return self.decide_exact(checks, now, op).await;
        };
        approx.start(&self.conn);
        let (local, remote): (SmallVec<[usize; 4]>, SmallVec<[usize; 4]>) = (0..checks.len())
            .partition(|&i| {
                checks
                    .get(i)
                    .is_some_and(|c| approx::eligible(&c.rule.limit))
            });
        let keyed = |costs: bool| -> SmallVec<[(Check<'_>, String); 4]> {
            pick(checks, &local, costs)
                .into_iter()
                .map(|c| {
                    let key = self.counter_key(c.rule, &c.key);
                    (c, key)
                })
                .collect()
        };
        if local.is_empty() {
            return self.decide_exact(checks, now, op).await;
        }
        // A counter the full local table cannot take is counted exactly.
        let with_costs = keyed(true);
        let Some(look) = approx.decide(&with_costs, now, remote.is_empty() && op == Op::Acquire)
        else {
            return self.decide_exact(checks, now, op).await;
        };
        if remote.is_empty() {
            return Ok(look);
        }
        // Mixed: local limits first, then the exact ones in Redis, all-or-nothing.
        let (local_out, remote_out) = if look.iter().all(|o| o.allowed) {
            let remote_out = self
                .decide_exact(&pick(checks, &remote, true), now, op)
                .await?;
            let local_out = if remote_out.iter().all(|o| o.allowed) {
                approx
                    .decide(&with_costs, now, op == Op::Acquire)
                    .unwrap_or(look)
            } else {
                approx.decide(&keyed(false), now, false).unwrap_or(look)
            };
            (local_out, remote_out)
        } else {
            let remote_out = self
                .decide_exact(&pick(checks, &remote, false), now, Op::Preview)
                .await?;
            (look, remote_out)
        };
        let mut outcomes: Vec<Option<Outcome>> = vec![None; checks.len()];
        let placed = local
            .iter()
            .zip(local_out)
            .chain(remote.iter().zip(remote_out));
        for (&i, o) in placed {
            if let Some(out) = outcomes.get_mut(i) {
                *out = Some(o);
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::deny(0, 0, 0, None)))
            .collect())
    }

    /// A decision counted in Redis.
    async fn decide_exact(
        &self,
        checks: &[Check<'_>],
        now: Nanos,
        op: Op,
    ) -> Result<Outcomes, StoreError> {
        if checks.is_empty() {
            return Ok(Outcomes::new());
        }
        if let [check] = checks
            && let Some(near) = &self.near
            && let Some(outcome) = near.get(check, now)
        {
            return Ok(std::iter::once(outcome).collect());
        }
        let leases: SmallVec<[u64; 4]> = checks
            .iter()
            .map(|c| match op {
                Op::Acquire => self.lease_for(&c.rule.limit),
                Op::Preview | Op::Refund => 0,
            })
            .collect();
        let groups = self.groups(checks);
        let outcomes = if groups.len() == 1 {
            self.call(checks, &leases, now, op, self.time_arg(now))
                .await?
                .0
        } else {
            self.decide_across_slots(checks, &leases, &groups, now, op)
                .await?
        };
        if let Some(near) = &self.near {
            for (check, outcome) in checks.iter().zip(&outcomes) {
                if checks.len() == 1 || outcome.blocked {
                    near.remember(check, outcome, now);
                }
            }
        }
        Ok(outcomes)
    }

    /// The Cluster slot of a key (0 off a Cluster).
    fn slot_of(&self, key: &str) -> u16 {
        if self.cluster { keys::slot(key) } else { 0 }
    }

    /// The checks' indexes grouped by Cluster slot (one group off a Cluster).
    fn groups(&self, checks: &[Check<'_>]) -> SmallVec<[SmallVec<[usize; 4]>; 2]> {
        let mut groups: SmallVec<[(u16, SmallVec<[usize; 4]>); 2]> = SmallVec::new();
        for (i, c) in checks.iter().enumerate() {
            let slot = self.slot_of(&self.counter_key(c.rule, &c.key));
            match groups.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, g)) => g.push(i),
                None => groups.push((slot, std::iter::once(i).collect())),
            }
        }
        groups.into_iter().map(|(_, g)| g).collect()
    }

    /// A decision over several slots: each slot's checks are acquired in turn; when one
    /// slot denies, the slots already acquired are refunded, so the decision consumes
    /// nothing. Meanwhile other decisions may see the reservation: this errs towards
    /// denying, never towards admitting too much.
    async fn decide_across_slots(
        &self,
        checks: &[Check<'_>],
        leases: &[u64],
        groups: &[SmallVec<[usize; 4]>],
        now: Nanos,
        op: Op,
    ) -> Result<Outcomes, StoreError> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; checks.len()];
        // Each check's lease, 0 for none.
        let leases_of = |group: &[usize]| -> SmallVec<[u64; 4]> {
            group
                .iter()
                .map(|&i| leases.get(i).copied().unwrap_or(0))
                .collect()
        };
        let mut reserved: SmallVec<[(&[usize], u64); 2]> = SmallVec::new();
        let mut denied = false;
        let mut failure = None;
        for group in groups {
            let part = pick(checks, group, true);
            let part_leases = leases_of(group);
            match self
                .call(&part, &part_leases, now, op, self.time_arg(now))
                .await
            {
                Ok((outs, at)) => {
                    let all = outs.iter().all(|o| o.allowed);
                    for (&i, o) in group.iter().zip(outs) {
                        if let Some(out) = outcomes.get_mut(i) {
                            *out = Some(o);
                        }
                    }
                    if all {
                        reserved.push((group, at));
                    } else {
                        denied = true;
                        if op == Op::Acquire {
                            break;
                        }
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if op == Op::Acquire && (denied || failure.is_some()) {
            for &(group, at) in &reserved {
                let part = pick(checks, group, true);
                let part_leases = leases_of(group);
                if let Err(e) = self
                    .call(&part, &part_leases, now, Op::Refund, self.time_of(at, now))
                    .await
                {
                    tracing::warn!(error = %e, "redis store: a cross-slot refund failed");
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if denied {
            // Limits that would have admitted report their state as it stays.
            for group in groups {
                if group.iter().all(|&i| {
                    outcomes
                        .get(i)
                        .copied()
                        .flatten()
                        .is_some_and(|o| o.allowed)
                }) {
                    let looks = pick(checks, group, false);
                    let zero: SmallVec<[u64; 4]> = group.iter().map(|_| 0).collect();
                    let (outs, _) = self
                        .call(&looks, &zero, now, Op::Preview, self.time_arg(now))
                        .await?;
                    for (&i, o) in group.iter().zip(outs) {
                        if let Some(out) = outcomes.get_mut(i) {
                            *out = Some(o);
                        }
                    }
                }
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::deny(0, 0, 0, None)))
            .collect())
    }
}

/// The checks at `idx`, with their costs, or with cost 0 to only look.
fn pick<'c>(checks: &'c [Check<'_>], idx: &[usize], costs: bool) -> SmallVec<[Check<'c>; 4]> {
    idx.iter()
        .filter_map(|&i| checks.get(i))
        .map(|c| Check {
            rule: c.rule,
            key: Cow::Borrowed(&c.key),
            cost: if costs { c.cost } else { 0 },
        })
        .collect()
}

/// Reads the script's answer: seven integers per check, then the instant.
fn parse(reply: &Value, n: usize) -> Result<(Outcomes, u64), StoreError> {
    let Value::Array(items) = reply else {
        return Err(bad_reply());
    };
    let ints: SmallVec<[i64; 16]> = items
        .iter()
        .map(|v| match v {
            Value::Int(i) => Ok(*i),
            _ => Err(bad_reply()),
        })
        .collect::<Result<_, _>>()?;
    let (at, ints) = ints.split_last().ok_or_else(bad_reply)?;
    outcomes_of(ints, *at, n)
}

fn bad_reply() -> StoreError {
    StoreError::Unavailable("redis: unexpected script reply".into())
}

/// Reads `n` outcomes of seven integers each, decided at `at` (µs).
fn outcomes_of(ints: &[i64], at: i64, n: usize) -> Result<(Outcomes, u64), StoreError> {
    let (replies, rest) = ints.as_chunks::<REPLY_PER_CHECK>();
    if replies.len() != n || !rest.is_empty() {
        return Err(bad_reply());
    }
    let u = |i: i64| u64::try_from(i).unwrap_or(0);
    let ns = |us: i64| u(us).saturating_mul(1_000);
    let outcomes = replies
        .iter()
        .map(
            |&[
                allowed,
                limit,
                remaining,
                reset,
                retry_after,
                blocked,
                lease,
            ]| Outcome {
                allowed: allowed == 1,
                limit: u(limit),
                remaining: u(remaining),
                reset: ns(reset),
                retry_after: (retry_after >= 0).then(|| ns(retry_after)),
                blocked: blocked == 1,
                lease: std::num::NonZeroU64::new(u(lease)),
            },
        )
        .collect();
    Ok((outcomes, u(at)))
}

impl Store for RedisStore {
    async fn acquire(&self, checks: &[Check<'_>], now: Nanos) -> Result<Outcomes, StoreError> {
        self.decide(checks, now, Op::Acquire).await
    }

    async fn preview(&self, checks: &[Check<'_>], now: Nanos) -> Result<Outcomes, StoreError> {
        self.decide(checks, now, Op::Preview).await
    }

    async fn release(
        &self,
        rule: &Rule,
        key: &str,
        lease: u64,
        now: Nanos,
    ) -> Result<bool, StoreError> {
        let counter = self.counter_key(rule, key);
        let names = [keys::penalty(&counter), counter];
        let args = [self.time_arg(now), "l".to_owned(), lease.to_string()];
        // The release reads KEYS[1]: the counter goes first.
        let names = [names[1].clone(), names[0].clone()];
        let slot = self.slot_of(&names[0]);
        let reply = self
            .guarded(slot, self.conn.eval(&DECIDE, &names, &args))
            .await?;
        Ok(matches!(reply, Value::Int(1)))
    }

    async fn renew(
        &self,
        rule: &Rule,
        key: &str,
        lease: u64,
        now: Nanos,
    ) -> Result<bool, StoreError> {
        let Limit::Concurrency(c) = &rule.limit else {
            return Ok(false);
        };
        let counter = self.counter_key(rule, key);
        let ttl = c.lease_ttl.div_ceil(1_000).to_string();
        let args = [self.time_arg(now), "n".to_owned(), lease.to_string(), ttl];
        let slot = self.slot_of(&counter);
        let names = [counter];
        let reply = self
            .guarded(slot, self.conn.eval(&DECIDE, &names, &args))
            .await?;
        Ok(matches!(reply, Value::Int(1)))
    }

    async fn reset(&self, rule: &Rule, key: &str) -> Result<(), StoreError> {
        let counter = self.counter_key(rule, key);
        let mut cmd = redis::cmd("DEL");
        cmd.arg(keys::penalty(&counter)).arg(&counter);
        self.guarded(self.slot_of(&counter), self.conn.query(&cmd))
            .await?;
        if let Some(near) = &self.near {
            near.forget(rule, key);
        }
        Ok(())
    }
}

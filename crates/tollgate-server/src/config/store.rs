//! The `store` section: where counters live (memory or Redis) and the secret presented
//! keys are fingerprinted under.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};
use tollgate_core::Policy;
use tollgate_core::policy::parse::{
    Errors, as_map, check_fields, get_duration, get_str, get_u64, show,
};
use tollgate_core::policy::settings::Setting;
use tollgate_redis::{Consistency, RedisConfig, Topology};

use super::secret::read_secret;

/// Counter store settings.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Live counters the memory store is sized for.
    pub capacity: usize,
    /// Set when `store.kind` is `redis`.
    pub redis: Option<RedisConfig>,
    /// The secret presented API keys are fingerprinted under when no registry verifies
    /// them (`TOLLGATE_KEY_SECRET`, `store.key_secret_file`, or the database's): instances
    /// sharing a store count a key under one name only when they share it.
    pub key_secret: Option<tollgate_registry::KeySecret>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            capacity: 1_000_000,
            redis: None,
            key_secret: None,
        }
    }
}

/// The fields of `store`.
pub(crate) const FIELDS: &[Setting] = &[
    Setting::new("kind", "string", "Where counters live: in this process, or in Redis shared by a fleet.")
        .default("`memory`")
        .range("`memory`, `redis`"),
    Setting::new("capacity", "integer", "Live counters the memory store is sized for.")
        .default("`1000000`")
        .range("1 to 1000000000"),
    Setting::new(
        "key_secret_file",
        "path",
        "A file holding the secret presented API keys are fingerprinted under when no \
         database verifies them (or `TOLLGATE_KEY_SECRET`); relative to the configuration's folder.",
    )
    .default("the database's secret, if any"),
    Setting::new("url", "URL", "Redis: the server (`redis://` or `rediss://`).")
        .default("`redis://127.0.0.1:6379`"),
    Setting::new(
        "urls",
        "list of URLs",
        "Redis: more servers, for `sentinel` (the Sentinels) and `cluster` (seed nodes).",
    ),
    Setting::new("mode", "string", "Redis: the topology.")
        .default("`single`")
        .range("`single`, `sentinel`, `cluster`"),
    Setting::new("master", "string", "Redis Sentinel: the primary's name.")
        .range("required with `mode: sentinel`"),
    Setting::new("timeout", "duration", "Redis: the longest a decision waits for Redis.")
        .default("`50ms`")
        .range("1ms to 10s"),
    Setting::new(
        "consistency",
        "string",
        "Redis: every decision asks Redis, or counts locally and syncs every `sync`.",
    )
    .default("`exact`")
    .range("`exact`, `approximate`"),
    Setting::new("sync", "duration", "Redis, `approximate`: how often local counts are synced.")
        .default("`100ms`")
        .range("1ms to 60s"),
    Setting::new("prefix", "string", "Redis: the prefix of every key Tollgate writes.")
        .default("`tg`"),
    Setting::new("breaker", "mapping", "Redis: the circuit breaker in front of it."),
    Setting::new(
        "near_cache",
        "integer",
        "Redis: how many denied counters are remembered in this process, so requests on them need no call to Redis until they could pass (0: off).",
    )
    .default("`100000`"),
];

/// The fields of `store.breaker`.
pub(crate) const BREAKER_FIELDS: &[Setting] = &[
    Setting::new(
        "failures",
        "integer",
        "Failures in a row that open the breaker (0 reads as 1).",
    )
    .default("`3`"),
    Setting::new(
        "cool_down",
        "duration",
        "How long it stays open before Redis is tried again.",
    )
    .default("`250ms`"),
];

/// Reads the `store` section.
pub fn parse(m: &Map<String, Value>, base: Option<&Path>, errs: &mut Errors) -> StoreSettings {
    let mut store = StoreSettings::default();
    check_fields(m, "store", FIELDS, errs);
    if let Some(file) = get_str(m, "key_secret_file", "store", errs) {
        store.key_secret = read_secret(file, base, "store.key_secret_file", errs);
    }
    if let Some(c) = get_u64(m, "capacity", "store", errs) {
        match usize::try_from(c) {
            Ok(c) if (1..=1_000_000_000).contains(&c) => store.capacity = c,
            _ => errs.push(
                "store.capacity",
                format!("{c} is not between 1 and 1000000000"),
            ),
        }
    }
    match get_str(m, "kind", "store", errs) {
        None | Some("memory") => return store,
        Some("redis") => {}
        Some(other) => {
            errs.push(
                "store.kind",
                format!("{other:?} is not a store this build has (memory, redis)"),
            );
            return store;
        }
    }
    let mut urls: Vec<String> = get_str(m, "url", "store", errs)
        .map(str::to_owned)
        .into_iter()
        .collect();
    match m.get("urls") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(u) => urls.push(u.to_owned()),
                    None => errs.push(
                        &format!("store.urls[{i}]"),
                        format!("expected a URL, found {}", show(item)),
                    ),
                }
            }
        }
        Some(other) => errs.push(
            "store.urls",
            format!("expected a list of URLs, found {}", show(other)),
        ),
    }
    for (i, u) in urls.iter().enumerate() {
        if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
            errs.push(
                "store.url",
                format!("{u:?} (url {i}) is not a redis:// or rediss:// URL"),
            );
        }
    }
    if urls.is_empty() {
        urls.push("redis://127.0.0.1:6379".into());
    }
    let topology = match get_str(m, "mode", "store", errs).unwrap_or("single") {
        "single" => {
            if urls.len() > 1 {
                errs.push("store.urls", "mode single takes one URL");
            }
            Topology::Single {
                url: urls.swap_remove(0),
            }
        }
        "cluster" => Topology::Cluster { urls },
        "sentinel" => {
            let master = get_str(m, "master", "store", errs).unwrap_or_default();
            if master.is_empty() {
                errs.push("store.master", "mode sentinel needs the primary's name");
            }
            Topology::Sentinel {
                urls,
                master: master.to_owned(),
            }
        }
        other => {
            errs.push(
                "store.mode",
                format!("{other:?} is not a mode (single, sentinel, cluster)"),
            );
            // Read on, so every error of the section is reported at once.
            Topology::Single {
                url: urls.swap_remove(0),
            }
        }
    };
    let mut redis = RedisConfig::new(topology);
    if let Some(d) = get_duration(m, "timeout", "store", errs) {
        if d == 0 || d > 10 * 1_000_000_000 {
            errs.push("store.timeout", "must be between 1ms and 10s");
        }
        redis.timeout = Duration::from_nanos(d);
    }
    let sync = get_duration(m, "sync", "store", errs).unwrap_or(100_000_000);
    if sync == 0 || sync > 60 * 1_000_000_000 {
        errs.push("store.sync", "must be between 1ms and 60s");
    }
    match get_str(m, "consistency", "store", errs) {
        None | Some("exact") => {}
        Some("approximate") => {
            redis.consistency = Consistency::Approximate {
                sync: Duration::from_nanos(sync),
            }
        }
        Some(other) => errs.push(
            "store.consistency",
            format!("{other:?} is not a consistency (exact, approximate)"),
        ),
    }
    if let Some(prefix) = get_str(m, "prefix", "store", errs) {
        redis.prefix = prefix.to_owned();
    }
    if let Some(n) = get_u64(m, "near_cache", "store", errs) {
        redis.near_cache = n;
    }
    if let Some(b) = m
        .get("breaker")
        .and_then(|v| as_map(v, "store.breaker", errs))
    {
        check_fields(b, "store.breaker", BREAKER_FIELDS, errs);
        if let Some(n) = get_u64(b, "failures", "store.breaker", errs) {
            redis.breaker.failures = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        }
        if let Some(d) = get_duration(b, "cool_down", "store.breaker", errs) {
            redis.breaker.cool_down = Duration::from_nanos(d);
        }
    }
    store.redis = Some(redis);
    store
}

/// Checks the policy against the store: a Redis store must run every limit, and counters
/// of presented keys must be named alike on every instance that shares it.
pub fn check_policy(store: &StoreSettings, has_database: bool, p: &Policy, errs: &mut Errors) {
    if store.redis.is_none() {
        return;
    }
    if !has_database && store.key_secret.is_none() && counts_keys(p) {
        errs.push(
            "store",
            "rules count API keys ({key}) in a Redis store shared by every instance, but no key \
             secret is set: each instance would count a key under a name of its own. Set \
             TOLLGATE_KEY_SECRET (or store.key_secret_file) to the same secret on every instance",
        );
    }
    for (i, rule) in p.rules().iter().enumerate() {
        if let Some(why) = tollgate_redis::unsupported(&rule.limit) {
            errs.push(&format!("rules[{i}]"), format!("{}: {why}", rule.name));
        }
    }
    for tier in p.tiers().iter() {
        for (i, rule) in tier.limits.iter().enumerate() {
            if let Some(why) = tollgate_redis::unsupported(&rule.limit) {
                errs.push(
                    &format!("tiers.{}.limits[{i}]", tier.name),
                    format!("{}: {why}", rule.name),
                );
            }
        }
    }
}

/// Whether a rule or tier limit counts by the presented API key.
fn counts_keys(p: &Policy) -> bool {
    let keyed = |r: &tollgate_core::policy::Rule| r.key.source().contains("{key}");
    p.rules().iter().any(keyed) || p.tiers().iter().any(|t| t.limits.iter().any(keyed))
}

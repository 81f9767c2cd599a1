//! The running server's state: the limiter, the loaded document, reloads, metrics.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Map, Value};
use tollgate_core::policy::ConfigErrors;
use tollgate_core::policy::Rule;
use tollgate_core::policy::matcher::Cidr;
use tollgate_core::time::{Clock, FastClock};
use tollgate_core::{Decision, Limiter, MemoryStore, MemoryStoreConfig, Mode, Policy, Subject};
use tollgate_redis::RedisStore;

use crate::config::{self, Config};
use crate::store::AnyStore;
use crate::tally::{Latency, Slot, TALLIES};
use tollgate_core::Code;
use tollgate_registry::{KeyFilter, KeyRecord, KeyStatus, RegistryError, VerifyError};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A verified key: its record and its own limits, compiled.
#[derive(Debug)]
pub struct KeyEntry {
    /// The record.
    pub record: KeyRecord,
    /// Its overrides of its tier's limits.
    pub limits: Vec<Rule>,
}

/// Everything a request handler needs.
pub struct App {
    /// Policy and store.
    pub limiter: Limiter<AnyStore>,
    /// The clock decisions read.
    pub clock: FastClock,
    /// Peers whose forwarding headers are believed.
    pub trusted: Vec<Cidr>,
    /// Who may use the admin API.
    pub admin: crate::auth::AdminAuth,
    /// The admin API's own limits, per client IP and per caller.
    pub admin_limiter: Limiter<MemoryStore>,
    /// Origins browsers may call from.
    pub cors_origins: Vec<String>,
    /// The largest request body read, in bytes (`server.max_body`).
    pub max_body: usize,
    /// Room for open connections, shared by the HTTP and gRPC doors.
    pub connections: crate::spread::Capacity,
    /// The configuration file, when not on the embedded default.
    pub config_path: Option<PathBuf>,
    /// The document in force.
    pub doc: Mutex<Value>,
    /// Held while the configuration changes, from reading it to installing it. Without it,
    /// a reload that read the file before an admin change was written could install what it
    /// read after that change, and undo it.
    changing: Mutex<()>,
    /// Taken shared by key writes that put a key on a tier and alone by a tier's removal,
    /// from its check for keys to the removal: otherwise a key created between the two
    /// would be left on a tier that no longer exists, with no tier limits.
    pub tier_turn: tokio::sync::RwLock<()>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Set once serving.
    pub ready: AtomicBool,
    /// API keys and other records, when a database is configured.
    pub registry: Option<tollgate_registry::Registry>,
    /// Usage events and violations on their way to the registry.
    pub effects: Option<crate::effects::Effects>,
    /// Verified keys (and refusals) by the keyed hash of the presented key, so decisions
    /// do not read the database; bounded, so a flood of made-up keys cannot evict the
    /// good ones or exhaust memory (malformed keys never reach it).
    keys: moka::future::Cache<[u8; 32], Result<Arc<KeyEntry>, VerifyError>>,
    /// Turns for key lookups in the database.
    lookups: tokio::sync::Semaphore,
    key_seed: u64,
}

/// Key lookups in flight at once, at most.
const LOOKUPS: usize = 32;

/// How long a key lookup waits for a turn before the request is answered `UNAVAILABLE`.
const LOOKUP_WAIT: Duration = Duration::from_millis(250);

impl App {
    /// State for `config`, loaded from `path`. A Redis store connects on first use.
    pub fn new(
        config: Config,
        path: Option<PathBuf>,
        metrics: PrometheusHandle,
        registry: Option<tollgate_registry::Registry>,
        effects: Option<crate::effects::Effects>,
    ) -> Result<Self, tollgate_core::StoreError> {
        let (key_cache_ttl, key_cache_capacity) = config
            .database
            .as_ref()
            .map_or((Duration::from_secs(5), 100_000), |d| {
                (d.cache_ttl, d.cache_capacity)
            });
        let store = match config.store.redis {
            Some(redis) => AnyStore::Redis(RedisStore::new(redis)?),
            None => AnyStore::Memory(MemoryStore::new(MemoryStoreConfig {
                capacity: config.store.capacity,
            })),
        };
        Ok(App {
            limiter: Limiter::new(store, config.policy),
            clock: FastClock::new(),
            trusted: config.server.trusted_proxies,
            admin_limiter: Limiter::new(
                MemoryStore::new(MemoryStoreConfig { capacity: 100_000 }),
                admin_limits(config.admin.per_ip, config.admin.per_token),
            ),
            cors_origins: config.admin.cors_origins,
            max_body: config.server.max_body,
            connections: crate::spread::Capacity::new(config.server.max_connections),
            admin: crate::auth::AdminAuth::new(config.admin.tokens, config.admin.jwt),
            config_path: path,
            doc: Mutex::new(config.doc),
            changing: Mutex::new(()),
            tier_turn: tokio::sync::RwLock::new(()),
            metrics,
            ready: AtomicBool::new(false),
            registry,
            effects,
            keys: moka::future::Cache::builder()
                .max_capacity(key_cache_capacity)
                .time_to_live(key_cache_ttl)
                .build(),
            lookups: tokio::sync::Semaphore::new(LOOKUPS),
            key_seed: std::hash::RandomState::new().hash_one("tollgate-key-fingerprint"),
        })
    }

    /// Whether the policy is loaded and the store answers.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The key record of a presented API key, verified against the registry (through the
    /// cache: a change made elsewhere shows within `database.cache_ttl`); `Ok(None)` when no
    /// registry is configured. The error is the decision's code.
    pub async fn verify_key(&self, presented: &str) -> Result<Option<Arc<KeyEntry>>, Code> {
        let Some(registry) = &self.registry else {
            return Ok(None);
        };
        if !tollgate_registry::key::well_formed(presented) {
            return Err(Code::KeyInvalid);
        }
        let now = now_ms();
        let hash = registry.key_hash(presented);
        // Concurrent misses on one key share one lookup; lookups of different keys wait
        // for one of a bounded number of turns, so a flood of made-up (well-formed) keys
        // cannot queue up the database.
        let lookup = async {
            let Ok(Ok(_turn)) = tokio::time::timeout(LOOKUP_WAIT, self.lookups.acquire()).await
            else {
                metrics::counter!("tollgate_key_lookups_shed_total").increment(1);
                return Err("too many key lookups in flight".to_owned());
            };
            match registry.verify(presented, now).await {
                Err(VerifyError::Unavailable(why)) => Err(why),
                other => Ok(other.map(|record| Arc::new(self.key_entry(record)))),
            }
        };
        let found = match self.keys.try_get_with(hash, lookup).await {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!(error = %why, "key verification failed: the registry did not answer");
                return Err(Code::Unavailable);
            }
        };
        match found {
            // A cached record may have expired since.
            Ok(k) if k.record.expires_at.is_some_and(|e| e <= now) => Err(Code::KeyExpired),
            Ok(k) => Ok(Some(k)),
            Err(VerifyError::Disabled) => Err(Code::KeyDisabled),
            Err(VerifyError::Expired) => Err(Code::KeyExpired),
            Err(_) => Err(Code::KeyInvalid),
        }
    }

    /// A verified key with its own limits compiled against the policy in force.
    pub fn key_entry(&self, record: KeyRecord) -> KeyEntry {
        let policy = self.limiter.policy();
        let limits = tollgate_core::policy::tiers::compile_overrides(
            policy.tiers().get(&record.tier),
            &record.overrides,
            "overrides",
        )
        .unwrap_or_else(|errs| {
            // Checked when set; a later policy may have made them invalid.
            tracing::warn!(key = %record.id, errors = %errs, "the key's overrides no longer compile; its tier's limits apply");
            Vec::new()
        });
        KeyEntry { record, limits }
    }

    /// Decides a request of `subject` under `policy`: the rules that match, and when a key
    /// was verified, its tier's limits and its own.
    pub async fn decide<'p>(
        &self,
        policy: &'p Policy,
        subject: &Subject,
        key: Option<&'p KeyEntry>,
        cost: u64,
        mode: Mode,
    ) -> Decision<'p> {
        let plan = match key {
            Some(k) => policy.plan_keyed(subject, cost, Some(&k.record.tier), &k.limits),
            None => policy.plan(subject, cost),
        };
        self.limiter.decide_plan(plan, self.now(), mode).await
    }

    /// Counts a consumed decision in the metrics and sends its usage event and violation
    /// to the registry.
    pub fn record_decision(
        &self,
        d: &Decision<'_>,
        started: Instant,
        subject: &Subject,
        key: Option<&KeyEntry>,
        cost: u64,
    ) {
        self.record(d, started);
        if let Some(effects) = &self.effects {
            effects.after(d, subject, key.map(|k| &k.record), cost);
        }
    }

    /// Forgets every cached key verification: a key changed on this instance takes
    /// effect at once.
    pub fn forget_keys(&self) {
        self.keys.invalidate_all();
    }

    /// How an API key appears in counters and answers: a fingerprint, never the key.
    pub fn fingerprint(&self, api_key: &str) -> String {
        let h = foldhash::quality::FixedState::with_seed(self.key_seed).hash_one(api_key);
        format!("kfp_{h:016x}")
    }

    /// Whether a key that is not revoked is on tier `name`.
    pub async fn keys_on_tier(&self, name: &str) -> Result<bool, RegistryError> {
        let Some(reg) = &self.registry else {
            return Ok(false);
        };
        for status in [KeyStatus::Active, KeyStatus::Disabled] {
            let filter = KeyFilter {
                tier: Some(name.to_owned()),
                status: Some(status),
                limit: Some(1),
                ..Default::default()
            };
            if !reg.list_keys(&filter).await?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Reloads the configuration file. On error the policy in force stays.
    pub fn reload(&self) -> Result<(), ConfigErrors> {
        let _changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        match config::load(self.config_path.as_deref()) {
            Ok(cfg) => {
                self.install(cfg);
                tracing::info!(
                    rules = self.limiter.policy().rules().len(),
                    "policy reloaded"
                );
                Ok(())
            }
            Err(errs) => {
                metrics::counter!("tollgate_reloads_total", "result" => "failed").increment(1);
                for e in &errs.0 {
                    tracing::error!(path = %e.path, "reload refused: {}", e.message);
                }
                Err(errs)
            }
        }
    }

    /// Replaces the policy part of the document with `policy`, validating the whole, and
    /// writes it back to the configuration file so a restart keeps it. Returns the policy
    /// now in force.
    pub fn replace_policy(&self, policy: &Value) -> Result<Value, ConfigErrors> {
        let _changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.doc.lock().map(|d| d.clone()).unwrap_or(Value::Null);
        self.write_policy(&current, policy)
    }

    /// Edits the policy part of the document in force with `edit`, then goes on as
    /// [`App::replace_policy`]. Reading, editing and writing take one turn, so two changes
    /// made at once never lose one another. When `edit` answers `None`, nothing changes.
    pub fn edit_policy<T>(
        &self,
        edit: impl FnOnce(&mut Map<String, Value>) -> Option<T>,
    ) -> Result<Option<T>, ConfigErrors> {
        let _changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.doc.lock().map(|d| d.clone()).unwrap_or(Value::Null);
        let mut policy = match config::policy_part(&current) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let Some(out) = edit(&mut policy) else {
            return Ok(None);
        };
        self.write_policy(&current, &Value::Object(policy))?;
        Ok(Some(out))
    }

    /// Validates `current` with its policy part replaced by `policy`, writes it back and
    /// installs it. Called with `changing` held.
    fn write_policy(&self, current: &Value, policy: &Value) -> Result<Value, ConfigErrors> {
        let base = self.config_path.as_deref().and_then(|p| p.parent());
        let cfg = config::validate(config::with_policy(current, policy), base)?;
        if let Some(path) = &self.config_path {
            write_atomically(path, &cfg.doc).map_err(|e| {
                config::one_error("", format!("cannot write {}: {e}", path.display()))
            })?;
        }
        let in_force = config::policy_part(&cfg.doc);
        self.install(cfg);
        Ok(in_force)
    }

    /// Swaps in a validated configuration's policy and document.
    fn install(&self, cfg: Config) {
        self.limiter.set_policy(cfg.policy);
        // Cached keys hold their limits compiled against the old tiers.
        self.forget_keys();
        if let Ok(mut doc) = self.doc.lock() {
            *doc = cfg.doc;
        }
        metrics::counter!("tollgate_reloads_total", "result" => "ok").increment(1);
    }

    /// Counts a decision in the metrics.
    pub fn record(&self, d: &Decision<'_>, started: Instant) {
        // Metric handles are cached per thread: looking a labelled metric up in the
        // registry on every request cost about a tenth of the throughput.
        HANDLES.with(|cell| {
            let mut h = cell.borrow_mut();
            h.latency.record(started.elapsed());
            let code = d.code.as_str();
            h.requests
                .entry(code)
                .or_insert_with(|| {
                    TALLIES.counter(metrics::counter!("tollgate_requests_total", "code" => code))
                })
                .add(1);
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
                rule.outcomes[outcome].add(1);
                if l.degraded {
                    rule.store_errors.add(1);
                    rule.degraded.add(1);
                }
            }
        });
    }

    /// The current instant.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }
}

struct RuleCounters {
    outcomes: [Arc<Slot>; 3],
    store_errors: Arc<Slot>,
    degraded: Arc<Slot>,
}

impl RuleCounters {
    fn new(rule: &str, fail_policy: &'static str) -> Self {
        let outcome = |o: &'static str| {
            TALLIES.counter(metrics::counter!("tollgate_decisions_total", "rule" => rule.to_owned(), "outcome" => o))
        };
        RuleCounters {
            outcomes: [
                outcome("allowed"),
                outcome("denied"),
                outcome("shadow_denied"),
            ],
            store_errors: TALLIES.counter(metrics::counter!("tollgate_store_errors_total", "rule" => rule.to_owned())),
            degraded: TALLIES.counter(metrics::counter!("tollgate_degraded_decisions_total", "rule" => rule.to_owned(), "fail_policy" => fail_policy)),
        }
    }
}

/// Per-thread maps keyed by codes and rule names from the configuration, never by request
/// data, so a fast unkeyed hash is safe here.
type LocalMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

struct Handles {
    latency: Arc<Latency>,
    requests: LocalMap<&'static str, Arc<Slot>>,
    rules: LocalMap<Box<str>, RuleCounters>,
}

thread_local! {
    static HANDLES: RefCell<Handles> = RefCell::new(Handles {
        latency: TALLIES.latency(),
        requests: LocalMap::default(),
        rules: LocalMap::default(),
    });
}

/// The admin API's limits: per client IP (`{ip}`) and per authenticated caller (`{user}`).
fn admin_limits(per_ip: (u64, Duration), per_token: (u64, Duration)) -> Policy {
    let rule = |name: &str, key: &str, (limit, period): (u64, Duration)| {
        serde_json::json!({
            "name": name, "key": key, "algorithm": "gcra", "limit": limit,
            "period": format!("{}ms", period.as_millis().max(1)),
        })
    };
    let doc = serde_json::json!({"rules": [
        rule("admin-per-ip", "{ip}", per_ip),
        rule("admin-per-caller", "{user}", per_token),
    ]});
    Policy::from_value(&doc, &[]).unwrap_or_else(|errs| {
        // Both limits are validated with the configuration; this cannot fail.
        tracing::error!(errors = %errs, "the admin API's rate limits did not compile");
        Policy::new(
            Vec::new(),
            Default::default(),
            Default::default(),
            Default::default(),
        )
    })
}

fn write_atomically(path: &std::path::Path, doc: &Value) -> std::io::Result<()> {
    let text = serde_saphyr::to_string(doc).map_err(std::io::Error::other)?;
    let dir = path.parent().unwrap_or_else(|| std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("tollgate.yaml"),
        std::process::id()
    ));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// An app on a configuration file of its own, in `dir`.
    fn app_in(dir: &tempfile::TempDir) -> App {
        let path = dir.path().join("tollgate.yaml");
        let rules = "rules: [{name: r0, key: '{user}', limit: 1, period: 1s}]\n";
        std::fs::write(&path, rules).unwrap();
        let cfg = config::load(Some(&path)).unwrap();
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle();
        App::new(cfg, Some(path), metrics, None, None).unwrap()
    }

    #[test]
    fn edits_made_at_once_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(&dir);
        let add = |prefix: &str| {
            for i in 0..50 {
                let tier = serde_json::json!(
                    {"limits": [{"name": "requests", "limit": 5, "period": "1m"}]}
                );
                app.edit_policy(|policy| {
                    let tiers = policy
                        .entry("tiers")
                        .or_insert_with(|| Value::Object(Map::new()));
                    tiers.as_object_mut()?.insert(format!("{prefix}{i}"), tier);
                    Some(())
                })
                .unwrap()
                .unwrap();
            }
        };
        std::thread::scope(|s| {
            s.spawn(|| add("a"));
            add("b");
        });
        let doc = app.doc.lock().unwrap().clone();
        assert_eq!(doc["tiers"].as_object().unwrap().len(), 100);
        let on_disk = std::fs::read_to_string(dir.path().join("tollgate.yaml")).unwrap();
        assert!(
            on_disk.contains("a49") && on_disk.contains("b49"),
            "{on_disk}"
        );
    }

    #[test]
    fn a_reload_never_undoes_an_admin_change() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(&dir);
        std::thread::scope(|s| {
            // The watcher's reloads, racing the admin API's writes.
            s.spawn(|| {
                for _ in 0..200 {
                    app.reload().unwrap();
                }
            });
            for i in 1..=200 {
                let name = format!("r{i}");
                let policy = serde_json::json!(
                    {"rules": [{"name": name, "key": "{user}", "limit": 1, "period": "1s"}]}
                );
                app.replace_policy(&policy).unwrap();
                assert_eq!(app.limiter.policy().rules()[0].name, name);
            }
        });
    }
}

//! The running server's state: the limiter, the loaded document, reloads, metrics.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Map, Value};
use tollgate_core::policy::ConfigErrors;
use tollgate_core::policy::matcher::Cidr;
use tollgate_core::{Limiter, MemoryStore, MemoryStoreConfig, Policy};
use tollgate_engine::effects::Effects;
use tollgate_engine::identity::Fingerprints;
use tollgate_engine::keys::KeyCacheConfig;
use tollgate_engine::{Engine, EngineConfig};
use tollgate_redis::RedisStore;
use tollgate_registry::{KeyFilter, KeyStatus, RegistryError};

use crate::auth::AdminAuth;
use crate::config::{self, Config};
use crate::store::AnyStore;

/// Everything a request handler needs.
pub struct App {
    /// The decision path: policy, store, key cache, effects.
    pub engine: Engine<AnyStore>,
    /// Peers whose forwarding headers are believed.
    pub trusted: Vec<Cidr>,
    /// Who may use the admin API; replaced whole when a reload changes the credentials.
    pub admin: ArcSwap<AdminAuth>,
    /// Dashboard sessions signed out: kept across reloads, which replace `admin`.
    pub sign_outs: crate::oidc::sign_outs::SignOuts,
    /// The admin API's own limits, per client IP and per caller.
    pub admin_limiter: Limiter<MemoryStore>,
    /// Origins browsers may call from.
    pub cors_origins: Vec<String>,
    /// The largest request body read, in bytes (`server.max_body`).
    pub max_body: usize,
    /// The longest a request may take (`server.request_timeout`).
    pub request_timeout: Duration,
    /// Room for open connections, shared by the HTTP and gRPC doors.
    pub connections: crate::listen::Capacity,
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
    /// Price plans and periods, when billing is configured.
    pub billing: Option<crate::billing::BillingSettings>,
    /// Alert rules and channels, when alerts are configured.
    pub alerts: Option<Arc<crate::alerts::AlertSettings>>,
    /// Wakes this instance's delivery worker when deliveries were just queued here.
    pub deliveries: Arc<tokio::sync::Notify>,
    /// Service-level objectives and this instance's counts for them.
    pub slo: Arc<crate::slo::SloSettings>,
    /// Whether the debugging routes are served.
    pub debug: bool,
    /// When the process started serving.
    pub started: std::time::Instant,
    /// The reverse proxy, once it listens: dead letters are replayed through it.
    pub proxy: std::sync::OnceLock<Arc<tollgate_proxy::Proxy>>,
}

impl App {
    /// State for `config`, loaded from `path`. A Redis store connects on first use.
    pub fn new(
        config: Config,
        path: Option<PathBuf>,
        metrics: PrometheusHandle,
        registry: Option<tollgate_registry::Registry>,
        effects: Option<Effects>,
    ) -> Result<Self, tollgate_core::StoreError> {
        let mut key_cache = KeyCacheConfig::default();
        if let Some(d) = &config.database {
            key_cache.ttl = d.cache_ttl;
            key_cache.capacity = d.cache_capacity;
        }
        let store = match config.store.redis {
            Some(redis) => AnyStore::Redis(RedisStore::new(redis)?),
            None => AnyStore::Memory(MemoryStore::new(MemoryStoreConfig {
                capacity: config.store.capacity,
            })),
        };
        let engine = Engine::new(
            store,
            config.policy,
            EngineConfig {
                registry: registry.clone(),
                key_cache,
                effects,
                fingerprints: config.store.key_secret.map(Fingerprints::shared),
            },
        );
        Ok(App {
            engine,
            trusted: config.server.trusted_proxies,
            admin_limiter: Limiter::new(
                MemoryStore::new(MemoryStoreConfig { capacity: 100_000 }),
                admin_limits(config.admin.per_ip, config.admin.per_token),
            ),
            cors_origins: config.admin.cors_origins,
            max_body: config.server.max_body,
            request_timeout: config.server.request_timeout,
            connections: crate::listen::Capacity::new(config.server.max_connections),
            admin: ArcSwap::from_pointee(AdminAuth::new(
                config.admin.tokens,
                config.admin.jwt,
                config.admin.oidc,
            )),
            sign_outs: crate::oidc::sign_outs::SignOuts::new(registry.clone()),
            config_path: path,
            doc: Mutex::new(config.doc),
            changing: Mutex::new(()),
            tier_turn: tokio::sync::RwLock::new(()),
            metrics,
            ready: AtomicBool::new(false),
            registry,
            billing: config.billing,
            alerts: config.alerts.map(Arc::new),
            deliveries: Arc::new(tokio::sync::Notify::new()),
            slo: Arc::new(config.slo),
            debug: config.debug,
            started: std::time::Instant::now(),
            proxy: std::sync::OnceLock::new(),
        })
    }

    /// Whether the policy is loaded and the store answers.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
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

    /// Reloads the configuration file: the policy and the admin credentials and limits
    /// change at once; settings that need a restart are named in the log. On error the
    /// configuration in force stays.
    pub fn reload(&self) -> Result<(), ConfigErrors> {
        let _changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        match config::load(self.config_path.as_deref()) {
            Ok(mut cfg) => {
                let waiting = self
                    .doc
                    .lock()
                    .map(|d| config::document::restart_needed(&d, &cfg.doc))
                    .unwrap_or_default();
                for setting in &waiting {
                    tracing::warn!(setting = %setting, "{setting} changed: takes effect at restart");
                }
                self.admin.store(Arc::new(AdminAuth::new(
                    std::mem::take(&mut cfg.admin.tokens),
                    cfg.admin.jwt.take(),
                    cfg.admin.oidc.take(),
                )));
                self.admin_limiter
                    .set_policy(admin_limits(cfg.admin.per_ip, cfg.admin.per_token));
                let rules = cfg.policy.rules().len();
                self.install(
                    cfg,
                    if waiting.is_empty() {
                        "ok"
                    } else {
                        "restart_needed"
                    },
                );
                tracing::info!(rules, "configuration reloaded");
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
        self.install(cfg, "ok");
        Ok(in_force)
    }

    /// Swaps in a validated configuration's policy and document, and counts the change
    /// under `result`.
    fn install(&self, cfg: Config, result: &'static str) {
        self.engine.set_policy(cfg.policy);
        if let Ok(mut doc) = self.doc.lock() {
            *doc = cfg.doc;
        }
        metrics::counter!("tollgate_reloads_total", "result" => result).increment(1);
    }
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
                assert_eq!(app.engine.policy().rules()[0].name, name);
            }
        });
    }
}

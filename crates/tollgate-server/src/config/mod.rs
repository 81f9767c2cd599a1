//! The configuration file: one module per section, each owning its settings types, the
//! environment overlay (`TOLLGATE_SERVER__LISTEN=…`), and [`validate`], which reads a whole
//! document and checks the sections against one another.

pub mod admin;
pub mod alerts;
pub mod billing;
pub mod database;
pub mod debug;
pub mod document;
pub mod duration;
pub mod env;
pub mod envoy_files;
pub mod oidc;
pub mod reference;
pub mod secret;
pub mod server;
pub mod slo;
pub mod store;
pub mod telemetry;

use std::path::Path;

use serde_json::{Map, Value};
use tollgate_core::Policy;
use tollgate_core::policy::parse::{ConfigError, ConfigErrors, Errors, as_map};

pub use admin::AdminSettings;
pub use database::DatabaseSettings;
pub use document::{SERVER_SECTIONS, policy_part, with_policy};
pub use env::apply_env;
pub use secret::set_dev_mode;
pub use server::{GrpcSettings, OnStoreError, ServerSettings};
pub use store::StoreSettings;

/// The embedded default configuration.
pub const DEFAULT_YAML: &str = include_str!("../default.yaml");

/// A loaded, validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Server settings.
    pub server: ServerSettings,
    /// Store settings.
    pub store: StoreSettings,
    /// Admin credentials, rate limits and CORS.
    pub admin: AdminSettings,
    /// The records' database, when a `database` section is present.
    pub database: Option<DatabaseSettings>,
    /// The reverse proxy, when a `proxy` section is present.
    pub proxy: Option<tollgate_proxy::ProxyConfig>,
    /// Price plans and periods, when a `billing` section is present.
    pub billing: Option<crate::billing::BillingSettings>,
    /// Alert rules and channels, when an `alerts` section is present.
    pub alerts: Option<crate::alerts::AlertSettings>,
    /// Service-level objectives (none without an `slo` section).
    pub slo: crate::slo::SloSettings,
    /// Where traces go, when they are on.
    pub telemetry: Option<crate::telemetry::TelemetrySettings>,
    /// Whether the debugging routes are served.
    pub debug: bool,
    /// The compiled policy.
    pub policy: Policy,
    /// The whole document after the environment overlay, for `GET /v1/config` and writing
    /// back.
    pub doc: Value,
}

/// Reads and validates `path`, or the embedded default when `None`.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
    let (text, name) = match path {
        Some(p) => (
            std::fs::read_to_string(p)
                .map_err(|e| one_error("", format!("cannot read {}: {e}", p.display())))?,
            p.display().to_string(),
        ),
        None => (DEFAULT_YAML.to_owned(), "the embedded default".to_owned()),
    };
    let mut doc = document::parse_named(&text, &name)?;
    let from_env = apply_env(&mut doc, std::env::vars())?;
    validate(doc, path.and_then(Path::parent)).map_err(|errs| naming_variables(errs, &from_env))
}

/// `errs` with each error in a setting an environment variable replaced naming that
/// variable, which is where the mistake is to be mended.
fn naming_variables(mut errs: ConfigErrors, from_env: &[(String, String)]) -> ConfigErrors {
    for e in &mut errs.0 {
        let set_by = from_env.iter().find(|(path, _)| {
            e.path
                .strip_prefix(path.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        });
        if let Some((_, var)) = set_by {
            e.message = format!("{} (set by {var})", e.message);
        }
    }
    errs
}

/// A single configuration error.
pub fn one_error(path: &str, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        path: path.to_owned(),
        message,
    }])
}

/// Validates a whole document; `base` resolves relative file paths.
pub fn validate(doc: Value, base: Option<&Path>) -> Result<Config, ConfigErrors> {
    let mut errs = Errors::default();
    let empty = Map::new();
    let root = match &doc {
        Value::Null => &empty,
        v => as_map(v, "", &mut errs).unwrap_or(&empty),
    };
    let section =
        |name: &str, errs: &mut Errors| root.get(name).and_then(|v| as_map(v, name, errs));

    let server = section("server", &mut errs)
        .map_or_else(ServerSettings::default, |m| server::parse(m, &mut errs));
    let mut store = section("store", &mut errs)
        .map_or_else(StoreSettings::default, |m| store::parse(m, base, &mut errs));
    let env_token = std::env::var("TOLLGATE_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let admin = admin::parse(section("admin", &mut errs), env_token, base, &mut errs);
    // In dev mode the embedded default has a database too, in the working folder.
    let dev_database = (secret::dev_mode() && base.is_none() && !root.contains_key("database"))
        .then(|| Value::Object(Map::new()));
    let database = root
        .get("database")
        .or(dev_database.as_ref())
        .and_then(|v| as_map(v, "database", &mut errs))
        .and_then(|m| database::parse(m, base, &mut errs));
    let proxy = section("proxy", &mut errs)
        .map(|m| tollgate_proxy::config::parse(m, "proxy", base, &mut errs));
    if let Some(p) = proxy.as_ref().filter(|_| database.is_none()) {
        for (i, r) in p.routes.iter().enumerate() {
            if r.dead_letter.enabled {
                errs.push(
                    &format!("proxy.routes[{i}].dead_letter"),
                    "needs a database section: dead letters live in it",
                );
            }
        }
    }
    let billing = section("billing", &mut errs).map(|m| billing::parse(m, &mut errs));
    if billing.is_some() && database.is_none() {
        errs.push(
            "billing",
            "needs a database section: billing records live in it",
        );
    }
    let default_per = billing
        .as_ref()
        .map_or(tollgate_registry::BillingScope::Owner, |b| b.scope);
    let alerts =
        section("alerts", &mut errs).map(|m| alerts::parse(m, base, default_per, &mut errs));
    let slo = section("slo", &mut errs).map_or_else(Default::default, |m| slo::parse(m, &mut errs));
    let debug = section("debug", &mut errs).is_some_and(|m| debug::parse(m, &mut errs));
    let telemetry = telemetry::parse(
        section("telemetry", &mut errs),
        &|name| std::env::var(name).ok(),
        &mut errs,
    );
    if let Some(a) = &alerts {
        for (i, rule) in a.rules.iter().enumerate() {
            if let crate::alerts::RuleKind::Burn { objective } = &rule.kind
                && !slo.objectives.iter().any(|o| &o.name == objective)
            {
                errs.push(
                    &format!("alerts.rules[{i}].slo"),
                    format!("{objective:?} is not an objective of slo.objectives"),
                );
            }
        }
        if database.is_none() {
            errs.push(
                "alerts",
                "needs a database section: alert states and deliveries live in it",
            );
        }
        for (i, rule) in a.rules.iter().enumerate() {
            let needs_plans = matches!(
                rule.kind,
                crate::alerts::RuleKind::Usage {
                    of: crate::alerts::UsageLimit::Included,
                    ..
                }
            );
            if needs_plans && billing.is_none() {
                errs.push(
                    &format!("alerts.rules[{i}].usage.of"),
                    "included units come from billing.plans: add a billing section or give a number of units",
                );
            }
        }
    }
    if !server.listen.ip().is_loopback() && !admin.has_credentials() {
        errs.push(
            "server.listen",
            format!(
                "{} is not a loopback address: set TOLLGATE_ADMIN_TOKEN, admin.token_file, admin.tokens or admin.jwt first",
                server.listen
            ),
        );
    }

    let policy = compile_policy(&doc, root, base, &mut errs);
    if store.key_secret.is_none() {
        store.key_secret = secret::env_key_secret()
            .or_else(|| database.as_ref().map(|d| d.key_secret.clone()))
            .and_then(|s| tollgate_registry::KeySecret::new(s).ok());
    }
    if let Some(p) = &policy {
        store::check_policy(&store, database.is_some(), p, &mut errs);
    }
    errs.finish(())?;
    let policy = policy.ok_or_else(|| one_error("", "the policy did not compile".into()))?;
    Ok(Config {
        server,
        store,
        admin,
        database,
        proxy,
        billing,
        alerts,
        slo,
        telemetry,
        debug,
        policy,
        doc,
    })
}

/// The policy of `doc`, with the files of `envoy_files` added to its `envoy` section.
fn compile_policy(
    doc: &Value,
    root: &Map<String, Value>,
    base: Option<&Path>,
    errs: &mut Errors,
) -> Option<Policy> {
    let with_files = envoy_files::with_envoy_files(doc, root, base, errs);
    let (policy_doc, sources) = match &with_files {
        Some((d, s)) => (d, s.as_slice()),
        None => (doc, &[][..]),
    };
    match Policy::from_value(policy_doc, SERVER_SECTIONS) {
        Ok(p) => Some(p),
        Err(e) => {
            // Errors inside a file of `envoy_files` name the file, not its place in the
            // merged list.
            let inline = match root.get("envoy") {
                Some(Value::Array(items)) => items.len(),
                _ => 0,
            };
            for err in e.0 {
                errs.push(
                    &envoy_files::file_path(&err.path, inline, sources),
                    err.message,
                );
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tollgate_redis::{Consistency, Topology};

    use tollgate_core::policy::parse::parse_yaml;

    use super::server::DEFAULT_MAX_CONNECTIONS;
    use super::*;

    #[test]
    fn the_embedded_default_is_valid() {
        let c = validate(parse_yaml(DEFAULT_YAML).unwrap(), None).unwrap();
        assert_eq!(c.policy.rules().len(), 3);
        assert_eq!(c.server.max_body, 64 * 1024);
        assert_eq!(c.server.idle_timeout, Duration::from_secs(75));
        assert_eq!(c.server.max_connections, DEFAULT_MAX_CONNECTIONS);
    }

    #[test]
    fn environment_overrides_settings() {
        let mut doc = parse_yaml(DEFAULT_YAML).unwrap();
        let vars = [
            (
                "TOLLGATE_SERVER__LISTEN".to_string(),
                "127.0.0.1:9999".to_string(),
            ),
            (
                "TOLLGATE_SERVER__TRUSTED_PROXIES".to_string(),
                "[10.0.0.0/8]".to_string(),
            ),
            (
                "TOLLGATE_ADMIN_TOKEN".to_string(),
                "ignored here".to_string(),
            ),
        ];
        apply_env(&mut doc, vars.into_iter()).unwrap();
        let c = validate(doc, None).unwrap();
        assert_eq!(c.server.listen.port(), 9999);
        assert_eq!(c.server.trusted_proxies.len(), 1);
        // A bare `off` reads as YAML's false; it still turns the gRPC door off.
        for off in ["off", "\"off\""] {
            let mut doc = parse_yaml(DEFAULT_YAML).unwrap();
            let vars = [("TOLLGATE_SERVER__GRPC_LISTEN".to_string(), off.to_string())];
            apply_env(&mut doc, vars.into_iter()).unwrap();
            assert_eq!(
                validate(doc, None).unwrap().server.grpc_listen,
                None,
                "{off}"
            );
        }
        let mut doc = parse_yaml(DEFAULT_YAML).unwrap();
        let err = apply_env(
            &mut doc,
            [("TOLLGATE_RULES__X".to_string(), "1".to_string())].into_iter(),
        )
        .unwrap_err();
        assert_eq!(err.0[0].path, "rules.x");
    }

    #[test]
    fn database_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.secret"), "k".repeat(40)).unwrap();
        let doc = parse_yaml("database: {url: \"postgres://db/tollgate\", key_secret_file: key.secret, cache_ttl: 250ms}\n").unwrap();
        let db = validate(doc, Some(dir.path())).unwrap().database.unwrap();
        assert_eq!(db.url, "postgres://db/tollgate");
        assert_eq!(db.cache_ttl, Duration::from_millis(250));
        assert_eq!(db.key_secret.len(), 40);

        let doc = parse_yaml("database: {key_secret_file: key.secret}\n").unwrap();
        let db = validate(doc, Some(dir.path())).unwrap().database.unwrap();
        assert!(
            db.url.starts_with("sqlite://") && db.url.ends_with("tollgate.db"),
            "{}",
            db.url
        );
        assert_eq!(db.cache_ttl, Duration::from_secs(5));

        let doc = parse_yaml(
            "database: {url: \"mysql://x\", key_secret_file: key.secret, cache_ttl: 2h}\n",
        )
        .unwrap();
        let got: Vec<String> = validate(doc, Some(dir.path()))
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            got.iter().any(|g| g.starts_with("database.cache_ttl:")),
            "{got:?}"
        );
    }

    #[test]
    fn redis_store_settings() {
        let doc = parse_yaml("store: {kind: redis, mode: cluster, urls: [\"redis://127.0.0.1:7000\", \"redis://127.0.0.1:7001\"], timeout: 20ms, consistency: approximate, sync: 50ms, breaker: {failures: 5, cool_down: 1s}, near_cache: 0}\nrules: [{name: a, limit: 1, period: 1s}]").unwrap();
        let cfg = validate(doc, None).unwrap();
        let redis = cfg.store.redis.unwrap();
        assert_eq!(
            redis.topology,
            Topology::Cluster {
                urls: vec![
                    "redis://127.0.0.1:7000".into(),
                    "redis://127.0.0.1:7001".into()
                ]
            }
        );
        assert_eq!(redis.timeout, Duration::from_millis(20));
        assert_eq!(
            redis.consistency,
            Consistency::Approximate {
                sync: Duration::from_millis(50)
            }
        );
        assert_eq!(redis.breaker.failures, 5);
        assert_eq!(redis.near_cache, 0);

        let doc = parse_yaml("store: {kind: redis, url: \"http://x\", mode: ring, consistency: eventual, timeout: 1h}\nrules: []").unwrap();
        let got: Vec<String> = validate(doc, None)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        for want in [
            "store.url:",
            "store.mode:",
            "store.consistency:",
            "store.timeout:",
        ] {
            assert!(
                got.iter().any(|g| g.starts_with(want)),
                "{want} not in {got:?}"
            );
        }
    }

    #[test]
    fn errors_carry_paths() {
        let doc = parse_yaml("server: {listen: nowhere, max_body: lots, colour: red, idle_timeout: 0s, max_connections: 0}\nstore: {kind: etcd}\nrules: [{name: a, limit: 0, period: 1s}]").unwrap();
        let got: Vec<String> = validate(doc, None)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        for want in [
            "server.colour: unknown field",
            "server.listen: \"nowhere\"",
            "server.max_body: \"lots\"",
            "server.idle_timeout: must be longer than zero",
            "server.max_connections: 0 is not a positive number",
            "store.kind: \"etcd\"",
            "rules[0].limit: must be at least 1",
        ] {
            assert!(
                got.iter().any(|g| g.starts_with(want)),
                "{want} not in {got:?}"
            );
        }
    }

    #[test]
    fn a_public_listener_needs_an_admin_token() {
        if std::env::var("TOLLGATE_ADMIN_TOKEN").is_ok() {
            return;
        }
        let doc = parse_yaml("server: {listen: '0.0.0.0:8080'}").unwrap();
        let got = validate(doc, None).unwrap_err();
        assert!(got.0[0].message.contains("TOLLGATE_ADMIN_TOKEN"));
    }

    #[test]
    fn admin_settings_errors_carry_paths() {
        let doc = parse_yaml(
            "admin:\n  tokens:\n    - { name: ci, role: boss, sha256: \"zz\" }\n  jwt: { audience: tollgate }\n  rate_limit: { per_ip: { limit: 0 } }\n  cors_origins: [\"console.example\"]\n",
        )
        .unwrap();
        let errs = validate(doc, None).unwrap_err();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "admin.tokens[0].role",
                "admin.tokens[0].sha256",
                "admin.jwt",
                "admin.rate_limit.per_ip.limit",
                "admin.cors_origins[0]",
            ],
            "{errs}"
        );
    }
}

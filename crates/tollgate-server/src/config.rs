//! The configuration file: server settings, store settings and the policy, with an
//! environment overlay (`TOLLGATE_SERVER__LISTEN=…`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use tollgate_core::Policy;
use tollgate_core::policy::matcher::Cidr;
use tollgate_core::policy::parse::{
    ConfigError, ConfigErrors, Errors, as_map, check_fields, get_bool, get_cidrs, get_duration,
    get_str, get_u64, parse_yaml, show,
};
use tollgate_redis::{Consistency, RedisConfig, Topology};

use crate::grpc::{GrpcSettings, OnStoreError};

/// The embedded default configuration.
pub const DEFAULT_YAML: &str = include_str!("default.yaml");

/// Top-level sections that belong to the server, not the policy.
pub const SERVER_SECTIONS: &[&str] = &["server", "store", "admin", "envoy_files", "database"];

/// `server.max_connections` unless configured: room for many clients' or proxies'
/// keep-alive pools, and within what a service may open under systemd's default hard limit
/// of 524,288 files (the soft limit is raised to fit at start).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// HTTP server settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// The longest a request may take.
    pub request_timeout: Duration,
    /// The longest a connection may go without starting a request, none being in flight.
    pub idle_timeout: Duration,
    /// The largest request body accepted.
    pub max_body: usize,
    /// The most connections open at once, HTTP and gRPC together; more wait in the
    /// listen queue until one closes.
    pub max_connections: usize,
    /// Where the Envoy rate limit service (gRPC) listens; `None` when `off`.
    pub grpc_listen: Option<SocketAddr>,
    /// The gRPC door's own settings.
    pub grpc: GrpcSettings,
}

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

const STORE_FIELDS: &[&str] = &[
    "kind",
    "capacity",
    "key_secret_file",
    "url",
    "urls",
    "mode",
    "master",
    "timeout",
    "consistency",
    "sync",
    "prefix",
    "breaker",
    "near_cache",
];

/// `TOLLGATE_KEY_SECRET`, when set.
fn env_key_secret() -> Option<Vec<u8>> {
    std::env::var("TOLLGATE_KEY_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .map(String::into_bytes)
}

/// A secret of at least 32 bytes read from `file` (relative to `base`).
fn read_secret(
    file: &str,
    base: Option<&Path>,
    at: &str,
    errs: &mut Errors,
) -> Option<tollgate_registry::KeySecret> {
    let p = base.map_or_else(|| PathBuf::from(file), |b| b.join(file));
    match std::fs::read(&p) {
        Ok(b) => match tollgate_registry::KeySecret::new(b.trim_ascii().to_vec()) {
            Ok(s) => Some(s),
            Err(e) => {
                errs.push(at, format!("{}: {e}", p.display()));
                None
            }
        },
        Err(e) => {
            errs.push(at, format!("cannot read {}: {e}", p.display()));
            None
        }
    }
}

/// Whether a rule or tier limit counts by the presented API key.
fn counts_keys(p: &Policy) -> bool {
    let keyed = |r: &tollgate_core::policy::Rule| r.key.source().contains("{key}");
    p.rules().iter().any(keyed) || p.tiers().iter().any(|t| t.limits.iter().any(keyed))
}

/// Reads the `store` section.
fn parse_store(m: &Map<String, Value>, base: Option<&Path>, errs: &mut Errors) -> StoreSettings {
    let mut store = StoreSettings::default();
    check_fields(m, "store", STORE_FIELDS, errs);
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
        check_fields(b, "store.breaker", &["failures", "cool_down"], errs);
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

/// Where the records (API keys) live.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `sqlite://…` (default: `tollgate.db` beside the configuration) or `postgres://…`.
    pub url: String,
    /// The secret keys are hashed under, from `TOLLGATE_KEY_SECRET` or
    /// `database.key_secret_file`.
    pub key_secret: Vec<u8>,
    /// How long a key verification is trusted: the longest a change made on another
    /// instance takes to show here.
    pub cache_ttl: Duration,
    /// How many verified (or refused) keys are cached.
    pub cache_capacity: u64,
    /// How many usage events (and, apart, violations) may wait for the writer.
    pub usage_queue: usize,
    /// How often the writer stores what waits.
    pub flush_interval: Duration,
    /// How long records are kept.
    pub retention: tollgate_registry::Retention,
}

/// Reads the `database` section.
fn parse_database(
    m: &Map<String, Value>,
    base: Option<&Path>,
    errs: &mut Errors,
) -> Option<DatabaseSettings> {
    check_fields(
        m,
        "database",
        &[
            "url",
            "key_secret_file",
            "cache_ttl",
            "cache_capacity",
            "usage_queue",
            "flush_interval",
            "retention",
        ],
        errs,
    );
    let usage_queue = match get_u64(m, "usage_queue", "database", errs) {
        None => 100_000,
        Some(n @ 1..=10_000_000) => usize::try_from(n).unwrap_or(100_000),
        Some(_) => {
            errs.push("database.usage_queue", "must be between 1 and 10000000");
            100_000
        }
    };
    let flush_interval = match get_duration(m, "flush_interval", "database", errs) {
        None => Duration::from_secs(1),
        Some(d) if d == 0 || d > 60_000_000_000 => {
            errs.push("database.flush_interval", "must be between 1ms and 1m");
            Duration::from_secs(1)
        }
        Some(d) => Duration::from_nanos(d),
    };
    let retention = parse_retention(m.get("retention"), errs);
    let cache_capacity = match get_u64(m, "cache_capacity", "database", errs) {
        None => 100_000,
        Some(n @ 1..=100_000_000) => n,
        Some(_) => {
            errs.push("database.cache_capacity", "must be between 1 and 100000000");
            100_000
        }
    };
    let cache_ttl = match get_duration(m, "cache_ttl", "database", errs) {
        Some(d) if d == 0 || d > 3_600_000_000_000 => {
            errs.push("database.cache_ttl", "must be between 1ms and 1h");
            Duration::from_secs(5)
        }
        Some(d) => Duration::from_nanos(d),
        None => Duration::from_secs(5),
    };
    let url = match get_str(m, "url", "database", errs) {
        // A relative SQLite path is beside the configuration, like the default.
        Some(u)
            if u.strip_prefix("sqlite://")
                .is_some_and(|p| !p.is_empty() && !p.starts_with('/') && !p.starts_with(':')) =>
        {
            let dir = base.unwrap_or(Path::new("."));
            format!("sqlite://{}", dir.join(&u["sqlite://".len()..]).display())
        }
        Some(u)
            if u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://") =>
        {
            u.to_owned()
        }
        Some(u) => {
            errs.push(
                "database.url",
                format!("{u:?} is not sqlite://PATH or postgres://…"),
            );
            return None;
        }
        None => {
            let dir = base.unwrap_or(Path::new("."));
            format!("sqlite://{}", dir.join("tollgate.db").display())
        }
    };
    let key_secret = match (
        env_key_secret(),
        get_str(m, "key_secret_file", "database", errs),
    ) {
        (Some(s), _) => s,
        (None, Some(file)) => {
            let p = base.map_or_else(|| PathBuf::from(file), |b| b.join(file));
            match std::fs::read(&p) {
                Ok(b) => b.trim_ascii().to_vec(),
                Err(e) => {
                    errs.push(
                        "database.key_secret_file",
                        format!("cannot read {}: {e}", p.display()),
                    );
                    return None;
                }
            }
        }
        (None, None) if dev_mode() => match dev_secret(base) {
            Ok(secret) => secret,
            Err(why) => {
                errs.push("database", why);
                return None;
            }
        },
        (None, None) => {
            errs.push(
                "database",
                "API keys need a secret: set TOLLGATE_KEY_SECRET or database.key_secret_file (or serve with --dev to try keys out)",
            );
            return None;
        }
    };
    if key_secret.len() < 32 {
        errs.push("database", "the key secret must be at least 32 bytes");
        return None;
    }
    Some(DatabaseSettings {
        url,
        key_secret,
        cache_ttl,
        cache_capacity,
        usage_queue,
        flush_interval,
        retention,
    })
}

static DEV_MODE: AtomicBool = AtomicBool::new(false);

/// Where dev mode keeps the key secret it generated, beside the configuration.
pub const DEV_SECRET_FILE: &str = ".tollgate-dev-secret";

/// Turns dev mode on for this process (`tollgate serve --dev`): API keys work without a
/// configured secret, and the embedded default has a database.
pub fn set_dev_mode() {
    DEV_MODE.store(true, Ordering::Relaxed);
}

fn dev_mode() -> bool {
    DEV_MODE.load(Ordering::Relaxed)
}

/// Dev mode's key secret: read from [`DEV_SECRET_FILE`] beside the configuration, or made
/// once (128 random bits) and kept there, readable by this user only, so keys survive a
/// restart.
fn dev_secret(base: Option<&Path>) -> Result<Vec<u8>, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = base.unwrap_or(Path::new(".")).join(DEV_SECRET_FILE);
    match std::fs::read(&path) {
        Ok(b) if b.trim_ascii().len() >= 32 => return Ok(b.trim_ascii().to_vec()),
        Ok(_) => {
            return Err(format!(
                "{} holds no usable secret; remove it",
                path.display()
            ));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot read {}: {e}", path.display()));
        }
        Err(_) => {}
    }
    let secret = tollgate_registry::key::generate("dev").map_err(|e| e.to_string())?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(secret.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::warn!(file = %path.display(), "dev mode: API keys are hashed under a secret generated in this file; set TOLLGATE_KEY_SECRET in production");
    Ok(secret.into_bytes())
}

/// Reads `database.retention`: an age per kind of record, or `forever`.
fn parse_retention(v: Option<&Value>, errs: &mut Errors) -> tollgate_registry::Retention {
    let mut retention = tollgate_registry::Retention::default();
    let Some(m) = v.and_then(|v| as_map(v, "database.retention", errs)) else {
        return retention;
    };
    let path = "database.retention";
    let fields = [
        ("events", &mut retention.events),
        ("minute", &mut retention.minute),
        ("hour", &mut retention.hour),
        ("day", &mut retention.day),
        ("violations", &mut retention.violations),
        ("audit", &mut retention.audit),
    ];
    let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    check_fields(m, path, &names, errs);
    for (name, slot) in fields {
        match m.get(name) {
            None => {}
            Some(Value::String(s)) if s == "forever" => *slot = None,
            Some(_) => match get_duration(m, name, path, errs) {
                Some(0) => errs.push(&format!("{path}.{name}"), "must be longer than zero"),
                Some(d) => *slot = Some(Duration::from_nanos(d)),
                None => {}
            },
        }
    }
    retention
}

/// A loaded, validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Server settings.
    pub server: ServerSettings,
    /// Store settings.
    pub store: StoreSettings,
    /// Admin credentials, rate limits and CORS.
    pub admin: crate::auth::AdminSettings,
    /// The records' database, when a `database` section is present.
    pub database: Option<DatabaseSettings>,
    /// The compiled policy.
    pub policy: Policy,
    /// The whole document after the environment overlay, for `GET /v1/config` and writing
    /// back.
    pub doc: Value,
}

/// Reads and validates `path`, or the embedded default when `None`.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| one_error("", format!("cannot read {}: {e}", p.display())))?,
        None => DEFAULT_YAML.to_owned(),
    };
    let mut doc = parse_yaml(&text)?;
    apply_env(&mut doc, std::env::vars())?;
    validate(doc, path.and_then(Path::parent))
}

/// A single configuration error.
pub fn one_error(path: &str, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        path: path.to_owned(),
        message,
    }])
}

/// Applies `TOLLGATE_A__B=value` variables: the value (read as YAML, so `5s`, `[a, b]` and
/// `true` all work) replaces setting `a.b`.
pub fn apply_env(
    doc: &mut Value,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<(), ConfigErrors> {
    let mut errs = Errors::default();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("TOLLGATE_") else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let Some(section) = path.first() else {
            continue;
        };
        if !SERVER_SECTIONS.contains(&section.as_str()) {
            errs.push(
                &path.join("."),
                format!(
                    "{name} does not name a setting (sections: {})",
                    SERVER_SECTIONS.join(", ")
                ),
            );
            continue;
        }
        let value = parse_yaml(&raw).unwrap_or(Value::String(raw));
        if !doc.is_object() {
            *doc = Value::Object(Map::new());
        }
        let mut node = &mut *doc;
        for (i, part) in path.iter().enumerate() {
            let Value::Object(map) = node else {
                errs.push(&path[..i].join("."), format!("{name}: not a mapping"));
                break;
            };
            if i + 1 == path.len() {
                map.insert(part.clone(), value.clone());
                break;
            }
            node = map
                .entry(part.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    errs.finish(())
}

fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: usize = text[..split].parse().ok()?;
    let unit = match text[split..].trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "KiB" => 1_024,
        "MB" => 1_000_000,
        "MiB" => 1_048_576,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// Validates a whole document; `base` resolves relative file paths.
pub fn validate(doc: Value, base: Option<&Path>) -> Result<Config, ConfigErrors> {
    let mut errs = Errors::default();
    let empty = Map::new();
    let root = match &doc {
        Value::Null => &empty,
        v => as_map(v, "", &mut errs).unwrap_or(&empty),
    };

    let mut server = ServerSettings {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        trusted_proxies: Vec::new(),
        request_timeout: Duration::from_secs(5),
        // nginx's `keepalive_timeout`: longer than the 60 s for which proxies keep idle
        // upstream connections by default, so a proxy is not the one to find them closed.
        idle_timeout: Duration::from_secs(75),
        max_body: 64 * 1024,
        max_connections: DEFAULT_MAX_CONNECTIONS,
        grpc_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8081))),
        grpc: GrpcSettings::default(),
    };
    if let Some(m) = root
        .get("server")
        .and_then(|v| as_map(v, "server", &mut errs))
    {
        check_fields(
            m,
            "server",
            &[
                "listen",
                "trusted_proxies",
                "request_timeout",
                "idle_timeout",
                "max_body",
                "max_connections",
                "grpc_listen",
                "grpc_legacy_headers",
                "grpc_on_store_error",
            ],
            &mut errs,
        );
        if let Some(l) = get_str(m, "listen", "server", &mut errs) {
            match l.parse() {
                Ok(a) => server.listen = a,
                Err(_) => errs.push(
                    "server.listen",
                    format!("{l:?} is not an address:port (e.g. 127.0.0.1:8080)"),
                ),
            }
        }
        // YAML reads a bare `off` as false.
        let grpc = if matches!(m.get("grpc_listen"), Some(Value::Bool(false))) {
            Some("off")
        } else {
            get_str(m, "grpc_listen", "server", &mut errs)
        };
        match grpc {
            None => {}
            Some("off") => server.grpc_listen = None,
            Some(l) => match l.parse() {
                Ok(a) => server.grpc_listen = Some(a),
                Err(_) => errs.push(
                    "server.grpc_listen",
                    format!("{l:?} is not an address:port (e.g. 127.0.0.1:8081) or off"),
                ),
            },
        }
        if let Some(b) = get_bool(m, "grpc_legacy_headers", "server", &mut errs) {
            server.grpc.legacy_headers = b;
        }
        match get_str(m, "grpc_on_store_error", "server", &mut errs) {
            None | Some("policy") => {}
            Some("unavailable") => server.grpc.on_store_error = OnStoreError::Unavailable,
            Some(other) => errs.push(
                "server.grpc_on_store_error",
                format!("{other:?} is not one of policy, unavailable"),
            ),
        }
        match m.get("trusted_proxies") {
            None => {}
            Some(v @ Value::Array(_)) => {
                server.trusted_proxies = get_cidrs(v, "server.trusted_proxies", &mut errs);
            }
            Some(other) => errs.push(
                "server.trusted_proxies",
                format!("expected a list of CIDRs, found {}", show(other)),
            ),
        }
        if let Some(d) = get_duration(m, "request_timeout", "server", &mut errs) {
            if d == 0 {
                errs.push("server.request_timeout", "must be longer than zero");
            }
            server.request_timeout = Duration::from_nanos(d);
        }
        if let Some(d) = get_duration(m, "idle_timeout", "server", &mut errs) {
            if d == 0 {
                errs.push("server.idle_timeout", "must be longer than zero");
            }
            server.idle_timeout = Duration::from_nanos(d);
        }
        if let Some(v) = m.get("max_body") {
            let size = match v {
                Value::String(s) => parse_size(s),
                Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
                _ => None,
            };
            match size {
                Some(s) if s > 0 => server.max_body = s,
                _ => errs.push(
                    "server.max_body",
                    format!("{} is not a size (e.g. 64KiB, 1MB)", show(v)),
                ),
            }
        }
        if let Some(v) = m.get("max_connections") {
            match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) if n > 0 => server.max_connections = n,
                _ => errs.push(
                    "server.max_connections",
                    format!("{} is not a positive number of connections", show(v)),
                ),
            }
        }
    }

    let store = root
        .get("store")
        .and_then(|v| as_map(v, "store", &mut errs))
        .map_or_else(StoreSettings::default, |m| parse_store(m, base, &mut errs));

    let env_token = std::env::var("TOLLGATE_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let admin_section = root
        .get("admin")
        .and_then(|v| as_map(v, "admin", &mut errs));
    let admin = crate::auth::parse_settings(admin_section, env_token, base, &mut errs);
    // In dev mode the embedded default has a database too, in the working folder.
    let dev_database = (dev_mode() && base.is_none() && !root.contains_key("database"))
        .then(|| Value::Object(Map::new()));
    let database = root
        .get("database")
        .or(dev_database.as_ref())
        .and_then(|v| as_map(v, "database", &mut errs))
        .and_then(|m| parse_database(m, base, &mut errs));
    if !server.listen.ip().is_loopback() && !admin.has_credentials() {
        errs.push(
            "server.listen",
            format!(
                "{} is not a loopback address: set TOLLGATE_ADMIN_TOKEN, admin.token_file, admin.tokens or admin.jwt first",
                server.listen
            ),
        );
    }

    let with_files = with_envoy_files(&doc, root, base, &mut errs);
    let (policy_doc, sources) = match &with_files {
        Some((d, s)) => (d, s.as_slice()),
        None => (&doc, &[][..]),
    };
    let policy = match Policy::from_value(policy_doc, SERVER_SECTIONS) {
        Ok(p) => Some(p),
        Err(e) => {
            // Errors inside a file of `envoy_files` name the file, not its place in the
            // merged list.
            let inline = match root.get("envoy") {
                Some(Value::Array(items)) => items.len(),
                _ => 0,
            };
            for err in e.0 {
                errs.push(&file_path(&err.path, inline, sources), err.message);
            }
            None
        }
    };
    let mut store = store;
    if store.key_secret.is_none() {
        store.key_secret = env_key_secret()
            .or_else(|| database.as_ref().map(|d| d.key_secret.clone()))
            .and_then(|s| tollgate_registry::KeySecret::new(s).ok());
    }
    if let (Some(p), Some(_), None, None) = (&policy, &store.redis, &database, &store.key_secret)
        && counts_keys(p)
    {
        errs.push(
            "store",
            "rules count API keys ({key}) in a Redis store shared by every instance, but no key \
             secret is set: each instance would count a key under a name of its own. Set \
             TOLLGATE_KEY_SECRET (or store.key_secret_file) to the same secret on every instance",
        );
    }
    if let (Some(p), Some(_)) = (&policy, &store.redis) {
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
    errs.finish(())?;
    let policy = policy.ok_or_else(|| one_error("", "the policy did not compile".into()))?;
    Ok(Config {
        server,
        store,
        admin,
        database,
        policy,
        doc,
    })
}

/// The files a path names: itself, or, when its file name has `*` or `?`, the files of its
/// folder that match, in name order (envoyproxy/ratelimit reads a whole folder).
fn expand(path: &Path, at: &str, errs: &mut Errors) -> Vec<PathBuf> {
    let pattern = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if !pattern.contains(['*', '?']) {
        return vec![path.to_owned()];
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| tollgate_core::policy::matcher::glob(pattern, n))
            })
            .collect(),
        Err(e) => {
            errs.push(at, format!("cannot list {}: {e}", dir.display()));
            return Vec::new();
        }
    };
    if found.is_empty() {
        errs.push(at, format!("{} matches no file", path.display()));
    }
    found.sort();
    found
}

/// `envoy[k]…` as the file it came from when `k` is past the `inline` entries.
fn file_path(path: &str, inline: usize, sources: &[String]) -> String {
    let index = path
        .strip_prefix("envoy[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)));
    match index {
        Some((k, rest)) if k >= inline => match sources.get(k - inline) {
            Some(source) => format!("{source}{rest}"),
            None => path.to_owned(),
        },
        _ => path.to_owned(),
    }
}

/// The document with the envoyproxy/ratelimit files named in `envoy_files` (paths
/// relative to the configuration's folder) added to its `envoy` section; `None` when it
/// names none.
fn with_envoy_files(
    doc: &Value,
    root: &Map<String, Value>,
    base: Option<&Path>,
    errs: &mut Errors,
) -> Option<(Value, Vec<String>)> {
    let files = root.get("envoy_files")?;
    let Value::Array(files) = files else {
        errs.push(
            "envoy_files",
            format!("expected a list of file paths, found {}", show(files)),
        );
        return None;
    };
    let mut envoy = match root.get("envoy") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    // Where each added document came from, for error paths.
    let mut sources = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let at = format!("envoy_files[{i}]");
        let Some(name) = f.as_str() else {
            errs.push(&at, format!("expected a file path, found {}", show(f)));
            continue;
        };
        let path = base.map_or_else(|| PathBuf::from(name), |b| b.join(name));
        for path in expand(&path, &at, errs) {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    errs.push(&at, format!("cannot read {}: {e}", path.display()));
                    continue;
                }
            };
            match parse_yaml(&text) {
                Ok(v) => {
                    envoy.push(v);
                    sources.push(format!("{at} ({})", path.display()));
                }
                Err(e) => {
                    for err in e.0 {
                        errs.push(&at, format!("{}: {}", path.display(), err));
                    }
                }
            }
        }
    }
    let mut merged = doc.clone();
    if let Value::Object(m) = &mut merged {
        m.insert("envoy".into(), Value::Array(envoy));
    }
    Some((merged, sources))
}

/// The policy part of a document: its top-level fields other than the server sections.
pub fn policy_part(doc: &Value) -> Value {
    match doc {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !SERVER_SECTIONS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => Value::Object(Map::new()),
    }
}

/// `doc` with its policy part replaced by `policy`.
pub fn with_policy(doc: &Value, policy: &Value) -> Value {
    let mut out = match doc {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| SERVER_SECTIONS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Map::new(),
    };
    if let Value::Object(p) = policy {
        for (k, v) in p {
            if !SERVER_SECTIONS.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Some(65_536));
        assert_eq!(parse_size("1MB"), Some(1_000_000));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1 GB"), None);
    }
}

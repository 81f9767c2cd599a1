//! The `database` section: where the records (API keys, usage, violations, audit) live,
//! and how long they are kept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{Errors, as_map, check_fields, get_duration, get_str, get_u64};
use tollgate_core::policy::settings::Setting;

use super::secret::{dev_mode, dev_secret, env_key_secret};

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
    /// How long the fleet's leader holds its lease unrenewed: the longest its periodic
    /// work (pruning, closing periods, evaluating alerts) waits when it dies.
    pub leader_lease: Duration,
}

/// Reads the `database` section.
pub fn parse(
    m: &Map<String, Value>,
    base: Option<&Path>,
    errs: &mut Errors,
) -> Option<DatabaseSettings> {
    check_fields(m, "database", FIELDS, errs);
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
    let leader_lease = super::duration::within(
        m,
        "leader_lease",
        "database",
        (Duration::from_secs(1), Duration::from_secs(600)),
        Duration::from_secs(15),
        errs,
    );
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
        leader_lease,
    })
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
        ("billing", &mut retention.billing),
        ("jobs", &mut retention.jobs),
        ("dead_letters", &mut retention.dead_letters),
    ];
    check_fields(m, path, RETENTION_FIELDS, errs);
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

/// The fields of `database`.
pub(crate) const FIELDS: &[Setting] = &[
    Setting::new("url", "URL", "Where the records live: `sqlite://PATH` (relative: beside the configuration) or `postgres://…`.")
        .default("`sqlite://tollgate.db` beside the configuration"),
    Setting::new(
        "key_secret_file",
        "path",
        "A file holding the secret API keys are hashed under (or `TOLLGATE_KEY_SECRET`, which wins); required but with `serve --dev`.",
    )
    .range("at least 32 bytes"),
    Setting::new("cache_ttl", "duration", "How long a key verification is trusted: the longest a change made on another instance takes to show here.")
        .default("`5s`")
        .range("1ms to 1h"),
    Setting::new("cache_capacity", "integer", "How many verified (or refused) keys are cached.")
        .default("`100000`")
        .range("1 to 100000000"),
    Setting::new("usage_queue", "integer", "How many usage events (and, apart, violations) may wait for the writer; past it they are counted and dropped.")
        .default("`100000`")
        .range("1 to 10000000"),
    Setting::new("flush_interval", "duration", "How often the writer stores what waits.")
        .default("`1s`")
        .range("1ms to 1m"),
    Setting::new("retention", "mapping", "How long records are kept, per kind."),
    Setting::new("leader_lease", "duration", "How long the fleet's leader holds its lease unrenewed: the longest its periodic work (pruning, closing periods, evaluating alerts) waits when it dies.")
        .default("`15s`")
        .range("1s to 10m"),
];

/// The fields of `database.retention`: each a duration or `forever`.
pub(crate) const RETENTION_FIELDS: &[Setting] = &[
    Setting::new("events", "duration or `forever`", "Raw usage events.").default("`7d`"),
    Setting::new(
        "minute",
        "duration or `forever`",
        "Usage rolled up per minute.",
    )
    .default("`2d`"),
    Setting::new("hour", "duration or `forever`", "Usage rolled up per hour.").default("`90d`"),
    Setting::new("day", "duration or `forever`", "Usage rolled up per day.").default("`730d`"),
    Setting::new(
        "violations",
        "duration or `forever`",
        "Denials recorded as violations.",
    )
    .default("`90d`"),
    Setting::new(
        "audit",
        "duration or `forever`",
        "The audit log of admin changes.",
    )
    .default("`forever`"),
    Setting::new(
        "billing",
        "duration or `forever`",
        "Billed usage per quarter hour.",
    )
    .default("`400d`"),
    Setting::new(
        "jobs",
        "duration or `forever`",
        "Finished and dead jobs of the queue.",
    )
    .default("`30d`"),
    Setting::new(
        "dead_letters",
        "duration or `forever`",
        "The reverse proxy's dead letters not replayed nor discarded, by when they were given up.",
    )
    .default("`30d`"),
];

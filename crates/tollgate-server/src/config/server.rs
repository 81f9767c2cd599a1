//! The `server` section: listeners, timeouts, sizes, and the gRPC door's settings.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Map, Value};
use tollgate_core::policy::matcher::Cidr;
use tollgate_core::policy::parse::{
    Errors, check_fields, get_bool, get_cidrs, get_duration, get_str, show,
};
use tollgate_core::policy::settings::Setting;

/// `server.max_connections` unless configured: room for many clients' or proxies'
/// keep-alive pools, and within what a service may open under systemd's default hard limit
/// of 524,288 files (the soft limit is raised to fit at start).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The fields of `server`.
pub(crate) const FIELDS: &[Setting] = &[
    Setting::new(
        "listen",
        "address:port",
        "Where the HTTP doors and the admin API listen. A non-loopback address needs admin \
         credentials.",
    )
    .default("`127.0.0.1:8080`"),
    Setting::new(
        "trusted_proxies",
        "list of CIDRs",
        "Peers whose `X-Forwarded-For` and `X-Real-IP` are believed.",
    )
    .default("none"),
    Setting::new(
        "request_timeout",
        "duration",
        "The longest a request may wait (for its body, the store or the database).",
    )
    .default("`5s`")
    .range("longer than zero"),
    Setting::new(
        "idle_timeout",
        "duration",
        "A connection that starts no request this long, none being in flight, is closed.",
    )
    .default("`75s`")
    .range("longer than zero"),
    Setting::new("max_body", "size", "The largest request body accepted.")
        .default("`64KiB`")
        .range("more than zero; a number of bytes or with `B`, `KB`, `KiB`, `MB`, `MiB`"),
    Setting::new(
        "max_connections",
        "integer",
        "The most connections open at once, HTTP and gRPC together; more wait to be accepted.",
    )
    .default("`10000`")
    .range("1 or more"),
    Setting::new(
        "grpc_listen",
        "address:port",
        "Where the Envoy rate limit service (gRPC) listens; `off` turns it off.",
    )
    .default("`127.0.0.1:8081`")
    .range("an address:port, or `off`"),
    Setting::new(
        "grpc_legacy_headers",
        "boolean",
        "The gRPC door also sends `x-ratelimit-limit`, `-remaining` and `-reset`.",
    )
    .default("`false`"),
    Setting::new(
        "grpc_on_store_error",
        "string",
        "What a store failure answers on the gRPC door: each rule's `on_store_error`, or gRPC \
         `UNAVAILABLE` so Envoy applies its `failure_mode_deny`.",
    )
    .default("`policy`")
    .range("`policy`, `unavailable`"),
];

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

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
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
        }
    }
}

/// What a store failure answers on the gRPC door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnStoreError {
    /// Each rule's `on_store_error`, as on HTTP.
    #[default]
    Policy,
    /// gRPC `UNAVAILABLE`, so Envoy applies its own `failure_mode_deny`.
    Unavailable,
}

/// Settings of the gRPC door.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcSettings {
    /// Also send `x-ratelimit-limit`, `-remaining` and `-reset`.
    pub legacy_headers: bool,
    /// What a store failure answers.
    pub on_store_error: OnStoreError,
}

/// Reads the `server` section.
pub fn parse(m: &Map<String, Value>, errs: &mut Errors) -> ServerSettings {
    let mut server = ServerSettings::default();
    check_fields(m, "server", FIELDS, errs);
    if let Some(l) = get_str(m, "listen", "server", errs) {
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
        get_str(m, "grpc_listen", "server", errs)
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
    if let Some(b) = get_bool(m, "grpc_legacy_headers", "server", errs) {
        server.grpc.legacy_headers = b;
    }
    match get_str(m, "grpc_on_store_error", "server", errs) {
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
            server.trusted_proxies = get_cidrs(v, "server.trusted_proxies", errs);
        }
        Some(other) => errs.push(
            "server.trusted_proxies",
            format!("expected a list of CIDRs, found {}", show(other)),
        ),
    }
    if let Some(d) = get_duration(m, "request_timeout", "server", errs) {
        if d == 0 {
            errs.push("server.request_timeout", "must be longer than zero");
        }
        server.request_timeout = Duration::from_nanos(d);
    }
    if let Some(d) = get_duration(m, "idle_timeout", "server", errs) {
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
    server
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Some(65_536));
        assert_eq!(parse_size("1MB"), Some(1_000_000));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1 GB"), None);
    }
}

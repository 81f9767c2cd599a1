//! The `proxy` section: where the proxy listens, its routes and its upstream pools, read
//! with every error at its path and defaults for everything but origins.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::{StatusCode, Uri};
use serde_json::{Map, Value};
use tollgate_core::policy::parse::{
    Errors, as_map, check_fields, get_bool, get_duration, get_str, get_u64, join, show,
};
use tollgate_core::policy::settings::{Section, Setting};

/// The proxy's settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where the proxy listens.
    pub listen: SocketAddr,
    /// The routes, in the order written (the longest matching prefix wins, not the first).
    pub routes: Vec<RouteConfig>,
    /// The upstream pools by name.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// TLS on the proxy's own listener, when configured.
    pub tls: Option<ListenerTls>,
}

/// The certificate the proxy's listener presents (PEM files, read again when they change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// The certificate chain, the server's own certificate first.
    pub cert_file: std::path::PathBuf,
    /// The certificate's private key.
    pub key_file: std::path::PathBuf,
}

/// Whether and how a route keeps the requests it could not deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterConfig {
    /// Whether requests whose tries all failed are kept for a replay.
    pub enabled: bool,
    /// The most bytes of a body kept; a longer body is kept cut, and cannot be replayed.
    pub body_limit: usize,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        DeadLetterConfig {
            enabled: false,
            body_limit: 64 * 1024,
        }
    }
}

/// Which requests go to which upstream, and how they are tried.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// The `Host` the route answers (without port), or any host.
    pub host: Option<String>,
    /// The path prefix the route answers: `/` matches everything.
    pub path_prefix: String,
    /// Whether the prefix is removed before forwarding.
    pub strip_prefix: bool,
    /// The upstream pool's name.
    pub upstream: String,
    /// Request headers not passed on (an API key meant for Tollgate alone, say).
    pub remove_headers: Vec<http::HeaderName>,
    /// How a failed try is tried again.
    pub retry: RetryConfig,
    /// The longest one try may take to bring the response's head.
    pub try_timeout: Duration,
    /// The longest all tries together may take to bring a response's head.
    pub total_timeout: Duration,
    /// Whether requests whose tries all failed are kept.
    pub dead_letter: DeadLetterConfig,
}

/// When and how a try is made again.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// The most tries of one request, the first included (1: no retry).
    pub tries: u32,
    /// The first backoff's ceiling; each later one doubles it, up to `max_backoff`. The
    /// wait is drawn at random below it (full jitter).
    pub backoff: Duration,
    /// The largest backoff ceiling.
    pub max_backoff: Duration,
    /// Also retry methods that are not idempotent (POST, PATCH).
    pub non_idempotent: bool,
    /// The largest request body kept for a replay; a longer body is streamed and its
    /// request tried once.
    pub replay_limit: usize,
    /// The statuses that are retried (connect errors and resets before a response always
    /// are).
    pub statuses: Vec<StatusCode>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            tries: 3,
            backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
            non_idempotent: false,
            replay_limit: 64 * 1024,
            statuses: [502, 503, 504, 429]
                .into_iter()
                .filter_map(|s| StatusCode::from_u16(s).ok())
                .collect(),
        }
    }
}

/// How origins are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// Of two origins drawn at random, the one with fewer requests in flight.
    #[default]
    LeastRequest,
    /// Each origin in turn.
    RoundRobin,
}

/// One upstream pool.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Its origins: `http://host:port` or `https://host:port`; `h2c://host:port` is kept
    /// as `http://host:port` with its index in `prior_knowledge`.
    pub origins: Vec<Uri>,
    /// For each origin, whether it is spoken to in HTTP/2 without TLS (prior knowledge).
    pub prior_knowledge: Vec<bool>,
    /// How an origin is chosen.
    pub balance: Balance,
    /// The longest a connection may take to open.
    pub connect_timeout: Duration,
    /// Consecutive failures after which an origin is left out.
    pub eject_after: u32,
    /// How long an ejected origin is left out.
    pub eject_for: Duration,
    /// The circuit breaker.
    pub breaker: BreakerConfig,
    /// The retry budget.
    pub budget: BudgetConfig,
    /// Credentials the proxy injects, chosen by the quota the upstream reports.
    pub keys: Option<KeyPoolConfig>,
    /// Active health checks, when configured.
    pub health: Option<HealthConfig>,
    /// Certificates (PEM) that `https` origins are verified against instead of the
    /// platform's roots: a CA of your own.
    pub ca_pem: Option<Vec<u8>>,
}

/// Active health checks of an upstream's origins.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// The path asked of each origin; any 2xx answer is healthy.
    pub path: String,
    /// Time between two checks of an origin.
    pub interval: Duration,
    /// The longest a check may take.
    pub timeout: Duration,
    /// Failed checks in a row after which an origin is left out.
    pub unhealthy_after: u32,
    /// Passed checks in a row after which it is taken back.
    pub healthy_after: u32,
}

/// When the breaker of an upstream opens and how it closes again.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Consecutive failed tries that open it.
    pub failures: u32,
    /// The failed share of the tries in `window` that opens it, once there were
    /// `min_requests`.
    pub error_ratio: f64,
    /// The window of the error ratio.
    pub window: Duration,
    /// The fewest tries in the window for the ratio to count.
    pub min_requests: u32,
    /// How long it stays open before one probe is let through.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            error_ratio: 0.5,
            window: Duration::from_secs(10),
            min_requests: 20,
            open_for: Duration::from_millis(500),
        }
    }
}

/// How many retries an upstream is sent, against the requests it succeeds at.
#[derive(Debug, Clone, Copy)]
pub struct BudgetConfig {
    /// Retries per successful request.
    pub ratio: f32,
    /// Retries per second allowed whatever the successes.
    pub min_per_second: u32,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            ratio: 0.1,
            min_per_second: 10,
        }
    }
}

/// Upstream credentials.
#[derive(Debug, Clone)]
pub struct KeyPoolConfig {
    /// The header that carries a credential.
    pub header: http::HeaderName,
    /// Written before the credential (`Bearer `, say).
    pub prefix: String,
    /// The credentials.
    pub values: Vec<String>,
}

const FIELDS: &[Setting] = &[
    Setting::new("listen", "address:port", "Where the proxy listens.").default("`127.0.0.1:8090`"),
    Setting::new(
        "tls",
        "mapping",
        "TLS on the proxy's listener (HTTP/2 and HTTP/1.1 by ALPN); without it the listener \
         speaks plain HTTP/1.1 and HTTP/2 with prior knowledge.",
    )
    .default("none"),
    Setting::new(
        "routes",
        "list of routes",
        "Which requests go to which upstream; the longest matching prefix wins.",
    )
    .range("one or more; required"),
    Setting::new(
        "upstreams",
        "mapping of upstreams",
        "The upstream pools, by name.",
    )
    .range("one or more; required"),
];
const ROUTE_FIELDS: &[Setting] = &[
    Setting::new(
        "host",
        "string",
        "The `Host` the route answers, without port.",
    )
    .default("any host"),
    Setting::new(
        "path_prefix",
        "string",
        "The paths it answers, on segment boundaries.",
    )
    .default("`/`")
    .range("starts with `/`"),
    Setting::new(
        "strip_prefix",
        "boolean",
        "Remove the prefix before forwarding.",
    )
    .default("`false`"),
    Setting::new("upstream", "string", "The pool under `proxy.upstreams`.")
        .range("a name of `proxy.upstreams`; required"),
    Setting::new(
        "remove_headers",
        "list of header names",
        "Request headers never passed on (an API key meant for Tollgate alone, say).",
    )
    .default("none"),
    Setting::new("retry", "mapping", "How a failed try is tried again."),
    Setting::new(
        "try_timeout",
        "duration",
        "The longest one try may take to bring the answer's head.",
    )
    .default("`10s`")
    .range("longer than zero"),
    Setting::new(
        "total_timeout",
        "duration",
        "The longest all tries together may take; no retry starts past it.",
    )
    .default("`30s`")
    .range("longer than zero"),
    Setting::new(
        "dead_letter",
        "mapping",
        "Keeps the requests whose tries all failed in the records database, to be replayed.",
    )
    .default("off"),
];
const DEAD_LETTER_FIELDS: &[Setting] = &[
    Setting::new(
        "enabled",
        "boolean",
        "Keep the requests whose tries all failed (the last one a connection error, a timeout \
         or a retried status); needs a `database`.",
    )
    .default("`false`"),
    Setting::new(
        "body_limit",
        "integer (bytes)",
        "The most bytes of a body kept; a longer body is kept cut, and such a request cannot \
         be replayed.",
    )
    .default("`65536`"),
];
const TLS_FIELDS: &[Setting] = &[
    Setting::new(
        "cert_file",
        "path",
        "The certificate chain (PEM), the proxy's own certificate first; relative to the \
         configuration's folder; read again when it changes.",
    )
    .range("required"),
    Setting::new(
        "key_file",
        "path",
        "The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1); read again when it \
         changes.",
    )
    .range("required"),
];
const RETRY_FIELDS: &[Setting] = &[
    Setting::new(
        "tries",
        "integer",
        "Tries of one request, the first included (1: no retry).",
    )
    .default("`3`")
    .range("1 to 2³²−1"),
    Setting::new(
        "backoff",
        "duration",
        "The first retry's backoff ceiling; it doubles per retry, and the wait is drawn at \
         random below it.",
    )
    .default("`25ms`"),
    Setting::new("max_backoff", "duration", "The largest backoff ceiling.").default("`1s`"),
    Setting::new(
        "non_idempotent",
        "boolean",
        "Also retry methods that are not idempotent (`POST`, `PATCH`).",
    )
    .default("`false`"),
    Setting::new(
        "replay_limit",
        "integer (bytes)",
        "The largest body kept for a replay; a longer one is streamed to a single try.",
    )
    .default("`65536`"),
    Setting::new(
        "statuses",
        "list of statuses",
        "Answers that are retried (connection errors and resets before an answer always are).",
    )
    .default("`[502, 503, 504, 429]`")
    .range("400 to 599"),
];
const UPSTREAM_FIELDS: &[Setting] = &[
    Setting::new(
        "origins",
        "list of URLs",
        "Where requests go: `http://host:port`, `https://host:port`, or `h2c://host:port` \
         for HTTP/2 without TLS (prior knowledge).",
    )
    .range("one or more; required"),
    Setting::new(
        "balance",
        "string",
        "How an origin is chosen: of two drawn at random the one with fewer requests in \
         flight, or each in turn.",
    )
    .default("`least_request`")
    .range("`least_request`, `round_robin`"),
    Setting::new(
        "connect_timeout",
        "duration",
        "The longest a connection may take to open.",
    )
    .default("`1s`"),
    Setting::new(
        "eject_after",
        "integer",
        "Failures in a row after which an origin is left out.",
    )
    .default("`5`")
    .range("1 to 2³²−1"),
    Setting::new(
        "eject_for",
        "duration",
        "How long an ejected origin is left out; when every origin is, all are tried.",
    )
    .default("`10s`"),
    Setting::new("breaker", "mapping", "The upstream's circuit breaker."),
    Setting::new(
        "budget",
        "mapping",
        "How many retries the upstream is sent.",
    ),
    Setting::new(
        "keys",
        "mapping",
        "Credentials the proxy injects, chosen by the quota the upstream reports.",
    )
    .default("none"),
    Setting::new("health", "mapping", "Active health checks of the origins.").default("none"),
    Setting::new(
        "ca_file",
        "path",
        "PEM certificates `https` origins are verified against instead of the platform's \
         roots; relative to the configuration's folder.",
    )
    .default("the platform's roots"),
];
const HEALTH_FIELDS: &[Setting] = &[
    Setting::new(
        "path",
        "string",
        "The path asked of each origin; any 2xx is healthy.",
    )
    .default("`/healthz`")
    .range("starts with `/`"),
    Setting::new(
        "interval",
        "duration",
        "Time between two checks of an origin.",
    )
    .default("`5s`")
    .range("longer than zero"),
    Setting::new("timeout", "duration", "The longest a check may take.")
        .default("`1s`")
        .range("longer than zero"),
    Setting::new(
        "unhealthy_after",
        "integer",
        "Failed checks in a row that leave an origin out.",
    )
    .default("`2`")
    .range("1 to 2³²−1"),
    Setting::new(
        "healthy_after",
        "integer",
        "Passed checks in a row that take it back.",
    )
    .default("`1`")
    .range("1 to 2³²−1"),
];
const BREAKER_FIELDS: &[Setting] = &[
    Setting::new(
        "failures",
        "integer",
        "Failed tries in a row that open the breaker.",
    )
    .default("`5`")
    .range("1 to 2³²−1"),
    Setting::new(
        "error_ratio",
        "number",
        "The failed share of the window's tries that opens it, once there were `min_requests`.",
    )
    .default("`0.5`")
    .range("0 to 1"),
    Setting::new("window", "duration", "The window of the error ratio.").default("`10s`"),
    Setting::new(
        "min_requests",
        "integer",
        "The fewest tries in the window for the ratio to count.",
    )
    .default("`20`")
    .range("1 to 2³²−1"),
    Setting::new(
        "open_for",
        "duration",
        "How long it stays open before one probe is let through.",
    )
    .default("`500ms`"),
];
const BUDGET_FIELDS: &[Setting] = &[
    Setting::new("ratio", "number", "Retries allowed per successful request.")
        .default("`0.1`")
        .range("0 to 1"),
    Setting::new(
        "min_per_second",
        "integer",
        "Retries allowed per second whatever the successes.",
    )
    .default("`10`"),
];
const KEY_FIELDS: &[Setting] = &[
    Setting::new(
        "header",
        "header name",
        "The header that carries a credential.",
    )
    .default("`authorization`"),
    Setting::new(
        "prefix",
        "string",
        "Written before the credential (`Bearer `, say).",
    )
    .default("none"),
    Setting::new("values", "list of strings", "The credentials.").range("one or more; required"),
];

/// The `proxy` section's mappings and their settings, for the configuration reference.
pub fn sections() -> Vec<Section> {
    vec![
        Section::new(
            "proxy",
            "The reverse proxy (see [The reverse proxy](../proxy.md)); absent, no proxy listens.",
            FIELDS,
        ),
        Section::new("proxy.routes[]", "One route.", ROUTE_FIELDS),
        Section::new("proxy.tls", "TLS on the proxy's own listener.", TLS_FIELDS),
        Section::new(
            "proxy.routes[].retry",
            "When and how a try is made again.",
            RETRY_FIELDS,
        ),
        Section::new(
            "proxy.routes[].dead_letter",
            "The requests a route could not deliver, kept to be listed, replayed or discarded \
             (`/v1/dead-letters`).",
            DEAD_LETTER_FIELDS,
        ),
        Section::new(
            "proxy.upstreams.<name>",
            "One upstream pool.",
            UPSTREAM_FIELDS,
        ),
        Section::new(
            "proxy.upstreams.<name>.breaker",
            "When the breaker opens and how it closes again.",
            BREAKER_FIELDS,
        ),
        Section::new(
            "proxy.upstreams.<name>.budget",
            "Retries against the requests the upstream succeeds at.",
            BUDGET_FIELDS,
        ),
        Section::new(
            "proxy.upstreams.<name>.keys",
            "Upstream credentials.",
            KEY_FIELDS,
        ),
        Section::new(
            "proxy.upstreams.<name>.health",
            "Active health checks; an origin they leave out gets no requests until it passes again.",
            HEALTH_FIELDS,
        ),
    ]
}

/// Reads the `proxy` section at `path`; `base` resolves relative file paths.
pub fn parse(
    m: &Map<String, Value>,
    path: &str,
    base: Option<&Path>,
    errs: &mut Errors,
) -> ProxyConfig {
    check_fields(m, path, FIELDS, errs);
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 8090));
    if let Some(l) = get_str(m, "listen", path, errs) {
        match l.parse() {
            Ok(a) => listen = a,
            Err(_) => errs.push(
                &join(path, "listen"),
                format!("{l:?} is not an address:port (e.g. 127.0.0.1:8090)"),
            ),
        }
    }
    let mut upstreams = BTreeMap::new();
    let ups_path = join(path, "upstreams");
    match m.get("upstreams") {
        Some(v) => {
            if let Some(map) = as_map(v, &ups_path, errs) {
                for (name, u) in map {
                    let p = join(&ups_path, name);
                    if let Some(u) = as_map(u, &p, errs) {
                        upstreams.insert(name.clone(), upstream(u, &p, base, errs));
                    }
                }
            }
        }
        None => errs.push(&ups_path, "at least one upstream is needed"),
    }
    let mut routes = Vec::new();
    let routes_path = join(path, "routes");
    match m.get("routes") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, r) in items.iter().enumerate() {
                let p = format!("{routes_path}[{i}]");
                if let Some(r) = as_map(r, &p, errs) {
                    let r = route(r, &p, errs);
                    if !upstreams.contains_key(&r.upstream) {
                        errs.push(
                            &join(&p, "upstream"),
                            format!("no upstream named {:?} under {ups_path}", r.upstream),
                        );
                    }
                    routes.push(r);
                }
            }
        }
        Some(other) => errs.push(
            &routes_path,
            format!("expected a list of routes, found {}", show(other)),
        ),
        None => errs.push(&routes_path, "at least one route is needed"),
    }
    let tls = m.get("tls").and_then(|v| {
        let p = join(path, "tls");
        as_map(v, &p, errs).and_then(|m| tls(m, &p, base, errs))
    });
    ProxyConfig {
        listen,
        routes,
        upstreams,
        tls,
    }
}

fn tls(
    m: &Map<String, Value>,
    path: &str,
    base: Option<&Path>,
    errs: &mut Errors,
) -> Option<ListenerTls> {
    check_fields(m, path, TLS_FIELDS, errs);
    let mut file = |field: &str| {
        let f = get_str(m, field, path, errs);
        if f.is_none() && !m.contains_key(field) {
            errs.push(&join(path, field), "a PEM file is needed");
        }
        f.map(|f| base.map_or_else(|| Path::new(f).to_path_buf(), |b| b.join(f)))
    };
    let (cert_file, key_file) = (file("cert_file"), file("key_file"));
    let files = ListenerTls {
        cert_file: cert_file?,
        key_file: key_file?,
    };
    match crate::tls::certified_key(&files) {
        Ok(_) => Some(files),
        Err(e) => {
            let field = match e {
                crate::tls::TlsError::Key(..) | crate::tls::TlsError::Mismatch(..) => "key_file",
                _ => "cert_file",
            };
            errs.push(&join(path, field), e.to_string());
            None
        }
    }
}

fn duration(
    m: &Map<String, Value>,
    field: &str,
    path: &str,
    errs: &mut Errors,
) -> Option<Duration> {
    get_duration(m, field, path, errs).map(Duration::from_nanos)
}

fn positive_u32(m: &Map<String, Value>, field: &str, path: &str, errs: &mut Errors) -> Option<u32> {
    let n = get_u64(m, field, path, errs)?;
    match u32::try_from(n) {
        Ok(n) if n > 0 => Some(n),
        _ => {
            errs.push(
                &join(path, field),
                format!("{n} is not between 1 and 2^32 - 1"),
            );
            None
        }
    }
}

fn header_names(v: &Value, path: &str, errs: &mut Errors) -> Vec<http::HeaderName> {
    let Value::Array(items) = v else {
        errs.push(
            path,
            format!("expected a list of header names, found {}", show(v)),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item
            .as_str()
            .map(|s| http::HeaderName::from_bytes(s.as_bytes()))
        {
            Some(Ok(h)) => out.push(h),
            _ => errs.push(
                &format!("{path}[{i}]"),
                format!("{} is not a header name", show(item)),
            ),
        }
    }
    out
}

fn route(m: &Map<String, Value>, path: &str, errs: &mut Errors) -> RouteConfig {
    check_fields(m, path, ROUTE_FIELDS, errs);
    let mut r = RouteConfig {
        host: get_str(m, "host", path, errs).map(str::to_ascii_lowercase),
        path_prefix: "/".to_owned(),
        strip_prefix: get_bool(m, "strip_prefix", path, errs).unwrap_or(false),
        upstream: String::new(),
        remove_headers: Vec::new(),
        retry: RetryConfig::default(),
        try_timeout: Duration::from_secs(10),
        total_timeout: Duration::from_secs(30),
        dead_letter: DeadLetterConfig::default(),
    };
    if let Some(p) = get_str(m, "path_prefix", path, errs) {
        if p.starts_with('/') {
            p.clone_into(&mut r.path_prefix);
        } else {
            errs.push(
                &join(path, "path_prefix"),
                format!("{p:?} does not start with /"),
            );
        }
    }
    match get_str(m, "upstream", path, errs) {
        Some(u) => u.clone_into(&mut r.upstream),
        None if m.contains_key("upstream") => {}
        None => errs.push(&join(path, "upstream"), "every route names its upstream"),
    }
    if let Some(v) = m.get("remove_headers") {
        r.remove_headers = header_names(v, &join(path, "remove_headers"), errs);
    }
    if let Some(d) = duration(m, "try_timeout", path, errs) {
        r.try_timeout = d;
    }
    if let Some(d) = duration(m, "total_timeout", path, errs) {
        r.total_timeout = d;
    }
    if r.try_timeout.is_zero() || r.total_timeout.is_zero() {
        errs.push(path, "timeouts must be longer than zero");
    }
    if let Some(v) = m.get("retry") {
        let p = join(path, "retry");
        if let Some(m) = as_map(v, &p, errs) {
            r.retry = retry(m, &p, errs);
        }
    }
    if let Some(v) = m.get("dead_letter") {
        let p = join(path, "dead_letter");
        if let Some(m) = as_map(v, &p, errs) {
            check_fields(m, &p, DEAD_LETTER_FIELDS, errs);
            if let Some(b) = get_bool(m, "enabled", &p, errs) {
                r.dead_letter.enabled = b;
            }
            if let Some(n) = get_u64(m, "body_limit", &p, errs) {
                r.dead_letter.body_limit = usize::try_from(n).unwrap_or(usize::MAX);
            }
        }
    }
    r
}

fn retry(m: &Map<String, Value>, path: &str, errs: &mut Errors) -> RetryConfig {
    check_fields(m, path, RETRY_FIELDS, errs);
    let mut r = RetryConfig::default();
    if let Some(n) = positive_u32(m, "tries", path, errs) {
        r.tries = n;
    }
    if let Some(d) = duration(m, "backoff", path, errs) {
        r.backoff = d;
    }
    if let Some(d) = duration(m, "max_backoff", path, errs) {
        r.max_backoff = d;
    }
    if let Some(b) = get_bool(m, "non_idempotent", path, errs) {
        r.non_idempotent = b;
    }
    if let Some(n) = get_u64(m, "replay_limit", path, errs) {
        r.replay_limit = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(v) = m.get("statuses") {
        let p = join(path, "statuses");
        match v {
            Value::Array(items) => {
                r.statuses = Vec::new();
                for (i, s) in items.iter().enumerate() {
                    match s
                        .as_u64()
                        .and_then(|s| u16::try_from(s).ok())
                        .map(StatusCode::from_u16)
                    {
                        Some(Ok(code)) if code.as_u16() >= 400 => r.statuses.push(code),
                        _ => errs.push(
                            &format!("{p}[{i}]"),
                            format!("{} is not an error status", show(s)),
                        ),
                    }
                }
            }
            other => errs.push(
                &p,
                format!("expected a list of statuses, found {}", show(other)),
            ),
        }
    }
    r
}

fn upstream(
    m: &Map<String, Value>,
    path: &str,
    base: Option<&Path>,
    errs: &mut Errors,
) -> UpstreamConfig {
    check_fields(m, path, UPSTREAM_FIELDS, errs);
    let mut u = UpstreamConfig {
        origins: Vec::new(),
        prior_knowledge: Vec::new(),
        balance: Balance::default(),
        connect_timeout: Duration::from_secs(1),
        eject_after: 5,
        eject_for: Duration::from_secs(10),
        breaker: BreakerConfig::default(),
        budget: BudgetConfig::default(),
        keys: None,
        health: None,
        ca_pem: None,
    };
    if let Some(f) = get_str(m, "ca_file", path, errs) {
        let file = base.map_or_else(|| Path::new(f).to_path_buf(), |b| b.join(f));
        match std::fs::read(&file) {
            Ok(pem) if pem.windows(11).any(|w| w == b"-----BEGIN ") => u.ca_pem = Some(pem),
            Ok(_) => errs.push(
                &join(path, "ca_file"),
                format!("{} holds no PEM certificate", file.display()),
            ),
            Err(e) => errs.push(
                &join(path, "ca_file"),
                format!("cannot read {}: {e}", file.display()),
            ),
        }
    }
    let p = join(path, "origins");
    match m.get("origins") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, o) in items.iter().enumerate() {
                match o.as_str().and_then(origin) {
                    Some((uri, h2c)) => {
                        u.origins.push(uri);
                        u.prior_knowledge.push(h2c);
                    }
                    None => errs.push(
                        &format!("{p}[{i}]"),
                        format!(
                            "{} is not an origin (http://host:port, https://host:port or \
                             h2c://host:port)",
                            show(o)
                        ),
                    ),
                }
            }
        }
        _ => errs.push(&p, "expected a list of one or more origins"),
    }
    match get_str(m, "balance", path, errs) {
        None | Some("least_request") => {}
        Some("round_robin") => u.balance = Balance::RoundRobin,
        Some(other) => errs.push(
            &join(path, "balance"),
            format!("{other:?} is not one of least_request, round_robin"),
        ),
    }
    if let Some(d) = duration(m, "connect_timeout", path, errs) {
        u.connect_timeout = d;
    }
    if let Some(n) = positive_u32(m, "eject_after", path, errs) {
        u.eject_after = n;
    }
    if let Some(d) = duration(m, "eject_for", path, errs) {
        u.eject_for = d;
    }
    if let Some(v) = m.get("breaker") {
        let p = join(path, "breaker");
        if let Some(m) = as_map(v, &p, errs) {
            check_fields(m, &p, BREAKER_FIELDS, errs);
            let b = &mut u.breaker;
            if let Some(n) = positive_u32(m, "failures", &p, errs) {
                b.failures = n;
            }
            if let Some(r) = ratio(m, "error_ratio", &p, errs) {
                b.error_ratio = r;
            }
            if let Some(d) = duration(m, "window", &p, errs) {
                b.window = d;
            }
            if let Some(n) = positive_u32(m, "min_requests", &p, errs) {
                b.min_requests = n;
            }
            if let Some(d) = duration(m, "open_for", &p, errs) {
                b.open_for = d;
            }
        }
    }
    if let Some(v) = m.get("budget") {
        let p = join(path, "budget");
        if let Some(m) = as_map(v, &p, errs) {
            check_fields(m, &p, BUDGET_FIELDS, errs);
            if let Some(r) = ratio(m, "ratio", &p, errs) {
                #[allow(clippy::cast_possible_truncation, reason = "a ratio in 0..=1")]
                let r = r as f32;
                u.budget.ratio = r;
            }
            if let Some(n) = get_u64(m, "min_per_second", &p, errs) {
                u.budget.min_per_second = u32::try_from(n).unwrap_or(u32::MAX);
            }
        }
    }
    if let Some(v) = m.get("keys") {
        let p = join(path, "keys");
        if let Some(m) = as_map(v, &p, errs) {
            u.keys = key_pool(m, &p, errs);
        }
    }
    if let Some(v) = m.get("health") {
        let p = join(path, "health");
        if let Some(m) = as_map(v, &p, errs) {
            u.health = Some(health(m, &p, errs));
        }
    }
    u
}

/// An origin's URI, with `h2c://` read as `http://` spoken to in HTTP/2 from the start.
fn origin(text: &str) -> Option<(Uri, bool)> {
    let uri = text.parse::<Uri>().ok()?;
    let h2c = uri.scheme_str() == Some("h2c");
    let fits = matches!(uri.scheme_str(), Some("http" | "https" | "h2c"))
        && uri.authority().is_some()
        && uri.path_and_query().is_none_or(|p| p.as_str() == "/");
    if !fits {
        return None;
    }
    if !h2c {
        return Some((uri, false));
    }
    let mut parts = uri.into_parts();
    parts.scheme = Some(http::uri::Scheme::HTTP);
    Uri::from_parts(parts).ok().map(|u| (u, true))
}

fn health(m: &Map<String, Value>, path: &str, errs: &mut Errors) -> HealthConfig {
    check_fields(m, path, HEALTH_FIELDS, errs);
    let mut h = HealthConfig {
        path: "/healthz".to_owned(),
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(1),
        unhealthy_after: 2,
        healthy_after: 1,
    };
    if let Some(p) = get_str(m, "path", path, errs) {
        if p.starts_with('/') {
            p.clone_into(&mut h.path);
        } else {
            errs.push(&join(path, "path"), format!("{p:?} does not start with /"));
        }
    }
    if let Some(d) = duration(m, "interval", path, errs) {
        h.interval = d;
    }
    if let Some(d) = duration(m, "timeout", path, errs) {
        h.timeout = d;
    }
    if h.interval.is_zero() || h.timeout.is_zero() {
        errs.push(path, "interval and timeout must be longer than zero");
    }
    if let Some(n) = positive_u32(m, "unhealthy_after", path, errs) {
        h.unhealthy_after = n;
    }
    if let Some(n) = positive_u32(m, "healthy_after", path, errs) {
        h.healthy_after = n;
    }
    h
}

fn ratio(m: &Map<String, Value>, field: &str, path: &str, errs: &mut Errors) -> Option<f64> {
    let v = m.get(field)?;
    match v.as_f64() {
        Some(r) if (0.0..=1.0).contains(&r) => Some(r),
        _ => {
            errs.push(
                &join(path, field),
                format!("{} is not a ratio between 0 and 1", show(v)),
            );
            None
        }
    }
}

fn key_pool(m: &Map<String, Value>, path: &str, errs: &mut Errors) -> Option<KeyPoolConfig> {
    check_fields(m, path, KEY_FIELDS, errs);
    let header = match get_str(m, "header", path, errs)
        .map(|s| http::HeaderName::from_bytes(s.as_bytes()))
    {
        Some(Ok(h)) => h,
        Some(Err(_)) => {
            errs.push(&join(path, "header"), "not a header name");
            return None;
        }
        None => http::header::AUTHORIZATION,
    };
    let prefix = get_str(m, "prefix", path, errs)
        .unwrap_or_default()
        .to_owned();
    let p = join(path, "values");
    let values: Vec<String> = match m.get("values") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v.as_str() {
                Some(s) if http::HeaderValue::from_str(&format!("{prefix}{s}")).is_ok() => {
                    Some(s.to_owned())
                }
                _ => {
                    errs.push(
                        &format!("{p}[{i}]"),
                        "expected a credential usable in a header",
                    );
                    None
                }
            })
            .collect(),
        _ => {
            errs.push(&p, "expected a list of one or more credentials");
            return None;
        }
    };
    Some(KeyPoolConfig {
        header,
        prefix,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::policy::parse::parse_yaml;

    fn read(yaml: &str) -> Result<ProxyConfig, Vec<String>> {
        let doc = parse_yaml(yaml).unwrap();
        let mut errs = Errors::default();
        let cfg = parse(doc.as_object().unwrap(), "proxy", None, &mut errs);
        errs.finish(cfg)
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_minimal_proxy_takes_every_default() {
        let cfg = read(
            "routes: [{upstream: api}]\nupstreams: {api: {origins: ['http://127.0.0.1:9000']}}",
        )
        .unwrap();
        let r = &cfg.routes[0];
        assert_eq!((r.path_prefix.as_str(), r.retry.tries), ("/", 3));
        assert_eq!(cfg.upstreams["api"].balance, Balance::LeastRequest);
    }

    #[test]
    fn every_error_has_its_path() {
        let errs = read(
            "routes: [{upstream: nope, path_prefix: v1, retry: {tries: 0, statuses: [200]}}]\n\
             upstreams: {api: {origins: ['ftp://x', 'http://a:1/path'], balance: random, \
             breaker: {error_ratio: 2}}}",
        )
        .unwrap_err();
        for want in [
            "proxy.routes[0].upstream: no upstream named \"nope\"",
            "proxy.routes[0].path_prefix: \"v1\" does not start with /",
            "proxy.routes[0].retry.tries",
            "proxy.routes[0].retry.statuses[0]",
            "proxy.upstreams.api.origins[0]",
            "proxy.upstreams.api.origins[1]",
            "proxy.upstreams.api.balance",
            "proxy.upstreams.api.breaker.error_ratio",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "{want} in {errs:#?}"
            );
        }
    }
}

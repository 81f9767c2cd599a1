//! The `admin` section: who may use the admin API (static tokens kept as SHA-256 digests,
//! JWT settings), the admin API's own rate limits, and CORS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tollgate_core::policy::parse::{
    Errors, as_map, check_fields, get_duration, get_str, get_u64, join, show,
};
use tollgate_core::policy::settings::Setting;

/// What a caller of the admin API may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read everything but the audit log.
    Viewer,
    /// Also change keys, tiers and counters.
    Operator,
    /// Everything: also the policy and the audit log.
    Admin,
}

impl Role {
    /// Parses `viewer`, `operator` or `admin`.
    pub fn from_name(name: &str) -> Option<Role> {
        Some(match name {
            "viewer" => Role::Viewer,
            "operator" => Role::Operator,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// A static admin token: its name, role and the SHA-256 of its text.
#[derive(Debug, Clone)]
pub struct StaticToken {
    /// Shown as the actor in the audit log.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the token.
    pub digest: [u8; 32],
}

/// The SHA-256 of a token, as `admin.tokens[].sha256` holds it (hex).
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// How JWT bearer tokens are checked.
#[derive(Clone)]
pub struct JwtSettings {
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Accepted `aud` values, when set (one must match).
    pub audience: Vec<String>,
    /// Accepted algorithms.
    pub algorithms: Vec<Algorithm>,
    /// The HS256 secret.
    pub hs256_secret: Option<Vec<u8>>,
    /// RS256 / ES256 public keys from PEM files.
    pub public_keys: Vec<(Algorithm, DecodingKey)>,
    /// Where signing keys are published.
    pub jwks_url: Option<String>,
    /// How long fetched keys are trusted.
    pub jwks_ttl: Duration,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway: u64,
    /// The claim holding the role (a string, or a list whose highest role counts).
    pub role_claim: String,
}

impl std::fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("JwtSettings")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithms", &self.algorithms)
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

/// The `admin` section: credentials, the admin API's own rate limits, CORS.
#[derive(Debug)]
pub struct AdminSettings {
    /// Static tokens (the one from `TOLLGATE_ADMIN_TOKEN` or `admin.token_file` is named
    /// `admin` and has the admin role).
    pub tokens: Vec<StaticToken>,
    /// JWT checking, when configured.
    pub jwt: Option<JwtSettings>,
    /// The dashboard's sign-in through an OpenID provider, when configured.
    pub oidc: Option<super::oidc::OidcSettings>,
    /// Requests per client IP: (limit, period).
    pub per_ip: (u64, Duration),
    /// Requests per authenticated caller: (limit, period).
    pub per_token: (u64, Duration),
    /// Origins browsers may call from (`*` only when listed).
    pub cors_origins: Vec<String>,
}

impl AdminSettings {
    /// Whether any credential is configured.
    pub fn has_credentials(&self) -> bool {
        !self.tokens.is_empty() || self.jwt.is_some() || self.oidc.is_some()
    }
}

/// The fields of `admin`.
pub(crate) const FIELDS: &[Setting] = &[
    Setting::new(
        "token_file",
        "path",
        "A file holding the admin token (role `admin`), relative to the configuration's \
         folder; `TOLLGATE_ADMIN_TOKEN` wins over it.",
    ),
    Setting::new(
        "tokens",
        "list of tokens",
        "More static tokens, each by its SHA-256 and with a role.",
    )
    .default("none"),
    Setting::new("jwt", "mapping", "JWT bearer tokens: how they are checked.").default("off"),
    Setting::new(
        "oidc",
        "mapping",
        "The dashboard's sign-in through an OpenID provider (see [The dashboard](../dashboard.md)).",
    )
    .default("off"),
    Setting::new("rate_limit", "mapping", "The admin API's own rate limits."),
    Setting::new(
        "cors_origins",
        "string or list",
        "Origins browsers may call the admin API from (`*` only when listed).",
    )
    .default("none")
    .range("`https://host[:port]`, `http://…`, or `*`"),
];

/// The fields of an `admin.tokens` entry.
pub(crate) const TOKEN_FIELDS: &[Setting] = &[
    Setting::new("name", "string", "Shown as the actor in the audit log.").range("required"),
    Setting::new("role", "string", "What the token may do.")
        .range("`admin`, `operator`, `viewer`; required"),
    Setting::new(
        "sha256",
        "string",
        "The SHA-256 of the token, never the token (`tollgate hash-token`).",
    )
    .range("64 hex digits; required"),
];

/// The fields of `admin.rate_limit`.
pub(crate) const RATE_LIMIT_FIELDS: &[Setting] = &[
    Setting::new("per_ip", "mapping", "Requests per client IP.")
        .default("`{limit: 600, period: 1m}`"),
    Setting::new("per_token", "mapping", "Requests per authenticated caller.")
        .default("`{limit: 1200, period: 1m}`"),
];

/// The fields of `admin.rate_limit.per_ip` and `.per_token`.
pub(crate) const RATE_FIELDS: &[Setting] = &[
    Setting::new("limit", "integer", "Requests per period.")
        .default("`600` per IP, `1200` per caller")
        .range("1 or more"),
    Setting::new("period", "duration", "The period.")
        .default("`1m`")
        .range("longer than zero"),
];

/// The fields of `admin.jwt`.
pub(crate) const JWT_FIELDS: &[Setting] = &[
    Setting::new("issuer", "string", "The `iss` a token must carry.").default("any"),
    Setting::new(
        "audience",
        "string or list",
        "Accepted `aud` values; one must match.",
    )
    .default("any"),
    Setting::new("algorithms", "string or list", "Accepted algorithms.")
        .default("every family a key is configured for")
        .range("`HS256`, `RS256`, `ES256`"),
    Setting::new(
        "hs256_secret_file",
        "path",
        "A file holding the HS256 secret (or `TOLLGATE_JWT_SECRET`).",
    )
    .range("at least 32 bytes"),
    Setting::new(
        "public_key_files",
        "path or list",
        "RSA or EC public keys in PEM, for RS256 and ES256.",
    ),
    Setting::new(
        "jwks_url",
        "URL",
        "Where signing keys are published (JWKS).",
    )
    .range("`http://` or `https://`"),
    Setting::new("jwks_ttl", "duration", "How long fetched keys are trusted.").default("`5m`"),
    Setting::new(
        "leeway",
        "duration",
        "Clock skew allowed on `exp` and `nbf` (whole seconds).",
    )
    .default("`30s`"),
    Setting::new(
        "role_claim",
        "string",
        "The claim holding the role: a string, or a list whose highest role counts.",
    )
    .default("`role`"),
];

fn read(base: Option<&Path>, file: &str, at: &str, errs: &mut Errors) -> Option<Vec<u8>> {
    let p = base.map_or_else(|| PathBuf::from(file), |b| b.join(file));
    match std::fs::read(&p) {
        Ok(b) if !b.trim_ascii().is_empty() => Some(b.trim_ascii().to_vec()),
        Ok(_) => {
            errs.push(at, format!("{} is empty", p.display()));
            None
        }
        Err(e) => {
            errs.push(at, format!("cannot read {}: {e}", p.display()));
            None
        }
    }
}

/// A string or a list of strings, at `at`.
pub(super) fn strings(v: &Value, at: &str, errs: &mut Errors) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Value::String(s) => Some(s.clone()),
                other => {
                    errs.push(
                        &format!("{at}[{i}]"),
                        format!("expected a string, found {}", show(other)),
                    );
                    None
                }
            })
            .collect(),
        other => {
            errs.push(
                at,
                format!("expected a string or a list, found {}", show(other)),
            );
            Vec::new()
        }
    }
}

fn rate(
    m: &Map<String, Value>,
    field: &str,
    default: (u64, Duration),
    errs: &mut Errors,
) -> (u64, Duration) {
    let at = join("admin.rate_limit", field);
    let Some(r) = m.get(field).and_then(|v| as_map(v, &at, errs)) else {
        return default;
    };
    check_fields(r, &at, RATE_FIELDS, errs);
    let limit = match get_u64(r, "limit", &at, errs) {
        Some(0) => {
            errs.push(&join(&at, "limit"), "must be at least 1");
            default.0
        }
        Some(n) => n,
        None => default.0,
    };
    let period = match get_duration(r, "period", &at, errs) {
        Some(0) => {
            errs.push(&join(&at, "period"), "must be longer than zero");
            default.1
        }
        Some(p) => Duration::from_nanos(p),
        None => default.1,
    };
    (limit, period)
}

/// Reads the `admin` section (absent: `None`); `env_token` is `TOLLGATE_ADMIN_TOKEN`.
pub fn parse(
    m: Option<&Map<String, Value>>,
    env_token: Option<String>,
    base: Option<&Path>,
    errs: &mut Errors,
) -> AdminSettings {
    let mut settings = AdminSettings {
        tokens: Vec::new(),
        jwt: None,
        oidc: None,
        per_ip: (600, Duration::from_secs(60)),
        per_token: (1200, Duration::from_secs(60)),
        cors_origins: Vec::new(),
    };
    let mut main_token = env_token;
    if let Some(m) = m {
        check_fields(m, "admin", FIELDS, errs);
        if let Some(file) = get_str(m, "token_file", "admin", errs)
            && let Some(t) = read(base, file, "admin.token_file", errs)
        {
            main_token = main_token.or(Some(String::from_utf8_lossy(&t).into_owned()));
        }
        match m.get("tokens") {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("admin.tokens[{i}]");
                    if let Some(t) = static_token(item, &at, errs) {
                        settings.tokens.push(t);
                    }
                }
            }
            Some(other) => errs.push(
                "admin.tokens",
                format!("expected a list of tokens, found {}", show(other)),
            ),
        }
        if let Some(j) = m.get("jwt").and_then(|v| as_map(v, "admin.jwt", errs)) {
            settings.jwt = jwt(j, base, errs);
        }
        if let Some(o) = m.get("oidc").and_then(|v| as_map(v, "admin.oidc", errs)) {
            settings.oidc = super::oidc::parse(o, base, errs);
        }
        if let Some(r) = m
            .get("rate_limit")
            .and_then(|v| as_map(v, "admin.rate_limit", errs))
        {
            check_fields(r, "admin.rate_limit", RATE_LIMIT_FIELDS, errs);
            settings.per_ip = rate(r, "per_ip", settings.per_ip, errs);
            settings.per_token = rate(r, "per_token", settings.per_token, errs);
        }
        if let Some(v) = m.get("cors_origins") {
            settings.cors_origins = strings(v, "admin.cors_origins", errs);
            for (i, o) in settings.cors_origins.iter().enumerate() {
                if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
                    errs.push(
                        &format!("admin.cors_origins[{i}]"),
                        format!("{o:?} is not an origin (https://host[:port], or * for any)"),
                    );
                }
            }
        }
    }
    if let Some(t) = main_token {
        settings.tokens.push(StaticToken {
            name: "admin".into(),
            role: Role::Admin,
            digest: digest(t.trim()),
        });
    }
    settings
}

fn static_token(v: &Value, at: &str, errs: &mut Errors) -> Option<StaticToken> {
    let m = as_map(v, at, errs)?;
    check_fields(m, at, TOKEN_FIELDS, errs);
    let name = get_str(m, "name", at, errs);
    if name.is_none() {
        errs.push(&join(at, "name"), "missing");
    }
    let role = match get_str(m, "role", at, errs) {
        Some(r) => {
            let role = Role::from_name(r);
            if role.is_none() {
                errs.push(
                    &join(at, "role"),
                    format!("{r:?} is not a role (admin, operator, viewer)"),
                );
            }
            role
        }
        None => {
            errs.push(&join(at, "role"), "missing");
            None
        }
    };
    let digest = match get_str(m, "sha256", at, errs) {
        Some(hex) => {
            let d = decode_hex(hex);
            if d.is_none() {
                errs.push(
                    &join(at, "sha256"),
                    "expected 64 hex digits: the SHA-256 of the token (`tollgate hash-token`)",
                );
            }
            d
        }
        None => {
            errs.push(
                &join(at, "sha256"),
                "missing (tokens are configured by their SHA-256, never in clear)",
            );
            None
        }
    };
    Some(StaticToken {
        name: name?.to_owned(),
        role: role?,
        digest: digest?,
    })
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let (pairs, _) = hex.as_bytes().as_chunks::<2>();
    for (byte, pair) in out.iter_mut().zip(pairs) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

fn jwt(m: &Map<String, Value>, base: Option<&Path>, errs: &mut Errors) -> Option<JwtSettings> {
    let at = "admin.jwt";
    check_fields(m, at, JWT_FIELDS, errs);
    let hs256_secret = std::env::var("TOLLGATE_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .map(String::into_bytes)
        .or_else(|| {
            get_str(m, "hs256_secret_file", at, errs)
                .and_then(|f| read(base, f, "admin.jwt.hs256_secret_file", errs))
        });
    if hs256_secret.as_ref().is_some_and(|s| s.len() < 32) {
        errs.push(
            "admin.jwt.hs256_secret_file",
            "an HS256 secret must be at least 32 bytes",
        );
    }
    let mut public_keys = Vec::new();
    if let Some(v) = m.get("public_key_files") {
        for (i, file) in strings(v, "admin.jwt.public_key_files", errs)
            .iter()
            .enumerate()
        {
            let kat = format!("admin.jwt.public_key_files[{i}]");
            let Some(pem) = read(base, file, &kat, errs) else {
                continue;
            };
            if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
                public_keys.push((Algorithm::RS256, k));
            } else if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
                public_keys.push((Algorithm::ES256, k));
            } else {
                errs.push(&kat, format!("{file}: not an RSA or EC public key in PEM"));
            }
        }
    }
    let jwks_url = get_str(m, "jwks_url", at, errs).map(str::to_owned);
    if let Some(u) = &jwks_url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        errs.push("admin.jwt.jwks_url", format!("{u:?} is not an http(s) URL"));
    }
    let algorithms = match m.get("algorithms") {
        Some(v) => strings(v, "admin.jwt.algorithms", errs)
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let alg = match a.as_str() {
                    "HS256" => Some(Algorithm::HS256),
                    "RS256" => Some(Algorithm::RS256),
                    "ES256" => Some(Algorithm::ES256),
                    _ => None,
                };
                if alg.is_none() {
                    errs.push(
                        &format!("admin.jwt.algorithms[{i}]"),
                        format!("{a:?} is not one of HS256, RS256, ES256"),
                    );
                }
                alg
            })
            .collect(),
        // Every family a key source is configured for.
        None => {
            let mut algs = Vec::new();
            if hs256_secret.is_some() {
                algs.push(Algorithm::HS256);
            }
            for alg in [Algorithm::RS256, Algorithm::ES256] {
                if jwks_url.is_some() || public_keys.iter().any(|(a, _)| *a == alg) {
                    algs.push(alg);
                }
            }
            algs
        }
    };
    let audience = m
        .get("audience")
        .map(|v| strings(v, "admin.jwt.audience", errs))
        .unwrap_or_default();
    let jwks_ttl = get_duration(m, "jwks_ttl", at, errs)
        .map_or(Duration::from_secs(300), Duration::from_nanos);
    let leeway = get_duration(m, "leeway", at, errs).map_or(30, |d| d / 1_000_000_000);
    let role_claim = get_str(m, "role_claim", at, errs)
        .unwrap_or("role")
        .to_owned();
    let issuer = get_str(m, "issuer", at, errs).map(str::to_owned);
    if hs256_secret.is_none() && public_keys.is_empty() && jwks_url.is_none() {
        errs.push(at, "JWTs need a key: hs256_secret_file (or TOLLGATE_JWT_SECRET), public_key_files or jwks_url");
        return None;
    }
    Some(JwtSettings {
        issuer,
        audience,
        algorithms,
        hs256_secret,
        public_keys,
        jwks_url,
        jwks_ttl,
        leeway,
        role_claim,
    })
}

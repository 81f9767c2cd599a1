//! Who may use the admin API, and as what: static admin tokens, kept only as SHA-256
//! digests, and JWT bearer tokens (HS256, RS256, ES256; keys from files or a JWKS URL),
//! each carrying one of three roles.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};
use thiserror::Error;

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

/// Who made an admin request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name, or the JWT's subject.
    pub actor: String,
    /// Their role.
    pub role: Role,
}

/// Why a bearer token was refused; the message is safe to show the caller.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("an admin token is required (Authorization: Bearer …)")]
    Missing,
    /// The token is unknown, or the JWT does not verify.
    #[error("{0}")]
    Invalid(String),
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

/// Keys fetched from the JWKS URL, by `kid`.
struct Jwks {
    fetched: Option<Instant>,
    keys: HashMap<String, (Algorithm, Arc<DecodingKey>)>,
}

/// The least time between two fetches of the JWKS, so tokens naming unknown keys cannot
/// make Tollgate hammer the identity provider.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);

/// Checks bearer tokens on admin routes.
pub struct AdminAuth {
    tokens: Vec<StaticToken>,
    jwt: Option<JwtSettings>,
    jwks: tokio::sync::Mutex<Jwks>,
    http: Option<HttpClient>,
}

/// The client JWKS are fetched with: HTTPS with the system's roots, or plain HTTP.
type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<axum::body::Bytes>,
>;

fn http_client() -> Option<HttpClient> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| tracing::error!(error = %e, "no TLS roots for fetching the JWKS"))
        .ok()?
        .https_or_http()
        .enable_http1()
        .build();
    Some(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https),
    )
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("tokens", &self.tokens.len())
            .field("jwt", &self.jwt)
            .finish_non_exhaustive()
    }
}

impl AdminAuth {
    /// Checks `tokens` and, when set, JWTs.
    pub fn new(tokens: Vec<StaticToken>, jwt: Option<JwtSettings>) -> Self {
        let http = jwt
            .as_ref()
            .and_then(|j| j.jwks_url.as_ref())
            .and_then(|_| http_client());
        AdminAuth {
            tokens,
            jwt,
            jwks: tokio::sync::Mutex::new(Jwks {
                fetched: None,
                keys: HashMap::new(),
            }),
            http,
        }
    }

    /// Whether no credential is configured: the admin API is then open (loopback only).
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty() && self.jwt.is_none()
    }

    /// Who presents `bearer`.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Principal, AuthError> {
        if self.is_open() {
            return Ok(Principal {
                actor: "anonymous".into(),
                role: Role::Admin,
            });
        }
        let token = bearer
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let d = digest(token);
        // Every digest is compared, in constant time, whatever matches.
        let mut found = None;
        for t in &self.tokens {
            if bool::from(subtle::ConstantTimeEq::ct_eq(&t.digest[..], &d[..])) {
                found = Some(t);
            }
        }
        if let Some(t) = found {
            return Ok(Principal {
                actor: t.name.clone(),
                role: t.role,
            });
        }
        match &self.jwt {
            Some(jwt) if token.split('.').count() == 3 => self.verify_jwt(jwt, token).await,
            _ => Err(AuthError::Invalid("unknown admin token".into())),
        }
    }

    async fn verify_jwt(&self, jwt: &JwtSettings, token: &str) -> Result<Principal, AuthError> {
        let invalid = |why: String| AuthError::Invalid(format!("JWT refused: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(e.to_string()))?;
        if !jwt.algorithms.contains(&header.alg) {
            return Err(invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = jwt.leeway;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        if let Some(iss) = &jwt.issuer {
            validation.set_issuer(&[iss]);
        }
        if jwt.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&jwt.audience);
        }
        let keys = self
            .keys_for(jwt, header.alg, header.kid.as_deref())
            .await?;
        let mut last = invalid("no key for this token".into());
        for key in keys {
            match jsonwebtoken::decode::<HashMap<String, Value>>(token, &key, &validation) {
                Ok(data) => return principal(jwt, &data.claims),
                Err(e) => last = invalid(e.to_string()),
            }
        }
        Err(last)
    }

    /// The keys that may have signed a token of `alg` naming `kid`.
    async fn keys_for(
        &self,
        jwt: &JwtSettings,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Vec<Arc<DecodingKey>>, AuthError> {
        if alg == Algorithm::HS256 {
            return Ok(jwt
                .hs256_secret
                .iter()
                .map(|s| Arc::new(DecodingKey::from_secret(s)))
                .collect());
        }
        let mut keys: Vec<Arc<DecodingKey>> = jwt
            .public_keys
            .iter()
            .filter(|(a, _)| *a == alg)
            .map(|(_, k)| Arc::new(k.clone()))
            .collect();
        if let (Some(url), Some(http)) = (&jwt.jwks_url, &self.http) {
            let mut jwks = self.jwks.lock().await;
            let stale = jwks.fetched.is_none_or(|at| at.elapsed() >= jwt.jwks_ttl);
            let unknown = kid.is_some_and(|k| !jwks.keys.contains_key(k));
            let may_refetch = jwks
                .fetched
                .is_none_or(|at| at.elapsed() >= JWKS_MIN_REFETCH);
            if stale || (unknown && may_refetch) {
                match fetch_jwks(http, url).await {
                    Ok(set) => {
                        jwks.keys = set;
                        jwks.fetched = Some(Instant::now());
                    }
                    Err(why) => {
                        tracing::warn!(url = %url, error = %why, "fetching the JWKS failed; keeping the keys fetched before")
                    }
                }
            }
            match kid {
                Some(k) => keys.extend(
                    jwks.keys
                        .get(k)
                        .filter(|(a, _)| *a == alg)
                        .map(|(_, key)| key.clone()),
                ),
                None => keys.extend(
                    jwks.keys
                        .values()
                        .filter(|(a, _)| *a == alg)
                        .map(|(_, key)| key.clone()),
                ),
            }
        }
        Ok(keys)
    }
}

/// The signing keys a JWKS URL publishes, by `kid`.
async fn fetch_jwks(
    http: &HttpClient,
    url: &str,
) -> Result<HashMap<String, (Algorithm, Arc<DecodingKey>)>, String> {
    use http_body_util::BodyExt;
    let uri: axum::http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let fetch = async {
        let res = http.get(uri).await.map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("HTTP {}", res.status()));
        }
        // A JWKS is small; a larger answer is not one.
        let body = http_body_util::Limited::new(res.into_body(), 1 << 20);
        body.collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| e.to_string())
    };
    let bytes = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .map_err(|_| "timed out after 5 s".to_owned())??;
    let set: JwkSet = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let alg = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            _ => continue,
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid, (alg, Arc::new(key)));
            }
            Err(e) => tracing::warn!(kid = %kid, error = %e, "a JWKS key was skipped"),
        }
    }
    Ok(keys)
}

/// The principal a verified token's claims name.
fn principal(jwt: &JwtSettings, claims: &HashMap<String, Value>) -> Result<Principal, AuthError> {
    let roles: Vec<Role> = match claims.get(&jwt.role_claim) {
        Some(Value::String(s)) => Role::from_name(s).into_iter().collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter_map(Role::from_name)
            .collect(),
        _ => Vec::new(),
    };
    let role = roles.into_iter().max().ok_or_else(|| {
        AuthError::Invalid(format!(
            "JWT refused: claim {:?} names no role (viewer, operator, admin)",
            jwt.role_claim
        ))
    })?;
    let actor = claims
        .get("sub")
        .and_then(Value::as_str)
        .map_or_else(|| "jwt".to_owned(), |s| format!("jwt:{s}"));
    Ok(Principal { actor, role })
}

/// The role a route needs: reads need `viewer`; changes to keys, tiers and counters
/// `operator`; the policy's changes and the audit log `admin`.
pub fn required_role(method: &axum::http::Method, route: &str) -> Role {
    use axum::http::Method;
    let read = *method == Method::GET || *method == Method::HEAD;
    if route == "/v1/audit" || (route == "/v1/config" && !read) {
        Role::Admin
    } else if read || route == "/v1/keys/verify" {
        Role::Viewer
    } else {
        Role::Operator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> AdminAuth {
        AdminAuth::new(
            vec![
                StaticToken {
                    name: "ops".into(),
                    role: Role::Operator,
                    digest: digest("operator-token"),
                },
                StaticToken {
                    name: "ro".into(),
                    role: Role::Viewer,
                    digest: digest("viewer-token"),
                },
            ],
            Some(JwtSettings {
                issuer: Some("https://idp.example".into()),
                audience: vec!["tollgate".into()],
                algorithms: vec![Algorithm::HS256],
                hs256_secret: Some(b"an hs256 secret of enough length!".to_vec()),
                public_keys: Vec::new(),
                jwks_url: None,
                jwks_ttl: Duration::from_secs(300),
                leeway: 0,
                role_claim: "roles".into(),
            }),
        )
    }

    fn jwt(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"an hs256 secret of enough length!"),
        )
        .unwrap()
    }

    fn now() -> i64 {
        tollgate_core::time::now_ms() / 1000
    }

    #[tokio::test]
    async fn static_tokens_name_their_role() {
        let a = auth();
        assert_eq!(
            a.authenticate(Some("operator-token")).await,
            Ok(Principal {
                actor: "ops".into(),
                role: Role::Operator
            })
        );
        assert_eq!(a.authenticate(None).await, Err(AuthError::Missing));
        assert!(a.authenticate(Some("operator-tokeN")).await.is_err());
    }

    #[tokio::test]
    async fn jwts_are_checked_for_time_issuer_audience_and_role() {
        let a = auth();
        let good = json_claims(
            now() + 60,
            None,
            "https://idp.example",
            "tollgate",
            &["viewer", "operator"],
        );
        assert_eq!(
            a.authenticate(Some(&jwt(good))).await,
            Ok(Principal {
                actor: "jwt:alice".into(),
                role: Role::Operator
            })
        );
        let cases = [
            (
                "expired",
                json_claims(
                    now() - 60,
                    None,
                    "https://idp.example",
                    "tollgate",
                    &["admin"],
                ),
            ),
            (
                "not yet valid",
                json_claims(
                    now() + 600,
                    Some(now() + 300),
                    "https://idp.example",
                    "tollgate",
                    &["admin"],
                ),
            ),
            (
                "wrong issuer",
                json_claims(
                    now() + 60,
                    None,
                    "https://evil.example",
                    "tollgate",
                    &["admin"],
                ),
            ),
            (
                "wrong audience",
                json_claims(now() + 60, None, "https://idp.example", "other", &["admin"]),
            ),
            (
                "no role",
                json_claims(
                    now() + 60,
                    None,
                    "https://idp.example",
                    "tollgate",
                    &["root"],
                ),
            ),
        ];
        for (why, claims) in cases {
            assert!(
                matches!(
                    a.authenticate(Some(&jwt(claims))).await,
                    Err(AuthError::Invalid(_))
                ),
                "{why}"
            );
        }
        // Another key's signature, and an algorithm not accepted.
        let admin = || {
            json_claims(
                now() + 60,
                None,
                "https://idp.example",
                "tollgate",
                &["admin"],
            )
        };
        let sign = |alg, secret: &[u8]| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(alg),
                &admin(),
                &jsonwebtoken::EncodingKey::from_secret(secret),
            )
            .unwrap()
        };
        let forged = sign(Algorithm::HS256, b"somebody else's secret, long too");
        assert!(a.authenticate(Some(&forged)).await.is_err());
        let hs384 = sign(Algorithm::HS384, b"an hs256 secret of enough length!");
        assert!(a.authenticate(Some(&hs384)).await.is_err());
    }

    fn json_claims(exp: i64, nbf: Option<i64>, iss: &str, aud: &str, roles: &[&str]) -> Value {
        let mut v =
            serde_json::json!({"sub": "alice", "exp": exp, "iss": iss, "aud": aud, "roles": roles});
        if let Some(nbf) = nbf {
            v["nbf"] = nbf.into();
        }
        v
    }

    #[test]
    fn routes_need_the_least_role_that_may_use_them() {
        use axum::http::Method;
        assert_eq!(required_role(&Method::GET, "/v1/keys"), Role::Viewer);
        assert_eq!(
            required_role(&Method::POST, "/v1/keys/verify"),
            Role::Viewer
        );
        assert_eq!(required_role(&Method::POST, "/v1/keys"), Role::Operator);
        assert_eq!(required_role(&Method::PUT, "/v1/config"), Role::Admin);
        assert_eq!(required_role(&Method::GET, "/v1/audit"), Role::Admin);
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
        !self.tokens.is_empty() || self.jwt.is_some()
    }
}

mod parse {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use jsonwebtoken::{Algorithm, DecodingKey};
    use serde_json::{Map, Value};
    use tollgate_core::policy::parse::{
        Errors, as_map, check_fields, get_duration, get_str, get_u64, join, show,
    };

    use super::{AdminSettings, JwtSettings, Role, StaticToken, digest};

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

    fn strings(v: &Value, at: &str, errs: &mut Errors) -> Vec<String> {
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
        check_fields(r, &at, &["limit", "period"], errs);
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
    pub fn admin(
        m: Option<&Map<String, Value>>,
        env_token: Option<String>,
        base: Option<&Path>,
        errs: &mut Errors,
    ) -> AdminSettings {
        let mut settings = AdminSettings {
            tokens: Vec::new(),
            jwt: None,
            per_ip: (600, Duration::from_secs(60)),
            per_token: (1200, Duration::from_secs(60)),
            cors_origins: Vec::new(),
        };
        let mut main_token = env_token;
        if let Some(m) = m {
            check_fields(
                m,
                "admin",
                &["token_file", "tokens", "jwt", "rate_limit", "cors_origins"],
                errs,
            );
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
            if let Some(r) = m
                .get("rate_limit")
                .and_then(|v| as_map(v, "admin.rate_limit", errs))
            {
                check_fields(r, "admin.rate_limit", &["per_ip", "per_token"], errs);
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
        check_fields(m, at, &["name", "role", "sha256"], errs);
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
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(out)
    }

    fn jwt(m: &Map<String, Value>, base: Option<&Path>, errs: &mut Errors) -> Option<JwtSettings> {
        let at = "admin.jwt";
        check_fields(
            m,
            at,
            &[
                "issuer",
                "audience",
                "algorithms",
                "hs256_secret_file",
                "public_key_files",
                "jwks_url",
                "jwks_ttl",
                "leeway",
                "role_claim",
            ],
            errs,
        );
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
}

pub use parse::admin as parse_settings;

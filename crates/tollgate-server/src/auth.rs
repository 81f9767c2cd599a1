//! Who may use the admin API, and as what: static admin tokens, kept only as SHA-256
//! digests, and JWT bearer tokens (HS256, RS256, ES256; keys from files or a JWKS URL),
//! each carrying one of three roles.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use thiserror::Error;

use crate::config::admin::{JwtSettings, Role, StaticToken, digest};

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
    oidc: Option<Arc<crate::oidc::Oidc>>,
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
    /// Checks `tokens` and, when set, JWTs and the dashboard's OpenID sign-in sessions.
    pub fn new(
        tokens: Vec<StaticToken>,
        jwt: Option<JwtSettings>,
        oidc: Option<crate::config::oidc::OidcSettings>,
    ) -> Self {
        let http = jwt
            .as_ref()
            .and_then(|j| j.jwks_url.as_ref())
            .and_then(|_| http_client());
        AdminAuth {
            tokens,
            jwt,
            oidc: oidc.map(|o| Arc::new(crate::oidc::Oidc::new(o))),
            jwks: tokio::sync::Mutex::new(Jwks {
                fetched: None,
                keys: HashMap::new(),
            }),
            http,
        }
    }

    /// Whether no credential is configured: the admin API is then open (loopback only).
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty() && self.jwt.is_none() && self.oidc.is_none()
    }

    /// The dashboard's OpenID sign-in, when configured.
    pub fn oidc(&self) -> Option<&Arc<crate::oidc::Oidc>> {
        self.oidc.as_ref()
    }

    /// Who holds the dashboard session `cookie`, at `now_ms`, when the call carries the
    /// session's CSRF token `csrf`.
    pub fn session(
        &self,
        cookie: &str,
        csrf: Option<&str>,
        now_ms: i64,
    ) -> Result<crate::oidc::SessionInfo, AuthError> {
        let oidc = self
            .oidc
            .as_ref()
            .ok_or_else(|| AuthError::Invalid("dashboard sessions are off".into()))?;
        let session = oidc.session(cookie, now_ms).ok_or_else(|| {
            AuthError::Invalid("the dashboard session is over: sign in again".into())
        })?;
        match csrf {
            Some(t) if oidc.csrf_ok(&session.id, t) => Ok(session),
            _ => Err(AuthError::Invalid(format!(
                "a call made with a dashboard session carries its {} header",
                crate::oidc::CSRF_HEADER
            ))),
        }
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
/// `operator`; the policy's changes, replaying or discarding the proxy's dead letters and
/// the audit log `admin`.
pub fn required_role(method: &axum::http::Method, route: &str) -> Role {
    use axum::http::Method;
    let read = *method == Method::GET || *method == Method::HEAD;
    let admin_change = !read && (route == "/v1/config" || route.starts_with("/v1/dead-letters"));
    if route == "/v1/audit" || route.starts_with("/v1/debug/") || admin_change {
        Role::Admin
    } else if read || route == "/v1/keys/verify" || route == "/v1/explain" {
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
            None,
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
        assert_eq!(
            required_role(&Method::GET, "/v1/dead-letters/{id}"),
            Role::Viewer
        );
        assert_eq!(
            required_role(&Method::POST, "/v1/dead-letters/{id}/replay"),
            Role::Admin
        );
        assert_eq!(
            required_role(&Method::DELETE, "/v1/dead-letters/{id}"),
            Role::Admin
        );
    }
}

//! The dashboard's sign-in through an OpenID provider: the authorization code flow with
//! PKCE, state and nonce, the ID token checked against the provider's keys, its claims
//! mapped to a role, and the dashboard session that follows.
//!
//! Where the sign-in in progress is kept: in a cookie, not on the server. Its state, nonce
//! and PKCE verifier are sealed (signed with a key derived from the client secret), scoped
//! to the callback's path, `HttpOnly` and `SameSite=Lax` so that it comes back with the
//! provider's cross-site redirect, and good for [`FLOW_TTL`]. Any instance configured alike
//! can then finish a sign-in another began, with nothing to store or expire on the server.
//! The session is a sealed cookie too, `SameSite=Strict`; every admin call made with it must
//! also carry the session's CSRF token in a header, which only the dashboard's own script
//! reads.

pub mod client;
pub mod seal;
pub mod sign_outs;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::auth::Principal;
use crate::config::admin::Role;
use crate::config::oidc::OidcSettings;
use client::Http;
use seal::Sealer;

/// How long a sign-in may take between leaving for the provider and coming back.
pub const FLOW_TTL: Duration = Duration::from_secs(600);

/// The cookie holding the sign-in in progress.
pub const PENDING_COOKIE: &str = "tollgate_oidc";

/// The cookie holding the dashboard session.
pub const SESSION_COOKIE: &str = "tollgate_session";

/// The header every call made with a session carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-tollgate-csrf";

/// How long the discovery document and keys are kept before they are read again.
const PROVIDER_TTL: Duration = Duration::from_secs(3600);

/// The least time between two fetches of the provider's keys, so that tokens naming
/// unknown keys cannot make Tollgate hammer the provider.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);

/// Why a sign-in failed. The detail goes to the log; the browser gets [`OidcError::code`],
/// which the sign-in page turns into a message of its own.
#[derive(Debug, Error)]
pub enum OidcError {
    /// The provider answered with an error (`access_denied`, …).
    #[error("the provider refused the sign-in: {0}")]
    Provider(String),
    /// No sign-in in progress, or one begun too long ago.
    #[error("no sign-in in progress here, or it took longer than 10 minutes")]
    Expired,
    /// The answer's `state` (or `iss`) is not this sign-in's.
    #[error("the answer does not belong to the sign-in in progress ({0})")]
    State(&'static str),
    /// The provider could not be reached or answered nonsense.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The code exchange failed, or the ID token did not verify.
    #[error("the ID token was refused: {0}")]
    Token(String),
    /// The claims give no role.
    #[error("{0} has no role: the claim {1:?} holds no value that gives one")]
    NoRole(String, String),
}

impl OidcError {
    /// A short code for the sign-in page.
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::Provider(e) if e.starts_with("access_denied") => "denied",
            OidcError::Provider(_) => "provider",
            OidcError::Expired => "expired",
            OidcError::State(_) => "state",
            OidcError::Unavailable(_) => "unavailable",
            OidcError::Token(_) => "token",
            OidcError::NoRole(..) => "no-role",
        }
    }
}

/// The sign-in in progress, as its cookie holds it.
#[derive(Serialize, Deserialize)]
struct Pending {
    /// `state`.
    s: String,
    /// `nonce`.
    n: String,
    /// The PKCE verifier.
    v: String,
    /// When it expires (Unix ms).
    e: i64,
    /// The dashboard's page to return to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
}

/// A dashboard session, as its cookie holds it.
#[derive(Serialize, Deserialize)]
struct Session {
    /// Its id, which its CSRF token is bound to.
    i: String,
    /// The actor.
    a: String,
    /// The role's name.
    r: String,
    /// When it expires (Unix ms).
    e: i64,
}

/// A session a cookie holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Its id.
    pub id: String,
    /// Who signed in, as what.
    pub principal: Principal,
    /// When it expires (Unix ms).
    pub expires: i64,
}

/// What the provider's redirect back carries.
#[derive(Debug, Default)]
pub struct Callback {
    /// The authorization code.
    pub code: Option<String>,
    /// The state sent.
    pub state: Option<String>,
    /// The provider's error code.
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
    /// The issuer, from providers that say (RFC 9207).
    pub iss: Option<String>,
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The provider's discovery document and keys, and when they were read.
struct Discovered {
    metadata: CoreProviderMetadata,
    fetched: Instant,
    /// When a token naming a key not known last made the keys be read again.
    keys_refetched: Option<Instant>,
}

/// Signs people in to the dashboard through one OpenID provider.
pub struct Oidc {
    settings: OidcSettings,
    http: Http,
    sealer: Sealer,
    provider: tokio::sync::Mutex<Option<Discovered>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// Sign-in as `settings` say; the provider is read when the first sign-in begins.
    pub fn new(settings: OidcSettings) -> Oidc {
        let sealer = Sealer::derive(
            settings.client_secret.as_bytes(),
            &[&settings.issuer, &settings.client_id],
        );
        Oidc {
            settings,
            http: Http::new(),
            sealer,
            provider: tokio::sync::Mutex::new(None),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// The provider's discovery document and keys: those read within [`PROVIDER_TTL`], or
    /// read again (with `refetch_keys`, the keys again, unless such a read was made within
    /// [`JWKS_MIN_REFETCH`]).
    async fn metadata(&self, refetch_keys: bool) -> Result<CoreProviderMetadata, OidcError> {
        let mut cached = self.provider.lock().await;
        if let Some(d) = cached.as_mut() {
            if refetch_keys
                && d.keys_refetched
                    .is_none_or(|at| at.elapsed() >= JWKS_MIN_REFETCH)
            {
                d.keys_refetched = Some(Instant::now());
                match openidconnect::JsonWebKeySet::fetch_async(d.metadata.jwks_uri(), &self.http)
                    .await
                {
                    Ok(keys) => {
                        tracing::info!(
                            "a token named a key not known: the provider's keys were read again"
                        );
                        d.metadata = d.metadata.clone().set_jwks(keys);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "fetching the provider's keys failed; keeping those read before")
                    }
                }
            }
            if d.fetched.elapsed() < PROVIDER_TTL {
                return Ok(d.metadata.clone());
            }
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| OidcError::Unavailable(format!("issuer: {e}")))?;
        match CoreProviderMetadata::discover_async(issuer, &self.http).await {
            Ok(metadata) => {
                *cached = Some(Discovered {
                    metadata: metadata.clone(),
                    fetched: Instant::now(),
                    keys_refetched: None,
                });
                Ok(metadata)
            }
            Err(e) => {
                let why = error_chain(&e);
                // A provider down for a while: the document read before still serves.
                match cached.as_ref() {
                    Some(d) => {
                        tracing::warn!(error = %why, "reading the provider's discovery document failed; keeping the one read before");
                        Ok(d.metadata.clone())
                    }
                    None => Err(OidcError::Unavailable(why)),
                }
            }
        }
    }

    fn client(&self, metadata: CoreProviderMetadata) -> Result<Client, OidcError> {
        let redirect = RedirectUrl::new(self.settings.redirect_url.clone())
            .map_err(|e| OidcError::Unavailable(format!("redirect_url: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// Begins a sign-in at `now_ms` that returns to the dashboard's page `return_to`: the
    /// provider's authorization URL to send the browser to, and the sealed value of the
    /// [`PENDING_COOKIE`].
    pub async fn begin(
        &self,
        now_ms: i64,
        return_to: Option<String>,
    ) -> Result<(String, String), OidcError> {
        let client = self.client(self.metadata(false).await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let pending = Pending {
            s: state.secret().clone(),
            n: nonce.secret().clone(),
            v: verifier.secret().clone(),
            e: now_ms.saturating_add(millis(FLOW_TTL)),
            r: return_to.filter(|r| dashboard_page(r)),
        };
        Ok((url.to_string(), self.sealer.seal("pending", &pending)))
    }

    /// Finishes the sign-in `pending` (the [`PENDING_COOKIE`]) began, with the provider's
    /// answer, at `now_ms`: who signed in, as what, and the page to return to.
    pub async fn finish(
        &self,
        answer: &Callback,
        pending: Option<&str>,
        now_ms: i64,
    ) -> Result<(Principal, Option<String>), OidcError> {
        let pending = self.pending(pending, now_ms)?;
        let state = answer
            .state
            .as_deref()
            .ok_or(OidcError::State("no state"))?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            state.as_bytes(),
            pending.s.as_bytes(),
        )) {
            return Err(OidcError::State("another state"));
        }
        if let Some(iss) = &answer.iss
            && iss != &self.settings.issuer
        {
            return Err(OidcError::State("another issuer"));
        }
        if let Some(error) = &answer.error {
            return Err(OidcError::Provider(match &answer.error_description {
                Some(d) => format!("{error}: {d}"),
                None => error.clone(),
            }));
        }
        let code = answer
            .code
            .clone()
            .ok_or_else(|| OidcError::Token("the answer has no code".into()))?;
        let metadata = self.metadata(false).await?;
        let client = self.client(metadata.clone())?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Unavailable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.v))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Token(format!("code exchange: {}", error_chain(&e))))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| OidcError::Token("the provider sent no ID token".into()))?;
        let claims = self
            .verify(metadata, id_token, &Nonce::new(pending.n), now_ms)
            .await?;
        Ok((self.principal(&claims)?, pending.r))
    }

    fn pending(&self, sealed: Option<&str>, now_ms: i64) -> Result<Pending, OidcError> {
        let pending: Pending = sealed
            .and_then(|c| self.sealer.open("pending", c))
            .ok_or(OidcError::Expired)?;
        if pending.e <= now_ms {
            return Err(OidcError::Expired);
        }
        Ok(pending)
    }

    /// The ID token's claims once its signature (against the provider's keys, read again
    /// once when it names a key not known), `iss`, `aud`, `exp`, `iat` and `nonce` check.
    async fn verify(
        &self,
        mut metadata: CoreProviderMetadata,
        id_token: &CoreIdToken,
        nonce: &Nonce,
        now_ms: i64,
    ) -> Result<HashMap<String, Value>, OidcError> {
        let leeway = millis(self.settings.leeway);
        let lenient = chrono::DateTime::from_timestamp_millis(now_ms.saturating_sub(leeway))
            .unwrap_or_default();
        let ahead = chrono::DateTime::from_timestamp_millis(now_ms.saturating_add(leeway))
            .unwrap_or_default();
        let oldest = chrono::DateTime::from_timestamp_millis(
            now_ms
                .saturating_sub(millis(FLOW_TTL))
                .saturating_sub(leeway),
        )
        .unwrap_or_default();
        for attempt in 0..2 {
            let verifier = CoreIdTokenVerifier::new_confidential_client(
                ClientId::new(self.settings.client_id.clone()),
                ClientSecret::new(self.settings.client_secret.clone()),
                metadata.issuer().clone(),
                metadata.jwks().clone(),
            )
            // The algorithms the provider says it signs ID tokens with, never `none`
            // (the library's default would be RS256 alone).
            .set_allowed_algs(
                metadata
                    .id_token_signing_alg_values_supported()
                    .iter()
                    .filter(|a| **a != openidconnect::core::CoreJwsSigningAlgorithm::None)
                    .cloned(),
            )
            // `exp` is checked against this time: now, less the leeway.
            .set_time_fn(move || lenient)
            .set_issue_time_verifier_fn(move |iat| {
                if iat > ahead {
                    Err("issued in the future".into())
                } else if iat < oldest {
                    Err("issued before this sign-in began".into())
                } else {
                    Ok(())
                }
            });
            match id_token.claims(&verifier, nonce) {
                Ok(_) => return Ok(payload(id_token)),
                Err(ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                )) if attempt == 0 => {
                    // The provider may have rotated its keys since they were read.
                    metadata = self.metadata(true).await?;
                }
                Err(e) => return Err(OidcError::Token(error_chain(&e))),
            }
        }
        Err(OidcError::Token(
            "no key of the provider's matches the token".into(),
        ))
    }

    /// The principal verified claims name, with the role the mapping gives.
    fn principal(&self, claims: &HashMap<String, Value>) -> Result<Principal, OidcError> {
        let name = |c: &str| claims.get(c).and_then(Value::as_str);
        let who = name("email")
            .or_else(|| name("preferred_username"))
            .or_else(|| name("sub"))
            .unwrap_or("unknown")
            .to_owned();
        let mapping = &self.settings.roles;
        let values: Vec<&str> = match claims.get(&mapping.claim) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let role = mapping
            .role_of(values)
            .ok_or_else(|| OidcError::NoRole(who.clone(), mapping.claim.clone()))?;
        Ok(Principal {
            actor: format!("oidc:{who}"),
            role,
        })
    }

    /// A new session for `who` at `now_ms`: the [`SESSION_COOKIE`]'s value, and the
    /// session.
    pub fn open_session(&self, who: &Principal, now_ms: i64) -> Option<(String, SessionInfo)> {
        let session = Session {
            i: seal::random_id()?,
            a: who.actor.clone(),
            r: who.role.name().to_owned(),
            e: now_ms.saturating_add(millis(self.settings.session_ttl)),
        };
        let sealed = self.sealer.seal("session", &session);
        Some((
            sealed,
            SessionInfo {
                id: session.i,
                principal: who.clone(),
                expires: session.e,
            },
        ))
    }

    /// The session a [`SESSION_COOKIE`] holds, unless it is forged or over at `now_ms`.
    pub fn session(&self, sealed: &str, now_ms: i64) -> Option<SessionInfo> {
        let s: Session = self.sealer.open("session", sealed)?;
        if s.e <= now_ms {
            return None;
        }
        Some(SessionInfo {
            id: s.i,
            principal: Principal {
                actor: s.a,
                role: Role::from_name(&s.r)?,
            },
            expires: s.e,
        })
    }

    /// The CSRF token of the session `id`.
    pub fn csrf(&self, id: &str) -> String {
        self.sealer.token("csrf", id)
    }

    /// Whether `token` is the CSRF token of the session `id`.
    pub fn csrf_ok(&self, id: &str, token: &str) -> bool {
        self.sealer.check_token("csrf", id, token)
    }
}

/// Whether `path` is a page of the dashboard on this origin, and so safe to send the
/// browser back to after a sign-in (never another site, `//host` included).
pub fn dashboard_page(path: &str) -> bool {
    path.starts_with("/ui/")
        && !path.starts_with("/ui/auth/")
        && !path.contains("//")
        && !path.contains('\\')
        && path.len() <= 2048
        && path.bytes().all(|b| b.is_ascii_graphic())
}

/// The payload of a token whose signature has been checked, every claim in it.
fn payload(id_token: &CoreIdToken) -> HashMap<String, Value> {
    use base64::Engine;
    let compact = id_token.to_string();
    compact
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An error and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::oidc::RoleMapping;

    fn oidc() -> Oidc {
        Oidc::new(OidcSettings {
            name: "Test".into(),
            issuer: "https://idp.example".into(),
            client_id: "tollgate".into(),
            client_secret: "a client secret".into(),
            redirect_url: "https://tollgate.example/ui/auth/oidc/callback".into(),
            scopes: vec!["openid".into()],
            roles: RoleMapping {
                claim: "groups".into(),
                admin: vec!["ops".into()],
                operator: vec![],
                viewer: vec!["staff".into()],
            },
            session_ttl: Duration::from_secs(3600),
            leeway: Duration::from_secs(30),
        })
    }

    #[test]
    fn a_sign_in_in_progress_expires_and_cannot_be_forged() {
        let o = oidc();
        let sealed = o.sealer.seal(
            "pending",
            &Pending {
                s: "st".into(),
                n: "n".into(),
                v: "v".into(),
                e: 1_000_600_000,
                r: None,
            },
        );
        assert!(o.pending(Some(&sealed), 1_000_000_000).is_ok());
        assert!(matches!(
            o.pending(Some(&sealed), 1_000_600_000),
            Err(OidcError::Expired)
        ));
        assert!(matches!(o.pending(None, 0), Err(OidcError::Expired)));
        // A session's cookie is no sign-in in progress, nor the other way round.
        let who = Principal {
            actor: "oidc:alice".into(),
            role: Role::Viewer,
        };
        let (session, _) = o.open_session(&who, 0).unwrap();
        assert!(matches!(
            o.pending(Some(&session), 0),
            Err(OidcError::Expired)
        ));
        assert_eq!(o.session(&sealed, 0), None);
    }

    #[test]
    fn only_the_dashboards_own_pages_are_returned_to() {
        assert!(dashboard_page("/ui/keys?status=active&tier=pro"));
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/ui//evil",
            "/v1/keys",
            "/ui/auth/logout",
            "/ui/\\evil",
            "/ui/a b",
        ] {
            assert!(!dashboard_page(bad), "{bad}");
        }
    }

    #[test]
    fn a_session_lasts_its_ttl_and_its_csrf_token_is_its_own() {
        let o = oidc();
        let who = Principal {
            actor: "oidc:alice".into(),
            role: Role::Admin,
        };
        let (sealed, info) = o.open_session(&who, 1_000).unwrap();
        let got = o.session(&sealed, 1_000 + 3_599_999).unwrap();
        assert_eq!(got.principal, who);
        assert_eq!(o.session(&sealed, 1_000 + 3_600_000), None);
        let (_, other) = o.open_session(&who, 1_000).unwrap();
        assert_ne!(info.id, other.id);
        assert!(o.csrf_ok(&info.id, &o.csrf(&info.id)));
        assert!(!o.csrf_ok(&info.id, &o.csrf(&other.id)));
    }

    #[test]
    fn claims_map_to_the_highest_role_and_no_role_is_refused() {
        let o = oidc();
        let claims = |v: Value| -> HashMap<String, Value> { serde_json::from_value(v).unwrap() };
        let p = o
            .principal(&claims(
                serde_json::json!({"sub": "1", "email": "a@x", "groups": ["staff", "ops"]}),
            ))
            .unwrap();
        assert_eq!(p.role, Role::Admin);
        assert_eq!(p.actor, "oidc:a@x");
        let p = o
            .principal(&claims(serde_json::json!({"sub": "2", "groups": "staff"})))
            .unwrap();
        assert_eq!((p.role, p.actor.as_str()), (Role::Viewer, "oidc:2"));
        let e = o
            .principal(&claims(
                serde_json::json!({"sub": "3", "groups": ["guests"]}),
            ))
            .unwrap_err();
        assert_eq!(e.code(), "no-role");
        let e = o
            .principal(&claims(serde_json::json!({"sub": "4"})))
            .unwrap_err();
        assert_eq!(e.code(), "no-role");
    }
}

//! Admin routes for API keys: `/v1/keys…`. A key's secret is in the answer once, when it
//! is created or rotated; afterwards only its prefix is shown.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tollgate_registry::{
    KeyFilter, KeyPatch, KeyRecord, KeyStatus, NewKey, RegistryError, VerifyError,
};

use super::answers::{CreatedKey, KeyPage, Verified};
use super::body::{body_problem, parse_json};
use super::problem::{FieldError, Problem};
use super::query::Query;
use tollgate_core::time::now_ms;

use crate::app::App;

pub(crate) fn keys_off() -> Response {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "keys-off",
        "API keys are not configured",
        Some("add a `database` section and set TOLLGATE_KEY_SECRET".into()),
    )
    .into_response()
}

pub(crate) fn failed(e: RegistryError) -> Response {
    match e {
        RegistryError::Invalid(why) => Problem::invalid(why).into_response(),
        other => unavailable(&other),
    }
}

fn unavailable(why: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %why, "registry failed");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "registry-unavailable",
        "The records database did not answer",
        None,
    )
    .into_response()
}

/// The body, parsed into its schema, or the problem to answer.
pub(crate) fn body<T: serde::de::DeserializeOwned>(
    b: Result<Bytes, BytesRejection>,
) -> Result<T, Problem> {
    parse_json(&b.map_err(body_problem)?)
}

pub(crate) fn not_found(id: &str) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "key-not-found",
        "No such key",
        Some(format!("no key {id:?}, or it is revoked")),
    )
    .into_response()
}

/// Checks a key's tier and overrides against the policy in force: the tier must exist (a
/// key on a tier the policy does not define would get no tier limits at all), and the
/// overrides must compile over it.
fn check_limits(app: &App, tier: &str, overrides: &Value) -> Result<(), Problem> {
    let policy = app.engine.policy();
    let tiers = policy.tiers();
    let mut errors = Vec::new();
    if tiers.get(tier).is_none() {
        let names: Vec<&str> = tiers.iter().map(|t| t.name.as_str()).collect();
        let known = if names.is_empty() {
            "the policy defines no tiers: add a `tiers` section".to_owned()
        } else {
            format!("tiers: {}", names.join(", "))
        };
        errors.push(FieldError {
            path: "tier".into(),
            message: format!("no tier {tier:?} ({known})"),
        });
    }
    // An override named like a rule would count that rule's counter twice.
    if let Some(names) = overrides.as_object() {
        for name in names.keys().filter(|n| policy.rule(n).is_some()) {
            errors.push(FieldError {
                path: format!("overrides.{name}"),
                message: format!(
                    "{name:?} is a rule's name; a key's own limit needs one of its own"
                ),
            });
        }
    }
    if let Err(errs) =
        tollgate_core::policy::tiers::compile_overrides(tiers.get(tier), overrides, "overrides")
    {
        errors.extend(errs.0.into_iter().map(|e| FieldError {
            path: e.path,
            message: e.message,
        }));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-key-limits",
            "The key's tier or overrides are not valid",
            None,
        )
        .with_errors(errors))
    }
}

/// The body of `POST /v1/keys`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateKey)]
#[serde(expecting = "an object describing the key (`name`, `tier`, `owner`, …)")]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// A name for people.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Who the key belongs to.
    #[schema(min_length = 1, max_length = 200)]
    owner: String,
    /// A tier the policy defines.
    #[serde(default = "default_tier")]
    #[schema(default = "free", example = "free", min_length = 1, max_length = 200)]
    tier: String,
    /// The environment in the key's text (`tg_live_…`, `tg_test_…`).
    #[serde(default = "default_env")]
    #[schema(default = "live", pattern = "^[a-z0-9]{1,8}$")]
    env: String,
    /// When it stops working (ms since the Unix epoch).
    #[serde(default)]
    expires_at: Option<i64>,
    /// Free-form metadata.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Value,
    /// Its own limits over its tier's: limit name → fields.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    overrides: Value,
}

fn default_tier() -> String {
    "free".into()
}

fn default_env() -> String {
    "live".into()
}

/// `POST /v1/keys`: creates a key; the answer holds its secret, once.
#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "keys",
    operation_id = "create_key",
    summary = "Create a key (its secret is in this answer only)",
    request_body = CreateBody,
    responses(
        (status = 201, description = "The key and its secret", body = CreatedKey,
            links(
                ("GetKey" = (operation_id = "get_key", parameters(("id" = "$response.body#/key/id")))),
                ("PatchKey" = (operation_id = "patch_key", parameters(("id" = "$response.body#/key/id")))),
                ("RotateKey" = (operation_id = "rotate_key", parameters(("id" = "$response.body#/key/id")))),
                ("RevokeKey" = (operation_id = "revoke_key", parameters(("id" = "$response.body#/key/id")))),
                ("KeyUsage" = (operation_id = "key_usage", parameters(("id" = "$response.body#/key/id")))),
                ("KeyLimits" = (operation_id = "key_limits", parameters(("id" = "$response.body#/key/id")))),
                ("KeyUsageHistory" = (operation_id = "key_usage_history", parameters(("id" = "$response.body#/key/id")))),
            )),
        (status = 422, description = "The body does not fit (`invalid-request`), or the tier or overrides are not valid (`invalid-key-limits`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn create(State(app): State<Arc<App>>, b: Result<Bytes, BytesRejection>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let b = match body::<CreateBody>(b) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let _turn = app.tier_turn.read().await;
    if let Err(problem) = check_limits(&app, &b.tier, &b.overrides) {
        return problem.into_response();
    }
    let new = NewKey {
        env: b.env,
        name: b.name,
        owner: b.owner,
        tier: b.tier,
        expires_at: b.expires_at,
        metadata: b.metadata,
        overrides: b.overrides,
    };
    match reg.create_key(&new, now_ms()).await {
        Ok((key, secret)) => {
            (StatusCode::CREATED, Json(CreatedKey { key, secret })).into_response()
        }
        Err(e) => failed(e),
    }
}

/// The query of `GET /v1/keys`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this owner's keys.
    owner: Option<String>,
    /// Only this tier's.
    tier: Option<String>,
    /// Only those with this status.
    #[param(value_type = Option<KeyStatus>)]
    status: Option<String>,
    /// Ids after this one: the `next` of the previous page.
    after: Option<String>,
    /// At most this many (default 100; taken as 1 to 1000).
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

/// `GET /v1/keys`: a page of keys; `next` is the `after` of the following page.
#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "keys",
    operation_id = "list_keys",
    summary = "A page of keys, by id",
    params(ListQuery),
    responses(
        (status = 200, description = "The keys; `next` is the `after` of the following page", body = KeyPage),
        (status = 422, description = "`status` is not one of active, disabled, revoked", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn list(State(app): State<Arc<App>>, Query(q): Query<ListQuery>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let status = match q.status.as_deref() {
        None => None,
        Some("active") => Some(KeyStatus::Active),
        Some("disabled") => Some(KeyStatus::Disabled),
        Some("revoked") => Some(KeyStatus::Revoked),
        Some(other) => {
            return Problem::invalid(format!(
                "status {other:?} is not one of active, disabled, revoked"
            ))
            .into_response();
        }
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = KeyFilter {
        owner: q.owner,
        tier: q.tier,
        status,
        after: q.after,
        limit: Some(limit),
    };
    match reg.list_keys(&filter).await {
        Ok(keys) => {
            let next = super::next_after(&keys, limit, |k| k.id.clone());
            Json(KeyPage { keys, next }).into_response()
        }
        Err(e) => failed(e),
    }
}

/// `GET /v1/keys/{id}`.
#[utoipa::path(
    get,
    path = "/v1/keys/{id}",
    tag = "keys",
    operation_id = "get_key",
    summary = "A key's record",
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    responses(
        (status = 200, description = "The record (never the secret)", body = KeyRecord),
        (status = 404, description = "No such key (`key-not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn get_one(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    match reg.get_key(&id).await {
        Ok(Some(k)) => Json(k).into_response(),
        Ok(None) => not_found(&id),
        Err(e) => failed(e),
    }
}

/// `null` as `Some(None)`, absent as `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// The body of `PATCH /v1/keys/{id}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PatchKey)]
#[serde(expecting = "an object of the fields to change")]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    /// A new name.
    name: Option<String>,
    /// A new tier.
    tier: Option<String>,
    /// Switch the key on or off.
    enabled: Option<bool>,
    /// A new expiry (ms), or null to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    expires_at: Option<Option<i64>>,
    /// New metadata, replacing the old.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// New overrides, replacing the old.
    #[schema(value_type = Option<Object>)]
    overrides: Option<Value>,
}

/// `PATCH /v1/keys/{id}`: rename, change tier or overrides, switch on or off, set or clear
/// the expiry, replace the metadata.
#[utoipa::path(
    patch,
    path = "/v1/keys/{id}",
    tag = "keys",
    operation_id = "patch_key",
    summary = "Change a key: name, tier, overrides, on or off, expiry, metadata",
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "The key as it now stands", body = KeyRecord),
        (status = 404, description = "No such key (`key-not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body does not fit, or the tier or overrides are not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn patch(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let b = match body::<PatchBody>(b) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let _turn = app.tier_turn.read().await;
    // Switching a key on checks its tier too: the tier may have gone while it was off.
    if b.tier.is_some() || b.overrides.is_some() || b.enabled == Some(true) {
        let current = match reg.get_key(&id).await {
            Ok(Some(k)) => k,
            Ok(None) => return not_found(&id),
            Err(e) => return failed(e),
        };
        let tier = b.tier.as_deref().unwrap_or(&current.tier);
        let overrides = b.overrides.as_ref().unwrap_or(&current.overrides);
        if let Err(problem) = check_limits(&app, tier, overrides) {
            return problem.into_response();
        }
    }
    let patch = KeyPatch {
        name: b.name,
        tier: b.tier,
        enabled: b.enabled,
        expires_at: b.expires_at,
        metadata: b.metadata,
        overrides: b.overrides,
    };
    match reg.update_key(&id, &patch, now_ms()).await {
        Ok(Some(k)) => {
            app.engine.forget_keys();
            Json(k).into_response()
        }
        Ok(None) => not_found(&id),
        Err(e) => failed(e),
    }
}

/// `DELETE /v1/keys/{id}`: revokes the key for good.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    tag = "keys",
    operation_id = "revoke_key",
    summary = "Revoke a key for good",
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key, or already revoked (`key-not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn revoke(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    match reg.revoke_key(&id, now_ms()).await {
        Ok(true) => {
            app.engine.forget_keys();
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => not_found(&id),
        Err(e) => failed(e),
    }
}

/// The body of `POST /v1/keys/{id}/rotate`.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = RotateKey)]
#[serde(expecting = "an object with optional `grace_seconds` and `env`")]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the old secret keeps working, in seconds (default one day).
    #[schema(value_type = Option<u64>, maximum = 4294967295_u64)]
    grace_seconds: Option<u32>,
    /// The environment in the new secret's text (default `live`).
    #[schema(pattern = "^[a-z0-9]{1,8}$")]
    env: Option<String>,
}

/// `POST /v1/keys/{id}/rotate`: a new secret, shown once; the old one keeps working for the
/// grace period.
#[utoipa::path(
    post,
    path = "/v1/keys/{id}/rotate",
    tag = "keys",
    operation_id = "rotate_key",
    summary = "A new secret for a key; the old one works for the grace period",
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    request_body(content = Option<RotateBody>, description = "Optional: an empty body rotates with the defaults"),
    responses(
        (status = 200, description = "The key and its new secret, shown this once", body = CreatedKey,
            links(
                ("GetKey" = (operation_id = "get_key", parameters(("id" = "$response.body#/key/id")))),
                ("RevokeKey" = (operation_id = "revoke_key", parameters(("id" = "$response.body#/key/id")))),
            )),
        (status = 404, description = "No such key (`key-not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body does not fit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn rotate(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    // The body is optional: none rotates with the defaults.
    let b = match b {
        Ok(bytes) if bytes.trim_ascii().is_empty() => RotateBody::default(),
        other => match body::<RotateBody>(other) {
            Ok(b) => b,
            Err(p) => return p.into_response(),
        },
    };
    let grace = i64::from(b.grace_seconds.unwrap_or(86_400)).saturating_mul(1_000);
    let env = b.env.unwrap_or_else(default_env);
    match reg.rotate_key(&id, &env, grace, now_ms()).await {
        Ok(Some((record, secret))) => {
            // The old secret's verification is cached: forgotten, it is looked up again,
            // and refused once its grace is over.
            app.engine.forget_keys();
            Json(CreatedKey {
                key: record,
                secret,
            })
            .into_response()
        }
        Ok(None) => not_found(&id),
        Err(e) => failed(e),
    }
}

/// The body of `POST /v1/keys/verify`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = VerifyKey)]
#[serde(expecting = "an object with `key`")]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The secret as presented (`tg_live_…`).
    key: String,
}

/// `POST /v1/keys/verify`: whether a key may be used, and whose it is.
#[utoipa::path(
    post,
    path = "/v1/keys/verify",
    tag = "keys",
    operation_id = "verify_key",
    summary = "Whether a presented key may be used, and whose it is",
    request_body = VerifyBody,
    responses(
        (status = 200, description = "`valid` with the key's record, or not with its `code`", body = Verified),
        (status = 422, description = "The body does not fit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn verify(State(app): State<Arc<App>>, b: Result<Bytes, BytesRejection>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let b = match body::<VerifyBody>(b) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    match reg.verify(&b.key, now_ms()).await {
        Ok(k) => Json(Verified {
            valid: true,
            key: Some(k),
            code: None,
        })
        .into_response(),
        Err(VerifyError::Unavailable(why)) => unavailable(&why),
        Err(code) => Json(Verified {
            valid: false,
            key: None,
            code: Some(code.to_string()),
        })
        .into_response(),
    }
}

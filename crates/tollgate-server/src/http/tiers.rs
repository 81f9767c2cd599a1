//! Tiers through the admin API: `/v1/tiers` and `/v1/tiers/{name}`. A tier lives in the
//! policy's `tiers` section, so a change is validated, swapped in atomically and written
//! back to the configuration file like `PUT /v1/config`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tollgate_core::policy::ConfigErrors;

use super::answers::Tiers;
use super::body::yaml_body;
use super::keys::failed;
use super::problem::Problem;
use super::problem::policy_problem;
use crate::app::App;
use crate::config::policy_part;

fn tiers_of(app: &App) -> Map<String, Value> {
    let doc = app.doc.lock().map(|d| d.clone()).unwrap_or(Value::Null);
    match policy_part(&doc).get("tiers") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

fn no_tier(name: &str) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "tier-not-found",
        "No such tier",
        Some(format!("no tier {name:?}")),
    )
    .into_response()
}

/// Edits the policy's tiers section with `edit` (see [`App::edit_policy`]); an emptied
/// section is removed.
fn edit_tiers<T>(
    app: &App,
    edit: impl FnOnce(&mut Map<String, Value>) -> Option<T>,
) -> Result<Option<T>, ConfigErrors> {
    app.edit_policy(|policy| {
        let mut tiers = match policy.get("tiers") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let out = edit(&mut tiers);
        if tiers.is_empty() {
            policy.remove("tiers");
        } else {
            policy.insert("tiers".into(), Value::Object(tiers));
        }
        out
    })
}

/// Refuses (409) when a key that is not revoked is on tier `name`: a tier is removed only
/// once its keys have moved. Called with `tier_turn` held for writing.
async fn keep_if_in_use(app: &App, name: &str) -> Result<(), Response> {
    match app.keys_on_tier(name).await {
        Ok(false) => Ok(()),
        Ok(true) => Err(Problem::new(
            StatusCode::CONFLICT,
            "tier-in-use",
            "Keys are on this tier",
            Some(format!(
                "move the keys of tier {name:?} first (GET /v1/keys?tier={name})"
            )),
        )
        .into_response()),
        Err(e) => Err(failed(e)),
    }
}

/// Refuses (409) a new policy that would drop a tier keys are on, as
/// `DELETE /v1/tiers/{name}` would. A `tiers` section that is not a map is left to the
/// policy's validation. Called with `tier_turn` held for writing.
pub(crate) async fn keep_tiers_in_use(app: &App, policy: &Value) -> Result<(), Response> {
    let none = Map::new();
    let kept = match policy.get("tiers") {
        None | Some(Value::Null) => &none,
        Some(Value::Object(m)) => m,
        Some(_) => return Ok(()),
    };
    for name in tiers_of(app).keys().filter(|t| !kept.contains_key(*t)) {
        keep_if_in_use(app, name).await?;
    }
    Ok(())
}

/// `GET /v1/tiers`: every tier's spec, by name.
#[utoipa::path(
    get,
    path = "/v1/tiers",
    tag = "tiers",
    operation_id = "list_tiers",
    summary = "Every tier's spec, by name",
    responses((status = 200, description = "The tiers", body = Tiers)),
    security(("adminToken" = [])),
)]
pub async fn list(State(app): State<Arc<App>>) -> Response {
    Json(Tiers {
        tiers: tiers_of(&app),
    })
    .into_response()
}

/// `GET /v1/tiers/{name}`.
#[utoipa::path(
    get,
    path = "/v1/tiers/{name}",
    tag = "tiers",
    operation_id = "get_tier",
    summary = "A tier's spec",
    params(("name" = String, Path, description = "The tier's name")),
    responses(
        (status = 200, description = "The spec (`limits`, …)", body = Object),
        (status = 404, description = "No such tier (`tier-not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn get_one(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    match tiers_of(&app).get(&name) {
        Some(spec) => Json(spec).into_response(),
        None => no_tier(&name),
    }
}

/// `PUT /v1/tiers/{name}`: creates or replaces a tier (`{limits: [...]}`, YAML or JSON). A
/// bad tier changes nothing and answers 422 with every error.
#[utoipa::path(
    put,
    path = "/v1/tiers/{name}",
    tag = "tiers",
    operation_id = "put_tier",
    summary = "Create or replace a tier",
    params(("name" = String, Path, description = "The tier's name")),
    request_body(content(
        (Object = "application/json"),
        (Object = "application/yaml"),
    ), description = "The tier's spec: `{limits: [...]}`"),
    responses(
        (status = 200, description = "Replaced: the spec", body = Object),
        (status = 201, description = "Created: the spec", body = Object),
        (status = 422, description = "The tier is not valid (`invalid-policy`, with every error)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn put(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let spec = match yaml_body(body) {
        Ok(v) => v,
        Err(p) => return p.into_response(),
    };
    let created = match edit_tiers(&app, |tiers| {
        Some(tiers.insert(name.clone(), spec.clone()).is_none())
    }) {
        Ok(created) => created.unwrap_or(false),
        Err(errs) => return policy_problem(errs).into_response(),
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(spec)).into_response()
}

/// `DELETE /v1/tiers/{name}`: removes a tier no key is on, active or switched off (409
/// otherwise).
#[utoipa::path(
    delete,
    path = "/v1/tiers/{name}",
    tag = "tiers",
    operation_id = "delete_tier",
    summary = "Remove a tier no key is on",
    params(("name" = String, Path, description = "The tier's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such tier (`tier-not-found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Keys are on the tier (`tier-in-use`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The policy without it is not valid (`invalid-policy`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn delete(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    if !tiers_of(&app).contains_key(&name) {
        return no_tier(&name);
    }
    // No key may land on the tier between the check below and its removal.
    let _turn = app.tier_turn.write().await;
    if let Err(refused) = keep_if_in_use(&app, &name).await {
        return refused;
    }
    // Removed by name under the change's turn: a change made meanwhile is kept.
    match edit_tiers(&app, |tiers| tiers.remove(&name)) {
        Ok(Some(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(None) => no_tier(&name),
        Err(errs) => policy_problem(errs).into_response(),
    }
}

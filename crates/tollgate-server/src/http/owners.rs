//! Key owners' records: who they are and how to reach them.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tollgate_core::time::now_ms;
use tollgate_registry::{Owner, OwnerContact};

use super::answers::OwnerPage;
use super::keys::{body, failed, keys_off};
use super::problem::Problem;
use super::query::Query;
use crate::app::App;

fn no_owner(id: &str) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "owner-not-found",
        "No such owner",
        Some(format!("no owner record {id:?}")),
    )
    .into_response()
}

/// The query of `GET /v1/owners`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OwnersQuery {
    /// Ids after this one: the `next` of the previous page.
    after: Option<String>,
    /// At most this many (default 100; taken as 1 to 1000).
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

/// `GET /v1/owners?after=&limit=`: owner records in id order.
#[utoipa::path(
    get,
    path = "/v1/owners",
    tag = "owners",
    operation_id = "list_owners",
    summary = "Owner records, by id",
    params(OwnersQuery),
    responses((status = 200, description = "A page of records; `next` is the `after` of the following page", body = OwnerPage)),
    security(("adminToken" = [])),
)]
pub async fn list(State(app): State<Arc<App>>, Query(q): Query<OwnersQuery>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let limit = q.limit.unwrap_or(100);
    match reg.owners(q.after.as_deref(), limit).await {
        Ok(owners) => {
            let next = super::next_after(&owners, limit.clamp(1, 1000), |o| o.id.clone());
            Json(OwnerPage { owners, next }).into_response()
        }
        Err(e) => failed(e),
    }
}

/// `GET /v1/owners/{owner}`: the record, its webhook secret never shown.
#[utoipa::path(
    get,
    path = "/v1/owners/{owner}",
    tag = "owners",
    operation_id = "get_owner",
    summary = "An owner's record (its webhook secret never shown)",
    params(("owner" = String, Path, description = "The owner's id, as keys name it")),
    responses(
        (status = 200, description = "The record", body = Owner),
        (status = 404, description = "No such record (`owner-not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn get_one(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    match reg.owner(&id).await {
        Ok(Some(o)) => Json(o).into_response(),
        Ok(None) => no_owner(&id),
        Err(e) => failed(e),
    }
}

/// `PUT /v1/owners/{owner}`: creates or replaces the record (`name`, `email`,
/// `webhook_url`, `webhook_secret`, `metadata`); 201 when new.
#[utoipa::path(
    put,
    path = "/v1/owners/{owner}",
    tag = "owners",
    operation_id = "put_owner",
    summary = "Create or replace an owner's record",
    params(("owner" = String, Path, description = "The owner's id, as keys name it")),
    request_body = OwnerContact,
    responses(
        (status = 200, description = "Replaced: the record", body = Owner,
            links(("GetOwner" = (operation_id = "get_owner", parameters(("owner" = "$request.path.owner")))))),
        (status = 201, description = "Created: the record", body = Owner,
            links(
                ("GetOwner" = (operation_id = "get_owner", parameters(("owner" = "$request.path.owner")))),
                ("DeleteOwner" = (operation_id = "delete_owner", parameters(("owner" = "$request.path.owner")))),
            )),
        (status = 422, description = "The body does not fit, or an address, URL or secret is malformed (`invalid-request`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn put(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let contact = match body::<OwnerContact>(b) {
        Ok(c) => c,
        Err(p) => return p.into_response(),
    };
    if let Some(email) = &contact.email
        && !email.contains('@')
    {
        return Problem::invalid(format!("email: {email:?} is not an address")).into_response();
    }
    if let Some(url) = &contact.webhook_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Problem::invalid(format!("webhook_url: {url:?} is not an http(s) URL"))
            .into_response();
    }
    if let Some(secret) = &contact.webhook_secret
        && !secret.starts_with("whsec_")
    {
        return Problem::invalid(
            "webhook_secret: a Standard Webhooks secret starts with whsec_".into(),
        )
        .into_response();
    }
    let created = match reg.put_owner(&id, &contact, now_ms()).await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    match reg.owner(&id).await {
        Ok(Some(o)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(o)).into_response()
        }
        Ok(None) => no_owner(&id),
        Err(e) => failed(e),
    }
}

/// `DELETE /v1/owners/{owner}`: removes the record; the owner's keys stay.
#[utoipa::path(
    delete,
    path = "/v1/owners/{owner}",
    tag = "owners",
    operation_id = "delete_owner",
    summary = "Remove an owner's record (their keys stay)",
    params(("owner" = String, Path, description = "The owner's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such record (`owner-not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn delete(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    match reg.delete_owner(&id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => no_owner(&id),
        Err(e) => failed(e),
    }
}

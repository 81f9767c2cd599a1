//! `GET /v1/slo`: each service-level objective's budget and burn rates.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::keys::failed;
use crate::app::App;
use crate::slo::status::Standing;

/// Every objective's standing.
#[derive(Serialize, ToSchema)]
pub struct Objectives {
    /// The objectives, in the configuration's order.
    pub objectives: Vec<Standing>,
}

/// `GET /v1/slo`: every objective's standing, over the fleet's requests when a database is
/// configured (each instance writes its counts there), else this instance's.
#[utoipa::path(
    get,
    path = "/v1/slo",
    tag = "slo",
    operation_id = "list_objectives",
    summary = "Service-level objectives: budgets and burn rates",
    responses((status = 200, description = "Each objective's standing", body = Objectives)),
    security(("adminToken" = [])),
)]
pub async fn list(State(app): State<Arc<App>>) -> Response {
    let now = tollgate_core::time::now_ms();
    let mut out = Vec::with_capacity(app.slo.objectives.len());
    for o in &app.slo.objectives {
        match crate::slo::status::standing(o, app.registry.as_ref(), now).await {
            Ok(s) => out.push(s),
            Err(e) => return failed(e),
        }
    }
    Json(Objectives { objectives: out }).into_response()
}

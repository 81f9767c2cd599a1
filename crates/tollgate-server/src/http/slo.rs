//! `GET /v1/slo`: each service-level objective's budget and burn rates.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::keys::failed;
use crate::app::App;

/// `GET /v1/slo`: every objective's standing, over the fleet's requests when a database is
/// configured (each instance writes its counts there), else this instance's.
pub async fn list(State(app): State<Arc<App>>) -> Response {
    let now = tollgate_core::time::now_ms();
    let mut out = Vec::with_capacity(app.slo.objectives.len());
    for o in &app.slo.objectives {
        match crate::slo::status::standing(o, app.registry.as_ref(), now).await {
            Ok(s) => out.push(s),
            Err(e) => return failed(e),
        }
    }
    Json(json!({ "objectives": out })).into_response()
}

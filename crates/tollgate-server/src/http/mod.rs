//! The HTTP doors: the decision API, forward-auth, admin and operations routes.

pub mod admin;
pub mod alerts;
pub mod answers;
pub mod authorize;
pub mod billing;
pub mod body;
pub mod check;
pub mod dead_letters;
pub mod debug;
mod decision_json;
mod direct;
pub mod docs;
pub mod explain;
pub mod jobs;
pub mod keys;
mod layers;
pub mod leases;
pub mod live;
pub mod openapi;
pub mod ops;
pub mod owners;
pub mod problem;
mod proxied;
pub mod query;
pub mod request_id;
pub mod serve;
pub mod signin;
pub mod slo;
pub mod tiers;
pub mod ui;
pub mod usage;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::routing::{delete, get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::app::App;
use problem::Problem;

/// The whole HTTP surface: every route, inside the layers every request passes.
pub fn router(app: &Arc<App>, timeout: Duration) -> Router {
    let admin = Router::new()
        .route(
            "/v1/config",
            get(admin::get_config)
                .put(admin::put_config)
                .post(admin::put_config),
        )
        .route("/v1/counters", get(admin::get_counters))
        .route("/v1/counters/{key}", delete(admin::delete_counter))
        .route("/v1/keys", post(keys::create).get(keys::list))
        .route("/v1/keys/verify", post(keys::verify))
        .route(
            "/v1/keys/{id}",
            get(keys::get_one).patch(keys::patch).delete(keys::revoke),
        )
        .route("/v1/keys/{id}/rotate", post(keys::rotate))
        .route("/v1/keys/{id}/usage", get(usage::now))
        .route("/v1/keys/{id}/usage/history", get(usage::history))
        .route("/v1/keys/{id}/limits", get(usage::limits))
        .route(
            "/v1/owners/{owner}/usage/history",
            get(usage::owner_history),
        )
        .route("/v1/owners/{owner}/billing/current", get(billing::current))
        .route("/v1/billing/records", get(billing::records))
        .route("/v1/owners", get(owners::list))
        .route(
            "/v1/owners/{owner}",
            get(owners::get_one).put(owners::put).delete(owners::delete),
        )
        .route("/v1/alerts", get(alerts::list))
        .route("/v1/slo", get(slo::list))
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get_one))
        .route("/v1/jobs/{id}/retry", post(jobs::retry))
        .route("/v1/jobs/{id}/discard", post(jobs::discard))
        .route("/v1/dead-letters", get(dead_letters::list))
        .route(
            "/v1/dead-letters/{id}",
            get(dead_letters::get_one).delete(dead_letters::discard),
        )
        .route("/v1/dead-letters/{id}/replay", post(dead_letters::replay))
        .route("/v1/violations", get(usage::violations))
        .route("/v1/tiers", get(tiers::list))
        .route(
            "/v1/tiers/{name}",
            get(tiers::get_one).put(tiers::put).delete(tiers::delete),
        )
        .route("/v1/audit", get(admin::audit))
        .route("/v1/explain", post(explain::explain))
        .route("/v1/live", get(live::live))
        .route(layers::PROFILE_PATH, get(debug::cpu_profile))
        .route("/v1/debug/runtime", get(debug::runtime))
        .route("/v1/debug/config", get(debug::config))
        .route_layer(middleware::from_fn_with_state(app.clone(), admin::gate));
    // Pages a browser may show get the headers that concern browsers; decisions, read by
    // services and proxies, do without them.
    let for_browsers = layers::for_browsers(
        Router::new()
            .route("/healthz", get(ops::healthz))
            .route("/readyz", get(ops::readyz))
            .route("/metrics", get(ops::metrics))
            .merge(admin)
            .merge(signin::routes())
            .merge(ui::routes())
            .merge(docs::routes())
            .fallback(not_found),
    );
    // `POST /v1/check` and `/v1/authorize` are answered before this router (`direct`);
    // the route stays here so that another method on `/v1/check` is answered 405.
    let routes = Router::new()
        .route("/v1/check", post(check::check))
        .route("/v1/release", post(leases::release))
        .route("/v1/renew", post(leases::renew))
        .merge(for_browsers)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(app.max_body))
        .with_state(app.clone());
    layers::around(routes, timeout, cors(&app.cors_origins))
}

/// CORS for the listed origins; none listed, none allowed (`*` only when listed).
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                layers::X_REQUEST_ID,
            ])
            .expose_headers([
                HeaderName::from_static("ratelimit"),
                HeaderName::from_static("ratelimit-policy"),
                header::RETRY_AFTER,
                layers::X_REQUEST_ID,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "No such route", None)
}

async fn method_not_allowed(method: Method) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "The route does not take this method",
        format!("{method} is not one of the route's methods"),
    )
}

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The header of a decision's header `name`: a constant for the ones a decision has, so
/// answers do not parse their names.
fn decision_header(name: &str) -> Option<HeaderName> {
    Some(match name {
        "ratelimit" => RATELIMIT,
        "ratelimit-policy" => RATELIMIT_POLICY,
        "retry-after" => header::RETRY_AFTER,
        "x-ratelimit-limit" => X_RATELIMIT_LIMIT,
        "x-ratelimit-remaining" => X_RATELIMIT_REMAINING,
        "x-ratelimit-reset" => X_RATELIMIT_RESET,
        other => return HeaderName::from_bytes(other.as_bytes()).ok(),
    })
}

/// Headers an answer with a decision carries at most: the decision's six, the security
/// headers every answer gets, the request id and a content type.
pub const ANSWER_HEADERS: usize = 6 + layers::EVERY_ANSWER_HEADERS + 2;

/// Sets the rate-limit headers of a decision on a response. The values move into the
/// response rather than being copied.
pub fn set_headers<B>(res: &mut axum::http::Response<B>, headers: tollgate_core::Headers) {
    let map = res.headers_mut();
    // Room for the security headers and the request id too, so the map grows at most once
    // (not at all when the answer was made with room for them).
    map.reserve(
        headers
            .0
            .len()
            .saturating_add(layers::EVERY_ANSWER_HEADERS)
            .saturating_add(2),
    );
    for (name, value) in headers.0 {
        if let (Some(name), Ok(v)) = (
            decision_header(name),
            HeaderValue::from_maybe_shared(axum::body::Bytes::from(value)),
        ) {
            map.insert(name, v);
        }
    }
}

/// The `after` of the page following `items`, a page of at most `limit`: the last item's
/// id when the page is full, else none.
pub fn next_after<T, K>(items: &[T], limit: u32, id: impl Fn(&T) -> K) -> Option<K> {
    items
        .last()
        .filter(|_| items.len() == limit as usize)
        .map(id)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use axum::response::Response;

    async fn call(router: Router, path: &str) -> Response {
        let req = Request::builder().uri(path).body(Body::empty()).unwrap();
        router.oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn a_panic_is_a_500_problem_not_a_dropped_connection() {
        async fn boom() -> &'static str {
            panic!("kaboom")
        }
        let routes = Router::new().route("/boom", get(boom));
        let res = call(
            layers::around(routes, Duration::from_secs(5), None),
            "/boom",
        )
        .await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        assert!(res.headers().contains_key("x-request-id"));
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    }

    #[tokio::test]
    async fn a_slow_request_times_out_with_408() {
        let routes = Router::new().route(
            "/slow",
            get(|| async {
                // Longer than the timeout below, which ends the request first.
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
        let res = call(
            layers::around(routes, Duration::from_millis(50), None),
            "/slow",
        )
        .await;
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
}

//! The OpenAPI 3.1 description of the HTTP API, made from the handlers' `#[utoipa::path]`
//! annotations and the schemas of the types they read and answer. Served at
//! `GET /openapi.json`, shown at `GET /docs`, printed by `tollgate openapi`, and committed
//! as `docs/openapi.json` (a test fails when that copy is stale).
//!
//! What every route of a kind answers alike is added here rather than repeated on each
//! handler: the admin gate's 401, 403 and 429, the body problems of routes that read one,
//! the query problem of routes that take parameters, and the timeout.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};

use super::problem::Problem;
use super::{
    admin, alerts, answers, authorize, billing, check, dead_letters, debug, docs, explain, jobs,
    keys, leases, live, ops, owners, signin, slo, tiers, ui, usage,
};

/// The security scheme of the admin routes: `Authorization: Bearer <token>`.
pub const ADMIN_TOKEN: &str = "adminToken";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tollgate",
        description = "Rate limiting and API keys: the decision doors (`/v1/check`, `/v1/authorize`, leases), \
operations (`/healthz`, `/readyz`, `/metrics`) and the admin API. Every error is an RFC 9457 problem \
(`application/problem+json`) whose `type` is one of those listed in the `Problem` schema.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        check::check,
        authorize::authorize,
        leases::release,
        leases::renew,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        admin::get_config,
        admin::put_config,
        admin::get_counters,
        admin::delete_counter,
        keys::create,
        keys::list,
        keys::verify,
        keys::get_one,
        keys::patch,
        keys::revoke,
        keys::rotate,
        usage::now,
        usage::history,
        usage::limits,
        usage::owner_history,
        usage::violations,
        billing::current,
        billing::records,
        owners::list,
        owners::get_one,
        owners::put,
        owners::delete,
        alerts::list,
        slo::list,
        debug::cpu_profile,
        debug::runtime,
        debug::config,
        jobs::list,
        jobs::get_one,
        jobs::retry,
        jobs::discard,
        dead_letters::list,
        dead_letters::get_one,
        dead_letters::replay,
        dead_letters::discard,
        tiers::list,
        tiers::get_one,
        tiers::put,
        tiers::delete,
        admin::audit,
        explain::explain,
        live::live,
        docs::openapi_json,
        docs::page,
        docs::asset,
        ui::index,
        ui::file,
        signin::session,
        signin::login,
        signin::oidc_callback,
        signin::logout,
    ),
    components(schemas(Problem, answers::LiveSnapshot)),
    modifiers(&Finish),
    tags(
        (name = "decisions", description = "The decision doors: checks, forward-auth and concurrency leases"),
        (name = "operations", description = "Liveness, readiness and metrics"),
        (name = "keys", description = "API keys: created, read, changed, rotated, revoked, verified"),
        (name = "usage", description = "What keys have used and may still use, and the denials"),
        (name = "owners", description = "Key owners' records"),
        (name = "billing", description = "Current periods and closed periods' records"),
        (name = "tiers", description = "The policy's tiers"),
        (name = "config", description = "The policy in force"),
        (name = "counters", description = "Counters, read and reset"),
        (name = "jobs", description = "The job queue and its dead letters"),
        (name = "dead-letters", description = "Requests the reverse proxy could not deliver: listed, replayed, discarded"),
        (name = "alerts", description = "Alert rules, firing alerts and their history"),
        (name = "slo", description = "Service-level objectives: budgets and burn rates"),
        (name = "debug", description = "Profiling and the runtime, when the debug section turns them on"),
        (name = "audit", description = "The audit log of admin changes"),
        (name = "explain", description = "Why a check would get what it gets"),
        (name = "live", description = "The dashboard's live overview"),
        (name = "docs", description = "This description and the pages that show it"),
    ),
)]
struct ApiDoc;

/// The finishing touches no annotation can make: the security schemes, the methods that
/// share a handler, and the answers every route of a kind shares.
struct Finish;

impl utoipa::Modify for Finish {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ADMIN_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An admin token (`admin.token_file`, `admin.tokens`) or a JWT; each route \
                         needs a role (viewer, operator or admin)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (`tg_live_…`), on forward-auth",
            ))),
        );
        components.add_security_scheme(
            "apiKeyBearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key as a bearer token, on forward-auth when `X-API-Key` is absent",
                    ))
                    .build(),
            ),
        );
        let paths = &mut doc.paths.paths;
        // `POST /v1/config` replaces the policy as `PUT` does, and forward-auth answers any
        // method: each is one handler, so its other method is copied here.
        copy_operation(paths.get_mut("/v1/config"), Method::Put, "post_config");
        copy_operation(
            paths.get_mut("/v1/authorize"),
            Method::Get,
            "authorize_post",
        );
        for item in paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                shared_answers(op);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Put,
}

/// Copies the `from` operation of `item` to its POST, named `id`.
fn copy_operation(item: Option<&mut PathItem>, from: Method, id: &str) {
    let Some(item) = item else { return };
    let source = match from {
        Method::Get => item.get.clone(),
        Method::Put => item.put.clone(),
    };
    if let Some(mut op) = source {
        op.operation_id = Some(id.to_owned());
        item.post = Some(op);
    }
}

/// Adds to `op` the answers it shares with every route of its kind, unless it describes
/// them itself.
fn shared_answers(op: &mut Operation) {
    let admin = op
        .security
        .iter()
        .flatten()
        .any(|s| serde_json::to_value(s).is_ok_and(|v| v.get(ADMIN_TOKEN).is_some()));
    let has_body = op.request_body.is_some();
    let has_query = op.parameters.iter().flatten().any(|p| match p {
        RefOr::T(p) => matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query),
        RefOr::Ref(_) => false,
    });
    let mut add = |status: &str, description: &str, header: Option<(&str, &str)>| {
        if op.responses.responses.contains_key(status) {
            return;
        }
        let mut response = ResponseBuilder::new().description(description).content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
        if let Some((name, what)) = header {
            response = response.header(
                name,
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .description(Some(what))
                    .build(),
            );
        }
        op.responses
            .responses
            .insert(status.to_owned(), RefOr::T(response.build()));
    };
    if has_body {
        add(
            "400",
            "The body is not JSON (or YAML, where a document is read) or broke off \
             (`malformed-body`, `unreadable-body`)",
            None,
        );
        add(
            "413",
            "The body is larger than `server.max_body` (`body-too-large`)",
            None,
        );
        add(
            "415",
            "The body's declared type is not one the route reads (`unsupported-media-type`)",
            None,
        );
        add(
            "422",
            "The body does not fit the schema (`invalid-request`); `errors` names the field",
            None,
        );
    }
    if has_query {
        add(
            "400",
            "The query string does not fit the route's parameters (`invalid-query`)",
            None,
        );
    }
    if admin {
        add(
            "401",
            "Admin credentials are missing or refused (`unauthorized`)",
            Some(("WWW-Authenticate", "`Bearer`")),
        );
        add(
            "403",
            "The caller's role may not use this route (`forbidden`)",
            None,
        );
        add(
            "429",
            "Over the admin API's own limits (`rate-limited`)",
            Some(("Retry-After", "Seconds until a request would be admitted")),
        );
        add(
            "503",
            "No records database is configured (`keys-off`) or it did not answer \
             (`registry-unavailable`)",
            None,
        );
    }
    add(
        "408",
        "The request took longer than `server.request_timeout` (`timeout`)",
        None,
    );
}

/// The description, as a document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The description as pretty JSON with a final line break: what `/openapi.json` answers
/// and `docs/openapi.json` holds.
pub fn json() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let mut text = document()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
        text.push('\n');
        text
    })
}

/// The answer of `GET /openapi.json`.
pub fn answer() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::path::PathBuf;

    use serde_json::Value;

    use super::*;

    fn committed_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
    }

    /// `docs/openapi.json` is the description this code makes. `UPDATE_OPENAPI=1` writes it
    /// anew instead of failing.
    #[test]
    fn the_committed_description_is_current() {
        let path = committed_path();
        let now = json();
        if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
            std::fs::write(&path, now).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == now,
            "docs/openapi.json is stale: regenerate it with \
             `cargo run -p tollgate-server -- openapi > docs/openapi.json` \
             (or `UPDATE_OPENAPI=1 cargo nextest run -p tollgate-server openapi`) and commit it"
        );
    }

    /// Every route of the router is described, with each of its methods.
    #[test]
    fn every_route_is_described() {
        let doc: Value = serde_json::from_str(json()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let routes: &[(&str, &[&str])] = &[
            ("/v1/check", &["post"]),
            ("/v1/authorize", &["get", "post"]),
            ("/v1/release", &["post"]),
            ("/v1/renew", &["post"]),
            ("/healthz", &["get"]),
            ("/readyz", &["get"]),
            ("/metrics", &["get"]),
            ("/v1/config", &["get", "put", "post"]),
            ("/v1/counters", &["get"]),
            ("/v1/counters/{key}", &["delete"]),
            ("/v1/keys", &["get", "post"]),
            ("/v1/keys/verify", &["post"]),
            ("/v1/keys/{id}", &["get", "patch", "delete"]),
            ("/v1/keys/{id}/rotate", &["post"]),
            ("/v1/keys/{id}/usage", &["get"]),
            ("/v1/keys/{id}/usage/history", &["get"]),
            ("/v1/keys/{id}/limits", &["get"]),
            ("/v1/owners/{owner}/usage/history", &["get"]),
            ("/v1/owners/{owner}/billing/current", &["get"]),
            ("/v1/billing/records", &["get"]),
            ("/v1/owners", &["get"]),
            ("/v1/owners/{owner}", &["get", "put", "delete"]),
            ("/v1/alerts", &["get"]),
            ("/v1/slo", &["get"]),
            ("/v1/debug/pprof/profile", &["get"]),
            ("/v1/debug/runtime", &["get"]),
            ("/v1/debug/config", &["get"]),
            ("/v1/jobs", &["get"]),
            ("/v1/jobs/{id}", &["get"]),
            ("/v1/jobs/{id}/retry", &["post"]),
            ("/v1/jobs/{id}/discard", &["post"]),
            ("/v1/dead-letters", &["get"]),
            ("/v1/dead-letters/{id}", &["get", "delete"]),
            ("/v1/dead-letters/{id}/replay", &["post"]),
            ("/v1/violations", &["get"]),
            ("/v1/tiers", &["get"]),
            ("/v1/tiers/{name}", &["get", "put", "delete"]),
            ("/v1/audit", &["get"]),
            ("/v1/explain", &["post"]),
            ("/v1/live", &["get"]),
            ("/openapi.json", &["get"]),
            ("/docs", &["get"]),
            ("/docs/{asset}", &["get"]),
            ("/ui", &["get"]),
            ("/ui/{path}", &["get"]),
            ("/ui/auth/session", &["get"]),
            ("/ui/auth/oidc/login", &["get"]),
            ("/ui/auth/oidc/callback", &["get"]),
            ("/ui/auth/logout", &["post"]),
        ];
        for (path, methods) in routes {
            let item = paths
                .get(*path)
                .unwrap_or_else(|| panic!("{path} is not described"));
            for method in *methods {
                assert!(
                    item.get(*method).is_some(),
                    "{method} {path} is not described"
                );
            }
        }
        assert_eq!(paths.len(), routes.len(), "a described path is not routed");
        assert_eq!(doc["openapi"], "3.1.0");
    }

    /// Admin routes carry the admin scheme and its refusals; the decision doors do not.
    #[test]
    fn admin_routes_need_the_admin_token() {
        let doc: Value = serde_json::from_str(json()).unwrap();
        let keys = &doc["paths"]["/v1/keys"]["post"];
        assert_eq!(keys["security"][0][ADMIN_TOKEN], serde_json::json!([]));
        for status in ["401", "403", "429", "400", "413", "415", "422"] {
            assert!(
                keys["responses"][status].is_object(),
                "POST /v1/keys {status}"
            );
        }
        let check = &doc["paths"]["/v1/check"]["post"];
        assert!(check["security"].is_null());
        assert!(check["responses"]["401"].is_null());
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["apiKey"]["name"], "X-API-Key");
        assert_eq!(schemes[ADMIN_TOKEN]["scheme"], "bearer");
    }

    /// The problem schema names every kind of problem, as full URIs.
    #[test]
    fn problem_types_are_listed() {
        let doc: Value = serde_json::from_str(json()).unwrap();
        let kinds = doc["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        assert!(kinds.contains(&"https://tollgate.dev/problems/rate-limited".to_owned()));
        assert_eq!(kinds.len(), super::super::problem::KINDS.len());
    }
}

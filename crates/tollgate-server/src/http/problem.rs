//! RFC 9457 problem details: every error answer has a stable `type`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

/// Where problem types are documented.
const TYPE_BASE: &str = tollgate_engine::door::PROBLEM_TYPE_BASE;

/// Every kind of problem an answer may carry: its slug (the last segment of its `type`) and
/// when it is answered. The OpenAPI description lists these as the values `type` takes, so
/// a kind missing here is an answer that breaks the published schema.
pub const KINDS: &[(&str, &str)] = &[
    (
        "malformed-body",
        "400: the body is not JSON (or YAML, where a document is read)",
    ),
    ("unreadable-body", "400: the body broke off"),
    (
        "invalid-query",
        "400: the query string does not fit the route's parameters",
    ),
    (
        "invalid-request",
        "422 (400 on `/v1/authorize`): the body or query does not fit, `errors` names the field",
    ),
    (
        "invalid-subject",
        "422 (400 on forward-auth): an attribute of the subject is not valid",
    ),
    (
        "invalid-policy",
        "422: the policy (or tier) is not valid, with every error and its path",
    ),
    (
        "invalid-key-limits",
        "422: a key's tier or overrides are not valid",
    ),
    (
        "unsupported-media-type",
        "415: the body's declared type is not one the route reads",
    ),
    (
        "body-too-large",
        "413: the body is larger than `server.max_body`",
    ),
    (
        "timeout",
        "408: the request took longer than `server.request_timeout`",
    ),
    (
        "unauthorized",
        "401: admin credentials are missing or refused",
    ),
    ("forbidden", "403: the caller's role may not use the route"),
    (
        "rate-limited",
        "429: a limit refused the request (or the admin API's own limits)",
    ),
    ("quota-exceeded", "429: a quota refused the request"),
    (
        "key-invalid",
        "401: the API key is malformed, unknown, revoked or rotated out",
    ),
    ("key-disabled", "403: the API key is switched off"),
    ("key-expired", "403: the API key is past its expiry"),
    (
        "blocked",
        "403: the client is on a deny list or under a penalty",
    ),
    (
        "unavailable",
        "503: the limit store or the key registry could not answer a decision",
    ),
    ("not-found", "404: no such route"),
    (
        "method-not-allowed",
        "405: the route does not take this method",
    ),
    ("key-not-found", "404: no such key, or it is revoked"),
    ("tier-not-found", "404: no such tier"),
    ("owner-not-found", "404: no such owner record"),
    ("job-not-found", "404: no such job"),
    ("dead-letter-not-found", "404: no such dead letter"),
    ("no-such-rule", "404: no rule of that name"),
    ("billing-off", "404: billing is not configured"),
    (
        "debug-off",
        "404: the debug section does not turn the debugging routes on",
    ),
    ("tier-in-use", "409: keys are on the tier"),
    ("job-state", "409: the job cannot be moved from its state"),
    (
        "dead-letter-truncated",
        "409: the dead letter's body was kept cut, so it cannot be replayed",
    ),
    (
        "dead-letter-unroutable",
        "409: no proxy route takes the dead letter's URL now",
    ),
    (
        "dead-letter-replaying",
        "409: another replay of the dead letter is under way",
    ),
    (
        "proxy-off",
        "503: no reverse proxy is serving to replay through",
    ),
    ("profile-busy", "409: another CPU profile is being taken"),
    ("keys-off", "503: no records database is configured"),
    (
        "registry-unavailable",
        "503: the records database did not answer",
    ),
    ("store-unavailable", "503: the counter store did not answer"),
    ("not-ready", "503: the server is not ready yet"),
    ("internal", "500: a bug; the log has the details"),
];

/// The schema of a problem's `type`: one of the URIs of [`KINDS`].
pub struct ProblemType;

impl utoipa::PartialSchema for ProblemType {
    fn schema() -> RefOr<Schema> {
        use std::fmt::Write as _;
        let mut described = String::from("A stable URI naming the kind of problem:\n");
        for (slug, when) in KINDS {
            let _ = write!(described, "\n- `{slug}`: {when}");
        }
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("uri".into())))
            .enum_values(Some(
                KINDS.iter().map(|(slug, _)| format!("{TYPE_BASE}{slug}")),
            ))
            .description(Some(described))
            .into()
    }
}

impl utoipa::ToSchema for ProblemType {}

/// The schema of [`Problem::kind`], inline.
fn problem_type() -> RefOr<Schema> {
    <ProblemType as utoipa::PartialSchema>::schema()
}

/// One problem answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(description = "An RFC 9457 problem (`application/problem+json`): every error answer.")]
pub struct Problem {
    /// A stable URI naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(schema_with = problem_type)]
    pub kind: String,
    /// A short summary of the kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub detail: Option<String>,
    /// Every error, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    headers: Vec<(&'static str, String)>,
}

/// One error of a validation problem.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Where: `rules[2].period`, `subject.ip`, …
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem of kind `slug` (the last segment of its `type`).
    pub fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<Option<String>>,
    ) -> Self {
        debug_assert!(
            KINDS.iter().any(|(kind, _)| *kind == slug),
            "problem kind {slug:?} is not in KINDS"
        );
        Problem {
            kind: format!("{TYPE_BASE}{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// 400: the body is not JSON.
    pub fn malformed(detail: String) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-body",
            "The request body is not valid JSON",
            detail,
        )
    }

    /// 422: the body is JSON but not what the endpoint takes.
    pub fn invalid(detail: String) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "The request does not fit the schema",
            detail,
        )
    }

    /// 400: the query string does not fit the route's parameters.
    pub fn invalid_query(detail: String) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "The query string does not fit the route's parameters",
            detail,
        )
    }

    /// 415: the body is declared as a type the route does not read.
    pub fn unsupported_media_type(detail: String) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "The request body's type is not one this route reads",
            detail,
        )
    }

    /// 408: the request took longer than `server.request_timeout`.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "The request took too long",
            "the request did not complete within server.request_timeout".to_owned(),
        )
    }

    /// 401: admin routes need admin credentials; `why` says what was wrong with them.
    pub fn unauthorized(why: String) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Admin credentials required",
            Some(why),
        )
        .with_header("www-authenticate", "Bearer".into())
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Adds field errors.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        res
    }
}
/// A refused policy: 422 with every error and its path.
pub fn policy_problem(errs: tollgate_core::policy::ConfigErrors) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-policy",
        "The policy is not valid",
        None,
    )
    .with_errors(
        errs.0
            .into_iter()
            .map(|e| FieldError {
                path: e.path,
                message: e.message,
            })
            .collect(),
    )
}

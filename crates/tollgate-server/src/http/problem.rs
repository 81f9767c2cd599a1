//! RFC 9457 problem details: every error answer has a stable `type`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Where problem types are documented.
const TYPE_BASE: &str = tollgate_engine::door::PROBLEM_TYPE_BASE;

/// One problem answer.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// A stable URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Every error, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    headers: Vec<(&'static str, String)>,
}

/// One error of a validation problem.
#[derive(Debug, Serialize)]
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

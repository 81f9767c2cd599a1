//! `POST /v1/check`: decide one request, or a batch.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::{Deserializer, Visitor};
use tollgate_core::{Mode, Subject};
use tollgate_engine::{Attributes, Scope};

use super::body::{Reads, check_content_type, parse_json, read_limited};
use super::decision_json;
use super::problem::{FieldError, Problem};
use super::set_headers;
use crate::app::App;

/// The most checks one batch may hold.
const MAX_BATCH: usize = 100;

/// One check as the API takes it, its strings borrowed from the request body where they
/// hold no escapes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(expecting = "an object with `subject` and optional `cost` and `dry_run`")]
#[serde(deny_unknown_fields)]
pub struct CheckRequest<'a> {
    /// Who is asking.
    #[serde(borrow)]
    pub subject: SubjectIn<'a>,
    /// Units to consume (default 1); 0 only looks.
    #[serde(default = "one")]
    #[schema(default = 1, format = "uint64", maximum = 18446744073709551615_u64)]
    pub cost: u64,
    /// Evaluate without consuming.
    #[serde(default)]
    pub dry_run: bool,
}

/// One check, the first form of `POST /v1/check`'s body: as a check of a batch, except
/// that `cost` and `dry_run` may be null for their defaults.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = Check)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct OneCheckSchema<'a> {
    /// Who is asking.
    #[serde(borrow)]
    subject: SubjectIn<'a>,
    /// Units to consume (default 1); 0 only looks.
    #[schema(default = 1, format = "uint64", maximum = 18446744073709551615_u64)]
    cost: Option<u64>,
    /// Evaluate without consuming.
    dry_run: Option<bool>,
}

/// A batch of checks, decided in order: the other form of `POST /v1/check`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CheckBatch)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CheckBatchSchema<'a> {
    /// At most 100 checks.
    #[schema(max_items = 100)]
    #[serde(borrow)]
    checks: Vec<CheckRequest<'a>>,
}

super::answers::one_of!(
    CheckBodySchema,
    "The body of `POST /v1/check`: one check, or a batch.",
    OneCheckSchema<'static>,
    CheckBatchSchema<'static>
);

fn one() -> u64 {
    1
}

/// A string of the request body: a slice of it, unless it held an escape. (serde's own
/// `Cow` borrows only as a struct's direct field, not inside an `Option` or a map.)
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Slice;
        impl<'de> Visitor<'de> for Slice {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Slice)
    }
}

/// Subject attributes as the API takes them. Each string is a slice of the request body
/// unless it held an escape, so a check copies no attribute before it is normalised.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = Subject)]
#[serde(
    expecting = "an object of attributes (`user`, `ip`, `method`, `path`, `api_key`, `tenant`, `attributes`)"
)]
#[serde(deny_unknown_fields)]
pub struct SubjectIn<'a> {
    /// User id.
    #[serde(borrow)]
    #[schema(value_type = Option<String>)]
    pub user: Option<Text<'a>>,
    /// Client IP.
    #[serde(borrow)]
    #[schema(value_type = Option<String>)]
    pub ip: Option<Text<'a>>,
    /// HTTP method.
    #[serde(borrow)]
    #[schema(value_type = Option<String>)]
    pub method: Option<Text<'a>>,
    /// Request path.
    #[serde(borrow)]
    #[schema(value_type = Option<String>)]
    pub path: Option<Text<'a>>,
    /// The API key presented; counted by a fingerprint, never stored or echoed.
    #[serde(borrow)]
    #[schema(value_type = Option<String>)]
    pub api_key: Option<Text<'a>>,
    /// Tenant.
    #[serde(borrow)]
    #[schema(value_type = Option<String>)]
    pub tenant: Option<Text<'a>>,
    /// Any other attributes, matched as `attr.NAME`.
    #[serde(default, borrow)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub attributes: BTreeMap<Text<'a>, Text<'a>>,
}

impl SubjectIn<'_> {
    /// The normalised subject (the engine adds who the API key names), or a 422 naming
    /// the attribute at fault.
    pub fn build(&self, at: &str) -> Result<Subject, Problem> {
        let mut s = Subject::new();
        let mut errors = Vec::new();
        let fields = [
            ("user", self.user.as_deref()),
            ("ip", self.ip.as_deref()),
            ("method", self.method.as_deref()),
            ("path", self.path.as_deref()),
            ("tenant", self.tenant.as_deref()),
        ];
        for (name, value) in fields {
            if let Some(v) = value
                && let Err(e) = s.set(name, v)
            {
                errors.push(FieldError {
                    path: format!("{at}.{name}"),
                    message: e.to_string(),
                });
            }
        }
        for (name, value) in &self.attributes {
            if let Err(e) = s.set(&format!("attr.{name}"), value) {
                errors.push(FieldError {
                    path: format!("{at}.attributes.{name}"),
                    message: e.to_string(),
                });
            }
        }
        if errors.is_empty() {
            Ok(s)
        } else {
            Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-subject",
                "The subject has invalid attributes",
                None,
            )
            .with_errors(errors))
        }
    }
}

/// The body of `POST /v1/check`: one check, or `checks` for a batch.
#[derive(Debug, Deserialize)]
#[serde(
    expecting = "an object: `{\"subject\": {…}}` for one check, or `{\"checks\": [{\"subject\": {…}}, …]}` for a batch"
)]
#[serde(deny_unknown_fields)]
struct CheckBody<'a> {
    #[serde(borrow)]
    subject: Option<SubjectIn<'a>>,
    cost: Option<u64>,
    dry_run: Option<bool>,
    #[serde(borrow)]
    checks: Option<Vec<CheckRequest<'a>>>,
}

fn json_response(bytes: Vec<u8>) -> Response {
    let mut res = Response::new(Body::from(bytes));
    let headers = res.headers_mut();
    // Sized for every header the answer gets, so the map is allocated once rather than
    // grown when the decision's headers arrive.
    headers.reserve(super::ANSWER_HEADERS);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// `POST /v1/check`.
#[utoipa::path(
    post,
    path = "/v1/check",
    tag = "decisions",
    operation_id = "check",
    summary = "Decide one request, or a batch",
    description = "Consumes `cost` from every limit that matches the subject, or none of them when one refuses. \
A refusal is still a 200: `allowed` and `code` say so. An API key, if any, is presented in the body \
(`subject.api_key`), verified, and counted by a fingerprint.",
    request_body(content = CheckBodySchema, description = "One check, or `checks` for a batch of up to 100"),
    responses(
        (status = 200, description = "The decision (or, for a batch, one per check, without headers)",
            headers(
                ("RateLimit" = String, description = "The limit closest to refusing, as `\"name\";r=remaining;t=seconds` (IETF draft)"),
                ("RateLimit-Policy" = String, description = "Each limit's quota and window"),
                ("Retry-After" = String, description = "Seconds until the cost would be admitted, on refusals"),
                ("X-RateLimit-Limit" = String, description = "The closest limit's quota"),
                ("X-RateLimit-Remaining" = String, description = "What is left of it"),
                ("X-RateLimit-Reset" = String, description = "Seconds until it is whole again"),
            ),
            body = super::answers::CheckAnswer),
        (status = 422, description = "The body does not fit, or an attribute is invalid (`invalid-request`, `invalid-subject`)",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn check(State(app): State<Arc<App>>, req: Request) -> Response {
    serve(&app, req).await
}

/// `POST /v1/check` on `app`.
pub async fn serve(app: &App, req: Request) -> Response {
    if let Err(p) = check_content_type(req.headers(), Reads::Json) {
        return p.into_response();
    }
    // A body that came whole with its headers is read without arming the timer.
    let body = match tokio::time::timeout(
        app.request_timeout,
        read_limited(req.into_body(), app.max_body),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(p)) => return p.into_response(),
        Err(_) => return Problem::timeout().into_response(),
    };
    let parsed: CheckBody = match parse_json(&body) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    match parsed {
        CheckBody {
            subject: Some(subject),
            cost,
            dry_run,
            checks: None,
        } => {
            let req = CheckRequest {
                subject,
                cost: cost.unwrap_or(1),
                dry_run: dry_run.unwrap_or(false),
            };
            match decide(app, &req, "subject").await {
                Ok((json, headers)) => {
                    let mut res = json_response(json);
                    set_headers(&mut res, headers);
                    res
                }
                Err(p) => p.into_response(),
            }
        }
        CheckBody {
            subject: None,
            cost: None,
            dry_run: None,
            checks: Some(checks),
        } => {
            if checks.len() > MAX_BATCH {
                return Problem::invalid(format!(
                    "{} checks; a batch holds at most {MAX_BATCH}",
                    checks.len()
                ))
                .into_response();
            }
            let mut out = Vec::with_capacity(checks.len().saturating_mul(256).saturating_add(64));
            out.extend_from_slice(b"{\"results\":[");
            for (i, req) in checks.iter().enumerate() {
                match decide(app, req, &format!("checks[{i}].subject")).await {
                    Ok((json, _)) => {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(&json);
                    }
                    Err(p) => return p.into_response(),
                }
            }
            out.extend_from_slice(b"]}");
            json_response(out)
        }
        CheckBody {
            checks: Some(_), ..
        } => Problem::invalid(
            "a batch holds its checks in `checks`; `subject`, `cost` and `dry_run` go inside each"
                .into(),
        )
        .into_response(),
        CheckBody { .. } => Problem::invalid(
            "expected `subject` for one check, or `checks` (a list of checks) for a batch".into(),
        )
        .into_response(),
    }
}

async fn decide(
    app: &App,
    req: &CheckRequest<'_>,
    at: &str,
) -> Result<(Vec<u8>, tollgate_core::Headers), Problem> {
    let subject = req.subject.build(at)?;
    let request = tollgate_engine::Request {
        attributes: Attributes::Subject(subject),
        api_key: req.subject.api_key.as_deref(),
        cost: req.cost,
        mode: if req.dry_run {
            Mode::Preview
        } else {
            Mode::Consume
        },
    };
    let mut scope = Scope::default();
    let verdict = app.engine.decide(&mut scope, request).await;
    let d = &verdict.decision;
    let headers = d.headers();
    let leases = app.engine.leases(d);
    Ok((decision_json::to_vec(d, &headers, &leases), headers))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn plain_strings_are_borrowed_from_the_body_and_escaped_ones_unescaped() {
        let body = br#"{"subject":{"user":"42","path":"/a\"b","attributes":{"plan":"pro"}}}"#;
        let parsed: CheckBody<'_> = parse_json(body).unwrap();
        let subject = parsed.subject.unwrap();
        assert!(matches!(subject.user, Some(Text(Cow::Borrowed("42")))));
        assert_eq!(subject.path.as_deref(), Some("/a\"b"));
        let (name, value) = subject.attributes.iter().next().unwrap();
        assert!(matches!(
            (&name.0, &value.0),
            (Cow::Borrowed("plan"), Cow::Borrowed("pro"))
        ));
        assert!(matches!(subject.path, Some(Text(Cow::Owned(_)))));
    }
}

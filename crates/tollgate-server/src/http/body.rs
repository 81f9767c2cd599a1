//! Request bodies: JSON into its schema, YAML documents, and the problems a body that
//! cannot be read answers.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::problem::{FieldError, Problem};

/// Turns a body extraction failure into a problem (413 for an oversized body).
pub fn body_problem(rejection: BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The request body is too large",
            rejection.body_text(),
        )
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "unreadable-body",
            "The request body could not be read",
            rejection.body_text(),
        )
    }
}

/// Parses a JSON body into its schema: 400 when it is not JSON, 422 naming the field
/// (`checks[2].subject.ip`) when it does not fit.
pub fn parse_json<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, Problem> {
    // Tracking the path costs on every field; only a body that fails needs it, so that one
    // is parsed again to name where.
    serde_json::from_slice(body).or_else(|_| parse_json_with_path(body))
}

#[cold]
fn parse_json_with_path<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, Problem> {
    use serde_json::error::Category;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                Problem::malformed(inner.to_string())
            }
            Category::Data => {
                let at = if path == "." { String::new() } else { path };
                let detail = if at.is_empty() {
                    inner.to_string()
                } else {
                    format!("{at}: {inner}")
                };
                Problem::invalid(detail).with_errors(vec![FieldError {
                    path: at,
                    message: inner.to_string(),
                }])
            }
        }
    })?;
    // Trailing text after the value is as malformed as a broken one.
    de.end().map_err(|e| Problem::malformed(e.to_string()))?;
    Ok(value)
}

/// A YAML (or JSON) body as a document; 400 when it is neither.
pub fn yaml_body(body: Result<Bytes, BytesRejection>) -> Result<Value, Problem> {
    let body = body.map_err(body_problem)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| Problem::malformed("the body is not UTF-8".into()))?;
    tollgate_core::policy::parse::parse_yaml(text).map_err(|e| Problem::malformed(e.to_string()))
}

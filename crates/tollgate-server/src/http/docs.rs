//! `GET /openapi.json`, the API's OpenAPI description, and `GET /docs`, a page that shows
//! it. The page is three small files of our own under `docs/`, embedded in the binary: its
//! script reads `/openapi.json` and builds the page with DOM calls, so it runs under the
//! same strict Content-Security-Policy as the dashboard (this origin's script and style
//! only, nothing inline, nothing from elsewhere).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::problem::Problem;

/// The page's files: name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("docs/index.html"),
    ),
    (
        "docs.js",
        "text/javascript; charset=utf-8",
        include_bytes!("docs/docs.js"),
    ),
    (
        "docs.css",
        "text/css; charset=utf-8",
        include_bytes!("docs/docs.css"),
    ),
];

/// The `/openapi.json` and `/docs` routes, for merging into the router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(page))
        .route("/docs/", get(page))
        .route("/docs/{asset}", get(asset))
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "docs",
    operation_id = "openapi",
    summary = "This description (OpenAPI 3.1)",
    responses((status = 200, description = "The OpenAPI description of every route", body = Object)),
)]
pub async fn openapi_json() -> Response {
    super::openapi::answer()
}

/// `GET /docs`.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "docs",
    operation_id = "docs",
    summary = "A page showing this description",
    responses((status = 200, description = "The page; its script reads `/openapi.json`", body = String, content_type = "text/html")),
)]
pub async fn page() -> Response {
    serve("index.html")
}

/// `GET /docs/{asset}`.
#[utoipa::path(
    get,
    path = "/docs/{asset}",
    tag = "docs",
    operation_id = "docs_asset",
    summary = "The page's script and style",
    params(("asset" = String, Path, description = "`docs.js` or `docs.css`")),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/javascript"),
            (String = "text/css"),
            (String = "text/html"),
        )),
        (status = 404, description = "No such file (`not-found`)", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn asset(Path(name): Path<String>) -> Response {
    serve(&name)
}

fn serve(name: &str) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such route",
            Some(format!("no file {name:?} under /docs")),
        )
        .into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(super::ui::CSP),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        *bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files() {
        let page = std::str::from_utf8(FILES.first().unwrap().2).unwrap();
        assert!(page.contains(r#"src="/docs/docs.js""#));
        assert!(page.contains(r#"href="/docs/docs.css""#));
        // Nothing inline, which the policy would refuse.
        assert!(!page.contains("<script>") && !page.contains("<style") && !page.contains("style="));
        assert!(!page.contains("http://") && !page.contains("https://"));
        let res = serve("docs.js");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CONTENT_SECURITY_POLICY],
            super::super::ui::CSP
        );
        assert_eq!(serve("nope.js").status(), StatusCode::NOT_FOUND);
    }
}

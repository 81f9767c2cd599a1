//! The dashboard at `/ui`: the built front end in `ui/dist`, embedded in the binary so a
//! build needs no Node. Every page is the same `index.html` (the front end routes by
//! path); the assets are served with their content types and a strict
//! Content-Security-Policy that allows this origin's scripts, styles and connections only.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The dashboard's policy: nothing from another origin, no inline script or style, no
/// framing, forms posting nowhere.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its name under `ui/dist`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// The built front end. Its file names are fixed, so each is revalidated rather than
/// cached for long.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../../../../ui/dist/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../../ui/dist/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../../../ui/dist/app.css"),
    },
];

/// The `/ui` routes, for merging into the router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/{*path}", get(file))
}

/// `GET /ui`: the dashboard.
#[utoipa::path(
    get,
    path = "/ui",
    tag = "docs",
    operation_id = "dashboard",
    summary = "The dashboard",
    responses((status = 200, description = "The dashboard's page", body = String, content_type = "text/html")),
)]
pub async fn index() -> Response {
    serve("index.html")
}

/// `GET /ui/{path}`: an asset of the dashboard, or its page for the dashboard's own routes.
#[utoipa::path(
    get,
    path = "/ui/{path}",
    tag = "docs",
    operation_id = "dashboard_file",
    summary = "A dashboard asset, or the dashboard's page for its own routes",
    params(("path" = String, Path, description = "`app.js`, `app.css`, or a route of the dashboard (`keys/key_…`)")),
    responses((status = 200, description = "The asset, or the page",
        content(
            (String = "text/html"),
            (String = "text/javascript"),
            (String = "text/css"),
        ))),
)]
pub async fn file(Path(path): Path<String>) -> Response {
    serve(&path)
}

/// The asset at `path`, or the page itself for any path that is not an asset (the front
/// end's own routes, such as `/ui/keys/abc`).
fn serve(path: &str) -> Response {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == path)
        .or_else(|| ASSETS.iter().find(|a| a.name == "index.html"));
    let Some(asset) = asset else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        asset.bytes,
    )
        .into_response()
}

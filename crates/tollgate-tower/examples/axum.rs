//! An axum app behind the Tollgate layer, on the memory store.
//!
//! ```sh
//! cargo run -p tollgate-tower --example axum            # listens on 127.0.0.1:3000
//! curl -i localhost:3000/                               # RateLimit headers; 429 after 5 a minute
//! curl -i -H 'x-user: alice' localhost:3000/reports     # one report at a time per user
//! ```
//!
//! `TOLLGATE_POLICY=path/to/policy.yaml` uses another policy (the server's format);
//! `ADDR=127.0.0.1:8080` another address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tollgate_core::{MemoryStore, Policy};
use tollgate_engine::{Engine, EngineConfig};
use tollgate_tower::{TollgateLayer, TollgateUser};

const POLICY: &str = r#"
rules:
  - name: per-ip
    key: "ip:{ip}"
    limit: 5
    period: 1m
  - name: reports
    match: { path: "/reports" }
    key: "user:{user}"
    algorithm: concurrency
    limit: 1
"#;

/// Stands in for the application's authentication: trusts `x-user`.
async fn authenticate(mut req: Request, next: Next) -> Response {
    if let Some(user) = req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        let user = TollgateUser(user.to_owned());
        req.extensions_mut().insert(user);
    }
    next.run(req).await
}

/// A slow, streamed answer: its concurrency lease is held until the last chunk is sent.
async fn report() -> Body {
    Body::from_stream(chunks())
}

fn chunks() -> impl tokio_stream::Stream<Item = Result<String, std::io::Error>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for i in 1..=3 {
            // The example streams slowly on purpose, to show the lease held meanwhile.
            tokio::time::sleep(Duration::from_secs(1)).await;
            if tx.send(Ok(format!("part {i}\n"))).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let yaml = match std::env::var("TOLLGATE_POLICY") {
        Ok(path) => std::fs::read_to_string(path)?,
        Err(_) => POLICY.to_owned(),
    };
    let policy = Policy::from_yaml(&yaml).map_err(|e| e.to_string())?;
    let engine = Arc::new(Engine::new(
        MemoryStore::default(),
        policy,
        EngineConfig::default(),
    ));
    let tollgate = TollgateLayer::builder(engine)
        // Behind a local reverse proxy, its X-Forwarded-For names the client.
        .trusted_proxies(["127.0.0.1/32", "::1/128"])
        .header("x-tenant", "tenant")
        .build()?;
    let app = Router::new()
        .route("/", get(|| async { "hello\n" }))
        .route("/reports", get(report))
        .layer(tollgate)
        // Added last, so it runs first: the user is known when Tollgate decides.
        .layer(middleware::from_fn(authenticate));
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

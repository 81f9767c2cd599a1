//! Two layers, as in two processes, sharing their limits through a real Redis started for
//! the test on a free loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use tollgate_core::Policy;
use tollgate_engine::{Engine, EngineConfig};
use tollgate_redis::{RedisConfig, RedisStore, Topology};
use tollgate_testkit::Single;
use tollgate_tower::TollgateLayer;

use common::client_from;

fn instance(redis: &Single, yaml: &str) -> Arc<Engine<RedisStore>> {
    let config = RedisConfig::new(Topology::Single { url: redis.url() });
    let store = RedisStore::new(config).unwrap();
    let policy = Policy::from_yaml(yaml).unwrap();
    Arc::new(Engine::new(store, policy, EngineConfig::default()))
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

#[tokio::test]
async fn instances_share_a_limit_and_its_leases_through_redis() {
    let redis = Single::start().unwrap();
    let yaml = r#"
rules:
  - {name: per-ip, key: 'ip:{ip}', match: {path: '/'}, limit: 3, period: 1h}
  - {name: one-export, match: {path: '/export'}, algorithm: concurrency, limit: 1, lease_ttl: 1h}
"#;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(1);
    let mut rx = Some(rx);
    let mut urls = Vec::new();
    for i in 0..2 {
        let rx = Arc::new(Mutex::new(if i == 0 { rx.take() } else { None }));
        let router = Router::new()
            .route("/", get(|| async { "hello" }))
            .route(
                "/export",
                get(move || {
                    // The first instance streams from the test's channel; the second answers
                    // at once.
                    let rx = rx.lock().unwrap().take();
                    async move {
                        match rx {
                            Some(rx) => {
                                Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                            }
                            None => Body::from("done"),
                        }
                    }
                }),
            )
            .layer(TollgateLayer::new(instance(&redis, yaml)));
        urls.push(format!("http://{}", serve(router).await));
    }
    let client = client_from("127.0.0.1");
    let status = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };

    // Three requests over both instances use up the shared limit.
    for url in [&urls[0], &urls[1], &urls[0]] {
        assert_eq!(status(format!("{url}/")).await, 200);
    }
    assert_eq!(status(format!("{}/", urls[1])).await, 429);

    // A lease taken on one instance holds on the other while its body streams.
    let mut export = client
        .get(format!("{}/export", urls[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    assert_eq!(status(format!("{}/export", urls[1])).await, 429);
    tx.send(Ok("rows".into())).await.unwrap();
    drop(tx);
    assert_eq!(export.chunk().await.unwrap().unwrap(), "rows");
    assert!(export.chunk().await.unwrap().is_none());
    // Redis answers after a round trip, so the release completes on the runtime just after
    // the body ends: ask until it has, within a bound.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(format!("{}/export", urls[1])).await;
        if s == 200 {
            break;
        }
        assert_eq!(s, 429);
        assert!(Instant::now() < deadline, "the lease was never released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

//! The layer in front of a real tonic server (the gRPC health service), called by its
//! generated client: a refusal is a gRPC status, not an HTTP 429.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use tokio_stream::wrappers::TcpListenerStream;
use tollgate_tower::TollgateLayer;
use tonic::Code;
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use common::engine;

#[tokio::test]
async fn a_refused_call_is_resource_exhausted_in_trailers_only_form() {
    let engine = engine("rules: [{name: per-ip, key: 'ip:{ip}', limit: 2, period: 1h}]");
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .layer(TollgateLayer::new(engine))
            .add_service(health)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let check = || tonic::Request::new(HealthCheckRequest { service: "".into() });

    let ok = client.check(check()).await.unwrap();
    assert_eq!(
        ok.metadata().get("ratelimit").unwrap(),
        "\"per-ip\";r=1;t=1800"
    );
    assert_eq!(ok.into_inner().status, 1); // SERVING
    client.check(check()).await.unwrap();

    let refused = client.check(check()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused.message(),
        "Too many requests: limit \"per-ip\" exceeded"
    );
    assert_eq!(refused.metadata().get("retry-after").unwrap(), "1800");
}

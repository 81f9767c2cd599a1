//! Slack and PagerDuty against a real local HTTP receiver, and the retry classification of
//! its answers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use tollgate_notify::{Channel, NoticeEvent, Notifier, PagerDuty, Slack};

/// What the receiver got, and what it answers next.
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<(HeaderMap, serde_json::Value)>>>,
    answer: Arc<Mutex<(u16, Option<String>)>>,
}

async fn record(State(r): State<Receiver>, headers: HeaderMap, body: String) -> impl IntoResponse {
    r.bodies
        .lock()
        .unwrap()
        .push((headers, serde_json::from_str(&body).unwrap()));
    let (code, retry_after) = r.answer.lock().unwrap().clone();
    let mut out = HeaderMap::new();
    if let Some(ra) = retry_after {
        out.insert("retry-after", ra.parse().unwrap());
    }
    (StatusCode::from_u16(code).unwrap(), out, "ok")
}

async fn start(code: u16) -> (Receiver, SocketAddr, tokio::task::JoinHandle<()>) {
    let r = Receiver::default();
    *r.answer.lock().unwrap() = (code, None);
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::post(record))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (r, addr, task)
}

#[tokio::test]
async fn slack_message_shape() {
    let (r, addr, task) = start(200).await;
    let notifier = Notifier::new(Duration::from_secs(10)).unwrap();
    let slack =
        Channel::Slack(Slack::new(&format!("http://{addr}/services/T0/B0/secret")).unwrap());
    let mut notice = support::notice("alt_1");
    notice.body = "a < b & c".into();
    notifier.deliver(&slack, &notice).await.unwrap();
    notice.event = NoticeEvent::Resolved;
    notifier.deliver(&slack, &notice).await.unwrap();
    let got = r.bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0["idempotency-key"], "alt_1");
    assert_eq!(
        got[0].1,
        serde_json::json!({
            "text": "Firing: key_123 used 80% of its daily quota",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Firing: key_123 used 80% of its daily quota"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "a &lt; b &amp; c"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "alert `quota-80` · severity warning · fired"}]},
            ],
        })
    );
    assert_eq!(
        got[1].1["text"],
        "Resolved: key_123 used 80% of its daily quota"
    );
    assert_eq!(
        got[1].1["blocks"][2]["elements"][0]["text"],
        "alert `quota-80` · severity warning · resolved"
    );
    task.abort();
}

#[tokio::test]
async fn pagerduty_trigger_then_resolve() {
    let (r, addr, task) = start(202).await;
    let notifier = Notifier::new(Duration::from_secs(10)).unwrap();
    let pd = Channel::PagerDuty(
        PagerDuty::new(
            "R0UT1NGKEY0000000000000000000000",
            Some(&format!("http://{addr}/v2/enqueue")),
        )
        .unwrap(),
    );
    let mut notice = support::notice("alt_1");
    notifier.deliver(&pd, &notice).await.unwrap();
    notice.id = "alt_2".into();
    notice.event = NoticeEvent::Resolved;
    notifier.deliver(&pd, &notice).await.unwrap();
    let got = r.bodies.lock().unwrap().clone();
    assert_eq!(
        got[0].1,
        serde_json::json!({
            "routing_key": "R0UT1NGKEY0000000000000000000000",
            "event_action": "trigger",
            "dedup_key": "quota-80/key_123",
            "payload": {
                "summary": "key_123 used 80% of its daily quota",
                "source": "tollgate",
                "severity": "warning",
                "timestamp": "2026-11-30T00:53:20Z",
                "custom_details": {
                    "alert": "quota-80",
                    "notice_id": "alt_1",
                    "body": notice.body,
                    "data": notice.data,
                },
            },
        })
    );
    assert_eq!(
        got[1].1,
        serde_json::json!({
            "routing_key": "R0UT1NGKEY0000000000000000000000",
            "event_action": "resolve",
            "dedup_key": "quota-80/key_123",
        })
    );
    task.abort();
}

#[tokio::test]
async fn retry_classification() {
    let (r, addr, task) = start(429).await;
    *r.answer.lock().unwrap() = (429, Some("3".into()));
    let notifier = Notifier::new(Duration::from_secs(10)).unwrap();
    let slack = Channel::Slack(Slack::new(&format!("http://{addr}/services/x")).unwrap());
    let notice = support::notice("alt_1");

    let err = notifier.deliver(&slack, &notice).await.unwrap_err();
    assert!(err.retryable);
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)));

    *r.answer.lock().unwrap() = (400, None);
    let err = notifier.deliver(&slack, &notice).await.unwrap_err();
    assert!(!err.retryable, "{err}");
    assert_eq!(err.retry_after, None);
    assert!(err.reason.contains("400"), "{err}");

    *r.answer.lock().unwrap() = (503, None);
    let err = notifier.deliver(&slack, &notice).await.unwrap_err();
    assert!(err.retryable);

    *r.answer.lock().unwrap() = (408, None);
    assert!(
        notifier
            .deliver(&slack, &notice)
            .await
            .unwrap_err()
            .retryable
    );
    task.abort();

    // A closed port: connection refused, worth retrying; the URL (a secret) is not in the reason.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let slack =
        Channel::Slack(Slack::new(&format!("http://127.0.0.1:{closed}/services/secret")).unwrap());
    let err = notifier.deliver(&slack, &notice).await.unwrap_err();
    assert!(err.retryable, "{err}");
    assert!(!err.reason.contains("secret"), "{err}");
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_retryably() {
    // Accepts the connection and reads nothing back, so only the notifier's timeout ends it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let notifier = Notifier::new(Duration::from_millis(300)).unwrap();
    let hook =
        Channel::Webhook(tollgate_notify::Webhook::new(&format!("http://{addr}/"), None).unwrap());
    let err = notifier
        .deliver(&hook, &support::notice("alt_1"))
        .await
        .unwrap_err();
    assert!(err.retryable, "{err}");
    assert!(err.reason.contains("timed out"), "{err}");
    task.abort();
}

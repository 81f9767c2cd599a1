//! Webhooks: signatures against a known vector and verified by the Standard Webhooks
//! reference library in a real receiver.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod support;

use std::time::Duration;

use tollgate_notify::{
    Channel, NoticeEvent, Notifier, VerifyError, Webhook, WebhookSecret, sign, verify,
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[test]
fn known_vector() {
    // Signed once by the reference library's `Webhook.sign`.
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let (id, ts, body) = (
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        br#"{"test": 2432232314}"#,
    );
    let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    assert_eq!(sign(&secret, id, ts, body), expected);
    let tol = Duration::from_secs(300);
    assert_eq!(
        verify(&secret, (id, "1614265330", expected), body, ts, tol),
        Ok(())
    );
    // Several signatures: one matching is enough.
    let many = format!("v1,AAAA v2,xyz {expected}");
    assert_eq!(
        verify(&secret, (id, "1614265330", &many), body, ts + 10, tol),
        Ok(())
    );
    assert_eq!(
        verify(&secret, (id, "1614265330", "v1,AAAA"), body, ts, tol),
        Err(VerifyError::Signature)
    );
    assert_eq!(
        verify(&secret, (id, "1614265330", expected), b"{}", ts, tol),
        Err(VerifyError::Signature)
    );
    assert_eq!(
        verify(&secret, (id, "1614265330", expected), body, ts + 301, tol),
        Err(VerifyError::Expired)
    );
    assert_eq!(
        verify(&secret, (id, "soon", expected), body, ts, tol),
        Err(VerifyError::Timestamp)
    );
}

#[test]
fn bad_secrets_are_refused() {
    assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
    assert!(WebhookSecret::parse("whsec_not base64!").is_err());
    assert!(Webhook::new("ftp://example.com/", None).is_err());
    assert!(Webhook::new("not a url", None).is_err());
}

#[tokio::test]
async fn reference_library_verifies_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = support::Script::start(
        "webhook_receiver.py",
        dir.path(),
        &[SECRET, dir.path().to_str().unwrap()],
    );
    let url = format!("http://127.0.0.1:{}/hooks", receiver.port);
    let notifier = Notifier::new(Duration::from_secs(10)).unwrap();
    let channel = Channel::Webhook(Webhook::new(&url, Some(SECRET)).unwrap());
    let fired = support::notice("alt_1");
    let mut resolved = support::notice("alt_2");
    resolved.event = NoticeEvent::Resolved;
    notifier.deliver(&channel, &fired).await.unwrap();
    notifier.deliver(&channel, &resolved).await.unwrap();

    // A wrong secret: the receiver refuses it, which is not worth retrying.
    let wrong = Channel::Webhook(Webhook::new(&url, Some("whsec_c2VjcmV0")).unwrap());
    let err = notifier.deliver(&wrong, &fired).await.unwrap_err();
    assert!(!err.retryable, "{err}");
    assert!(err.reason.contains("400"), "{err}");

    let lines = std::fs::read_to_string(dir.path().join("received.jsonl")).unwrap();
    let got: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0]["verified"], true, "{}", got[0]);
    assert_eq!(got[1]["verified"], true, "{}", got[1]);
    assert_eq!(got[2]["verified"], false);
    let h = &got[0]["headers"];
    assert_eq!(h["webhook-id"], "alt_1");
    assert_eq!(h["idempotency-key"], "alt_1");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(
        h["user-agent"],
        concat!("tollgate/", env!("CARGO_PKG_VERSION"))
    );
    let body: serde_json::Value = serde_json::from_str(got[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "alert.fired");
    assert_eq!(body["timestamp"], "2026-11-30T00:53:20Z");
    assert_eq!(body["data"]["id"], "alt_1");
    assert_eq!(body["data"]["alert"], "quota-80");
    assert_eq!(body["data"]["dedup_key"], "quota-80/key_123");
    assert_eq!(body["data"]["severity"], "warning");
    assert_eq!(body["data"]["data"]["used"], 8000);
    assert_eq!(body["data"]["at"], 1_796_000_000);
    let body: serde_json::Value = serde_json::from_str(got[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "alert.resolved");
}

//! Email against a real aiosmtpd server: plain, STARTTLS with a private CA, and STARTTLS
//! required of a server that does not offer it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod support;

use std::path::Path;
use std::time::Duration;

use tollgate_notify::{Channel, Email, EmailSettings, Notifier, SmtpTls};

fn settings(port: u16, tls: SmtpTls) -> EmailSettings {
    EmailSettings {
        host: "localhost".into(),
        port,
        tls,
        from: "Tollgate <alerts@tollgate.test>".into(),
        to: vec!["ops@example.test".into(), "Ana <ana@example.test>".into()],
        ..EmailSettings::default()
    }
}

fn received(dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for n in 1.. {
        match std::fs::read_to_string(dir.join(format!("msg-{n}.json"))) {
            Ok(text) => out.push(serde_json::from_str(&text).unwrap()),
            Err(_) => break,
        }
    }
    out
}

fn assert_message(got: &serde_json::Value, tls: bool) {
    assert_eq!(got["tls"], tls, "{got}");
    assert_eq!(got["mail_from"], "alerts@tollgate.test");
    assert_eq!(
        got["rcpt_tos"],
        serde_json::json!(["ops@example.test", "ana@example.test"])
    );
    assert_eq!(got["subject"], "key_123 used 80% of its daily quota");
    assert_eq!(got["message_id"], "<alt_1.tollgate@tollgate.test>");
    assert_eq!(got["auto_submitted"], "auto-generated");
    assert_eq!(got["content_type"], "text/plain");
    assert_eq!(got["charset"], "utf-8");
    assert_eq!(
        got["body"].as_str().unwrap().trim_end(),
        "Key key_123 (acme) used 8000 of 10000 requests today — 80 %."
    );
    assert!(got["to"].as_str().unwrap().contains("ana@example.test"));
}

#[tokio::test]
async fn plain_when_starttls_not_offered() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::Script::start(
        "smtp_receiver.py",
        dir.path(),
        &[dir.path().to_str().unwrap()],
    );
    let notifier = Notifier::new(Duration::from_secs(10)).unwrap();
    let channel =
        Channel::Email(Email::new(settings(server.port, SmtpTls::StartTlsWhenOffered)).unwrap());
    notifier
        .deliver(&channel, &support::notice("alt_1"))
        .await
        .unwrap();
    let got = received(dir.path());
    assert_eq!(got.len(), 1);
    assert_message(&got[0], false);

    // Required STARTTLS from a server that does not offer it: an error, nothing sent.
    let required =
        Channel::Email(Email::new(settings(server.port, SmtpTls::StartTlsRequired)).unwrap());
    let err = notifier
        .deliver(&required, &support::notice("alt_2"))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err}");
    assert_eq!(received(dir.path()).len(), 1);
}

#[tokio::test]
async fn transient_and_permanent_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::Script::start(
        "smtp_receiver.py",
        dir.path(),
        &[dir.path().to_str().unwrap()],
    );
    let notifier = Notifier::new(Duration::from_secs(10)).unwrap();
    let to = |rcpt: &str| {
        let mut s = settings(server.port, SmtpTls::None);
        s.to = vec![rcpt.into()];
        Channel::Email(Email::new(s).unwrap())
    };
    let err = notifier
        .deliver(&to("later@example.test"), &support::notice("alt_1"))
        .await
        .unwrap_err();
    assert!(err.retryable, "{err}");
    let err = notifier
        .deliver(&to("nobody@example.test"), &support::notice("alt_1"))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err}");
    assert!(received(dir.path()).is_empty());
}

#[tokio::test]
async fn starttls_required_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = tollgate_testkit::certificates(certs_dir.path()).unwrap();
    let server = support::Script::start(
        "smtp_receiver.py",
        dir.path(),
        &[
            dir.path().to_str().unwrap(),
            certs.cert.to_str().unwrap(),
            certs.key.to_str().unwrap(),
        ],
    );
    let notifier = Notifier::new(Duration::from_secs(10)).unwrap();
    let mut s = settings(server.port, SmtpTls::StartTlsRequired);
    s.ca_file = Some(certs.ca.clone());
    let channel = Channel::Email(Email::new(s).unwrap());
    notifier
        .deliver(&channel, &support::notice("alt_1"))
        .await
        .unwrap();
    let got = received(dir.path());
    assert_eq!(got.len(), 1);
    assert_message(&got[0], true);

    // The same server is not trusted without the CA.
    let untrusted =
        Channel::Email(Email::new(settings(server.port, SmtpTls::StartTlsRequired)).unwrap());
    let err = notifier
        .deliver(&untrusted, &support::notice("alt_2"))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err}");
    assert_eq!(received(dir.path()).len(), 1);
}

#[test]
fn settings_are_validated() {
    let mut s = settings(25, SmtpTls::None);
    s.to = vec!["not an address".into()];
    assert!(Email::new(s).is_err());
    let mut s = settings(25, SmtpTls::None);
    s.to.clear();
    assert!(Email::new(s).is_err());
    let mut s = settings(25, SmtpTls::None);
    s.ca_file = Some("/nonexistent/ca.pem".into());
    assert!(Email::new(s).is_err());
}

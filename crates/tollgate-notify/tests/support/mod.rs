//! Test support: the test kit's receivers, stopped on drop, and a notice.
#![allow(dead_code)]

use std::path::Path;

use tollgate_notify::{Notice, NoticeEvent, Severity};

/// A receiver script of the test kit, stopped on drop.
pub struct Script {
    _receiver: tollgate_testkit::python::Receiver,
    /// The port it listens on.
    pub port: u16,
}

impl Script {
    /// Runs the test kit's `script` with `args`.
    pub fn start(script: &str, dir: &Path, args: &[&str]) -> Script {
        let receiver = tollgate_testkit::python::Receiver::start(script, dir, args).unwrap();
        Script {
            port: receiver.port,
            _receiver: receiver,
        }
    }
}

/// A fired notice.
pub fn notice(id: &str) -> Notice {
    Notice {
        id: id.into(),
        event: NoticeEvent::Fired,
        alert: "quota-80".into(),
        dedup_key: "quota-80/key_123".into(),
        severity: Severity::Warning,
        summary: "key_123 used 80% of its daily quota".into(),
        body: "Key key_123 (acme) used 8000 of 10000 requests today — 80 %.".into(),
        subject: None,
        data: serde_json::json!({"key": "key_123", "owner": "acme", "used": 8000, "limit": 10000, "period": "day"}),
        at: 1_796_000_000,
    }
}

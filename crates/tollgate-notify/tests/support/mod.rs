//! Test support: the test virtualenv's Python, helper processes stopped on drop, a notice.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tollgate_notify::{Notice, NoticeEvent, Severity};

/// The Python of the test virtualenv, which has standardwebhooks and aiosmtpd.
pub fn python() -> String {
    std::env::var("TOLLGATE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "TOLLGATE_TEST_PYTHON is not set: run scripts/test, which makes the test \
             virtualenv (standardwebhooks, aiosmtpd) and sets it"
        )
    })
}

/// A helper script from this folder, as a child process killed and reaped on drop.
pub struct Script {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Script {
    /// Runs `script` with `args`; it writes its port to `dir/port` once listening.
    pub fn start(script: &str, dir: &Path, args: &[&str]) -> Script {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(script);
        let child = Command::new(python())
            .arg(path)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("start python");
        let mut helper = Script { child, port: 0 };
        let port_file = dir.join("port");
        tollgate_testkit::wait_for(script, Duration::from_secs(30), || port_file.exists()).unwrap();
        helper.port = std::fs::read_to_string(&port_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        helper
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

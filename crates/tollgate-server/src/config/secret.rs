//! Key secrets: from the environment, from a file, or (in dev mode) made once and kept
//! beside the configuration.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tollgate_core::policy::parse::Errors;

/// `TOLLGATE_KEY_SECRET`, when set.
pub fn env_key_secret() -> Option<Vec<u8>> {
    std::env::var("TOLLGATE_KEY_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .map(String::into_bytes)
}

/// The environment variable `name`, when set and not empty: a secret given that way wins
/// over its file.
pub fn env_secret(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// A secret of any length read from `file` (relative to `base`), such as a client secret an
/// identity provider issued; never shown, even in an error.
pub fn read_text_secret(
    file: &str,
    base: Option<&Path>,
    at: &str,
    errs: &mut Errors,
) -> Option<String> {
    let p = base.map_or_else(|| PathBuf::from(file), |b| b.join(file));
    match std::fs::read_to_string(&p) {
        Ok(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Ok(_) => {
            errs.push(at, format!("{} is empty", p.display()));
            None
        }
        Err(e) => {
            errs.push(at, format!("cannot read {}: {e}", p.display()));
            None
        }
    }
}

/// A secret of at least 32 bytes read from `file` (relative to `base`).
pub fn read_secret(
    file: &str,
    base: Option<&Path>,
    at: &str,
    errs: &mut Errors,
) -> Option<tollgate_registry::KeySecret> {
    let p = base.map_or_else(|| PathBuf::from(file), |b| b.join(file));
    match std::fs::read(&p) {
        Ok(b) => match tollgate_registry::KeySecret::new(b.trim_ascii().to_vec()) {
            Ok(s) => Some(s),
            Err(e) => {
                errs.push(at, format!("{}: {e}", p.display()));
                None
            }
        },
        Err(e) => {
            errs.push(at, format!("cannot read {}: {e}", p.display()));
            None
        }
    }
}

static DEV_MODE: AtomicBool = AtomicBool::new(false);

/// Where dev mode keeps the key secret it generated, beside the configuration.
pub const DEV_SECRET_FILE: &str = ".tollgate-dev-secret";

/// Turns dev mode on for this process (`tollgate serve --dev`): API keys work without a
/// configured secret, and the embedded default has a database.
pub fn set_dev_mode() {
    DEV_MODE.store(true, Ordering::Relaxed);
}

/// Whether `tollgate serve --dev` turned dev mode on.
pub fn dev_mode() -> bool {
    DEV_MODE.load(Ordering::Relaxed)
}

/// Dev mode's key secret: read from [`DEV_SECRET_FILE`] beside the configuration, or made
/// once (128 random bits) and kept there, readable by this user only, so keys survive a
/// restart.
pub fn dev_secret(base: Option<&Path>) -> Result<Vec<u8>, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = base.unwrap_or(Path::new(".")).join(DEV_SECRET_FILE);
    match std::fs::read(&path) {
        Ok(b) if b.trim_ascii().len() >= 32 => return Ok(b.trim_ascii().to_vec()),
        Ok(_) => {
            return Err(format!(
                "{} holds no usable secret; remove it",
                path.display()
            ));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot read {}: {e}", path.display()));
        }
        Err(_) => {}
    }
    let secret = tollgate_registry::key::generate("dev").map_err(|e| e.to_string())?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(secret.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if let Ok(mut made) = GENERATED.lock() {
        *made = Some(path);
    }
    Ok(secret.into_bytes())
}

/// The file dev mode made a secret in, if it did since the last call: said in the log
/// once the log is up, which reading the configuration comes before.
pub fn take_generated() -> Option<std::path::PathBuf> {
    GENERATED.lock().ok().and_then(|mut made| made.take())
}

static GENERATED: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);

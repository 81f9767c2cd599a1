//! `tollgate hash-token`.

use std::process::ExitCode;

use anyhow::Context;

use crate::config;

/// `tollgate hash-token`: the SHA-256 of an admin token read from stdin, for
/// `admin.tokens[].sha256`.
pub fn run() -> anyhow::Result<ExitCode> {
    let mut token = String::new();
    std::io::stdin()
        .read_line(&mut token)
        .context("reading the token from stdin")?;
    let token = token.trim();
    if token.is_empty() {
        anyhow::bail!("no token on stdin (e.g. `printf %s \"$TOKEN\" | tollgate hash-token`)");
    }
    let hex: String = config::admin::digest(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("{hex}");
    Ok(ExitCode::SUCCESS)
}

//! `tollgate import`: other tools' configurations as Tollgate's.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Validates envoyproxy/ratelimit files as Tollgate would load them and prints them as the
/// `envoy:` section of a Tollgate configuration.
pub fn envoy(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut domains = Vec::new();
    let mut failed = false;
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let doc = match tollgate_core::policy::parse::parse_yaml(&text) {
            Ok(d) => d,
            Err(errs) => {
                for e in &errs.0 {
                    eprintln!("{}: {e}", file.display());
                }
                failed = true;
                continue;
            }
        };
        let one = serde_json::json!({ "envoy": [doc] });
        if let Err(errs) = tollgate_core::Policy::from_value(&one, &[]) {
            for e in &errs.0 {
                let path = e.path.strip_prefix("envoy[0]").unwrap_or(&e.path);
                eprintln!(
                    "{}: {}: {}",
                    file.display(),
                    path.trim_start_matches('.'),
                    e.message
                );
            }
            failed = true;
            continue;
        }
        domains.push(doc);
    }
    if failed {
        return Ok(ExitCode::FAILURE);
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    println!(
        "# Converted from {} by `tollgate import envoy`.",
        names.join(", ")
    );
    print!(
        "{}",
        serde_saphyr::to_string(&serde_json::json!({ "envoy": domains }))?
    );
    Ok(ExitCode::SUCCESS)
}

//! `tollgate import`: other tools' configurations as Tollgate's.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Validates envoyproxy/ratelimit files as Tollgate would load them and prints them as the
/// `envoy:` section of a Tollgate configuration.
pub fn envoy(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut domains = Vec::new();
    let mut sources = Vec::new();
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
        sources.push(file);
    }
    if failed {
        return Ok(ExitCode::FAILURE);
    }
    // Together, as Tollgate loads them: a domain's descriptors may not be defined twice
    // across two files.
    let all = serde_json::json!({ "envoy": domains });
    if let Err(errs) = tollgate_core::Policy::from_value(&all, &[]) {
        for e in &errs.0 {
            let (file, path) = source_of(&e.path, &sources);
            eprintln!("{file}: {path}: {}", e.message);
        }
        return Ok(ExitCode::FAILURE);
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    println!(
        "# Converted from {} by `tollgate import envoy`.",
        names.join(", ")
    );
    print!("{}", serde_saphyr::to_string(&all)?);
    Ok(ExitCode::SUCCESS)
}

/// The file an error of the merged `envoy` list (`envoy[k]…`) came from, and its path
/// inside that file.
fn source_of<'p>(path: &'p str, sources: &[&PathBuf]) -> (String, &'p str) {
    let found = path
        .strip_prefix("envoy[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(k, rest)| Some((sources.get(k.parse::<usize>().ok()?)?, rest)));
    match found {
        Some((file, rest)) => (file.display().to_string(), rest.trim_start_matches('.')),
        None => ("envoy".to_owned(), path),
    }
}

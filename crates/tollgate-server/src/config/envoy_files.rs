//! `envoy_files`: envoyproxy/ratelimit configuration files (or folders of them, by
//! pattern) added to the policy's `envoy` section.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{Errors, show};

use super::document::parse_named;

/// The files a path names: itself, or, when its file name has `*` or `?`, the files of its
/// folder that match, in name order (envoyproxy/ratelimit reads a whole folder).
fn expand(path: &Path, at: &str, errs: &mut Errors) -> Vec<PathBuf> {
    let pattern = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if !pattern.contains(['*', '?']) {
        return vec![path.to_owned()];
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| tollgate_core::policy::matcher::glob(pattern, n))
            })
            .collect(),
        Err(e) => {
            errs.push(at, format!("cannot list {}: {e}", dir.display()));
            return Vec::new();
        }
    };
    if found.is_empty() {
        errs.push(at, format!("{} matches no file", path.display()));
    }
    found.sort();
    found
}

/// `envoy[k]…` as the file it came from when `k` is past the `inline` entries.
pub fn file_path(path: &str, inline: usize, sources: &[String]) -> String {
    let index = path
        .strip_prefix("envoy[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)));
    match index {
        Some((k, rest)) => match k.checked_sub(inline).and_then(|i| sources.get(i)) {
            Some(source) => format!("{source}{rest}"),
            None => path.to_owned(),
        },
        _ => path.to_owned(),
    }
}

/// The document with the envoyproxy/ratelimit files named in `envoy_files` (paths
/// relative to the configuration's folder) added to its `envoy` section; `None` when it
/// names none.
pub fn with_envoy_files(
    doc: &Value,
    root: &Map<String, Value>,
    base: Option<&Path>,
    errs: &mut Errors,
) -> Option<(Value, Vec<String>)> {
    let files = root.get("envoy_files")?;
    let Value::Array(files) = files else {
        errs.push(
            "envoy_files",
            format!("expected a list of file paths, found {}", show(files)),
        );
        return None;
    };
    let mut envoy = match root.get("envoy") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    // Where each added document came from, for error paths.
    let mut sources = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let at = format!("envoy_files[{i}]");
        let Some(name) = f.as_str() else {
            errs.push(&at, format!("expected a file path, found {}", show(f)));
            continue;
        };
        let path = base.map_or_else(|| PathBuf::from(name), |b| b.join(name));
        for path in expand(&path, &at, errs) {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    errs.push(&at, format!("cannot read {}: {e}", path.display()));
                    continue;
                }
            };
            match parse_named(&text, &path.display().to_string()) {
                Ok(v) => {
                    envoy.push(v);
                    sources.push(format!("{at} ({})", path.display()));
                }
                Err(e) => {
                    for err in e.0 {
                        errs.push(&at, format!("{}: {}", path.display(), err));
                    }
                }
            }
        }
    }
    let mut merged = doc.clone();
    if let Value::Object(m) = &mut merged {
        m.insert("envoy".into(), Value::Array(envoy));
    }
    Some((merged, sources))
}

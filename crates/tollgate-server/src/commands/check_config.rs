//! `tollgate check-config`: validates a configuration file as `serve` would load it.

use std::process::ExitCode;

use crate::config;

/// Prints each error on a line of its own, after its path.
pub fn print_errors(errs: &tollgate_core::policy::ConfigErrors) {
    for e in &errs.0 {
        if e.path.is_empty() {
            eprintln!("{}", e.message);
        } else {
            eprintln!("{}: {}", e.path, e.message);
        }
    }
}

/// `tollgate check-config FILE`: every error with its path, or a summary.
pub fn run(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    match config::load(Some(file)) {
        Ok(c) => {
            println!(
                "{}: ok ({} rules, {} tiers, {} Envoy domains)",
                file.display(),
                c.policy.rules().len(),
                c.policy.tiers().iter().count(),
                c.policy.descriptors().len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errs) => {
            print_errors(&errs);
            eprintln!("{}: {} error(s)", file.display(), errs.0.len());
            Ok(ExitCode::FAILURE)
        }
    }
}

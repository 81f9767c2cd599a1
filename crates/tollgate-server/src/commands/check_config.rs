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
            if let Some(redis) = c.store.redis {
                redis_warning(redis)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errs) => {
            print_errors(&errs);
            eprintln!("{}: {} error(s)", file.display(), errs.0.len());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Asks the configured Redis how it is set to hold memory and prints what to change, if
/// anything; a Redis that does not answer is said so, without failing the check (the
/// file is valid whether or not its Redis is up right now).
fn redis_warning(redis: tollgate_redis::RedisConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match tollgate_redis::RedisStore::new(redis) {
            Ok(store) => match store.memory_warning().await {
                Ok(Some(warning)) => eprintln!("warning: store: {warning}"),
                Ok(None) => {}
                Err(e) => eprintln!("note: store: could not ask Redis how it holds memory: {e}"),
            },
            Err(e) => eprintln!("note: store: {e}"),
        }
    });
    Ok(())
}

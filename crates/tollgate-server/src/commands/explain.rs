//! `tollgate explain`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tollgate_core::policy::Listed;
use tollgate_core::time::{Clock, SystemClock};
use tollgate_core::{MemoryStore, Mode, Subject};

use super::check_config;
use crate::config;

/// `tollgate explain`: which rules match a subject, their keys, and what a request would
/// get on a fresh store.
pub fn run(
    path: Option<PathBuf>,
    pairs: &[String],
    cost: u64,
    tier: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let cfg = match config::load(path.as_deref()) {
        Ok(c) => c,
        Err(errs) => {
            check_config::print_errors(&errs);
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut subject = Subject::new();
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("--subject {pair:?}: expected NAME=VALUE"))?;
        subject
            .set(k.trim(), v)
            .with_context(|| format!("--subject {pair:?}"))?;
    }
    let limiter = tollgate_core::Limiter::new(
        MemoryStore::new(tollgate_core::MemoryStoreConfig { capacity: 1024 }),
        cfg.policy,
    );
    let policy = limiter.policy();
    println!(
        "rules examined: {} of {}",
        policy.candidate_count(&subject),
        policy.rules().len()
    );
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    if let Some(t) = tier {
        match policy.tiers().get(t) {
            Some(found) => println!("tier {t:?}: {} limits", found.limits.len()),
            None => println!("tier {t:?} is not defined: no tier limits apply"),
        }
        // Tier limits count per key (or owner): stand-ins where the subject names none.
        for (name, stand_in) in [
            ("key", "key_example"),
            ("attr.owner", "owner_example"),
            ("attr.tier", t),
        ] {
            if subject
                .text(&tollgate_core::subject::Attr::parse(name).context("attribute")?)
                .is_none()
            {
                subject.set(name, stand_in)?;
            }
        }
    }
    let listed = policy.listed_by(&subject);
    if let Some((listed, entry)) = &listed {
        let (list, answer) = match listed {
            Listed::Denied => ("deny", "refused whatever the rules say"),
            Listed::Allowed => ("allow", "admitted whatever the rules say"),
        };
        println!("on the {list} list ({list}.{entry}): {answer}");
    }
    let plan = policy.plan_keyed(&subject, cost, tier, &[]);
    let d = rt.block_on(limiter.decide_plan(plan, SystemClock.now(), Mode::Preview));
    if d.limits.is_empty() && listed.is_none() {
        println!("no rule applies: {}", d.code.as_str());
    }
    for l in &d.limits {
        println!(
            "rule {:?} key {:?}: {} (limit {}, remaining {}{})",
            l.rule.name,
            l.key,
            if l.exceeded() {
                "would deny"
            } else {
                "would allow"
            },
            l.outcome.limit,
            l.outcome.remaining,
            if l.shadow() { ", shadow" } else { "" }
        );
    }
    println!("decision on a fresh store: {}", d.code.as_str());
    // What the answer would carry, so the quota a rule shows can be read off.
    for (name, value) in d.headers().iter() {
        println!("  {name}: {value}");
    }
    Ok(ExitCode::SUCCESS)
}

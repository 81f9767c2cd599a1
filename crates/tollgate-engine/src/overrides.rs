//! Limits sent with Envoy descriptors, compiled once per (domain, limit, unit) and kept in a
//! bounded cache, so a request does not build a rule for every limit it sends.

use std::sync::Arc;

use tollgate_core::policy::Rule;
use tollgate_core::policy::descriptors::{UNITS, window_rule};

use crate::request::LimitOverride;

/// The most distinct sent limits kept; the cache admits by frequency, so a flood of
/// one-off limits cannot push out those in steady use.
const CAPACITY: u64 = 4_096;

pub(crate) struct Overrides {
    rules: moka::sync::Cache<(Box<str>, LimitOverride), Arc<Rule>>,
}

impl Overrides {
    pub(crate) fn new() -> Self {
        Overrides {
            rules: moka::sync::Cache::new(CAPACITY),
        }
    }

    /// The rule of limit `o` sent in `domain`; `None` for a unit Tollgate does not know.
    pub(crate) fn rule(&self, domain: &str, o: LimitOverride) -> Option<Arc<Rule>> {
        let (unit, len) = *UNITS.get(o.unit)?;
        let key = (Box::<str>::from(domain), o);
        Some(self.rules.get_with(key, || {
            let name = format!("envoy-override:{domain}:{}/{unit}", o.requests_per_unit);
            Arc::new(window_rule(name, u64::from(o.requests_per_unit), len))
        }))
    }
}

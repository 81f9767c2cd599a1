//! Planning a request of Envoy descriptors: each descriptor is looked up in its domain's
//! tree, limits named in another matched limit's `replaces` drop out, and a limit the
//! caller sent (Envoy's `limit` on a descriptor) stands in for the configured ones.

use serde_json::{Map, Value};
use smallvec::SmallVec;

use super::Policy;
use super::check::Check;
use super::descriptors::{self, DescriptorMatch};
use super::rule::Rule;

/// One request descriptor as planning reads it.
#[derive(Debug, Clone)]
pub struct DescriptorRequest<'r, 'p> {
    /// Its entries, in order: (key, value).
    pub entries: SmallVec<[(&'r str, &'r str); 4]>,
    /// Units it consumes (0 checks without consuming).
    pub cost: u64,
    /// A limit the caller sent for it, replacing the configured ones.
    pub limit: Option<&'p Rule>,
}

/// What one request descriptor brought into the plan.
#[derive(Debug, Clone, Default)]
pub struct PlannedDescriptor<'p> {
    /// Positions of its checks in [`DescriptorPlan::checks`].
    pub checks: SmallVec<[usize; 2]>,
    /// The matched limit's `rate_limit.name`.
    pub name: Option<&'p str>,
    /// `shadow_mode`: reported, never enforced.
    pub shadow: bool,
    /// The name of the descriptor's own metric, when it has one: its full counter key with
    /// `detailed_metric`, or the key `value_to_metric` builds (see
    /// [`DescriptorMatch::metric_key`]).
    pub detailed: Option<String>,
    /// The matched descriptor's `metadata`.
    pub metadata: Option<&'p Map<String, Value>>,
}

/// The checks of a descriptor request and, for each descriptor in order, which of them it
/// brought.
#[derive(Debug, Clone, Default)]
pub struct DescriptorPlan<'p> {
    /// Every check, in descriptor order.
    pub checks: SmallVec<[Check<'p>; 4]>,
    /// One entry per request descriptor (on the heap, so that the verdict that carries
    /// them stays small for the subject requests that have none).
    pub descriptors: Vec<PlannedDescriptor<'p>>,
}

impl Policy {
    /// The checks of a request of `descriptors` in `domain`.
    pub fn plan_descriptors<'p>(
        &'p self,
        domain: &str,
        descriptors: &[DescriptorRequest<'_, 'p>],
    ) -> DescriptorPlan<'p> {
        let found: SmallVec<[Option<DescriptorMatch<'p>>; 4]> = descriptors
            .iter()
            .map(|d| match d.limit {
                Some(_) => None,
                None => self.descriptors().find(domain, &d.entries),
            })
            .collect();
        // As envoyproxy/ratelimit: every matched limit's `replaces` counts, also that of an
        // unlimited limit or of one itself replaced.
        let replaced = |name: Option<&str>| {
            name.is_some_and(|n| {
                found
                    .iter()
                    .flatten()
                    .any(|m| m.limits.replaces.iter().any(|r| r == n))
            })
        };
        let mut plan = DescriptorPlan::default();
        for (d, found) in descriptors.iter().zip(&found) {
            let mut planned = PlannedDescriptor::default();
            if let Some(rule) = d.limit {
                let key = descriptors::counter_key(domain, d.entries.iter().copied());
                planned.checks.push(plan.checks.len());
                plan.checks.push(Check {
                    rule,
                    key: key.into(),
                    cost: d.cost,
                });
            } else if let Some(m) = found {
                let l = m.limits;
                planned.name = l.name.as_deref();
                planned.shadow = l.shadow;
                planned.detailed = m.metric_key.clone();
                planned.metadata = l.metadata.as_ref();
                if !l.unlimited && !replaced(l.name.as_deref()) {
                    for rule in &l.rules {
                        planned.checks.push(plan.checks.len());
                        plan.checks.push(Check {
                            rule,
                            key: m.counter_key.clone().into(),
                            cost: d.cost,
                        });
                    }
                }
            }
            plan.descriptors.push(planned);
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use smallvec::smallvec;

    use super::*;

    fn policy() -> Policy {
        Policy::from_yaml(
            r#"
envoy:
  - domain: web
    descriptors:
      - key: remote_address
        rate_limit: {name: per-ip, unit: minute, requests_per_unit: 10}
      - key: path
        value: /login
        rate_limit: {name: login, unit: minute, requests_per_unit: 3, replaces: [{name: per-ip}]}
      - key: health
        rate_limit: {unlimited: true}
"#,
        )
        .unwrap()
    }

    fn request<'r>(key: &'r str, value: &'r str) -> DescriptorRequest<'r, 'static> {
        DescriptorRequest {
            entries: smallvec![(key, value)],
            cost: 1,
            limit: None,
        }
    }

    #[test]
    fn each_descriptor_brings_its_checks_under_its_own_counter() {
        let p = policy();
        let plan = p.plan_descriptors("web", &[request("remote_address", "192.0.2.1")]);
        assert_eq!(plan.checks.len(), 1);
        assert_eq!(plan.checks[0].key, "web/remote_address=192.0.2.1");
        assert_eq!(plan.descriptors[0].name, Some("per-ip"));
        assert_eq!(plan.descriptors[0].checks.as_slice(), &[0]);
    }

    #[test]
    fn a_limit_named_in_replaces_drops_out() {
        let p = policy();
        let plan = p.plan_descriptors(
            "web",
            &[
                request("remote_address", "192.0.2.1"),
                request("path", "/login"),
            ],
        );
        assert_eq!(plan.checks.len(), 1);
        assert!(plan.descriptors[0].checks.is_empty());
        assert_eq!(plan.descriptors[1].name, Some("login"));
    }

    #[test]
    fn unlimited_and_unknown_descriptors_check_nothing() {
        let p = policy();
        let plan = p.plan_descriptors("web", &[request("health", "x"), request("nope", "y")]);
        assert!(plan.checks.is_empty());
        assert_eq!(plan.descriptors.len(), 2);
        assert!(
            p.plan_descriptors("other", &[request("path", "/login")])
                .checks
                .is_empty()
        );
    }

    #[test]
    fn a_sent_limit_replaces_the_configured_one() {
        let p = policy();
        let rule = descriptors::window_rule("sent".into(), 2, crate::time::NANOS_PER_SEC);
        let mut d = request("remote_address", "192.0.2.1");
        d.limit = Some(&rule);
        let plan = p.plan_descriptors("web", &[d]);
        assert_eq!(plan.checks.len(), 1);
        assert_eq!(plan.checks[0].rule.name, "sent");
        assert_eq!(plan.descriptors[0].name, None);
    }
}

//! The `slo` section: service-level objectives on routes or the gRPC door.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{
    Errors, as_map, check_fields, get_duration, get_str, join, show,
};
use tollgate_core::policy::settings::Setting;

use super::duration::within;
use crate::slo::minutes::Minutes;
use crate::slo::{Kind, Objective, Requests, SloSettings};

/// The longest budget window: the ring of minutes each objective keeps is this long.
const MAX_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// Reads the `slo` section.
pub fn parse(m: &Map<String, Value>, errs: &mut Errors) -> SloSettings {
    check_fields(m, "slo", FIELDS, errs);
    let flush_every = within(
        m,
        "flush_every",
        "slo",
        (Duration::from_millis(100), Duration::from_secs(60)),
        Duration::from_secs(10),
        errs,
    );
    let mut objectives = Vec::new();
    match m.get("objectives") {
        None => {}
        Some(Value::Array(items)) => {
            let mut names = BTreeSet::new();
            for (i, v) in items.iter().enumerate() {
                let at = format!("slo.objectives[{i}]");
                let Some(o) = as_map(v, &at, errs).and_then(|o| parse_objective(o, &at, errs))
                else {
                    continue;
                };
                if !names.insert(o.name.clone()) {
                    errs.push(
                        &join(&at, "name"),
                        format!("{:?} names another objective too", o.name),
                    );
                }
                objectives.push(o);
            }
        }
        Some(other) => errs.push(
            "slo.objectives",
            format!("expected a list of objectives, found {}", show(other)),
        ),
    }
    SloSettings {
        objectives,
        flush_every,
    }
}

fn parse_objective(m: &Map<String, Value>, at: &str, errs: &mut Errors) -> Option<Objective> {
    check_fields(m, at, OBJECTIVE_FIELDS, errs);
    let name = get_str(m, "name", at, errs).map(str::to_owned);
    let Some(name) = name else {
        errs.push(&join(at, "name"), "is required");
        return None;
    };
    let requests = match (get_str(m, "route", at, errs), get_str(m, "door", at, errs)) {
        (Some(route), None) if route.starts_with('/') => match route.strip_suffix('*') {
            Some(prefix) => Requests::Prefix(prefix.to_owned()),
            None => Requests::Path(route.to_owned()),
        },
        (Some(route), None) => {
            errs.push(
                &join(at, "route"),
                format!("{route:?} is not a path (e.g. /v1/check or /v1/keys/*)"),
            );
            return None;
        }
        (None, Some("grpc")) => Requests::Grpc,
        (None, Some(other)) => {
            errs.push(
                &join(at, "door"),
                format!("{other:?} is not grpc (HTTP routes are given by route)"),
            );
            return None;
        }
        (Some(_), Some(_)) => {
            errs.push(at, "has a route and a door where one is allowed");
            return None;
        }
        (None, None) => {
            errs.push(at, "needs a route (e.g. /v1/check) or door: grpc");
            return None;
        }
    };
    let kind = match get_duration(m, "latency", at, errs) {
        None => Kind::Availability,
        Some(0) => {
            errs.push(&join(at, "latency"), "must be more than 0");
            Kind::Availability
        }
        Some(ns) => Kind::Latency(Duration::from_nanos(ns)),
    };
    let target = match m.get("target") {
        None => {
            errs.push(&join(at, "target"), "is required (e.g. 99.9%)");
            0.999
        }
        Some(v) => parse_target(v).unwrap_or_else(|| {
            errs.push(
                &join(at, "target"),
                format!(
                    "{} is not a share between 0 and 100% (e.g. 99.9% or 0.999)",
                    show(v)
                ),
            );
            0.999
        }),
    };
    let window = within(
        m,
        "window",
        at,
        (Duration::from_secs(3_600), MAX_WINDOW),
        MAX_WINDOW,
        errs,
    );
    // A minute more than the window, so that the whole window is always in the ring.
    let minutes = usize::try_from(window.as_secs() / 60)
        .unwrap_or(0)
        .saturating_add(1);
    Some(Objective {
        name,
        requests,
        kind,
        target,
        window,
        minutes: Minutes::new(minutes),
    })
}

/// `99.9%` or `0.999`: a share strictly between 0 and 1.
fn parse_target(v: &Value) -> Option<f64> {
    let share = match v {
        Value::String(s) => s.trim().strip_suffix('%')?.trim().parse::<f64>().ok()? / 100.0,
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    (share > 0.0 && share < 1.0).then_some(share)
}

/// The fields of `slo`.
pub(crate) const FIELDS: &[Setting] = &[
    Setting::new(
        "objectives",
        "list of objectives",
        "The service-level objectives.",
    )
    .default("none"),
    Setting::new(
        "flush_every",
        "duration",
        "How often counts are written to the database and the metrics refreshed.",
    )
    .default("`10s`")
    .range("100ms to 1m"),
];

/// The fields of an objective.
pub(crate) const OBJECTIVE_FIELDS: &[Setting] = &[
    Setting::new(
        "name",
        "string",
        "Names the objective in metrics, `GET /v1/slo` and alert rules.",
    )
    .range("unique; required"),
    Setting::new(
        "route",
        "string",
        "The HTTP path counted; a trailing `*` takes every path under it.",
    )
    .range("starts with `/`; this or `door`"),
    Setting::new("door", "string", "The door counted instead of a route.").range("`grpc`"),
    Setting::new(
        "latency",
        "duration",
        "A latency objective: a request is good when answered within it, not failing.",
    )
    .default("availability: good when not failing")
    .range("longer than zero"),
    Setting::new(
        "target",
        "percent or share",
        "The share of good requests aimed at: `99.9%` or `0.999`.",
    )
    .range("between 0 and 100%, both excluded; required"),
    Setting::new("window", "duration", "The error budget's window.")
        .default("`30d`")
        .range("1h to 30d"),
];

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use tollgate_core::policy::parse::parse_yaml;

    use super::*;

    fn read(yaml: &str) -> Result<SloSettings, Vec<(String, String)>> {
        let doc = parse_yaml(yaml).unwrap();
        let mut errs = Errors::default();
        let s = parse(doc["slo"].as_object().unwrap(), &mut errs);
        errs.finish(s)
            .map_err(|e| e.0.into_iter().map(|e| (e.path, e.message)).collect())
    }

    #[test]
    fn objectives_read() {
        let s = read(
            "slo: { objectives: [
               { name: up, route: /v1/check, target: 99.9% },
               { name: fast, route: /v1/keys/*, latency: 5ms, target: 0.99, window: 7d },
               { name: envoy, door: grpc, target: 99.95% } ] }",
        )
        .unwrap();
        assert_eq!(s.objectives.len(), 3);
        assert_eq!(s.objectives[0].requests, Requests::Path("/v1/check".into()));
        assert!((s.objectives[0].target - 0.999).abs() < 1e-12);
        assert_eq!(
            s.objectives[1].requests,
            Requests::Prefix("/v1/keys/".into())
        );
        assert_eq!(
            s.objectives[1].kind,
            Kind::Latency(Duration::from_millis(5))
        );
        assert_eq!(s.objectives[1].window, Duration::from_secs(7 * 86_400));
        assert_eq!(s.objectives[2].requests, Requests::Grpc);
        assert!(s.objectives[1].counts(Some("/v1/keys/key_1")));
        assert!(!s.objectives[1].counts(None));
        assert!(s.objectives[1].good(false, Duration::from_millis(5)));
        assert!(!s.objectives[1].good(false, Duration::from_millis(6)));
        assert!(!s.objectives[0].good(true, Duration::ZERO));
    }

    #[test]
    fn mistakes_are_named() {
        for (yaml, path) in [
            (
                "slo: { objectives: [{ name: a, route: v1, target: 99% }] }",
                "slo.objectives[0].route",
            ),
            (
                "slo: { objectives: [{ name: a, route: /x, target: 100% }] }",
                "slo.objectives[0].target",
            ),
            (
                "slo: { objectives: [{ name: a, route: /x }] }",
                "slo.objectives[0].target",
            ),
            (
                "slo: { objectives: [{ name: a, door: smtp, target: 99% }] }",
                "slo.objectives[0].door",
            ),
            (
                "slo: { objectives: [{ name: a, route: /x, target: 99%, window: 90d }] }",
                "slo.objectives[0].window",
            ),
            (
                "slo: { objectives: [{ name: a, route: /x, target: 99% }, { name: a, route: /y, target: 99% }] }",
                "slo.objectives[1].name",
            ),
        ] {
            let errs = read(yaml).unwrap_err();
            assert!(errs.iter().any(|(p, _)| p == path), "{yaml}: {errs:?}");
        }
    }
}

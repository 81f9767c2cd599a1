//! The `telemetry` section: where traces go, and the standard `OTEL_*` variables that fill
//! in what it leaves out (or turn traces on without it).

use std::time::Duration;

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{Errors, check_fields, get_duration, get_str, join, show};
use tollgate_core::policy::settings::Setting;

use crate::telemetry::{Protocol, TelemetrySettings};

/// The share of traces kept when neither the section nor `OTEL_TRACES_SAMPLER` says.
const DEFAULT_RATIO: f64 = 0.01;

/// Reads the `telemetry` section (`None` when absent) with `env` (the process's
/// variables); gives the settings when traces are on.
pub fn parse(
    m: Option<&Map<String, Value>>,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<TelemetrySettings> {
    let at = "telemetry";
    let empty = Map::new();
    let section = m.unwrap_or(&empty);
    check_fields(section, at, FIELDS, errs);
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    let endpoint = get_str(section, "endpoint", at, errs)
        .map(str::to_owned)
        .or_else(|| var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let Some(endpoint) = endpoint else {
        if m.is_some() {
            errs.push(
                &join(at, "endpoint"),
                "is required (or OTEL_EXPORTER_OTLP_ENDPOINT), e.g. http://127.0.0.1:4317",
            );
        }
        return None;
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        errs.push(
            &join(at, "endpoint"),
            format!("{endpoint:?} is not an http:// or https:// URL"),
        );
    }
    let protocol = match get_str(section, "protocol", at, errs)
        .map(str::to_owned)
        .or_else(|| var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .as_deref()
    {
        None | Some("grpc") => Protocol::Grpc,
        Some("http/protobuf") => Protocol::HttpProtobuf,
        Some(other) => {
            errs.push(
                &join(at, "protocol"),
                format!("{other:?} is not grpc or http/protobuf"),
            );
            Protocol::Grpc
        }
    };
    let service_name = get_str(section, "service_name", at, errs)
        .map(str::to_owned)
        .or_else(|| var("OTEL_SERVICE_NAME"))
        .unwrap_or_else(|| "tollgate".into());
    let sample_ratio = match section.get("sample_ratio") {
        Some(v) => match v.as_f64().filter(|r| (0.0..=1.0).contains(r)) {
            Some(r) => r,
            None => {
                errs.push(
                    &join(at, "sample_ratio"),
                    format!("{} is not a number from 0 to 1", show(v)),
                );
                DEFAULT_RATIO
            }
        },
        None => sampler_from_env(
            var("OTEL_TRACES_SAMPLER"),
            var("OTEL_TRACES_SAMPLER_ARG"),
            errs,
        ),
    };
    let timeout = match get_duration(section, "timeout", at, errs).map(Duration::from_nanos) {
        None => Duration::from_secs(10),
        Some(d) if d.is_zero() || d > Duration::from_secs(60) => {
            errs.push(&join(at, "timeout"), "must be between 1ms and 1m");
            Duration::from_secs(10)
        }
        Some(d) => d,
    };
    Some(TelemetrySettings {
        endpoint,
        protocol,
        service_name,
        sample_ratio,
        timeout,
    })
}

/// The ratio `OTEL_TRACES_SAMPLER` (and its argument) give. Every sampler here follows
/// the caller's decision when a `traceparent` carries one.
fn sampler_from_env(sampler: Option<String>, arg: Option<String>, errs: &mut Errors) -> f64 {
    let mut ratio = || match arg.as_deref().map(str::trim).map(str::parse::<f64>) {
        None => 1.0,
        Some(Ok(r)) if (0.0..=1.0).contains(&r) => r,
        Some(_) => {
            errs.push(
                "telemetry.sample_ratio",
                format!("OTEL_TRACES_SAMPLER_ARG {arg:?} is not a number from 0 to 1"),
            );
            DEFAULT_RATIO
        }
    };
    match sampler.as_deref() {
        None => DEFAULT_RATIO,
        Some("always_on" | "parentbased_always_on") => 1.0,
        Some("always_off" | "parentbased_always_off") => 0.0,
        Some("traceidratio" | "parentbased_traceidratio") => ratio(),
        Some(other) => {
            errs.push(
                "telemetry.sample_ratio",
                format!("OTEL_TRACES_SAMPLER {other:?} is not always_on, always_off or (parentbased_)traceidratio"),
            );
            DEFAULT_RATIO
        }
    }
}

/// The fields of `telemetry`.
pub(crate) const FIELDS: &[Setting] = &[
    Setting::new(
        "endpoint",
        "URL",
        "The OTLP collector (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` when absent). Traces are off without one.",
    )
    .default("none"),
    Setting::new(
        "protocol",
        "`grpc` or `http/protobuf`",
        "How spans are sent (`OTEL_EXPORTER_OTLP_PROTOCOL` when absent); over HTTP, `/v1/traces` is added to an endpoint without a path.",
    )
    .default("`grpc`"),
    Setting::new(
        "service_name",
        "string",
        "The service name traces carry (`OTEL_SERVICE_NAME` when absent).",
    )
    .default("`tollgate`"),
    Setting::new(
        "sample_ratio",
        "number",
        "The share of traces started here that are kept; a caller's sampling decision is followed (`OTEL_TRACES_SAMPLER` and its argument when absent).",
    )
    .default("`0.01`")
    .range("0 to 1"),
    Setting::new("timeout", "duration", "How long one export may take.")
        .default("`10s`")
        .range("1ms to 1m"),
];

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tollgate_core::policy::parse::parse_yaml;

    use super::*;

    fn read(yaml: Option<&str>, vars: &[(&str, &str)]) -> (Option<TelemetrySettings>, Vec<String>) {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let env = |k: &str| vars.get(k).cloned();
        let doc = yaml.map(|y| parse_yaml(y).unwrap());
        let mut errs = Errors::default();
        let s = parse(doc.as_ref().and_then(|d| d.as_object()), &env, &mut errs);
        let errs = errs
            .finish(())
            .err()
            .map(|e| e.0.into_iter().map(|e| e.path).collect())
            .unwrap_or_default();
        (s, errs)
    }

    #[test]
    fn off_unless_configured() {
        assert_eq!(read(None, &[]).0, None);
        let (s, _) = read(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]);
        let s = s.unwrap();
        assert_eq!(s.protocol, Protocol::Grpc);
        assert_eq!(s.service_name, "tollgate");
        assert_eq!(s.sample_ratio, DEFAULT_RATIO);
        let off = read(
            None,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_SDK_DISABLED", "true"),
            ],
        );
        assert_eq!(off.0, None);
    }

    #[test]
    fn the_section_wins_and_variables_fill_in() {
        let (s, errs) = read(
            Some("{ endpoint: \"http://c:4318\", protocol: http/protobuf, sample_ratio: 0.5 }"),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://elsewhere:4317"),
                ("OTEL_SERVICE_NAME", "edge"),
                ("OTEL_TRACES_SAMPLER", "always_on"),
            ],
        );
        assert!(errs.is_empty(), "{errs:?}");
        let s = s.unwrap();
        assert_eq!(s.endpoint, "http://c:4318");
        assert_eq!(s.protocol, Protocol::HttpProtobuf);
        assert_eq!(s.service_name, "edge");
        assert_eq!(s.sample_ratio, 0.5);
        let (s, _) = read(
            None,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ],
        );
        assert_eq!(s.unwrap().sample_ratio, 0.25);
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(
            read(Some("{ protocol: grpc }"), &[]).1,
            ["telemetry.endpoint"]
        );
        assert_eq!(
            read(Some("{ endpoint: \"c:4317\" }"), &[]).1,
            ["telemetry.endpoint"]
        );
        assert_eq!(
            read(Some("{ endpoint: \"http://c\", sample_ratio: 2 }"), &[]).1,
            ["telemetry.sample_ratio"]
        );
        assert_eq!(
            read(Some("{ endpoint: \"http://c\", protocol: thrift }"), &[]).1,
            ["telemetry.protocol"]
        );
    }
}

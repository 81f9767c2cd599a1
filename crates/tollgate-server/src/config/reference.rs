//! The configuration reference, printed from the tables of settings the parsers check
//! fields against (`tollgate config reference`), so that the page cannot drift from what
//! the parsers accept. `docs/reference/configuration.md` is this output, and a test keeps
//! it so.

use std::fmt::Write as _;

use tollgate_core::policy::settings::{Section, Setting};

use super::document::SECTION_FIELDS;
use super::{admin, alerts, billing, database, debug, oidc, server, slo, store, telemetry};

/// The command that writes the reference page, named in the page and in the test that
/// finds it stale.
pub const REGENERATE: &str =
    "cargo run -p tollgate-server -- config reference > docs/reference/configuration.md";

/// The top-level fields: the server's sections, then the policy's.
pub fn top_level() -> Vec<Setting> {
    SECTION_FIELDS
        .iter()
        .chain(tollgate_core::policy::reference::top_level())
        .copied()
        .collect()
}

/// Every mapping of the configuration with its settings, in document order.
pub fn sections() -> Vec<Section> {
    let email = [alerts::EMAIL_FIELDS, alerts::SMTP_FIELDS].concat();
    let mut all = vec![
        Section::new("server", "The HTTP and gRPC listeners.", server::FIELDS),
        Section::new(
            "store",
            "Where counters live. The Redis settings apply with `kind: redis` (see \
             [Sharing limits through Redis](../redis.md)).",
            store::FIELDS,
        ),
        Section::new(
            "store.breaker",
            "The circuit breaker in front of Redis; while it is open each rule answers by \
             its `on_store_error`.",
            store::BREAKER_FIELDS,
        ),
        Section::new(
            "admin",
            "Admin credentials, the admin API's limits and CORS (see \
             [The admin API](../admin-api.md)).",
            admin::FIELDS,
        ),
        Section::new(
            "admin.tokens[]",
            "One static admin token.",
            admin::TOKEN_FIELDS,
        ),
        Section::new(
            "admin.jwt",
            "How JWT bearer tokens are checked.",
            admin::JWT_FIELDS,
        ),
        Section::new(
            "admin.oidc",
            "The dashboard's sign-in through an OpenID provider: the authorization code flow \
             with PKCE, state and nonce (see [The dashboard](../dashboard.md)).",
            oidc::FIELDS,
        ),
        Section::new(
            "admin.oidc.roles",
            "Which values of an ID token claim give which role; the highest role given counts.",
            oidc::ROLE_FIELDS,
        ),
        Section::new(
            "admin.rate_limit",
            "The admin API's own rate limits.",
            admin::RATE_LIMIT_FIELDS,
        ),
        Section::new(
            "admin.rate_limit.per_ip",
            "Requests per client IP.",
            admin::RATE_FIELDS,
        ),
        Section::new(
            "admin.rate_limit.per_token",
            "Requests per authenticated caller.",
            admin::RATE_FIELDS,
        ),
        Section::new(
            "database",
            "The records' database (see [API keys, tiers and usage](../keys.md)).",
            database::FIELDS,
        ),
        Section::new(
            "database.retention",
            "How long each kind of record is kept; `forever` keeps it.",
            database::RETENTION_FIELDS,
        ),
        Section::new(
            "billing",
            "Billing periods and price plans (see [Billing](../billing.md)).",
            billing::FIELDS,
        ),
        Section::new(
            "billing.plans.<tier>",
            "The price plan of one tier.",
            billing::PLAN_FIELDS,
        ),
        Section::new(
            "billing.plans.<tier>.overage",
            "The price of units beyond those included.",
            billing::OVERAGE_FIELDS,
        ),
        Section::new(
            "alerts",
            "Alerts and outreach (see [Alerts and outreach](../alerts.md)).",
            alerts::FIELDS,
        ),
        Section::new(
            "alerts.delivery",
            "Retries of deliveries.",
            alerts::DELIVERY_FIELDS,
        ),
        Section::new(
            "alerts.channels.<name>: webhook",
            "A channel of `type: webhook`.",
            alerts::WEBHOOK_FIELDS,
        ),
        Section::new(
            "alerts.channels.<name>: slack",
            "A channel of `type: slack`.",
            alerts::SLACK_FIELDS,
        ),
        Section::new(
            "alerts.channels.<name>: pagerduty",
            "A channel of `type: pagerduty`.",
            alerts::PAGERDUTY_FIELDS,
        ),
        Section::new(
            "alerts.channels.<name>: email",
            "A channel of `type: email`: recipients and the SMTP server.",
            &email,
        ),
        Section::new(
            "alerts.outreach",
            "How owners are told about their own accounts.",
            alerts::OUTREACH_FIELDS,
        ),
        Section::new(
            "alerts.outreach.email",
            "The SMTP server and sender of owners' mail.",
            alerts::SMTP_FIELDS,
        ),
        Section::new(
            "alerts.rules[]",
            "One alert rule: its own settings and exactly one of `usage`, `denials`, `spike`, \
             `failing`, `slo`.",
            alerts::RULE_FIELDS,
        ),
        Section::new(
            "alerts.rules[].usage",
            "An account's admitted units in the billing period.",
            alerts::USAGE_FIELDS,
        ),
        Section::new(
            "alerts.rules[].denials",
            "Denials in a window.",
            alerts::DENIALS_FIELDS,
        ),
        Section::new(
            "alerts.rules[].spike",
            "Denials far above a key's usual rate.",
            alerts::SPIKE_FIELDS,
        ),
        Section::new(
            "slo",
            "Service-level objectives (see [Observability](../observability.md)).",
            slo::FIELDS,
        ),
        Section::new("slo.objectives[]", "One objective.", slo::OBJECTIVE_FIELDS),
        Section::new(
            "telemetry",
            "Traces over OTLP (see [Observability](../observability.md#traces)).",
            telemetry::FIELDS,
        ),
        Section::new("debug", "The debugging routes.", debug::FIELDS),
    ];
    all.extend(tollgate_proxy::config::sections());
    all.extend(tollgate_core::policy::reference::sections());
    all
}

/// `text` made safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The reference page, in Markdown.
pub fn markdown() -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "# Configuration reference\n\n\
         <!-- Printed by `tollgate config reference`; regenerate with\n     {REGENERATE} -->\n\n\
         Every setting the configuration file accepts, printed from the tables the parsers \
         check fields against: a field that is not here is refused as unknown. Durations are \
         written `500ms`, `10s`, `1m`, `1h30m`, `1d` or as a number of seconds. Any setting of \
         the server's sections (not the policy's) can also be set by an environment variable: \
         `TOLLGATE_` and its path in upper case with `__` between levels, its value read as \
         YAML (`TOLLGATE_SERVER__LISTEN=0.0.0.0:8080`). `<name>` stands for a name of your \
         choosing, `[]` for each item of a list.\n\n\
         ## Top level\n\n\
         | field | type | default | meaning |\n|---|---|---|---|\n"
    );
    for s in top_level() {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            s.name,
            cell(s.ty),
            cell(s.default),
            cell(s.doc)
        );
    }
    for section in sections() {
        // Each table is an mdBook anchor, so a section's own page can include its table
        // rather than keep a copy that drifts.
        let _ = write!(
            out,
            "\n## `{}`\n\n{}\n\n<!-- ANCHOR: {} -->\n| setting | type | default | accepts | meaning |\n|---|---|---|---|---|\n",
            section.path,
            section.doc,
            anchor(section.path)
        );
        for s in &section.settings {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                s.name,
                cell(s.ty),
                cell(s.default),
                cell(s.range),
                cell(s.doc)
            );
        }
        let _ = writeln!(out, "<!-- ANCHOR_END: {} -->", anchor(section.path));
    }
    out
}

/// The mdBook anchor of the table of the section at `path`: its words in lower case,
/// joined by `-` (`alerts.channels.<name>: webhook` is `alerts-channels-name-webhook`).
pub fn anchor(path: &str) -> String {
    path.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use std::path::Path;

    use serde_json::{Map, Value};
    use tollgate_core::algorithm::AlgorithmKind;
    use tollgate_core::policy::parse::{Errors, parse_yaml};

    use super::*;
    use crate::config::document::SERVER_SECTIONS;

    fn section(path: &str) -> Section {
        sections()
            .into_iter()
            .find(|s| s.path == path)
            .unwrap_or_else(|| panic!("no section {path}"))
    }

    /// The settings of `path` whose default is one literal value (`` `75s` ``), as a
    /// mapping: writing them out must change nothing.
    fn literal_defaults(path: &str, skip: &[&str]) -> Map<String, Value> {
        let mut out = Map::new();
        for s in section(path).settings {
            let Some(text) = s
                .default
                .strip_prefix('`')
                .and_then(|d| d.strip_suffix('`'))
            else {
                continue;
            };
            if text.contains('`') || skip.contains(&s.name) {
                continue;
            }
            out.insert(s.name.to_owned(), parse_yaml(text).unwrap());
        }
        assert!(!out.is_empty(), "{path} has no literal default");
        out
    }

    fn with(mut base: Map<String, Value>, more: Map<String, Value>) -> Map<String, Value> {
        base.extend(more);
        base
    }

    fn map(yaml: &str) -> Map<String, Value> {
        parse_yaml(yaml).unwrap().as_object().unwrap().clone()
    }

    fn ok<T>(errs: Errors, value: T) -> T {
        errs.finish(value).unwrap()
    }

    #[test]
    fn the_committed_page_is_the_generated_one() {
        let page =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/reference/configuration.md");
        let committed = std::fs::read_to_string(&page).unwrap_or_default();
        assert!(
            committed == markdown(),
            "docs/reference/configuration.md is not what the parsers' tables print: run\n    {REGENERATE}"
        );
    }

    #[test]
    fn every_top_level_field_is_described_once() {
        let names: Vec<&str> = SECTION_FIELDS.iter().map(|s| s.name).collect();
        assert_eq!(names, SERVER_SECTIONS);
        let mut all: Vec<&str> = top_level().iter().map(|s| s.name).collect();
        all.sort_unstable();
        let before = all.len();
        all.dedup();
        assert_eq!(all.len(), before, "a top-level field described twice");
    }

    #[test]
    fn every_mapping_has_its_section() {
        // Mappings whose keys are the user's own (attributes, metadata) have no settings.
        let free = ["match", "metadata"];
        let segments: Vec<String> = sections()
            .iter()
            .flat_map(|s| {
                let path = s.path.split(':').next().unwrap_or(s.path);
                path.split('.')
                    .map(|p| p.trim_end_matches("[]").to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        let all = sections();
        let top = top_level();
        let settings = all.iter().flat_map(|s| s.settings.iter()).chain(top.iter());
        for s in settings {
            if s.ty.starts_with("mapping") && !free.contains(&s.name) {
                assert!(
                    segments.iter().any(|p| p == s.name),
                    "{} is a mapping without a section of its own",
                    s.name
                );
            }
            assert!(!s.doc.is_empty(), "{} has no description", s.name);
        }
    }

    #[test]
    fn every_algorithm_is_named() {
        let rule = section("rules[]");
        let algorithm = rule
            .settings
            .iter()
            .find(|s| s.name == "algorithm")
            .unwrap();
        for kind in AlgorithmKind::ALL {
            assert!(
                algorithm.range.contains(&format!("`{}`", kind.name())),
                "{} missing",
                kind.name()
            );
        }
    }

    #[test]
    fn server_defaults_are_the_parsers() {
        let mut errs = Errors::default();
        let absent = server::parse(&Map::new(), &mut errs);
        let written = server::parse(&literal_defaults("server", &[]), &mut errs);
        ok(errs, ());
        assert_eq!(format!("{absent:?}"), format!("{written:?}"));
    }

    #[test]
    fn store_defaults_are_the_parsers() {
        let redis = map("{kind: redis}");
        let mut errs = Errors::default();
        let absent = store::parse(&redis, None, &mut errs);
        let defaults = with(
            with(redis, literal_defaults("store", &["kind"])),
            map(&format!(
                "{{breaker: {}}}",
                Value::Object(literal_defaults("store.breaker", &[]))
            )),
        );
        let written = store::parse(&defaults, None, &mut errs);
        ok(errs, ());
        assert_eq!(format!("{absent:?}"), format!("{written:?}"));
        let mut errs = Errors::default();
        let memory = store::parse(&literal_defaults("store", &["url"]), None, &mut errs);
        ok(errs, ());
        assert_eq!(
            format!("{memory:?}"),
            format!("{:?}", store::StoreSettings::default())
        );
    }

    #[test]
    fn database_defaults_are_the_parsers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.secret"), "k".repeat(40)).unwrap();
        let base = map("{key_secret_file: key.secret}");
        let mut errs = Errors::default();
        let absent = database::parse(&base, Some(dir.path()), &mut errs);
        let retention = Value::Object(literal_defaults("database.retention", &[]));
        let defaults = with(
            with(base.clone(), literal_defaults("database", &[])),
            map(&format!("{{retention: {retention}}}")),
        );
        let written = database::parse(&defaults, Some(dir.path()), &mut errs);
        ok(errs, ());
        assert_eq!(format!("{absent:?}"), format!("{written:?}"));
        // Every field of retention is read: all `forever` keeps everything.
        let forever: Map<String, Value> = database::RETENTION_FIELDS
            .iter()
            .map(|s| (s.name.to_owned(), Value::String("forever".into())))
            .collect();
        let mut errs = Errors::default();
        let kept = database::parse(
            &with(
                base,
                map(&format!("{{retention: {}}}", Value::Object(forever))),
            ),
            Some(dir.path()),
            &mut errs,
        );
        let kept = ok(errs, kept).unwrap().retention;
        assert_eq!(
            kept,
            tollgate_registry::Retention {
                events: None,
                minute: None,
                hour: None,
                day: None,
                violations: None,
                audit: None,
                billing: None,
                jobs: None,
                dead_letters: None,
            }
        );
    }

    #[test]
    fn billing_and_slo_defaults_are_the_parsers() {
        let mut errs = Errors::default();
        let absent = billing::parse(&Map::new(), &mut errs);
        let written = billing::parse(&literal_defaults("billing", &[]), &mut errs);
        assert_eq!(absent, written);
        let absent = slo::parse(&Map::new(), &mut errs);
        let written = slo::parse(&literal_defaults("slo", &[]), &mut errs);
        ok(errs, ());
        assert_eq!(format!("{absent:?}"), format!("{written:?}"));
    }

    #[test]
    fn admin_defaults_are_the_parsers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jwt.secret"), "s".repeat(40)).unwrap();
        let base = map("{jwt: {hs256_secret_file: jwt.secret}}");
        let mut errs = Errors::default();
        let absent = admin::parse(Some(&base), None, Some(dir.path()), &mut errs);
        let mut jwt = literal_defaults("admin.jwt", &[]);
        jwt.insert("hs256_secret_file".into(), "jwt.secret".into());
        let mut written = Map::new();
        written.insert("jwt".into(), Value::Object(jwt));
        written.insert(
            "rate_limit".into(),
            Value::Object(literal_defaults("admin.rate_limit", &[])),
        );
        let written = admin::parse(Some(&written), None, Some(dir.path()), &mut errs);
        ok(errs, ());
        assert_eq!(format!("{absent:?}"), format!("{written:?}"));
        // Each limit's own default period is the one its section documents.
        let periods = map(&format!(
            "{{rate_limit: {{per_ip: {{limit: 600, period: {p}}}, per_token: {{limit: 1200, period: {p}}}}}}}",
            p = literal_defaults("admin.rate_limit.per_ip", &["limit"])["period"]
        ));
        let mut errs = Errors::default();
        let periods = admin::parse(Some(&periods), None, None, &mut errs);
        let none = admin::parse(None, None, None, &mut errs);
        ok(errs, ());
        assert_eq!(format!("{periods:?}"), format!("{none:?}"));
    }

    #[test]
    fn alert_and_channel_defaults_are_the_parsers() {
        let smtp = "{host: smtp.example, from: 'ops@example.com'}";
        let minimal = map(&format!(
            "{{channels: {{mail: {{type: email, to: 'a@example.com', host: smtp.example, from: 'ops@example.com'}}}}, outreach: {{email: {smtp}}}}}"
        ));
        let mut channel = literal_defaults("alerts.channels.<name>: email", &["type"]);
        for (k, v) in
            map("{type: email, to: 'a@example.com', host: smtp.example, from: 'ops@example.com'}")
        {
            channel.insert(k, v);
        }
        let mut outreach_email = literal_defaults("alerts.outreach.email", &[]);
        outreach_email.extend(map(smtp));
        let mut written = literal_defaults("alerts", &[]);
        written.insert(
            "delivery".into(),
            Value::Object(literal_defaults("alerts.delivery", &[])),
        );
        written.insert(
            "channels".into(),
            map(&format!("{{mail: {}}}", Value::Object(channel))).into(),
        );
        written.insert(
            "outreach".into(),
            map(&format!("{{email: {}}}", Value::Object(outreach_email))).into(),
        );
        let scope = tollgate_registry::BillingScope::Owner;
        let mut errs = Errors::default();
        let absent = alerts::parse(&minimal, None, scope, &mut errs);
        let written = alerts::parse(&written, None, scope, &mut errs);
        ok(errs, ());
        assert_eq!(format!("{absent:?}"), format!("{written:?}"));
    }

    #[test]
    fn telemetry_and_debug_defaults_are_the_parsers() {
        let no_env = |_: &str| None;
        let minimal = map("{endpoint: 'http://127.0.0.1:4317'}");
        let written = with(minimal.clone(), literal_defaults("telemetry", &[]));
        let mut errs = Errors::default();
        let absent = telemetry::parse(Some(&minimal), &no_env, &mut errs);
        let written = telemetry::parse(Some(&written), &no_env, &mut errs);
        assert!(absent.is_some());
        assert_eq!(absent, written);
        let written = debug::parse(&literal_defaults("debug", &[]), &mut errs);
        ok(errs, ());
        assert_eq!(written, debug::parse(&Map::new(), &mut Errors::default()));
    }

    #[test]
    fn every_table_has_its_own_anchor_and_pages_include_only_those() {
        let anchors: Vec<String> = sections().iter().map(|s| anchor(s.path)).collect();
        let mut unique = anchors.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), anchors.len(), "two sections share an anchor");
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        let mut included = 0;
        for entry in walk(&docs) {
            let text = std::fs::read_to_string(&entry).unwrap();
            for part in text.split("{{#include ").skip(1) {
                let Some((target, _)) = part.split_once("}}") else {
                    continue;
                };
                let Some(name) = target
                    .strip_prefix("reference/configuration.md:")
                    .or_else(|| target.strip_prefix("../reference/configuration.md:"))
                else {
                    continue;
                };
                assert!(
                    anchors.iter().any(|a| a == name),
                    "{} includes {name:?}, which is no section's anchor",
                    entry.display()
                );
                included += 1;
            }
        }
        assert!(included > 0, "no page includes a settings table");
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
        out
    }

    #[test]
    fn proxy_defaults_are_the_parsers() {
        let minimal = map(
            "{routes: [{upstream: api}], upstreams: {api: {origins: ['http://127.0.0.1:9'], health: {}}}}",
        );
        let object = |path: &str, skip: &[&str]| Value::Object(literal_defaults(path, skip));
        let mut route = literal_defaults("proxy.routes[]", &[]);
        route.insert("upstream".into(), "api".into());
        route.insert("retry".into(), object("proxy.routes[].retry", &[]));
        let mut upstream = literal_defaults("proxy.upstreams.<name>", &[]);
        upstream.insert(
            "origins".into(),
            parse_yaml("['http://127.0.0.1:9']").unwrap(),
        );
        for part in ["breaker", "budget", "health"] {
            upstream.insert(
                part.into(),
                object(&format!("proxy.upstreams.<name>.{part}"), &[]),
            );
        }
        let mut written = literal_defaults("proxy", &[]);
        written.insert("routes".into(), Value::Array(vec![Value::Object(route)]));
        written.insert(
            "upstreams".into(),
            Value::Object(Map::from_iter([(
                "api".to_owned(),
                Value::Object(upstream),
            )])),
        );
        let mut errs = Errors::default();
        let absent = tollgate_proxy::config::parse(&minimal, "proxy", None, &mut errs);
        let written = tollgate_proxy::config::parse(&written, "proxy", None, &mut errs);
        ok(errs, ());
        assert_eq!(format!("{absent:?}"), format!("{written:?}"));
    }
}

//! The `alerts` section: channels, rules, retries of deliveries and the message owners
//! get.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{
    Errors, as_map, check_fields, get_bool, get_str, get_u64, join, show,
};
use tollgate_core::policy::settings::Setting;
use tollgate_notify::{
    Channel, Email, EmailSettings, PagerDuty, Severity, Slack, SmtpTls, Webhook,
};
use tollgate_registry::BillingScope;

use super::duration::within;
use crate::alerts::{
    AlertRule, AlertSettings, DeliverySettings, Dependency, Message, Outreach, RuleKind, UsageLimit,
};

/// Reads the `alerts` section; `default_per` is whom billing bills, the default account
/// of usage rules.
pub fn parse(
    m: &Map<String, Value>,
    base: Option<&Path>,
    default_per: BillingScope,
    errs: &mut Errors,
) -> AlertSettings {
    let path = "alerts";
    check_fields(m, path, FIELDS, errs);
    let evaluate_every = within(
        m,
        "evaluate_every",
        path,
        (Duration::from_millis(10), Duration::from_secs(3_600)),
        Duration::from_secs(1),
        errs,
    );
    let delivery = m
        .get("delivery")
        .and_then(|v| as_map(v, "alerts.delivery", errs))
        .map_or_else(DeliverySettings::default, |d| parse_delivery(d, errs));
    let mut channels = BTreeMap::new();
    if let Some(c) = m
        .get("channels")
        .and_then(|v| as_map(v, "alerts.channels", errs))
    {
        for (name, v) in c {
            let at = format!("alerts.channels.{name}");
            if let Some(ch) = as_map(v, &at, errs).and_then(|c| parse_channel(c, &at, base, errs)) {
                channels.insert(name.clone(), ch);
            }
        }
    }
    let outreach = m
        .get("outreach")
        .and_then(|v| as_map(v, "alerts.outreach", errs))
        .map_or_else(Outreach::default, |o| parse_outreach(o, base, errs));
    let mut rules = Vec::new();
    match m.get("rules") {
        None => {}
        Some(Value::Array(items)) => {
            let mut names = BTreeSet::new();
            for (i, v) in items.iter().enumerate() {
                let at = format!("alerts.rules[{i}]");
                let Some(r) = as_map(v, &at, errs) else {
                    continue;
                };
                if let Some(rule) = parse_rule(r, &at, &channels, default_per, errs) {
                    if !names.insert(rule.name.clone()) {
                        errs.push(
                            &join(&at, "name"),
                            format!("{:?} names another rule too", rule.name),
                        );
                    }
                    rules.push(rule);
                }
            }
        }
        Some(other) => errs.push(
            "alerts.rules",
            format!("expected a list of rules, found {}", show(other)),
        ),
    }
    AlertSettings {
        evaluate_every,
        delivery,
        channels,
        rules,
        outreach,
    }
}

fn parse_delivery(m: &Map<String, Value>, errs: &mut Errors) -> DeliverySettings {
    let at = "alerts.delivery";
    check_fields(m, at, DELIVERY_FIELDS, errs);
    let d = DeliverySettings::default();
    let max_attempts = match get_u64(m, "max_attempts", at, errs) {
        None => d.max_attempts,
        Some(n @ 1..=100) => u32::try_from(n).unwrap_or(d.max_attempts),
        Some(_) => {
            errs.push(&join(at, "max_attempts"), "must be between 1 and 100");
            d.max_attempts
        }
    };
    let day = Duration::from_secs(86_400);
    let ms = Duration::from_millis(1);
    DeliverySettings {
        max_attempts,
        backoff: within(m, "backoff", at, (ms, day), d.backoff, errs),
        max_backoff: within(m, "max_backoff", at, (ms, day), d.max_backoff, errs),
        timeout: within(
            m,
            "timeout",
            at,
            (ms, Duration::from_secs(300)),
            d.timeout,
            errs,
        ),
    }
}

fn parse_channel(
    m: &Map<String, Value>,
    at: &str,
    base: Option<&Path>,
    errs: &mut Errors,
) -> Option<Channel> {
    let kind = get_str(m, "type", at, errs);
    let built = match kind {
        Some("webhook") => {
            check_fields(m, at, WEBHOOK_FIELDS, errs);
            let url = required(m, "url", at, errs)?;
            Webhook::new(url, get_str(m, "secret", at, errs)).map(Channel::Webhook)
        }
        Some("slack") => {
            check_fields(m, at, SLACK_FIELDS, errs);
            Slack::new(required(m, "url", at, errs)?).map(Channel::Slack)
        }
        Some("pagerduty") => {
            check_fields(m, at, PAGERDUTY_FIELDS, errs);
            let key = required(m, "routing_key", at, errs)?;
            PagerDuty::new(key, get_str(m, "events_url", at, errs)).map(Channel::PagerDuty)
        }
        Some("email") => {
            check_fields(m, at, &[EMAIL_FIELDS, SMTP_FIELDS].concat(), errs);
            let mut settings = parse_smtp(m, at, base, errs)?;
            settings.to = match m.get("to") {
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(many)) => many
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => {
                    errs.push(&join(at, "to"), "expected an address or a list of them");
                    return None;
                }
            };
            Email::new(settings).map(Channel::Email)
        }
        Some(other) => {
            errs.push(
                &join(at, "type"),
                format!("{other:?} is not webhook, slack, pagerduty or email"),
            );
            return None;
        }
        None => {
            errs.push(at, "needs a type: webhook, slack, pagerduty or email");
            return None;
        }
    };
    built.map_err(|e| errs.push(at, e.to_string())).ok()
}

fn required<'m>(
    m: &'m Map<String, Value>,
    field: &str,
    at: &str,
    errs: &mut Errors,
) -> Option<&'m str> {
    let v = get_str(m, field, at, errs);
    if v.is_none() && !m.contains_key(field) {
        errs.push(&join(at, field), "is required");
    }
    v
}

fn parse_smtp(
    m: &Map<String, Value>,
    at: &str,
    base: Option<&Path>,
    errs: &mut Errors,
) -> Option<EmailSettings> {
    let host = required(m, "host", at, errs)?.to_owned();
    let from = required(m, "from", at, errs)?.to_owned();
    let tls = match get_str(m, "tls", at, errs) {
        None | Some("starttls") => SmtpTls::StartTlsWhenOffered,
        Some("starttls_required") => SmtpTls::StartTlsRequired,
        Some("implicit") => SmtpTls::Implicit,
        Some("none") => SmtpTls::None,
        Some(other) => {
            errs.push(
                &join(at, "tls"),
                format!("{other:?} is not starttls, starttls_required, implicit or none"),
            );
            SmtpTls::StartTlsWhenOffered
        }
    };
    let default_port = if tls == SmtpTls::Implicit { 465 } else { 587 };
    let port = match get_u64(m, "port", at, errs) {
        None => default_port,
        Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).unwrap_or_else(|| {
            errs.push(&join(at, "port"), "must be between 1 and 65535");
            default_port
        }),
    };
    let ca_file = get_str(m, "ca_file", at, errs).map(|f| match base {
        Some(b) => b.join(f),
        None => PathBuf::from(f),
    });
    Some(EmailSettings {
        host,
        port,
        tls,
        ca_file,
        username: get_str(m, "username", at, errs).map(str::to_owned),
        password: get_str(m, "password", at, errs).map(str::to_owned),
        from,
        to: Vec::new(),
    })
}

fn parse_outreach(m: &Map<String, Value>, base: Option<&Path>, errs: &mut Errors) -> Outreach {
    let at = "alerts.outreach";
    check_fields(m, at, OUTREACH_FIELDS, errs);
    let email = m
        .get("email")
        .and_then(|v| as_map(v, "alerts.outreach.email", errs))
        .and_then(|e| {
            check_fields(e, "alerts.outreach.email", SMTP_FIELDS, errs);
            let settings = parse_smtp(e, "alerts.outreach.email", base, errs)?;
            // The recipient differs per owner; any address checks the rest.
            let mut probe = settings.clone();
            probe.to = vec![settings.from.clone()];
            match Email::new(probe) {
                Ok(_) => Some(settings),
                Err(err) => {
                    errs.push("alerts.outreach.email", err.to_string());
                    None
                }
            }
        });
    let default = Outreach::default().message;
    let message = parse_message(m, at, errs).unwrap_or(default);
    Outreach { email, message }
}

/// A rule's or the outreach's `subject` and `body`, checked against every variable a
/// message may use.
fn parse_message(m: &Map<String, Value>, at: &str, errs: &mut Errors) -> Option<Message> {
    if !m.contains_key("subject") && !m.contains_key("body") {
        return None;
    }
    let default = Outreach::default().message;
    let subject = get_str(m, "subject", at, errs).unwrap_or(&default.subject);
    let body = get_str(m, "body", at, errs).unwrap_or(&default.body);
    let sample = crate::alerts::notices::sample_vars();
    for (field, text) in [("subject", subject), ("body", body)] {
        if let Err(e) = tollgate_notify::render(text, &sample) {
            errs.push(&join(at, field), e.to_string());
        }
    }
    Some(Message {
        subject: subject.to_owned(),
        body: body.to_owned(),
    })
}

const KINDS: [&str; 5] = ["usage", "denials", "spike", "failing", "slo"];

fn parse_rule(
    m: &Map<String, Value>,
    at: &str,
    channels: &BTreeMap<String, Channel>,
    default_per: BillingScope,
    errs: &mut Errors,
) -> Option<AlertRule> {
    check_fields(m, at, RULE_FIELDS, errs);
    let name = required(m, "name", at, errs)?.to_owned();
    if name.is_empty() || name.len() > 64 || name.contains(['/', ' ']) {
        errs.push(
            &join(at, "name"),
            "must be 1 to 64 characters without spaces or slashes",
        );
    }
    let severity = match get_str(m, "severity", at, errs) {
        None | Some("warning") => Severity::Warning,
        Some("critical") => Severity::Critical,
        Some("error") => Severity::Error,
        Some("info") => Severity::Info,
        Some(other) => {
            errs.push(
                &join(at, "severity"),
                format!("{other:?} is not critical, error, warning or info"),
            );
            Severity::Warning
        }
    };
    let mut names = Vec::new();
    match m.get("channels") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                match v.as_str() {
                    Some(c) if channels.contains_key(c) => names.push(c.to_owned()),
                    Some(c) => errs.push(
                        &format!("{at}.channels[{i}]"),
                        format!("{c:?} is not a channel of alerts.channels"),
                    ),
                    None => errs.push(&format!("{at}.channels[{i}]"), "expected a channel name"),
                }
            }
        }
        Some(other) => errs.push(
            &join(at, "channels"),
            format!("expected a list of channel names, found {}", show(other)),
        ),
    }
    let outreach = get_bool(m, "outreach", at, errs).unwrap_or(false);
    let message = parse_message(m, at, errs);
    let present: Vec<&str> = KINDS.into_iter().filter(|k| m.contains_key(*k)).collect();
    let kind = match present.as_slice() {
        [one] => parse_kind(one, m, at, default_per, errs)?,
        [] => {
            errs.push(at, "needs one of usage, denials, spike, failing or slo");
            return None;
        }
        _ => {
            errs.push(
                at,
                format!("has {} where one is allowed", present.join(" and ")),
            );
            return None;
        }
    };
    if outreach && !matches!(kind, RuleKind::Usage { .. }) {
        errs.push(
            &join(at, "outreach"),
            "only usage rules are about an owner's account",
        );
    }
    Some(AlertRule {
        name,
        kind,
        severity,
        channels: names,
        outreach,
        message,
    })
}

fn parse_kind(
    kind: &str,
    m: &Map<String, Value>,
    at: &str,
    default_per: BillingScope,
    errs: &mut Errors,
) -> Option<RuleKind> {
    let at = join(at, kind);
    if kind == "slo" {
        // Whether the objective exists is checked with the `slo` section.
        return get_str(m, "slo", &at, errs).map(|o| RuleKind::Burn {
            objective: o.to_owned(),
        });
    }
    if kind == "failing" {
        return match get_str(m, "failing", &at, errs) {
            Some("store") => Some(RuleKind::Failing(Dependency::Store)),
            Some("registry") => Some(RuleKind::Failing(Dependency::Registry)),
            Some(other) => {
                errs.push(&at, format!("{other:?} is not store or registry"));
                None
            }
            None => None,
        };
    }
    let m = as_map(m.get(kind)?, &at, errs)?;
    match kind {
        "usage" => {
            check_fields(m, &at, USAGE_FIELDS, errs);
            let per = match get_str(m, "per", &at, errs) {
                None => default_per,
                Some("owner") => BillingScope::Owner,
                Some("key") => BillingScope::Key,
                Some(other) => {
                    errs.push(&join(&at, "per"), format!("{other:?} is not owner or key"));
                    default_per
                }
            };
            let percent = match get_u64(m, "percent", &at, errs) {
                Some(p @ 1..=1_000) => u32::try_from(p).unwrap_or(100),
                Some(_) => {
                    errs.push(&join(&at, "percent"), "must be between 1 and 1000");
                    100
                }
                None => 100,
            };
            let of = match m.get("of") {
                None => UsageLimit::Included,
                Some(Value::String(s)) if s == "included" => UsageLimit::Included,
                Some(v) => match v.as_i64().filter(|n| (1..1 << 53).contains(n)) {
                    Some(n) => UsageLimit::Units(n),
                    None => {
                        errs.push(
                            &join(&at, "of"),
                            format!(
                                "expected included or a number of units per period, found {}",
                                show(v)
                            ),
                        );
                        return None;
                    }
                },
            };
            Some(RuleKind::Usage { per, percent, of })
        }
        "denials" => {
            check_fields(m, &at, DENIALS_FIELDS, errs);
            let per_rule = match get_str(m, "per", &at, errs) {
                None | Some("key") => false,
                Some("rule") => true,
                Some(other) => {
                    errs.push(&join(&at, "per"), format!("{other:?} is not key or rule"));
                    false
                }
            };
            Some(RuleKind::Denials {
                per_rule,
                at_least: at_least(m, &at, errs),
                window: within(
                    m,
                    "window",
                    &at,
                    (Duration::from_secs(1), Duration::from_secs(86_400)),
                    Duration::from_secs(60),
                    errs,
                ),
            })
        }
        _ => {
            check_fields(m, &at, SPIKE_FIELDS, errs);
            let factor = match m.get("factor") {
                None => 5.0,
                Some(v) => match v.as_f64().filter(|f| (1.0..=1_000.0).contains(f)) {
                    Some(f) => f,
                    None => {
                        errs.push(&join(&at, "factor"), "must be a number from 1 to 1000");
                        5.0
                    }
                },
            };
            Some(RuleKind::Spike {
                factor,
                at_least: at_least(m, &at, errs),
                half_life: within(
                    m,
                    "half_life",
                    &at,
                    (Duration::from_secs(60), Duration::from_secs(7 * 86_400)),
                    Duration::from_secs(600),
                    errs,
                ),
            })
        }
    }
}

fn at_least(m: &Map<String, Value>, at: &str, errs: &mut Errors) -> u64 {
    match get_u64(m, "at_least", at, errs) {
        Some(n) if n >= 1 => n,
        Some(_) => {
            errs.push(&join(at, "at_least"), "must be at least 1");
            1
        }
        None => {
            errs.push(&join(at, "at_least"), "is required");
            1
        }
    }
}

/// The fields of `alerts`.
pub(crate) const FIELDS: &[Setting] = &[
    Setting::new(
        "evaluate_every",
        "duration",
        "How often the fleet's leader evaluates the rules.",
    )
    .default("`1s`")
    .range("10ms to 1h"),
    Setting::new("delivery", "mapping", "How deliveries are tried."),
    Setting::new(
        "channels",
        "mapping of channels",
        "Where alerts are sent, by channel name.",
    )
    .default("none"),
    Setting::new("rules", "list of rules", "When alerts fire.").default("none"),
    Setting::new(
        "outreach",
        "mapping",
        "How owners are told about their own accounts.",
    ),
];

/// The fields of `alerts.delivery`.
pub(crate) const DELIVERY_FIELDS: &[Setting] = &[
    Setting::new(
        "max_attempts",
        "integer",
        "Tries of one delivery before it is dead-lettered.",
    )
    .default("`12`")
    .range("1 to 100"),
    Setting::new(
        "backoff",
        "duration",
        "The ceiling of the first retry's wait, doubled on each retry.",
    )
    .default("`1s`")
    .range("1ms to 1d"),
    Setting::new(
        "max_backoff",
        "duration",
        "The longest wait between tries, and the cap on a receiver's `Retry-After`.",
    )
    .default("`10m`")
    .range("1ms to 1d"),
    Setting::new("timeout", "duration", "How long one try may take.")
        .default("`10s`")
        .range("1ms to 5m"),
];

/// The fields of a `webhook` channel.
pub(crate) const WEBHOOK_FIELDS: &[Setting] = &[
    Setting::new(
        "type",
        "string",
        "`webhook`: a signed JSON POST (Standard Webhooks).",
    )
    .range("required"),
    Setting::new("url", "URL", "Where it is posted.").range("required"),
    Setting::new("secret", "string", "The signing secret.")
        .default("unsigned")
        .range("`whsec_…`"),
];

/// The fields of a `slack` channel.
pub(crate) const SLACK_FIELDS: &[Setting] = &[
    Setting::new(
        "type",
        "string",
        "`slack`: a message to an incoming webhook.",
    )
    .range("required"),
    Setting::new("url", "URL", "The incoming webhook's URL.").range("required"),
];

/// The fields of a `pagerduty` channel.
pub(crate) const PAGERDUTY_FIELDS: &[Setting] = &[
    Setting::new(
        "type",
        "string",
        "`pagerduty`: an Events API v2 trigger, then resolve.",
    )
    .range("required"),
    Setting::new("routing_key", "string", "The integration's routing key.").range("required"),
    Setting::new("events_url", "URL", "The Events API endpoint.").default("PagerDuty's"),
];

/// The fields of an `email` channel beside its SMTP server's.
pub(crate) const EMAIL_FIELDS: &[Setting] = &[
    Setting::new("type", "string", "`email`: a plain-text message.").range("required"),
    Setting::new("to", "string or list", "The recipients.").range("required"),
];

/// The fields of an SMTP server's settings.
pub(crate) const SMTP_FIELDS: &[Setting] = &[
    Setting::new("host", "string", "The SMTP server.").range("required"),
    Setting::new("port", "integer", "Its port.")
        .default("`465` with `tls: implicit`, else `587`")
        .range("1 to 65535"),
    Setting::new(
        "tls",
        "string",
        "STARTTLS when offered, STARTTLS or fail, TLS from the start, or none.",
    )
    .default("`starttls`")
    .range("`starttls`, `starttls_required`, `implicit`, `none`"),
    Setting::new(
        "ca_file",
        "path",
        "PEM certificates the server is verified against.",
    )
    .default("the platform's roots"),
    Setting::new(
        "username",
        "string",
        "The login, when the server wants one.",
    ),
    Setting::new("password", "string", "Its password."),
    Setting::new("from", "string", "The sender's address.").range("required"),
];

/// The fields of `alerts.outreach`.
pub(crate) const OUTREACH_FIELDS: &[Setting] = &[
    Setting::new(
        "email",
        "mapping",
        "The SMTP server and sender for owners' mail.",
    )
    .default("owners are told by webhook only"),
    Setting::new("subject", "template", "The owner's message's subject.")
        .default("a plain message"),
    Setting::new("body", "template", "The owner's message's body.").default("a plain message"),
];

/// The fields of an alert rule: its own, and exactly one of the kinds.
pub(crate) const RULE_FIELDS: &[Setting] = &[
    Setting::new("name", "string", "Names the rule in alerts.")
        .range("1 to 64 characters, no spaces or slashes; unique; required"),
    Setting::new("severity", "string", "How bad it is.")
        .default("`warning`")
        .range("`critical`, `error`, `warning`, `info`"),
    Setting::new("channels", "list of channel names", "Where it is sent.")
        .default("none")
        .range("names of `alerts.channels`"),
    Setting::new(
        "outreach",
        "boolean",
        "Usage rules: tell the account's owner too.",
    )
    .default("`false`"),
    Setting::new("subject", "template", "The message's subject.")
        .default("`alerts.outreach.subject`"),
    Setting::new("body", "template", "The message's body.").default("`alerts.outreach.body`"),
    Setting::new(
        "usage",
        "mapping",
        "Fires when an account's units in the billing period reach a share of a limit.",
    ),
    Setting::new(
        "denials",
        "mapping",
        "Fires when one key's or one rule's denials in a window reach a count.",
    ),
    Setting::new(
        "spike",
        "mapping",
        "Fires when a key's denials in a minute far exceed its usual rate.",
    ),
    Setting::new(
        "failing",
        "string",
        "Fires while the store or the records database does not answer.",
    )
    .range("`store`, `registry`"),
    Setting::new(
        "slo",
        "string",
        "Fires when an objective's error budget burns too fast.",
    )
    .range("a name of `slo.objectives`"),
];

/// The fields of a rule's `usage`.
pub(crate) const USAGE_FIELDS: &[Setting] = &[
    Setting::new("per", "string", "Whose units count.")
        .default("`billing.by`")
        .range("`owner`, `key`"),
    Setting::new("percent", "integer", "The share of `of` that fires.")
        .default("`100`")
        .range("1 to 1000"),
    Setting::new(
        "of",
        "`included` or integer",
        "The tier plan's included units, or a number of units per period.",
    )
    .default("`included`")
    .range("`included`, or 1 to 2⁵³−1"),
];

/// The fields of a rule's `denials`.
pub(crate) const DENIALS_FIELDS: &[Setting] = &[
    Setting::new("per", "string", "Count each key's denials, or each rule's.")
        .default("`key`")
        .range("`key`, `rule`"),
    Setting::new("at_least", "integer", "The denials that fire.").range("1 or more; required"),
    Setting::new("window", "duration", "The window they are counted in.")
        .default("`1m`")
        .range("1s to 1d"),
];

/// The fields of a rule's `spike`.
pub(crate) const SPIKE_FIELDS: &[Setting] = &[
    Setting::new(
        "factor",
        "number",
        "How many times its usual rate a key's denials must exceed.",
    )
    .default("`5`")
    .range("1 to 1000"),
    Setting::new(
        "at_least",
        "integer",
        "The fewest denials in the minute that fire.",
    )
    .range("1 or more; required"),
    Setting::new(
        "half_life",
        "duration",
        "How fast the usual rate forgets: its memory halves this often.",
    )
    .default("`10m`")
    .range("1m to 7d"),
];

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use tollgate_core::policy::parse::parse_yaml;

    use super::*;

    /// The errors of a configuration made of a database (whose secret is in a file),
    /// `rest`, and no policy.
    fn errors(rest: &str) -> Vec<(String, String)> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.secret"), "k".repeat(40)).unwrap();
        let yaml = format!("database: {{key_secret_file: key.secret}}\n{rest}\nrules: []\n");
        match crate::config::validate(parse_yaml(&yaml).unwrap(), Some(dir.path())) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    #[test]
    fn a_whole_section_reads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.secret"), "k".repeat(40)).unwrap();
        let yaml = r#"
database: {key_secret_file: key.secret}
billing: { plans: { pro: { included: 1000 } } }
alerts:
  evaluate_every: 250ms
  delivery: { max_attempts: 3, backoff: 2s, max_backoff: 1m, timeout: 5s }
  channels:
    ops: { type: webhook, url: "https://ops.example/hook", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }
    chat: { type: slack, url: "https://hooks.slack.example/services/x" }
    pager: { type: pagerduty, routing_key: "r0ut1ng" }
    mail: { type: email, host: smtp.example, tls: implicit, from: "t@example.com", to: "oncall@example.com" }
  outreach:
    email: { host: smtp.example, from: "billing@example.com" }
  rules:
    - { name: included-80, usage: { percent: 80 }, channels: [chat], outreach: true, subject: "{{ owner.name }}" }
    - { name: quota, usage: { per: key, of: 5000 } }
    - { name: denials, denials: { per: rule, at_least: 10, window: 5m }, severity: error, channels: [ops, mail] }
    - { name: spike, spike: { factor: 3, at_least: 20 } }
    - { name: store, failing: store, severity: critical, channels: [pager] }
rules: []
"#;
        let cfg = crate::config::validate(parse_yaml(yaml).unwrap(), Some(dir.path())).unwrap();
        let a = cfg.alerts.unwrap();
        assert_eq!(a.evaluate_every, Duration::from_millis(250));
        assert_eq!(a.delivery.max_attempts, 3);
        assert_eq!(a.channels.len(), 4);
        assert_eq!(a.outreach.email.as_ref().unwrap().port, 587);
        assert_eq!(a.rules.len(), 5);
        assert_eq!(
            a.rules[1].kind,
            RuleKind::Usage {
                per: BillingScope::Key,
                percent: 100,
                of: UsageLimit::Units(5000)
            }
        );
        assert_eq!(
            a.rules[0].message.as_ref().unwrap().subject,
            "{{ owner.name }}"
        );
        assert_eq!(a.rules[2].severity, Severity::Error);
        assert_eq!(
            a.rules[3].kind,
            RuleKind::Spike {
                factor: 3.0,
                at_least: 20,
                half_life: Duration::from_secs(600)
            }
        );
    }

    #[test]
    fn mistakes_are_named_at_their_path() {
        let cases = [
            (
                "alerts: { rules: [{ name: a, failing: store, channels: [nope] }] }",
                "alerts.rules[0].channels[0]",
                "is not a channel",
            ),
            (
                "alerts: { rules: [{ name: a, failing: store, denials: { at_least: 1 } }] }",
                "alerts.rules[0]",
                "where one is allowed",
            ),
            (
                "alerts: { rules: [{ name: a, denials: { per: key } }] }",
                "alerts.rules[0].denials.at_least",
                "is required",
            ),
            (
                "alerts: { rules: [{ name: a, usage: { percent: 80 } }] }",
                "alerts.rules[0].usage.of",
                "billing",
            ),
            (
                "alerts: { rules: [{ name: a, usage: { of: 10 }, outreach: true, body: \"{{ owner.nmae }}\" }] }",
                "alerts.rules[0].body",
                "owner.nmae",
            ),
            (
                "alerts: { rules: [{ name: a, failing: disk }] }",
                "alerts.rules[0].failing",
                "is not store or registry",
            ),
            (
                "alerts: { rules: [{ name: a, failing: store, outreach: true }] }",
                "alerts.rules[0].outreach",
                "only usage rules",
            ),
            (
                "alerts: { rules: [{ name: a, failing: store }, { name: a, failing: store }] }",
                "alerts.rules[1].name",
                "names another rule",
            ),
            (
                "alerts: { channels: { x: { type: webhook, url: \"https://h.example\", secret: nope } } }",
                "alerts.channels.x",
                "whsec_",
            ),
            (
                "alerts: { channels: { x: { type: carrier-pigeon } } }",
                "alerts.channels.x.type",
                "is not webhook",
            ),
            (
                "alerts: { channels: { x: { type: email, host: h, from: \"f@example.com\" } } }",
                "alerts.channels.x.to",
                "expected an address",
            ),
            (
                "alerts: { evaluate_every: 1ms }",
                "alerts.evaluate_every",
                "must be between",
            ),
            (
                "alerts: { delivery: { max_attempts: 0 } }",
                "alerts.delivery.max_attempts",
                "between 1 and 100",
            ),
        ];
        for (yaml, path, says) in cases {
            let errs = errors(yaml);
            assert!(
                errs.iter().any(|(p, m)| p == path && m.contains(says)),
                "{yaml}: {errs:?}"
            );
        }
    }

    #[test]
    fn alerts_need_a_database() {
        let yaml = "alerts: { rules: [{ name: a, failing: store }] }\nrules: []\n";
        let errs = crate::config::validate(parse_yaml(yaml).unwrap(), None).unwrap_err();
        assert!(
            errs.0
                .iter()
                .any(|e| e.path == "alerts" && e.message.contains("database")),
            "{errs:?}"
        );
    }
}

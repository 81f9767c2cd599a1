//! The `alerts` section: channels, rules, retries of deliveries and the message owners
//! get.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{
    Errors, as_map, check_fields, get_bool, get_duration, get_str, get_u64, join, show,
};
use tollgate_notify::{
    Channel, Email, EmailSettings, PagerDuty, Severity, Slack, SmtpTls, Webhook,
};
use tollgate_registry::BillingScope;

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
    check_fields(
        m,
        path,
        &[
            "evaluate_every",
            "delivery",
            "channels",
            "rules",
            "outreach",
        ],
        errs,
    );
    let evaluate_every = duration_in(
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

/// A duration within `range`, or `default` when absent.
fn duration_in(
    m: &Map<String, Value>,
    field: &str,
    at: &str,
    range: (Duration, Duration),
    default: Duration,
    errs: &mut Errors,
) -> Duration {
    match get_duration(m, field, at, errs).map(Duration::from_nanos) {
        None => default,
        Some(d) if d < range.0 || d > range.1 => {
            errs.push(
                &join(at, field),
                format!("must be between {:?} and {:?}", range.0, range.1),
            );
            default
        }
        Some(d) => d,
    }
}

fn parse_delivery(m: &Map<String, Value>, errs: &mut Errors) -> DeliverySettings {
    let at = "alerts.delivery";
    check_fields(
        m,
        at,
        &["max_attempts", "backoff", "max_backoff", "timeout"],
        errs,
    );
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
        backoff: duration_in(m, "backoff", at, (ms, day), d.backoff, errs),
        max_backoff: duration_in(m, "max_backoff", at, (ms, day), d.max_backoff, errs),
        timeout: duration_in(
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
            check_fields(m, at, &["type", "url", "secret"], errs);
            let url = required(m, "url", at, errs)?;
            Webhook::new(url, get_str(m, "secret", at, errs)).map(Channel::Webhook)
        }
        Some("slack") => {
            check_fields(m, at, &["type", "url"], errs);
            Slack::new(required(m, "url", at, errs)?).map(Channel::Slack)
        }
        Some("pagerduty") => {
            check_fields(m, at, &["type", "routing_key", "events_url"], errs);
            let key = required(m, "routing_key", at, errs)?;
            PagerDuty::new(key, get_str(m, "events_url", at, errs)).map(Channel::PagerDuty)
        }
        Some("email") => {
            let mut allowed = SMTP_FIELDS.to_vec();
            allowed.extend(["type", "to"]);
            check_fields(m, at, &allowed, errs);
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

/// The fields of an SMTP server's settings.
const SMTP_FIELDS: &[&str] = &[
    "host", "port", "tls", "ca_file", "username", "password", "from",
];

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
    check_fields(m, at, &["email", "subject", "body"], errs);
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

const KINDS: [&str; 4] = ["usage", "denials", "spike", "failing"];

fn parse_rule(
    m: &Map<String, Value>,
    at: &str,
    channels: &BTreeMap<String, Channel>,
    default_per: BillingScope,
    errs: &mut Errors,
) -> Option<AlertRule> {
    let mut allowed = vec![
        "name", "severity", "channels", "outreach", "subject", "body",
    ];
    allowed.extend(KINDS);
    check_fields(m, at, &allowed, errs);
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
            errs.push(at, "needs one of usage, denials, spike or failing");
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
            check_fields(m, &at, &["per", "percent", "of"], errs);
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
            check_fields(m, &at, &["per", "at_least", "window"], errs);
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
                window: duration_in(
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
            check_fields(m, &at, &["factor", "at_least", "half_life"], errs);
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
                half_life: duration_in(
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

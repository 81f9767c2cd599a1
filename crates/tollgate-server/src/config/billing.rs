//! The `billing` section: whom records bill, how periods are cut, and each tier's price
//! plan.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{Errors, as_map, check_fields, get_duration, get_str, join};
use tollgate_core::policy::settings::Setting;
use tollgate_registry::BillingScope;

use crate::billing::{BillingSettings, Calendar, PeriodKind, Plan};

/// The fields of `billing`.
pub(crate) const FIELDS: &[Setting] = &[
    Setting::new(
        "by",
        "string",
        "Whom a billing record is for: a key's owner (all their keys together) or each key.",
    )
    .default("`owner`")
    .range("`owner`, `key`"),
    Setting::new(
        "time_zone",
        "string",
        "The IANA time zone periods are cut in.",
    )
    .default("`UTC`"),
    Setting::new("period", "string", "How long a billing period is.")
        .default("`month`")
        .range("`month`, `week`, `day`"),
    Setting::new(
        "close_after",
        "duration",
        "How long after a period ends its records are closed, for late usage to arrive.",
    )
    .default("`5m`")
    .range("at most `1d`"),
    Setting::new(
        "currency",
        "string",
        "The plans' currency unless a plan says otherwise.",
    )
    .default("`USD`")
    .range("an ISO 4217 code"),
    Setting::new(
        "plans",
        "mapping of plans",
        "Each tier's price plan, by tier name.",
    )
    .default("none"),
];

/// The fields of a `billing.plans` entry.
pub(crate) const PLAN_FIELDS: &[Setting] = &[
    Setting::new("currency", "string", "The plan's currency.")
        .default("`billing.currency`")
        .range("an ISO 4217 code"),
    Setting::new(
        "base_fee",
        "integer",
        "The fee of a period, in minor units (cents).",
    )
    .default("`0`")
    .range("0 to 2⁵³−1"),
    Setting::new("included", "integer", "Units included in the fee.")
        .default("`0`")
        .range("0 to 2⁵³−1"),
    Setting::new(
        "overage",
        "mapping",
        "The price of units beyond those included.",
    )
    .default("free"),
];

/// The fields of a plan's `overage`.
pub(crate) const OVERAGE_FIELDS: &[Setting] = &[
    Setting::new(
        "price",
        "integer",
        "The price of `per` units, in minor units.",
    )
    .default("`0`")
    .range("0 to 2⁵³−1"),
    Setting::new("per", "integer", "How many units `price` buys.")
        .default("`1`")
        .range("1 to 2⁵³−1"),
];

/// Reads the `billing` section.
pub fn parse(m: &Map<String, Value>, errs: &mut Errors) -> BillingSettings {
    let path = "billing";
    check_fields(m, path, FIELDS, errs);
    let scope = match get_str(m, "by", path, errs) {
        None | Some("owner") => BillingScope::Owner,
        Some("key") => BillingScope::Key,
        Some(other) => {
            errs.push(&join(path, "by"), format!("{other:?} is not owner or key"));
            BillingScope::Owner
        }
    };
    let zone = match get_str(m, "time_zone", path, errs) {
        None => jiff::tz::TimeZone::UTC,
        Some(name) => jiff::tz::TimeZone::get(name).unwrap_or_else(|_| {
            errs.push(
                &join(path, "time_zone"),
                format!("{name:?} is not a time zone (e.g. UTC, Europe/Berlin)"),
            );
            jiff::tz::TimeZone::UTC
        }),
    };
    let kind = match get_str(m, "period", path, errs) {
        None => PeriodKind::Month,
        Some(name) => PeriodKind::from_name(name).unwrap_or_else(|| {
            errs.push(
                &join(path, "period"),
                format!("{name:?} is not month, week or day"),
            );
            PeriodKind::Month
        }),
    };
    let close_after = match get_duration(m, "close_after", path, errs) {
        None => Duration::from_secs(300),
        Some(d) if d > 86_400_000_000_000 => {
            errs.push(&join(path, "close_after"), "must be at most 1d");
            Duration::from_secs(300)
        }
        Some(d) => Duration::from_nanos(d),
    };
    let currency = get_str(m, "currency", path, errs).unwrap_or("USD");
    check_currency(currency, &join(path, "currency"), errs);
    let mut plans = BTreeMap::new();
    if let Some(p) = m
        .get("plans")
        .and_then(|v| as_map(v, "billing.plans", errs))
    {
        for (tier, v) in p {
            let at = format!("billing.plans.{tier}");
            if let Some(plan) = as_map(v, &at, errs).map(|v| parse_plan(v, &at, currency, errs)) {
                plans.insert(tier.clone(), plan);
            }
        }
    }
    BillingSettings {
        scope,
        calendar: Calendar { kind, zone },
        close_after,
        plans,
    }
}

fn check_currency(code: &str, at: &str, errs: &mut Errors) {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        errs.push(
            at,
            format!("{code:?} is not an ISO 4217 code (e.g. USD, EUR)"),
        );
    }
}

/// A money amount or a count: a non-negative integer below 2^53, so that JSON readers
/// keep it exact.
fn get_amount(m: &Map<String, Value>, field: &str, at: &str, errs: &mut Errors) -> i64 {
    match m.get(field) {
        None => 0,
        Some(v) => match v.as_i64().filter(|n| (0..1 << 53).contains(n)) {
            Some(n) => n,
            None => {
                errs.push(
                    &join(at, field),
                    format!(
                        "expected a whole number of minor units or units (0 or more), found {v}"
                    ),
                );
                0
            }
        },
    }
}

fn parse_plan(m: &Map<String, Value>, at: &str, currency: &str, errs: &mut Errors) -> Plan {
    check_fields(m, at, PLAN_FIELDS, errs);
    let currency = get_str(m, "currency", at, errs).unwrap_or(currency);
    check_currency(currency, &join(at, "currency"), errs);
    let (mut overage_price, mut overage_per) = (0, 1);
    if let Some(o) = m
        .get("overage")
        .and_then(|v| as_map(v, &join(at, "overage"), errs))
    {
        let at = join(at, "overage");
        check_fields(o, &at, OVERAGE_FIELDS, errs);
        overage_price = get_amount(o, "price", &at, errs);
        if o.contains_key("per") {
            overage_per = get_amount(o, "per", &at, errs);
            if overage_per == 0 {
                errs.push(&join(&at, "per"), "must be at least 1");
                overage_per = 1;
            }
        }
    }
    Plan {
        currency: currency.into(),
        base_fee: get_amount(m, "base_fee", at, errs),
        included: get_amount(m, "included", at, errs),
        overage_price,
        overage_per,
    }
}

#[cfg(test)]
mod tests {
    use tollgate_core::policy::parse::parse_yaml;

    use super::*;

    fn read(yaml: &str) -> Result<BillingSettings, Vec<String>> {
        let doc = parse_yaml(yaml).unwrap();
        let mut errs = Errors::default();
        let s = parse(doc.as_object().unwrap(), &mut errs);
        errs.finish(s)
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn plans_and_their_errors() {
        let s = read(
            "{by: key, time_zone: Europe/Berlin, currency: EUR, plans: {pro: {base_fee: 4900, included: 100000, overage: {price: 200, per: 1000}}, free: {}}}",
        )
        .unwrap();
        assert_eq!(s.scope, BillingScope::Key);
        assert_eq!(s.calendar.kind, PeriodKind::Month);
        assert_eq!(s.plans["pro"].overage_per, 1_000);
        assert_eq!(s.plans["free"].currency, "EUR");
        let errs = read(
            "{by: team, time_zone: Mars/Olympus, period: year, currency: euro, plans: {pro: {base_fee: -1, overage: {per: 0}, tax: 1}}}",
        )
        .unwrap_err();
        for want in [
            "billing.by:",
            "billing.time_zone:",
            "billing.period:",
            "billing.currency:",
            "billing.plans.pro.base_fee:",
            "billing.plans.pro.overage.per:",
            "billing.plans.pro.tax: unknown field",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "{want} in {errs:?}"
            );
        }
    }
}

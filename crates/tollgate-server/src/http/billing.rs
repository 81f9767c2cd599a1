//! Billing routes: an owner's current period as it stands, and closed periods' records
//! as JSON, CSV or JSON lines.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tollgate_core::time::now_ms;
use tollgate_registry::{BillingFilter, BillingRecord, BillingScope, KeyFilter, KeyStatus};

use super::answers::{BillingRecords, CurrentBill};
use super::keys::{failed, keys_off};
use super::problem::Problem;
use super::query::Query;
use super::usage::instant;
use crate::app::App;
use crate::billing::close::{self, BillingError, Projection};

fn billing_off() -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "billing-off",
        "Billing is not configured",
        Some("add a `billing` section with a plan per tier".into()),
    )
    .into_response()
}

fn billing_failed(e: BillingError) -> Response {
    match e {
        BillingError::Registry(e) => failed(e),
        BillingError::Range(why) => Problem::invalid(why.into()).into_response(),
    }
}

/// `GET /v1/owners/{owner}/billing/current`: what the owner has used and owes so far this
/// period, a line per billed tier (per key when billing is per key), with a zero line for
/// each tier a live key of theirs is on.
#[utoipa::path(
    get,
    path = "/v1/owners/{owner}/billing/current",
    tag = "billing",
    operation_id = "current_bill",
    summary = "What an owner has used and owes so far this period",
    params(("owner" = String, Path, description = "The owner's id, as keys name it")),
    responses(
        (status = 200, description = "A line per billed tier (per key when billing is per key)", body = CurrentBill),
        (status = 404, description = "Billing is not configured (`billing-off`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn current(State(app): State<Arc<App>>, Path(owner): Path<String>) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let Some(settings) = app.billing.as_ref() else {
        return billing_off();
    };
    let now = now_ms();
    let keys = match reg
        .list_keys(&KeyFilter {
            owner: Some(owner.clone()),
            limit: Some(1000),
            ..KeyFilter::default()
        })
        .await
    {
        Ok(k) => k,
        Err(e) => return failed(e),
    };
    let live: Vec<_> = keys
        .iter()
        .filter(|k| k.status != KeyStatus::Revoked && settings.plans.contains_key(&k.tier))
        .collect();
    // The accounts to project: the owner, or each of their keys.
    let accounts: Vec<(String, BTreeSet<&str>)> = match settings.scope {
        BillingScope::Owner => vec![(
            owner.clone(),
            live.iter().map(|k| k.tier.as_str()).collect(),
        )],
        BillingScope::Key => keys
            .iter()
            .map(|k| {
                let tiers = live
                    .iter()
                    .filter(|l| l.id == k.id)
                    .map(|l| l.tier.as_str())
                    .collect();
                (k.id.clone(), tiers)
            })
            .collect(),
    };
    let mut lines: Vec<Projection> = Vec::new();
    for (account, tiers) in accounts {
        let mut got = match close::current(reg, settings, settings.scope, &account, now).await {
            Ok(g) => g,
            Err(e) => return billing_failed(e),
        };
        for tier in tiers {
            if !got.iter().any(|l| l.tier == tier)
                && let Ok(mut zero) = close::zero(settings, &account, tier, now)
            {
                lines.append(&mut zero);
            }
        }
        lines.append(&mut got);
    }
    lines.sort_by(|a, b| (&a.account, &a.tier).cmp(&(&b.account, &b.tier)));
    let total: i64 = lines.iter().map(|l| l.amount).fold(0, i64::saturating_add);
    let currencies: BTreeSet<&str> = lines.iter().map(|l| l.currency.as_str()).collect();
    // A total only adds up lines in one currency.
    let total = (currencies.len() == 1).then_some(total);
    Json(CurrentBill {
        owner,
        scope: settings.scope,
        lines,
        total,
    })
    .into_response()
}

/// The query of `/v1/billing/records`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// Only this owner's records.
    owner: Option<String>,
    /// Periods from this instant: ms since the epoch, or RFC 3339.
    from: Option<String>,
    /// Periods before this instant.
    to: Option<String>,
    /// At most this many.
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
    /// `json` (the default), `csv` or `jsonl`; without it, `Accept` chooses.
    #[param(value_type = Option<RecordsFormat>, inline)]
    format: Option<String>,
}

/// The formats of billing records, as the schema names them.
pub struct RecordsFormat;

impl utoipa::PartialSchema for RecordsFormat {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(["json", "csv", "jsonl"]))
            .into()
    }
}

impl utoipa::ToSchema for RecordsFormat {}

/// How records are written out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    JsonLines,
}

/// The format a query or its `Accept` header asks for.
fn format(q: Option<&str>, headers: &HeaderMap) -> Result<Format, Problem> {
    match q {
        Some("json") => return Ok(Format::Json),
        Some("csv") => return Ok(Format::Csv),
        Some("jsonl") => return Ok(Format::JsonLines),
        Some(other) => {
            return Err(Problem::invalid_query(format!(
                "format: {other:?} is not json, csv or jsonl"
            )));
        }
        None => {}
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(if accept.contains("text/csv") {
        Format::Csv
    } else if accept.contains("application/x-ndjson") || accept.contains("application/jsonl") {
        Format::JsonLines
    } else {
        Format::Json
    })
}

const CSV_HEADER: &str = "scope,account,owner,tier,period_start,period_end,currency,units,included,overage_units,base_fee,overage_amount,amount,closed_at\n";

/// A CSV field: quoted when it holds a separator, a quote or a line break; a leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so that spreadsheets do not run it.
fn csv_field(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

fn csv_row(r: &BillingRecord) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
        r.scope.name(),
        csv_field(&r.account),
        csv_field(&r.owner),
        csv_field(&r.tier),
        r.period_start,
        r.period_end,
        r.currency,
        r.units,
        r.included,
        r.overage_units,
        r.base_fee,
        r.overage_amount,
        r.amount,
        r.closed_at
    )
}

/// `GET /v1/billing/records?owner=&from=&to=&limit=&format=json|csv|jsonl`: closed
/// periods' records, oldest period first (`Accept: text/csv` or
/// `application/x-ndjson` choose a format too).
#[utoipa::path(
    get,
    path = "/v1/billing/records",
    tag = "billing",
    operation_id = "billing_records",
    summary = "Closed periods' records, oldest period first",
    params(RecordsQuery),
    responses(
        (status = 200, description = "The records, as JSON, CSV (a header line, then a row per record) or JSON lines",
            content(
                (BillingRecords = "application/json"),
                (String = "text/csv"),
                (String = "application/x-ndjson"),
            )),
        (status = 422, description = "A bad instant (`invalid-request`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("adminToken" = [])),
)]
pub async fn records(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<RecordsQuery>,
) -> Response {
    let Some(reg) = app.registry.as_ref() else {
        return keys_off();
    };
    let format = match format(q.format.as_deref(), &headers) {
        Ok(f) => f,
        Err(p) => return p.into_response(),
    };
    let from = match q.from.as_deref().map(|f| instant(f, "from")).transpose() {
        Ok(f) => f,
        Err(p) => return p.into_response(),
    };
    let to = match q.to.as_deref().map(|t| instant(t, "to")).transpose() {
        Ok(t) => t,
        Err(p) => return p.into_response(),
    };
    let found = reg
        .billing_records(&BillingFilter {
            owner: q.owner,
            from,
            to,
            limit: q.limit,
        })
        .await;
    let records = match found {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    match format {
        Format::Json => Json(BillingRecords { records }).into_response(),
        Format::Csv => {
            let mut out = String::from(CSV_HEADER);
            for r in &records {
                out.push_str(&csv_row(r));
            }
            ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response()
        }
        Format::JsonLines => {
            let mut out = String::new();
            for r in &records {
                out.push_str(&serde_json::to_string(r).unwrap_or_default());
                out.push('\n');
            }
            ([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_guarded() {
        assert_eq!(csv_field("acme"), "acme");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
    }
}

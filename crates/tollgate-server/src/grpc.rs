//! Envoy's rate limit service (`envoy.service.ratelimit.v3.RateLimitService`): descriptors
//! in, statuses out. Like every door it only translates: descriptors become checks on the
//! policy's `envoy` limits, and the engine decides them as it decides HTTP requests.

use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::RateLimitOverride;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    DescriptorStatus, RateLimit, rate_limit::Unit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::{
    RateLimitService, RateLimitServiceServer,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{
    RateLimitRequest, RateLimitResponse, rate_limit_response::Code as RlsCode,
};
use envoy_types::pb::google::protobuf::Duration as PbDuration;
use smallvec::SmallVec;
use tollgate_core::policy::descriptor_plan::PlannedDescriptor;
use tollgate_core::policy::descriptors::UNITS;
use tollgate_core::time::Nanos;
use tollgate_core::{Decision, LimitStatus, Mode};
use tollgate_engine::{Attributes, DescriptorIn, LimitOverride, Request as EngineRequest, Scope};
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use crate::app::App;
use crate::config::{GrpcSettings, OnStoreError};
use crate::telemetry::sample;

/// Envoy's rate limit service protos and their imports, compiled by the build script, for
/// server reflection.
pub const RLS_DESCRIPTOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rls_descriptor.bin"));

/// The service.
pub struct Rls {
    app: Arc<App>,
    settings: GrpcSettings,
}

/// The tonic service for `app`.
pub fn service(app: Arc<App>, settings: GrpcSettings) -> RateLimitServiceServer<Rls> {
    RateLimitServiceServer::new(Rls { app, settings })
}

/// The descriptor entry that carries an API key (Envoy's `request_headers` action can put
/// a client's `x-api-key` there): the key is verified like any other, counted by its
/// identity rather than its value, and its tier's limits join that descriptor.
pub const KEY_ENTRY: &str = "api_key";

#[tonic::async_trait]
impl RateLimitService for Rls {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        if self.app.slo.objectives.is_empty() && !crate::telemetry::on() {
            return self.decide(request).await;
        }
        let started = std::time::Instant::now();
        let traced = crate::telemetry::on()
            && sample::decide(
                request
                    .metadata()
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok()),
            );
        let answer = if traced {
            sample::within(true, async {
                let span = tracing::info_span!(
                    target: crate::telemetry::TRACE,
                    "door",
                    otel.name = "envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
                    otel.kind = "server",
                    rpc.system = "grpc",
                    tollgate.store = self.app.engine.store().kind(),
                    tollgate.domain = request.get_ref().domain.as_str(),
                );
                let headers = request.metadata().clone().into_headers();
                crate::telemetry::propagate::adopt(&span, &headers);
                self.decide(request).instrument(span).await
            })
            .await
        } else {
            sample::within(false, self.decide(request)).await
        };
        if self.app.slo.objectives.is_empty() {
            return answer;
        }
        let failed = answer.as_ref().is_err_and(|s| {
            matches!(
                s.code(),
                tonic::Code::Unavailable | tonic::Code::Internal | tonic::Code::Unknown
            )
        });
        self.app.slo.record(
            None,
            failed,
            started.elapsed(),
            tollgate_core::time::now_ms(),
        );
        answer
    }
}

impl Rls {
    /// One call's decision.
    async fn decide(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        let req = request.into_inner();
        if req.domain.is_empty() {
            return Err(Status::invalid_argument(
                "rate limit domain must not be empty",
            ));
        }
        if req.descriptors.is_empty() {
            return Err(Status::invalid_argument(
                "rate limit descriptor list must not be empty",
            ));
        }
        // Envoy's semantics: a request-level 0 means 1; a descriptor's own value wins, and
        // a descriptor's 0 checks without consuming.
        let cost = if req.hits_addend == 0 {
            1
        } else {
            u64::from(req.hits_addend)
        };
        // The first descriptor naming a key carries it.
        let mut api_key = None;
        let descriptors = req
            .descriptors
            .iter()
            .map(|d| {
                let key_entry = if api_key.is_none() {
                    let at = d.entries.iter().position(|e| e.key == KEY_ENTRY);
                    api_key = at.and_then(|i| d.entries.get(i)).map(|e| e.value.as_str());
                    at
                } else {
                    None
                };
                DescriptorIn {
                    entries: d
                        .entries
                        .iter()
                        .map(|e| (e.key.as_str(), e.value.as_str()))
                        .collect(),
                    cost: d.hits_addend.as_ref().map(|h| h.value),
                    limit: d.limit.as_ref().and_then(limit_override),
                    key_entry,
                }
            })
            .collect();
        let request = EngineRequest {
            attributes: Attributes::Descriptors {
                domain: &req.domain,
                descriptors,
            },
            api_key,
            cost,
            mode: Mode::Consume,
        };
        let mut scope = Scope::default();
        let verdict = self.app.engine.decide(&mut scope, request).await;
        let decision = &verdict.decision;
        if self.settings.on_store_error == OnStoreError::Unavailable
            && decision.limits.iter().any(|l| l.degraded)
        {
            return Err(Status::unavailable("counter store unavailable"));
        }
        let response = self.respond(decision, &verdict.descriptors, decision.now);
        for (p, status) in verdict.descriptors.iter().zip(&response.statuses) {
            if let Some(key) = &p.detailed {
                let outcome = if status.code == RlsCode::OverLimit as i32 {
                    "over_limit"
                } else {
                    "ok"
                };
                metrics::counter!("tollgate_envoy_descriptor_total", "descriptor" => key.clone(), "outcome" => outcome)
                    .increment(1);
            }
        }
        Ok(Response::new(response))
    }

    fn respond(
        &self,
        d: &Decision<'_>,
        planned: &[PlannedDescriptor<'_>],
        now: Nanos,
    ) -> RateLimitResponse {
        let statuses = planned
            .iter()
            .map(|p| {
                let limits: SmallVec<[&LimitStatus<'_>; 2]> =
                    p.checks.iter().filter_map(|&i| d.limits.get(i)).collect();
                status(&limits, p, now)
            })
            .collect();
        let over = !d.allowed;
        let headers = d.headers();
        let response_headers_to_add = headers
            .iter()
            .filter(|(name, _)| {
                matches!(*name, "ratelimit" | "ratelimit-policy" | "retry-after")
                    || self.settings.legacy_headers && name.starts_with("x-ratelimit-")
            })
            .map(|(name, value)| HeaderValue {
                key: name.to_owned(),
                value: value.to_owned(),
                ..HeaderValue::default()
            })
            .collect();
        RateLimitResponse {
            overall_code: if over {
                RlsCode::OverLimit
            } else {
                RlsCode::Ok
            } as i32,
            statuses,
            response_headers_to_add,
            ..RateLimitResponse::default()
        }
    }
}

/// One descriptor's status: over the limit when one of its limits denied; otherwise the
/// limit with the least left.
fn status(limits: &[&LimitStatus<'_>], p: &PlannedDescriptor<'_>, now: Nanos) -> DescriptorStatus {
    let Some(shown) = limits
        .iter()
        .find(|l| l.exceeded() && !p.shadow)
        .or_else(|| limits.iter().min_by_key(|l| l.outcome.remaining))
    else {
        return DescriptorStatus {
            code: RlsCode::Ok as i32,
            ..DescriptorStatus::default()
        };
    };
    let over = shown.exceeded() && !p.shadow;
    let window = shown.rule.limit.window(now);
    let unit = window
        .and_then(|w| {
            UNITS
                .iter()
                .zip(UNIT_CODES)
                .find_map(|((_, len), code)| (*len == w).then_some(code))
        })
        .unwrap_or(Unit::Unknown);
    let per_unit = shown.outcome.limit;
    DescriptorStatus {
        code: if over {
            RlsCode::OverLimit
        } else {
            RlsCode::Ok
        } as i32,
        current_limit: Some(RateLimit {
            name: p.name.unwrap_or_default().to_owned(),
            requests_per_unit: u32::try_from(per_unit).unwrap_or(u32::MAX),
            unit: unit as i32,
        }),
        limit_remaining: u32::try_from(shown.outcome.remaining).unwrap_or(u32::MAX),
        duration_until_reset: Some(duration(shown.outcome.reset)),
        ..DescriptorStatus::default()
    }
}

/// Envoy's unit codes, in the order of [`UNITS`].
const UNIT_CODES: [Unit; 7] = [
    Unit::Second,
    Unit::Minute,
    Unit::Hour,
    Unit::Day,
    Unit::Week,
    Unit::Month,
    Unit::Year,
];

fn duration(ns: Nanos) -> PbDuration {
    PbDuration {
        seconds: i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX),
        nanos: i32::try_from(ns % 1_000_000_000).unwrap_or(0),
    }
}

/// A descriptor's `limit`, when its unit is one Tollgate counts.
fn limit_override(o: &RateLimitOverride) -> Option<LimitOverride> {
    let unit = Unit::try_from(o.unit).ok()?;
    let unit = UNIT_CODES.iter().position(|u| *u == unit)?;
    Some(LimitOverride {
        requests_per_unit: o.requests_per_unit,
        unit,
    })
}

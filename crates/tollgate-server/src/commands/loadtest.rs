//! `tollgate loadtest`: an open-loop load generator. Requests go out on a fixed timetable
//! whatever the server does, and each latency is measured from the request's scheduled
//! send time, so a stall shows up in the latencies of every request it delayed rather than
//! being hidden by a generator that waited for it (coordinated omission).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use serde_json::json;
use tokio::time::Instant;

use super::histogram::Histogram;

/// How long one request may take before it is counted as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The options of `tollgate loadtest`.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The server's base URL.
    #[arg(long, env = "TOLLGATE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Requests per second, kept whatever the server's latency.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,
    /// How long to send for (`10s`, `1m`, `500ms`).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Duration,
    /// The path each request goes to.
    #[arg(long, default_value = "/v1/check")]
    pub path: String,
    /// The JSON body of each request (POST); an empty body sends GET.
    #[arg(
        long,
        default_value = r#"{"subject":{"ip":"127.0.0.1"}}"#,
        value_name = "JSON"
    )]
    pub body: String,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    tollgate_core::policy::duration::parse_duration(text)
        .filter(|n| *n > 0)
        .map(Duration::from_nanos)
        .ok_or_else(|| format!("{text:?} is not a duration (e.g. 10s, 1m, 500ms)"))
}

/// What one request came to: its status, or no answer.
type Outcome = (Option<u16>, Duration);

/// Runs `tollgate loadtest`.
pub fn run(args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let total = u64::try_from(
        args.duration
            .as_nanos()
            .saturating_mul(u128::from(args.rate))
            .checked_div(1_000_000_000)
            .unwrap_or(0),
    )
    .context("too many requests for one run")?;
    if total == 0 {
        bail!("--rate × --duration comes to no request");
    }
    let url: hyper::Uri = format!("{}{}", args.url.trim_end_matches('/'), args.path)
        .parse()
        .with_context(|| format!("{}{} is not a valid URL", args.url, args.path))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .context("loading the system's TLS roots")?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
    let body = Bytes::from(args.body.clone());
    let method = if body.is_empty() {
        Method::GET
    } else {
        Method::POST
    };

    let (outcomes, elapsed) = runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Outcome>();
        let start = Instant::now();
        let rate = u128::from(args.rate);
        for i in 0..total {
            // Each send time from the start, not from the one before, so that rounding
            // does not drift the rate.
            let offset = u128::from(i)
                .saturating_mul(1_000_000_000)
                .checked_div(rate)
                .unwrap_or(0);
            let due = start
                .checked_add(Duration::from_nanos(
                    u64::try_from(offset).unwrap_or(u64::MAX),
                ))
                .unwrap_or(start);
            tokio::time::sleep_until(due).await;
            let scheduled = due;
            let (client, tx, url, body, method) = (
                client.clone(),
                tx.clone(),
                url.clone(),
                body.clone(),
                method.clone(),
            );
            tokio::spawn(async move {
                let outcome = send(&client, method, url, body).await;
                let _ = tx.send((outcome, scheduled.elapsed()));
            });
        }
        drop(tx);
        let mut outcomes = Vec::new();
        while let Some(o) = rx.recv().await {
            outcomes.push(o);
        }
        (outcomes, start.elapsed())
    });

    let mut latencies = Histogram::default();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for (status, latency) in &outcomes {
        latencies.record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        let name = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        let n = statuses.entry(name).or_insert(0);
        *n = n.saturating_add(1);
    }
    let completed = latencies.count();
    let achieved = u64_rate(completed, elapsed);
    let ms = |us: u64| Duration::from_micros(us).as_secs_f64() * 1000.0;
    let percentiles = [
        ("p50", latencies.quantile(0.5)),
        ("p90", latencies.quantile(0.9)),
        ("p99", latencies.quantile(0.99)),
        ("p99.9", latencies.quantile(0.999)),
        ("max", latencies.max()),
    ];
    if args.json {
        let lat: serde_json::Map<String, serde_json::Value> = percentiles
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(ms(*v))))
            .collect();
        println!(
            "{}",
            json!({
                "sent": total,
                "completed": completed,
                "elapsed_s": elapsed.as_secs_f64(),
                "achieved_rate": achieved,
                "statuses": statuses,
                "latency_ms": lat,
            })
        );
    } else {
        println!(
            "sent {total} at {}/s; {completed} answered in {:.2}s ({achieved:.1}/s)",
            args.rate,
            elapsed.as_secs_f64()
        );
        for (status, n) in &statuses {
            println!("  {status}: {n}");
        }
        let line: Vec<String> = percentiles
            .iter()
            .map(|(k, v)| format!("{k} {:.3}ms", ms(*v)))
            .collect();
        println!("latency from the scheduled send: {}", line.join("  "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Answers per second over `elapsed`.
fn u64_rate(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        // Counts of one run are far below 2^52: the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let n = n as f64;
        n / secs
    } else {
        0.0
    }
}

/// Sends one request and reads its body; the status, or `None` for no answer in time.
async fn send<C>(
    client: &Client<C, Full<Bytes>>,
    method: Method,
    url: hyper::Uri,
    body: Bytes,
) -> Option<u16>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let mut req = Request::builder().method(method).uri(url);
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Full::new(body)).ok()?;
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let res = client.request(req).await.ok()?;
        let status = res.status().as_u16();
        res.into_body().collect().await.ok()?;
        Some(status)
    })
    .await;
    answer.ok().flatten()
}

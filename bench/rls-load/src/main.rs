//! `rls-load ADDRESS [SECONDS] [CALLERS] [KEYS] [CONNECTIONS]`: drives `ShouldRateLimit`
//! from CALLERS concurrent callers (default 64) for SECONDS (default 10), spread over
//! CONNECTIONS HTTP/2 connections (default 1, as one Envoy sends them), each call one
//! descriptor `user=<n>` over KEYS users (default 10,000) in domain `bench`, and prints
//! calls/s, p50 and p99. Bounded: it stops by itself.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let secs: u64 = args.next().map_or(Ok(10), |s| s.parse())?;
    let callers: u64 = args.next().map_or(Ok(64), |s| s.parse())?;
    let keys: u64 = args.next().map_or(Ok(10_000), |s| s.parse())?;
    let keys = NonZeroU64::new(keys).ok_or_else(|| anyhow::anyhow!("KEYS must be at least 1"))?;
    let connections: usize = args.next().map_or(Ok(1), |s| s.parse())?;
    // Each caller's calls are streams on one of the connections, as Envoy sends them.
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?.tcp_nodelay(true);
    let mut channels = Vec::new();
    for _ in 0..connections.max(1) {
        channels.push(endpoint.connect().await?);
    }
    let (start, span) = (Instant::now(), Duration::from_secs(secs));
    // Caller c's calls go over connection c modulo the number of connections.
    let tasks: Vec<_> = (0..callers)
        .zip(channels.iter().cycle())
        .map(|(c, channel)| {
            let mut client = RateLimitServiceClient::new(channel.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut n = c;
                while start.elapsed() < span {
                    let request = RateLimitRequest {
                        domain: "bench".into(),
                        descriptors: vec![RateLimitDescriptor {
                            entries: vec![Entry {
                                key: "user".into(),
                                value: (n % keys).to_string(),
                            }],
                            ..Default::default()
                        }],
                        hits_addend: 1,
                    };
                    let started = Instant::now();
                    match client.should_rate_limit(request).await {
                        Ok(_) => latencies.push(started.elapsed()),
                        Err(_) => errors = errors.saturating_add(1),
                    }
                    // `n` only picks the next key: should it wrap, the keys go on in turn.
                    n = n.wrapping_add(callers);
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors = e.saturating_add(errors);
    }
    all.sort_unstable();
    let pct = |p: usize| {
        all.get(all.len().saturating_mul(p) / 100)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "calls/s {:.0}  p50 {:.2} ms  p99 {:.2} ms  errors {errors}",
        all.len() as f64 / secs as f64,
        pct(50).as_secs_f64() * 1e3,
        pct(99).as_secs_f64() * 1e3
    );
    Ok(())
}

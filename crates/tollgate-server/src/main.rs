//! `tollgate`: the rate-limiting server.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "brought under these lints after its restructuring"
)]
#![recursion_limit = "256"]

mod app;
mod auth;
mod config;
mod grpc;
mod http;
mod listen;
mod reload;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tollgate_core::time::{Clock, SystemClock};
use tollgate_core::{MemoryStore, Mode, Subject};

// Decisions allocate small, short-lived buffers; mimalloc keeps that off the profile. It
// is built without its advice for transparent huge pages (`no_thp`), under which each
// thread's first allocation brought in a whole 2 MiB page: a fresh server held 34–43 MB
// more. The counter tables, which gain from huge pages, advise their own mappings.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "Rate limiting and API keys, in microseconds"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (on the embedded default without --config).
    Serve {
        /// The configuration file (watched and reloaded on change).
        #[arg(long, short, env = "TOLLGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Log format.
        #[arg(long, value_enum, default_value = "text", env = "TOLLGATE_LOG_FORMAT")]
        log_format: LogFormat,
        /// Dev mode: API keys without a configured secret (one is generated and kept in
        /// `.tollgate-dev-secret`), and a database for the embedded default.
        #[arg(long, env = "TOLLGATE_DEV", value_parser = clap::builder::FalseyValueParser::new())]
        dev: bool,
    },
    /// Validate a configuration file and print every error with its path.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// Show which rules match a subject, their keys and what a request would get.
    Explain {
        /// The configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// An attribute, as NAME=VALUE (user, ip, method, path, tenant, key, attr.NAME).
        #[arg(long = "subject", short = 's', value_name = "NAME=VALUE")]
        subject: Vec<String>,
        /// Units the request would cost.
        #[arg(long, default_value_t = 1)]
        cost: u64,
        /// As if made with a key of this tier: its limits apply too.
        #[arg(long)]
        tier: Option<String>,
    },
    /// Convert other tools' configurations into Tollgate's.
    #[command(subcommand)]
    Import(Import),
    /// Prints the SHA-256 of an admin token read from stdin, for `admin.tokens[].sha256`.
    HashToken,
}

#[derive(Subcommand)]
enum Import {
    /// envoyproxy/ratelimit configuration files (each a `domain` and its `descriptors`)
    /// into an `envoy:` section, printed on stdout.
    Envoy {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            log_format,
            dev,
        } => {
            if dev {
                config::set_dev_mode();
            }
            serve(config, log_format)
        }
        Command::CheckConfig { file } => check_config(&file),
        Command::Explain {
            config,
            subject,
            cost,
            tier,
        } => explain(config, &subject, cost, tier.as_deref()),
        Command::Import(Import::Envoy { files }) => import_envoy(&files),
        Command::HashToken => hash_token(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tollgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_errors(errs: &tollgate_core::policy::ConfigErrors) {
    for e in &errs.0 {
        if e.path.is_empty() {
            eprintln!("{}", e.message);
        } else {
            eprintln!("{}: {}", e.path, e.message);
        }
    }
}

fn check_config(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    match config::load(Some(file)) {
        Ok(c) => {
            println!(
                "{}: ok ({} rules, {} tiers, {} Envoy domains)",
                file.display(),
                c.policy.rules().len(),
                c.policy.tiers().iter().count(),
                c.policy.descriptors().len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errs) => {
            print_errors(&errs);
            eprintln!("{}: {} error(s)", file.display(), errs.0.len());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Validates envoyproxy/ratelimit files as Tollgate would load them and prints them as the
/// `envoy:` section of a Tollgate configuration.
fn hash_token() -> anyhow::Result<ExitCode> {
    let mut token = String::new();
    std::io::stdin()
        .read_line(&mut token)
        .context("reading the token from stdin")?;
    let token = token.trim();
    if token.is_empty() {
        anyhow::bail!("no token on stdin (e.g. `printf %s \"$TOKEN\" | tollgate hash-token`)");
    }
    let hex: String = auth::digest(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("{hex}");
    Ok(ExitCode::SUCCESS)
}

fn import_envoy(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut domains = Vec::new();
    let mut failed = false;
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let doc = match tollgate_core::policy::parse::parse_yaml(&text) {
            Ok(d) => d,
            Err(errs) => {
                for e in &errs.0 {
                    eprintln!("{}: {e}", file.display());
                }
                failed = true;
                continue;
            }
        };
        let one = serde_json::json!({ "envoy": [doc] });
        if let Err(errs) = tollgate_core::Policy::from_value(&one, &[]) {
            for e in &errs.0 {
                let path = e.path.strip_prefix("envoy[0]").unwrap_or(&e.path);
                eprintln!(
                    "{}: {}: {}",
                    file.display(),
                    path.trim_start_matches('.'),
                    e.message
                );
            }
            failed = true;
            continue;
        }
        domains.push(doc);
    }
    if failed {
        return Ok(ExitCode::FAILURE);
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    println!(
        "# Converted from {} by `tollgate import envoy`.",
        names.join(", ")
    );
    print!(
        "{}",
        serde_saphyr::to_string(&serde_json::json!({ "envoy": domains }))?
    );
    Ok(ExitCode::SUCCESS)
}

fn explain(
    path: Option<PathBuf>,
    pairs: &[String],
    cost: u64,
    tier: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let cfg = match config::load(path.as_deref()) {
        Ok(c) => c,
        Err(errs) => {
            print_errors(&errs);
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut subject = Subject::new();
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("--subject {pair:?}: expected NAME=VALUE"))?;
        subject
            .set(k.trim(), v)
            .with_context(|| format!("--subject {pair:?}"))?;
    }
    let limiter = tollgate_core::Limiter::new(
        MemoryStore::new(tollgate_core::MemoryStoreConfig { capacity: 1024 }),
        cfg.policy,
    );
    let policy = limiter.policy();
    println!(
        "rules examined: {} of {}",
        policy.candidate_count(&subject),
        policy.rules().len()
    );
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    if let Some(t) = tier {
        match policy.tiers().get(t) {
            Some(found) => println!("tier {t:?}: {} limits", found.limits.len()),
            None => println!("tier {t:?} is not defined: no tier limits apply"),
        }
        // Tier limits count per key (or owner): stand-ins where the subject names none.
        for (name, stand_in) in [
            ("key", "key_example"),
            ("attr.owner", "owner_example"),
            ("attr.tier", t),
        ] {
            if subject
                .text(&tollgate_core::subject::Attr::parse(name).context("attribute")?)
                .is_none()
            {
                subject.set(name, stand_in)?;
            }
        }
    }
    let plan = policy.plan_keyed(&subject, cost, tier, &[]);
    let d = rt.block_on(limiter.decide_plan(plan, SystemClock.now(), Mode::Preview));
    if d.limits.is_empty() {
        println!("no rule applies: {}", d.code.as_str());
    }
    for l in &d.limits {
        println!(
            "rule {:?} key {:?}: {} (limit {}, remaining {}{})",
            l.rule.name,
            l.key,
            if l.exceeded() {
                "would deny"
            } else {
                "would allow"
            },
            l.outcome.limit,
            l.outcome.remaining,
            if l.shadow() { ", shadow" } else { "" }
        );
    }
    println!("decision on a fresh store: {}", d.code.as_str());
    // What the answer would carry, so the quota a rule shows can be read off.
    for (name, value) in d.headers().iter() {
        println!("  {name}: {value}");
    }
    Ok(ExitCode::SUCCESS)
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
        .unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Upper bounds of the decision latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 9] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.025,
];

fn serve(path: Option<PathBuf>, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    init_logs(log_format);
    let mut cfg = match config::load(path.as_deref()) {
        Ok(c) => c,
        Err(errs) => {
            print_errors(&errs);
            return Ok(ExitCode::FAILURE);
        }
    };
    cfg.server.max_connections = listen::fit_to_open_files(cfg.server.max_connections);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(tollgate_engine::LATENCY.into()),
            &LATENCY_BUCKETS,
        )?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cfg, path, metrics))?;
    Ok(ExitCode::SUCCESS)
}

/// Serves every door until a signal says stop, then finishes the requests in flight and
/// stores what the decisions left behind.
async fn run(
    cfg: config::Config,
    path: Option<PathBuf>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
) -> anyhow::Result<()> {
    let listen = cfg.server.listen;
    let grpc_listen = cfg.server.grpc_listen;
    let grpc_settings = cfg.server.grpc;
    let timeout = cfg.server.request_timeout;
    let idle_timeout = cfg.server.idle_timeout;
    let registry = match &cfg.database {
        Some(db) => {
            let secret = tollgate_registry::KeySecret::new(db.key_secret.clone())?;
            let registry = tollgate_registry::Registry::open(&db.url, secret)
                .await
                .with_context(|| format!("opening the database {}", db.url))?;
            tracing::info!(backend = registry.backend(), "records database ready");
            Some(registry)
        }
        None => None,
    };
    // Usage and violations go to the registry through bounded queues and one writer.
    let (effects, writer_stop, writer) = match (&registry, &cfg.database) {
        (Some(registry), Some(db)) => {
            let (effects, queues) = tollgate_engine::effects::Effects::new(db.usage_queue);
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let writer = tokio::spawn(tollgate_engine::effects::run(
                registry.clone(),
                queues,
                db.flush_interval,
                stopped,
            ));
            spawn_pruner(registry.clone(), db.retention);
            (Some(effects), Some(stop), Some(writer))
        }
        _ => (None, None, None),
    };
    let app = Arc::new(app::App::new(
        cfg,
        path.clone(),
        metrics,
        registry,
        effects,
    )?);
    let _watcher = match &path {
        Some(p) => Some(reload::spawn(app.clone(), p.clone())?),
        None => None,
    };
    spawn_sweeper(app.clone());
    spawn_upkeep(app.metrics.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let listener = bind(listen).with_context(|| format!("binding HTTP {listen}"))?;
    let addr = listener.local_addr()?;
    let http = tokio::spawn(http::serve::serve(
        listener,
        app.connections.clone(),
        http::router(&app, timeout),
        idle_timeout,
        stopped.clone(),
    ));
    let grpc = match grpc_listen {
        Some(at) => Some(spawn_grpc(app.clone(), at, grpc_settings, stopped.clone()).await?),
        None => None,
    };
    app.ready.store(true, Ordering::Relaxed);
    let source = path.as_ref().map_or("embedded default config".into(), |p| {
        p.display().to_string()
    });
    println!("tollgate listening on http://{addr} ({source})");
    if let Some((addr, _)) = &grpc {
        println!("tollgate gRPC (Envoy rate limit service) listening on {addr}");
    }
    println!(
        "try: curl -i -X POST http://{addr}/v1/check -H 'content-type: application/json' -d '{{\"subject\":{{\"user\":\"42\"}}}}'"
    );
    shutdown_signal().await;
    app.ready.store(false, Ordering::Relaxed);
    let _ = stop.send(true);
    if http.await.is_err() {
        tracing::error!("the HTTP door panicked");
    }
    if let Some((_, grpc)) = grpc {
        match grpc.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("the gRPC door failed: {e}"),
            Err(_) => tracing::error!("the gRPC door panicked"),
        }
    }
    // Every decision has been answered: what they left behind is queued; store it.
    if let (Some(stop), Some(writer)) = (writer_stop, writer) {
        let _ = stop.send(true);
        if writer.await.is_err() {
            tracing::error!("the usage writer panicked");
        }
        tracing::info!("usage flushed");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Prunes old records at start and every hour.
fn spawn_pruner(registry: tollgate_registry::Registry, retention: tollgate_registry::Retention) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3_600));
        loop {
            every.tick().await;
            match registry
                .prune(&retention, tollgate_core::time::now_ms())
                .await
            {
                Ok(p) => tracing::info!(
                    events = p.events,
                    rollups = p.rollups,
                    violations = p.violations,
                    audit = p.audit,
                    "old records pruned"
                ),
                Err(e) => tracing::warn!(error = %e, "pruning old records failed"),
            }
        }
    });
}

/// Serves the Envoy rate limit service, gRPC health and server reflection on `at` until
/// `stopped` turns true.
async fn spawn_grpc(
    app: Arc<app::App>,
    at: SocketAddr,
    settings: grpc::GrpcSettings,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(
    SocketAddr,
    tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
)> {
    let listener = bind(at).with_context(|| format!("binding gRPC {at}"))?;
    let addr = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer<grpc::Rls>>()
        .await;
    // Reflection, both versions: grpcurl and most tools ask v1, some still v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(grpc::RLS_DESCRIPTOR)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let incoming = listen::incoming(listener, app.connections.clone(), stopped.clone());
    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(grpc::service(app, settings))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
    Ok((addr, tokio::spawn(server)))
}

/// A listening socket on `addr`, registered with the calling runtime.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A restart may bind while the last run's connections are in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Keeps the live-counter gauge current and frees idle counters' boxed states.
fn spawn_sweeper(app: Arc<app::App>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let swept = app.clone();
            let live = tokio::task::spawn_blocking(move || {
                let now = swept.engine.now();
                swept.engine.store().sweep(now)
            })
            .await
            .ok()
            .flatten();
            if let Some(live) = live {
                metrics::gauge!("tollgate_live_counters").set(live as f64);
            }
            app.engine.store().export_metrics();
        }
    });
}

/// Folds recorded histogram samples into their buckets, so that they take no more memory
/// between scrapes than a second's worth.
fn spawn_upkeep(metrics: metrics_exporter_prometheus::PrometheusHandle) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            metrics.run_upkeep();
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

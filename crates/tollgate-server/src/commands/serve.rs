//! `tollgate serve`: the server's start, its doors, and its orderly stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use clap::ValueEnum;

use super::check_config;
use crate::{app, background, config, grpc, http, listen, reload, workers};

/// How log lines are written.
#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object a line.
    Json,
}

/// Starts the log (and, when configured, the traces' exporter, whose provider is given to
/// be shut down at exit). Called within the runtime, which the exporter runs on.
fn init_logs(
    format: LogFormat,
    telemetry: Option<&crate::telemetry::TelemetrySettings>,
) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
        .unwrap_or_else(|_| "info".into())
        // The spans meant for traces are not log lines.
        .add_directive(format!("{}=off", crate::telemetry::TRACE).parse()?);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (traces, provider) = match telemetry {
        Some(t) => {
            let (layer, provider) = crate::telemetry::layer(t)?;
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let fmt = match format {
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
        LogFormat::Text => fmt.with_filter(filter).boxed(),
    };
    tracing_subscriber::registry().with(traces).with(fmt).init();
    Ok(provider)
}

/// Upper bounds of the decision latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 9] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.025,
];

/// Upper bounds of the proxy's upstream latency histogram's buckets, in seconds.
const UPSTREAM_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// `tollgate serve`: loads the configuration, then serves every door until a signal says
/// stop.
pub fn run(path: Option<PathBuf>, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    let mut cfg = match config::load(path.as_deref()) {
        Ok(c) => c,
        Err(errs) => {
            check_config::print_errors(&errs);
            let source = path
                .as_ref()
                .map_or("the embedded default".into(), |p| p.display().to_string());
            eprintln!(
                "tollgate did not start: {} error(s) in {source}",
                errs.0.len()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(tollgate_engine::LATENCY.into()),
            &LATENCY_BUCKETS,
        )?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(
                tollgate_proxy::metrics::UPSTREAM_DURATION.into(),
            ),
            &UPSTREAM_BUCKETS,
        )?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let traces = init_logs(log_format, cfg.telemetry.as_ref())?;
        if let Some(file) = config::secret::take_generated() {
            tracing::warn!(file = %file.display(), "dev mode: API keys are hashed under a secret generated in this file; set TOLLGATE_KEY_SECRET in production");
        }
        if let Some(t) = &cfg.telemetry {
            tracing::info!(endpoint = %t.endpoint, sample_ratio = t.sample_ratio, "traces exported over OTLP");
        }
        cfg.server.max_connections = listen::fit_to_open_files(cfg.server.max_connections);
        let served = serve(cfg, path, metrics).await;
        // What is buffered is sent before the process ends.
        if let Some(provider) = traces
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "flushing traces failed");
        }
        served
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Serves every door until a signal says stop, then finishes the requests in flight and
/// stores what the decisions left behind.
async fn serve(
    cfg: config::Config,
    path: Option<PathBuf>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
) -> anyhow::Result<()> {
    let listen = cfg.server.listen;
    let grpc_listen = cfg.server.grpc_listen;
    let grpc_settings = cfg.server.grpc;
    let timeout = cfg.server.request_timeout;
    let idle_timeout = cfg.server.idle_timeout;
    let proxy_cfg = cfg.proxy.clone();
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
            (Some(effects), Some(stop), Some(writer))
        }
        _ => (None, None, None),
    };
    let leader = cfg
        .database
        .as_ref()
        .map(|db| (db.retention, db.leader_lease));
    let app = Arc::new(app::App::new(
        cfg,
        path.clone(),
        metrics,
        registry,
        effects,
    )?);
    crate::slo::status::spawn(
        Arc::clone(&app.slo),
        app.registry.clone(),
        background::instance_name(),
    );
    let (deliver_stop, delivering) = tokio::sync::watch::channel(false);
    let mut deliverer = None;
    if let (Some(registry), Some((retention, lease))) = (&app.registry, leader) {
        background::leader(app.clone(), registry.clone(), retention, lease);
        if let Some(alerts) = &app.alerts {
            deliverer = Some(tokio::spawn(crate::alerts::deliver::run(
                registry.clone(),
                Arc::clone(alerts),
                background::instance_name(),
                Arc::clone(&app.deliveries),
                delivering,
            )));
            crate::alerts::registry_watch::spawn(registry.clone(), Arc::clone(alerts));
        }
    }
    let _watcher = match &path {
        Some(p) => Some(reload::spawn(app.clone(), p.clone())?),
        None => None,
    };
    background::sweeper(app.clone());
    background::upkeep(app.metrics.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let listener = bind(listen).with_context(|| format!("binding HTTP {listen}"))?;
    let (addr, http) = workers::spawn(
        &app,
        listener,
        workers::Door::Api(http::router(&app, timeout)),
        idle_timeout,
        &stopped,
    )?;
    let (letters_stop, letters_stopped) = tokio::sync::watch::channel(false);
    let proxy = match &proxy_cfg {
        Some(pc) => Some(spawn_proxy(
            &app,
            pc,
            idle_timeout,
            &stopped,
            letters_stopped,
        )?),
        None => None,
    };
    let grpc = match grpc_listen {
        Some(at) => Some(spawn_grpc(app.clone(), at, grpc_settings, stopped.clone()).await?),
        None => None,
    };
    let stop_signal = shutdown_signal();
    app.ready.store(true, Ordering::Relaxed);
    let source = path.as_ref().map_or("embedded default config".into(), |p| {
        p.display().to_string()
    });
    println!("tollgate listening on http://{addr} ({source})");
    if let Some((addr, _)) = &grpc {
        println!("tollgate gRPC (Envoy rate limit service) listening on {addr}");
    }
    if let Some((addr, _, _)) = &proxy {
        let scheme = if proxy_cfg.as_ref().is_some_and(|p| p.tls.is_some()) {
            "https"
        } else {
            "http"
        };
        println!("tollgate reverse proxy listening on {scheme}://{addr}");
    }
    println!(
        "try: curl -i -X POST http://{addr}/v1/check -H 'content-type: application/json' -d '{{\"subject\":{{\"user\":\"42\"}}}}'"
    );
    stop_signal.await;
    app.ready.store(false, Ordering::Relaxed);
    let _ = stop.send(true);
    if http.await.is_err() {
        tracing::error!("the HTTP door panicked");
    }
    if let Some((_, proxy, letters)) = proxy {
        if proxy.await.is_err() {
            tracing::error!("the proxy door panicked");
        }
        // Every proxied request has been answered: its dead letters are queued; store them.
        let _ = letters_stop.send(true);
        if let Some(writer) = letters
            && writer.await.is_err()
        {
            tracing::error!("the dead letter writer panicked");
        }
    }
    if let Some((_, grpc)) = grpc {
        match grpc.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("the gRPC door failed: {e}"),
            Err(_) => tracing::error!("the gRPC door panicked"),
        }
    }
    // A delivery under way finishes; the rest waits in the queue for the next instance.
    let _ = deliver_stop.send(true);
    if let Some(d) = deliverer
        && d.await.is_err()
    {
        tracing::error!("the delivery worker panicked");
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

/// Serves the reverse proxy `config` describes until `stopped` turns true, and keeps its
/// breakers' gauges current; with a database, its dead letters are stored by a writer that
/// ends once `letters_stopped` turns true (the door's task and that writer's are returned).
fn spawn_proxy(
    app: &Arc<app::App>,
    config: &tollgate_proxy::ProxyConfig,
    idle_timeout: std::time::Duration,
    stopped: &tokio::sync::watch::Receiver<bool>,
    letters_stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(
    SocketAddr,
    tokio::task::JoinHandle<()>,
    Option<tokio::task::JoinHandle<()>>,
)> {
    let mut proxy = tollgate_proxy::Proxy::new(config, app.trusted.clone())?;
    let mut letters = None;
    if let Some(registry) = &app.registry
        && config.routes.iter().any(|r| r.dead_letter.enabled)
    {
        let (sink, queue) = tollgate_proxy::dead_letter::Sink::new(DEAD_LETTER_QUEUE);
        proxy = proxy.with_dead_letters(sink);
        letters = Some(tokio::spawn(crate::proxy::dead_letters::run(
            registry.clone(),
            queue,
            letters_stopped,
        )));
    }
    let proxy = Arc::new(proxy);
    let _ = app.proxy.set(proxy.clone());
    let tls = match &config.tls {
        Some(files) => {
            Some(crate::proxy::tls::acceptor(files).context("the proxy's TLS certificate")?)
        }
        None => None,
    };
    let listener =
        bind(config.listen).with_context(|| format!("binding the proxy {}", config.listen))?;
    // The checks run for as long as the process.
    drop(proxy.spawn_health_checks(config));
    let gauges = proxy.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            every.tick().await;
            gauges.report_breakers();
        }
    });
    let (addr, door) = workers::spawn(
        app,
        listener,
        workers::Door::Proxy(proxy, tls),
        idle_timeout,
        stopped,
    )?;
    Ok((addr, door, letters))
}

/// Dead letters waiting for the writer at most; more are dropped and counted.
const DEAD_LETTER_QUEUE: usize = 1024;

/// Serves the Envoy rate limit service, gRPC health and server reflection on `at` until
/// `stopped` turns true.
async fn spawn_grpc(
    app: Arc<app::App>,
    at: SocketAddr,
    settings: config::GrpcSettings,
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

/// The next signal of `s`; never, without `s` (its handler could not be installed).
#[cfg(unix)]
async fn received(s: Option<&mut tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Waits for SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// it is first awaited, so that a signal sent as soon as the server says it listens is
/// not met by the default action, which ends the process at once.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (mut int, mut term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            tokio::select! {
                () = received(int.as_mut()) => {},
                () = received(term.as_mut()) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing requests in flight");
    }
}

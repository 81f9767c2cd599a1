//! The proxy listener's certificate, read again when its files change — their folders are
//! watched, as the configuration's is, so renames and symlink swaps are seen — and on
//! SIGHUP. A file that does not hold a usable certificate and key leaves the one in use,
//! and says why.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tollgate_proxy::config::ListenerTls;
use tollgate_proxy::tls::ListenerCert;

/// Changes closer together than this reload once.
const SETTLE: Duration = Duration::from_millis(100);

/// An acceptor presenting the certificate of `files`, kept current as they change.
pub fn acceptor(files: &ListenerTls) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let cert = Arc::new(ListenerCert::load(files)?);
    let config = cert.server_config()?;
    watch(cert)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn folder(file: &Path) -> PathBuf {
    file.parent()
        .map(PathBuf::from)
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Reloads `cert` when its files change or on SIGHUP, for as long as the process runs.
fn watch(cert: Arc<ListenerCert>) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<bool>();
    let watch_tx = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event
            && !matches!(e.kind, notify::EventKind::Access(_))
        {
            let _ = watch_tx.send(false);
        }
    })?;
    let files = cert.files().clone();
    let mut folders = vec![folder(&files.cert_file), folder(&files.key_file)];
    folders.dedup();
    for f in &folders {
        watcher.watch(f, RecursiveMode::NonRecursive)?;
    }
    #[cfg(unix)]
    {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let _ = tx.send(true);
            }
        });
    }
    let read = move || {
        (
            std::fs::read(&files.cert_file).ok(),
            std::fs::read(&files.key_file).ok(),
        )
    };
    let mut last = read();
    tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        while let Some(mut force) = rx.recv().await {
            tokio::time::sleep(SETTLE).await;
            while let Ok(f) = rx.try_recv() {
                force |= f;
            }
            // The folders' other files are reported too: reload only on a real change.
            let now = read();
            if !force && now == last {
                continue;
            }
            last = now;
            match cert.reload() {
                Ok(()) => tracing::info!("the proxy's TLS certificate was reloaded"),
                Err(e) => tracing::warn!(
                    error = %e,
                    "the proxy's TLS certificate was not reloaded; the one in use stays"
                ),
            }
        }
    });
    Ok(())
}

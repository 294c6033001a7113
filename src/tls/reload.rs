//! Certificate reloading: a background thread reloads every TLS listener's certificates on
//! SIGHUP, and when a certificate or key file's modification time changes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{CertStore, Loaded};
use crate::config::TlsCert;
use crate::metrics::METRICS;

/// How often certificate files are checked for changes.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Days before expiry from which each load logs a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// Records expiry metrics and logs each loaded certificate.
pub fn report_loaded(listener: &str, loaded: &[(TlsCert, Loaded)]) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for (source, pair) in loaded {
        METRICS
            .tls_expiry
            .with_label_values(&[listener, &source.cert])
            .set(pair.not_after as f64);
        let expires = humantime::format_rfc3339_seconds(
            SystemTime::UNIX_EPOCH + Duration::from_secs(pair.not_after.max(0) as u64),
        );
        let days_left = (pair.not_after - now) / 86_400;
        if pair.not_after <= now {
            tracing::warn!(listener, certificate = %source.cert, expires = %expires, "certificate has expired; clients will reject it");
        } else if days_left < EXPIRY_WARNING_DAYS {
            tracing::warn!(listener, certificate = %source.cert, expires = %expires, days_left, "certificate expires soon");
        } else {
            tracing::info!(listener, certificate = %source.cert, names = ?pair.names, expires = %expires, "certificate loaded");
        }
    }
}

/// Starts the reload thread for `stores`, each named by its listener address.
pub fn spawn_reloader(stores: Vec<(String, Arc<CertStore>)>) -> std::io::Result<()> {
    if stores.is_empty() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("hookgate-tls-reload".to_string())
        .spawn(move || runtime.block_on(reload_loop(stores)))?;
    Ok(())
}

async fn reload_loop(stores: Vec<(String, Arc<CertStore>)>) {
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGHUP; certificates reload only when their files change");
            None
        }
    };
    let mut seen: Vec<Vec<Option<SystemTime>>> =
        stores.iter().map(|(_, store)| stamps(store)).collect();
    loop {
        let signalled = tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => false,
            Some(()) = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        for ((listener, store), last) in stores.iter().zip(seen.iter_mut()) {
            let current = stamps(store);
            if !signalled && current == *last {
                continue;
            }
            *last = current;
            match store.reload() {
                Ok(loaded) => {
                    METRICS.tls_reloads.with_label_values(&["success"]).inc();
                    tracing::info!(listener = %listener, signalled, "certificates reloaded");
                    report_loaded(listener, &loaded);
                }
                Err(error) => {
                    METRICS.tls_reloads.with_label_values(&["failure"]).inc();
                    tracing::error!(listener = %listener, %error, "certificate reload failed; the previous certificates stay in use");
                }
            }
        }
    }
}

fn stamps(store: &CertStore) -> Vec<Option<SystemTime>> {
    store
        .sources()
        .iter()
        .flat_map(|source| [&source.cert, &source.key])
        .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        .collect()
}

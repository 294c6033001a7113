//! Certificate reloading: every TLS listener's certificates are loaded again on SIGHUP, and
//! when a certificate or key file's modification time changes (see `crate::reload`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{CertStore, Loaded};
use crate::config::TlsCert;
use crate::metrics::METRICS;

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

/// Certificate files of TLS listeners, with the modification times last seen.
pub struct CertWatch {
    stores: Vec<(String, Arc<CertStore>, Vec<Option<SystemTime>>)>,
}

impl CertWatch {
    /// Watches `stores`, each named by its listener address.
    pub fn new(stores: Vec<(String, Arc<CertStore>)>) -> Self {
        let stores = stores
            .into_iter()
            .map(|(listener, store)| {
                let seen = stamps(&store);
                (listener, store, seen)
            })
            .collect();
        CertWatch { stores }
    }

    /// Reloads the listeners whose files changed, or all of them when `force` is set.
    pub fn reload(&mut self, force: bool) {
        for (listener, store, last) in &mut self.stores {
            let current = stamps(store);
            if !force && current == *last {
                continue;
            }
            *last = current;
            match store.reload() {
                Ok(loaded) => {
                    METRICS.tls_reloads.with_label_values(&["success"]).inc();
                    tracing::info!(listener = %listener, "certificates reloaded");
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

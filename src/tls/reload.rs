//! Certificate reloading: every TLS listener's certificates are loaded again on SIGHUP, and
//! when a certificate or key file's modification time changes (see `crate::reload`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{CertStore, Loaded};
use crate::config::TlsCert;
use crate::metrics::METRICS;

/// Days before expiry from which each load logs a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// Expiry state of one certificate at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Valid,
    Soon { days_left: i64 },
    Expired,
}

impl Expiry {
    /// Classifies a certificate that is valid until `not_after` (Unix seconds) at `now`.
    pub fn at(not_after: i64, now: i64) -> Expiry {
        let days_left = (not_after - now) / 86_400;
        if not_after <= now {
            Expiry::Expired
        } else if days_left < EXPIRY_WARNING_DAYS {
            Expiry::Soon { days_left }
        } else {
            Expiry::Valid
        }
    }
}

/// Returns one warning line for each certificate of `config` that has expired or expires
/// within the warning period. Files that fail to load are not reported here, because
/// config validation already reports them.
pub fn expiry_warnings(config: &crate::config::Config) -> Vec<String> {
    let now = unix_now();
    let sources = config
        .listeners
        .iter()
        .filter_map(|listener| listener.tls.as_ref().map(|tls| (listener.address, tls)))
        .flat_map(|(address, tls)| tls.certs.iter().map(move |cert| (address, cert)));
    let mut warnings = Vec::new();
    for (address, source) in sources {
        let Ok(pair) = super::load_pair(&source.cert, &source.key) else {
            continue;
        };
        let expires = rfc3339(pair.not_after);
        match Expiry::at(pair.not_after, now) {
            Expiry::Valid => {}
            Expiry::Expired => warnings.push(format!(
                "warning: listener {address}: certificate {} expired at {expires}; clients will reject it until it is renewed",
                source.cert
            )),
            Expiry::Soon { days_left } => warnings.push(format!(
                "warning: listener {address}: certificate {} expires at {expires}, in {days_left} day(s); renew it",
                source.cert
            )),
        }
    }
    warnings
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn rfc3339(unix: i64) -> humantime::Rfc3339Timestamp {
    humantime::format_rfc3339_seconds(
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64),
    )
}

/// Records expiry metrics and logs each loaded certificate.
pub fn report_loaded(listener: &str, loaded: &[(TlsCert, Loaded)]) {
    let now = unix_now();
    for (source, pair) in loaded {
        METRICS
            .tls_expiry
            .with_label_values(&[listener, &source.cert])
            .set(pair.not_after as f64);
        let expires = rfc3339(pair.not_after);
        match Expiry::at(pair.not_after, now) {
            Expiry::Expired => {
                tracing::warn!(listener, certificate = %source.cert, expires = %expires, "certificate has expired; clients will reject it")
            }
            Expiry::Soon { days_left } => {
                tracing::warn!(listener, certificate = %source.cert, expires = %expires, days_left, "certificate expires soon")
            }
            Expiry::Valid => {
                tracing::info!(listener, certificate = %source.cert, names = ?pair.names, expires = %expires, "certificate loaded")
            }
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

//! Reloading without a restart. A background thread reloads the config on SIGHUP, and when
//! the config file changes if `--watch` is set, and swaps in the new route table: requests in
//! flight finish under the old rules. An invalid config is rejected with the same errors as
//! `hookgate check` and the old one keeps serving. Listener and store changes need a restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{self, Config, Listener, QueueSettings, StoreSettings};
use crate::metrics::METRICS;
use crate::proxy::Swapper;
use crate::store::Store;
use crate::tls::CertWatch;

/// How often watched files are checked for changes.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// State of the reload thread: the config source and what rebuilds the rules.
pub struct Reloader {
    pub path: PathBuf,
    pub watch: bool,
    pub swapper: Swapper,
    pub store: Arc<Store>,
    pub store_settings: StoreSettings,
    pub queue_settings: Option<QueueSettings>,
    pub listeners: Vec<Listener>,
    pub certs: CertWatch,
}

impl Reloader {
    /// Starts the reload thread. The SIGHUP handler is installed before this returns, so
    /// that an early SIGHUP reloads instead of ending the process.
    pub fn spawn(self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let hangup = runtime.block_on(async { signal(SignalKind::hangup()) })?;
        std::thread::Builder::new()
            .name("hookgate-reload".to_string())
            .spawn(move || runtime.block_on(self.run(hangup)))?;
        Ok(())
    }

    async fn run(mut self, mut hangup: tokio::signal::unix::Signal) {
        let mut config_stamp = modified(&self.path);
        loop {
            let signalled = tokio::select! {
                _ = tokio::time::sleep(POLL_INTERVAL) => false,
                Some(()) = hangup.recv() => true,
            };
            let stamp = modified(&self.path);
            if signalled || (self.watch && stamp != config_stamp) {
                config_stamp = stamp;
                self.reload_config(if signalled { "SIGHUP" } else { "file change" });
            }
            self.certs.reload(signalled);
        }
    }

    fn reload_config(&mut self, trigger: &str) {
        let config = match config::load(&self.path) {
            Ok(config) => config,
            Err(errors) => {
                METRICS.config_reloads.with_label_values(&["failure"]).inc();
                tracing::error!(trigger, problems = errors.0.len(), errors = %errors, "config reload failed; the previous config stays in use");
                return;
            }
        };
        self.warn_about_restart_changes(&config);
        let routes = config.routes.len();
        self.swapper.swap(config, Arc::clone(&self.store));
        METRICS.config_reloads.with_label_values(&["success"]).inc();
        tracing::info!(trigger, routes, "config reloaded");
    }

    fn warn_about_restart_changes(&self, config: &Config) {
        let addresses = |listeners: &[Listener]| -> Vec<String> {
            listeners
                .iter()
                .map(|l| format!("{} {:?}", l.address, l.tls.as_ref().map(|t| &t.certs)))
                .collect()
        };
        if addresses(&config.listeners) != addresses(&self.listeners) {
            tracing::warn!("listener changes take effect only after a restart; the current listeners keep serving");
        }
        if config.queue != self.queue_settings {
            tracing::warn!(
                "queue changes take effect only after a restart; the current queue stays in use"
            );
        }
        if config.store != self.store_settings {
            tracing::warn!(
                "store changes take effect only after a restart; the current store stays in use"
            );
        }
    }
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

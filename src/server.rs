//! Start-up: binds every listener, builds the Pingora server from the config and runs it.
//!
//! Listeners are bound here, before Pingora starts, so that a busy port fails start-up with
//! a clear error and port 0 resolves to a real port that is logged. Pingora adopts the bound
//! sockets through its listener file descriptor table, the same path it uses for upgrades.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{IntoRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use pingora::apps::http_app::HttpServer;
use pingora::server::configuration::ServerConf;
use pingora::server::{ListenFds, RuntimeOpts, Server, ShutdownWatch};
use pingora::services::listening::Service;
use pingora::services::{ServiceReadyNotifier, ServiceWithDependents};

use crate::admin::Admin;
use crate::clock::Clock;
use crate::config::Config;
use crate::connection::{ConnectionCap, HeadDeadline};
use crate::demo::EchoUpstream;
use crate::proxy::Gateway;
use crate::reload::Reloader;
use crate::route;
use crate::store::Store;
use crate::tls::{CertStore, CertWatch};
use pingora::listeners::tls::TlsSettings;

/// Binds the listeners and serves until the process is stopped. Never returns on success.
pub fn run(
    config: Config,
    clock: Arc<dyn Clock>,
    demo_upstream: Option<SocketAddr>,
    watch: bool,
) -> anyhow::Result<()> {
    let mut conf = ServerConf {
        threads: config.server.threads,
        // Pingora keeps serving for `grace_period_seconds` after SIGTERM, then stops its
        // runtimes, which drops whatever is still running after the short timeout.
        grace_period_seconds: Some(config.server.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    conf.daemon = false;
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    for route in &config.routes {
        tracing::info!(
            route = %route.name,
            path = %route::describe(route),
            provider = route.scheme.name(),
            secrets = route.keys.len(),
            upstream = %route.upstream.url,
            "route loaded"
        );
    }

    let listeners = config.listeners.clone();
    let admin = config.admin;
    let (config_path, store_settings) = (config.file.clone(), config.store.clone());
    let store = Arc::new(Store::from_settings(&config.store).map_err(anyhow::Error::msg)?);
    tracing::info!(store = store.kind(), "guard state store");
    let admin_store = Arc::clone(&store);
    let reload_store = Arc::clone(&store);
    let (header_timeout, max_connections) =
        (config.server.header_timeout, config.server.max_connections);
    let (gateway, swapper) = Gateway::new(config, store, clock);
    let proxy = pingora::proxy::http_proxy(&server.configuration, gateway);
    let proxy = ConnectionCap::new(HeadDeadline::new(proxy, header_timeout), max_connections);
    let mut proxy = Service::new("hookgate".to_string(), proxy);
    let mut bound = Vec::new();
    let mut cert_stores = Vec::new();
    for listener in listeners.clone() {
        let (actual, fd) = bind(listener.address)?;
        let address = actual.to_string();
        match listener.tls {
            None => {
                proxy.add_tcp(&address);
                tracing::info!(address = %actual, tls = false, "listening for webhooks");
            }
            Some(tls) => {
                let (store, loaded) = CertStore::load(tls.certs).map_err(anyhow::Error::msg)?;
                crate::tls::report_loaded(&address, &loaded);
                let store = Arc::new(store);
                let mut settings = TlsSettings::intermediate("", "")?;
                settings.set_cert_resolver(store.clone());
                if tls.http2 {
                    settings.enable_h2();
                }
                proxy.add_tls_with_settings(&address, None, settings);
                cert_stores.push((address.clone(), store));
                tracing::info!(address = %actual, tls = true, http2 = tls.http2, "listening for webhooks");
            }
        }
        bound.push((address, fd));
    }
    Reloader {
        path: config_path,
        watch,
        swapper,
        store: reload_store,
        store_settings,
        listeners,
        certs: CertWatch::new(cert_stores),
    }
    .spawn()?;
    let mut proxy = PreBound::new(proxy, bound);
    proxy.marks_ready = true;
    server.add_service(proxy);

    if let Some(address) = admin {
        let mut service = Service::new(
            "hookgate-admin".to_string(),
            HttpServer::new_app(Admin::new(admin_store)),
        );
        let (actual, fd) = bind(address)?;
        service.add_tcp(&actual.to_string());
        tracing::info!(address = %actual, "admin listener serving /metrics, /healthz and /readyz");
        server.add_service(PreBound::new(service, vec![(actual.to_string(), fd)]));
    }

    if let Some(address) = demo_upstream {
        let mut service = Service::new(
            "demo-upstream".to_string(),
            HttpServer::new_app(EchoUpstream),
        );
        let (actual, fd) = bind(address)?;
        service.add_tcp(&actual.to_string());
        tracing::info!(address = %actual, "demo upstream listening");
        server.add_service(PreBound::new(service, vec![(actual.to_string(), fd)]));
    }

    server.run_forever()
}

fn bind(address: SocketAddr) -> anyhow::Result<(SocketAddr, RawFd)> {
    let listener = TcpListener::bind(address)
        .with_context(|| format!("cannot listen on {address}; is another process using it?"))?;
    listener.set_nonblocking(true)?;
    let actual = listener.local_addr()?;
    Ok((actual, listener.into_raw_fd()))
}

/// A Pingora service whose listening sockets were bound before the server started.
struct PreBound<S> {
    inner: S,
    sockets: Vec<(String, RawFd)>,
    /// Whether `/readyz` reports ready once this service starts.
    marks_ready: bool,
}

impl<S> PreBound<S> {
    fn new(inner: S, sockets: Vec<(String, RawFd)>) -> Self {
        PreBound {
            inner,
            sockets,
            marks_ready: false,
        }
    }
}

#[async_trait]
impl<S: ServiceWithDependents> ServiceWithDependents for PreBound<S> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
        ready_notifier: ServiceReadyNotifier,
    ) {
        if let Some(table) = &fds {
            let mut table = table.lock();
            for (address, fd) in self.sockets.drain(..) {
                table.add(address, fd);
            }
        }
        if self.marks_ready {
            crate::admin::READY.store(true, std::sync::atomic::Ordering::Release);
        }
        self.inner
            .start_service(fds, shutdown, listeners_per_fd, ready_notifier)
            .await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn threads(&self) -> Option<usize> {
        self.inner.threads()
    }

    fn runtime_opts_override(&self, global: &RuntimeOpts) -> Option<RuntimeOpts> {
        self.inner.runtime_opts_override(global)
    }

    fn on_startup_delay(&self, time_waited: Duration) {
        self.inner.on_startup_delay(time_waited)
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        self.inner.listen_addresses()
    }
}

//! Start-up: binds every listener, builds the Pingora server from the config and runs it.
//!
//! Listeners are bound here, before Pingora starts, so that a busy port fails start-up with
//! a clear error and port 0 resolves to a real port that is logged. Pingora adopts the bound
//! sockets through its listener file descriptor table, the same path it uses for upgrades.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{IntoRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::http_app::HttpServer;
use pingora::server::configuration::ServerConf;
use pingora::server::{ListenFds, RuntimeOpts, Server, ShutdownWatch};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use pingora::services::{ServiceReadyNotifier, ServiceWithDependents};

use crate::admin::Admin;
use crate::clock::Clock;
use crate::config::{Config, DeliveryMode};
use crate::connection::{ConnectionCap, HeadDeadline};
use crate::delivery::{DeliveryService, Queue};
use crate::demo::EchoUpstream;
use crate::proxy::Gateway;
use crate::reload::Reloader;
use crate::route;
use crate::store::Store;
use crate::tls::{CertStore, CertWatch};
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};

/// Read buffering of plain-HTTP client connections: none. Pingora reads request heads and
/// bodies into buffers of its own, so a second buffer in front of the socket saves no read
/// and costs every connection, idle or not, 64 KiB of heap.
const PLAIN_L4_BUFFER: L4BufferSettings = L4BufferSettings {
    read: Some(0),
    write: None,
};

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
            delivery = match route.delivery {
                DeliveryMode::Sync => "sync",
                DeliveryMode::Async(_) => "async",
            },
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
    let queue_settings = config.queue.clone();
    let queue = open_queue(&config)?;
    let workers = queue
        .as_ref()
        .map(|queue| DeliveryService::new(Arc::clone(queue), &config.routes));
    let delivery = queue.zip(workers.as_ref().map(|(_, handle)| handle.clone()));
    let admin_queue = delivery.clone();
    let (header_timeout, max_connections) =
        (config.server.header_timeout, config.server.max_connections);
    let (gateway, swapper) = Gateway::new(config, store, clock, delivery);
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
                proxy.add_listener(ListenerConfig::tcp(&address).l4_buffer(PLAIN_L4_BUFFER));
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
        queue_settings,
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
            HttpServer::new_app(Admin::new(admin_store, admin_queue)),
        );
        let (actual, fd) = bind(address)?;
        service.add_tcp(&actual.to_string());
        tracing::info!(address = %actual, "admin listener serving /metrics, /healthz and /readyz");
        server.add_service(PreBound::new(service, vec![(actual.to_string(), fd)]));
    }

    if let Some((service, _)) = workers {
        server.add_service(background_service("hookgate-delivery", service));
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

/// Opens the queue of `delivery: async` routes, when the config has one, and logs what it
/// holds.
fn open_queue(config: &Config) -> anyhow::Result<Option<Arc<Queue>>> {
    let Some(settings) = &config.queue else {
        return Ok(None);
    };
    let queue = Queue::open(settings)?;
    match settings.file() {
        Some(file) => {
            tracing::info!(queue = queue.kind(), file = %file.display(), "delivery queue opened")
        }
        None => tracing::info!(queue = queue.kind(), "delivery queue configured"),
    }
    Ok(Some(Arc::new(queue)))
}

fn bind(address: SocketAddr) -> anyhow::Result<(SocketAddr, RawFd)> {
    let listener = TcpListener::bind(address).map_err(|e| {
        let fix = match e.kind() {
            ErrorKind::AddrInUse => {
                "; another process listens there, so stop it or choose another address"
            }
            ErrorKind::PermissionDenied => {
                "; a port below 1024 needs root or the CAP_NET_BIND_SERVICE capability"
            }
            ErrorKind::AddrNotAvailable => "; the IP address is not one of this host's",
            _ => "",
        };
        anyhow::anyhow!("cannot listen on {address}: {e}{fix}")
    })?;
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

//! The Pingora `ProxyHttp` implementation. `request_filter` runs the whole pipeline for each
//! request (route, guards, read, verify, forward) and always writes the response itself, so no
//! upstream connection exists before the signature is verified.

mod body;
mod enqueue;
pub(crate) mod forward;
mod guards;
mod log;
mod pipeline;

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::connectors::http::Connector;
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};

use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::{DeliveryHandle, Queue};
use crate::store::Store;
use log::RequestLog;
pub use pipeline::Rules;

pub struct Gateway {
    rules: Arc<ArcSwap<Rules>>,
}

/// Replaces the rules of a running [`Gateway`].
#[derive(Clone)]
pub struct Swapper {
    rules: Arc<ArcSwap<Rules>>,
    connector: Arc<Connector>,
    clock: Arc<dyn Clock>,
    /// The queue of `delivery: async` routes and the workers that deliver from it.
    delivery: Option<(Arc<Queue>, DeliveryHandle)>,
}

impl Gateway {
    /// Builds the gateway and the handle that swaps in the rules of a reloaded config.
    pub fn new(
        config: Config,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        delivery: Option<(Arc<Queue>, DeliveryHandle)>,
    ) -> (Gateway, Swapper) {
        let connector = Arc::new(Connector::new(None));
        let queue = delivery.as_ref().map(|(queue, _)| Arc::clone(queue));
        let rules =
            Rules::new(config, store, Arc::clone(&clock), Arc::clone(&connector)).with_queue(queue);
        let rules = Arc::new(ArcSwap::from_pointee(rules));
        let swapper = Swapper {
            rules: Arc::clone(&rules),
            connector,
            clock,
            delivery,
        };
        (Gateway { rules }, swapper)
    }
}

impl Swapper {
    /// Installs the rules of `config`; requests already running keep their old rules.
    pub fn swap(&self, config: Config, store: Arc<Store>) {
        if let Some((_, handle)) = &self.delivery {
            handle.update(&config.routes);
        }
        let queue = self.delivery.as_ref().map(|(queue, _)| Arc::clone(queue));
        let rules = Rules::new(
            config,
            store,
            Arc::clone(&self.clock),
            Arc::clone(&self.connector),
        )
        .with_queue(queue);
        self.rules.store(Arc::new(rules));
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestLog;

    /// Pingora calls this right after it has read a request head.
    fn new_ctx(&self) -> Self::CTX {
        crate::connection::head_received();
        RequestLog::default()
    }

    async fn request_filter(&self, session: &mut Session, log: &mut RequestLog) -> Result<bool> {
        let rules = self.rules.load_full();
        rules.serve(session, log).await
    }

    /// Never called, because `request_filter` writes the response to every request itself.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _log: &mut RequestLog,
    ) -> Result<Box<HttpPeer>> {
        Error::e_explain(
            ErrorType::InternalError,
            "hookgate forwards from request_filter",
        )
    }

    async fn logging(&self, session: &mut Session, _error: Option<&Error>, log: &mut RequestLog) {
        if log.access_log {
            log.emit(session);
        }
    }
}

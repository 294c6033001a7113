//! Connection stage, before routing: caps the connections open at once on the webhook
//! listeners, and closes a connection whose request head does not arrive in time.
//!
//! Pingora 0.9.1 has neither limit. Its HTTP/1 reader gives each read of a request head up
//! to 60 s (`HttpSession::read_request` in pingora-core's `protocols/http/v1/server.rs`), so
//! a client that sends one byte every 59 s keeps a connection open without end, and its
//! listeners accept every connection. Both limits wrap the proxy through Pingora's public
//! application traits: [`ConnectionCap`] around the whole connection (`ServerApp`) and
//! [`HeadDeadline`] around each request (`HttpServerApp`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use tokio::sync::Semaphore;

use crate::metrics::METRICS;

tokio::task_local! {
    /// Set once the head of the request that the current task serves has been read.
    static HEAD_RECEIVED: Arc<AtomicBool>;
}

/// Records that the current request's head has been read, which ends its [`HeadDeadline`].
/// The proxy calls it from `ProxyHttp::new_ctx`, which Pingora runs right after parsing the
/// head. Outside a [`HeadDeadline`] it does nothing.
pub fn head_received() {
    let _ = HEAD_RECEIVED.try_with(|received| received.store(true, Ordering::Release));
}

/// Closes a connection when the next request head has not been read within `timeout`,
/// counted from the start of the connection (after the TLS handshake) or from the end of the
/// previous response on a keep-alive connection.
pub struct HeadDeadline<A> {
    inner: Arc<A>,
    timeout: Duration,
}

impl<A> HeadDeadline<A> {
    pub fn new(inner: A, timeout: Duration) -> Self {
        HeadDeadline {
            inner: Arc::new(inner),
            timeout,
        }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> HttpServerApp for HeadDeadline<A> {
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let received = Arc::new(AtomicBool::new(false));
        let serve = HEAD_RECEIVED.scope(
            Arc::clone(&received),
            self.inner.process_new_http(session, shutdown),
        );
        tokio::pin!(serve);
        tokio::select! {
            reused = &mut serve => reused,
            () = tokio::time::sleep(self.timeout) => {
                if received.load(Ordering::Acquire) {
                    return serve.await;
                }
                // Dropping `serve` drops the session, which closes the connection.
                tracing::debug!(timeout = ?self.timeout, "closing connection: request head not received in time");
                METRICS
                    .connections_dropped
                    .with_label_values(&["header_timeout"])
                    .inc();
                None
            }
        }
    }

    fn h2_options(&self) -> Option<pingora::protocols::http::v2::server::H2Options> {
        self.inner.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.inner.server_options()
    }

    async fn http_cleanup(&self) {
        self.inner.http_cleanup().await
    }
}

/// Closes new connections at once while `max` connections are open. Pingora calls
/// `process_new` after the TLS handshake, so connections still in the handshake, which
/// Pingora limits to 60 s, are not counted.
pub struct ConnectionCap<A> {
    inner: Arc<A>,
    permits: Semaphore,
}

impl<A> ConnectionCap<A> {
    pub fn new(inner: A, max: usize) -> Self {
        ConnectionCap {
            inner: Arc::new(inner),
            permits: Semaphore::new(max.min(Semaphore::MAX_PERMITS)),
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ConnectionCap<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Ok(_permit) = self.permits.try_acquire() else {
            tracing::debug!("closing connection: server.max_connections are open");
            METRICS
                .connections_dropped
                .with_label_values(&["max_connections"])
                .inc();
            return None;
        };
        let _open = OpenConnection::count();
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

/// One connection counted in `hookgate_connections_open`, until dropped.
struct OpenConnection;

impl OpenConnection {
    fn count() -> Self {
        METRICS.connections_open.inc();
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        METRICS.connections_open.dec();
    }
}

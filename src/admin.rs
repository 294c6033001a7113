//! The admin listener: `/metrics` in the Prometheus text format, `/healthz` (the process is
//! alive) and `/readyz` (the config is loaded, the listeners are bound, the webhook service
//! has started, the shared store responds and the delivery queue has not failed a write). With a delivery queue it also serves the
//! `hookgate queue` commands under `/queue/`, to clients on the loopback interface only,
//! because they show and change queued webhooks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::delivery::admin::Operation;
use crate::delivery::{DeliveryHandle, Queue};
use crate::store::Store;

pub struct Admin {
    store: Arc<Store>,
    /// The delivery queue, and the handle that lists the current async routes.
    queue: Option<(Arc<Queue>, DeliveryHandle)>,
}

impl Admin {
    pub fn new(store: Arc<Store>, queue: Option<(Arc<Queue>, DeliveryHandle)>) -> Self {
        Admin { store, queue }
    }
}

/// Set once the webhook service has started on its bound listeners.
pub static READY: AtomicBool = AtomicBool::new(false);

impl Admin {
    async fn readiness(&self) -> (StatusCode, &'static str, Vec<u8>) {
        if !READY.load(Ordering::Acquire) {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                b"starting\n".to_vec(),
            );
        }
        if let Some(Err(error)) = self.queue.as_ref().map(|(queue, _)| queue.health()) {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {error}\n").into_bytes(),
            );
        }
        match self.store.ping().await {
            Ok(()) => (StatusCode::OK, "text/plain", b"ready\n".to_vec()),
            Err(error) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {error}\n").into_bytes(),
            ),
        }
    }
}

impl Admin {
    async fn queue_command(&self, session: &ServerSession) -> (StatusCode, &'static str, Vec<u8>) {
        let loopback = session
            .client_addr()
            .and_then(|addr| addr.as_inet())
            // On a dual-stack `[::]` listener an IPv4 client shows as `::ffff:127.0.0.1`.
            .is_some_and(|addr| addr.ip().to_canonical().is_loopback());
        if !loopback {
            let body = b"queue commands are served to loopback clients only\n".to_vec();
            return (StatusCode::FORBIDDEN, "text/plain", body);
        }
        let Some((queue, handle)) = &self.queue else {
            let body = b"this gateway has no delivery queue\n".to_vec();
            return (StatusCode::NOT_FOUND, "text/plain", body);
        };
        let header = session.req_header();
        let operation =
            Operation::from_admin(&header.method, header.uri.path(), header.uri.query());
        let Some(operation) = operation else {
            let body = b"unknown queue command; use GET /queue/list or /queue/show, POST /queue/retry or /queue/purge\n".to_vec();
            return (StatusCode::BAD_REQUEST, "text/plain", body);
        };
        match operation.run(queue, &handle.routes()).await {
            Ok(result) => (
                StatusCode::OK,
                "application/json",
                result.to_string().into_bytes(),
            ),
            Err(error) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{error}\n").into_bytes(),
            ),
        }
    }
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let (status, content_type, body) = match session.req_header().uri.path() {
            "/metrics" => (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                crate::metrics::render().into_bytes(),
            ),
            "/healthz" => (StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            "/readyz" => self.readiness().await,
            path if path.starts_with("/queue/") => self.queue_command(session).await,
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                b"not found; try /metrics, /healthz or /readyz\n".to_vec(),
            ),
        };
        let length = body.len();
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .header("content-length", length)
            .body(body)
            .unwrap_or_default()
    }
}

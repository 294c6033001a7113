//! The admin listener: `/metrics` in the Prometheus text format, `/healthz` (the process is
//! alive) and `/readyz` (the config is loaded, the listeners are bound, the webhook service
//! has started and the shared store responds).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::store::Store;

pub struct Admin {
    store: Arc<Store>,
}

impl Admin {
    pub fn new(store: Arc<Store>) -> Self {
        Admin { store }
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

//! The admin listener: `/metrics` in the Prometheus text format, `/healthz` (the process is
//! alive) and `/readyz` (the config is loaded, the listeners are bound and the webhook service
//! has started).

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

pub struct Admin;

/// Set once the webhook service has started on its bound listeners.
pub static READY: AtomicBool = AtomicBool::new(false);

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
            "/readyz" if READY.load(Ordering::Acquire) => {
                (StatusCode::OK, "text/plain", b"ready\n".to_vec())
            }
            "/readyz" => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                b"starting\n".to_vec(),
            ),
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

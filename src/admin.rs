//! The admin listener: `/metrics` in the Prometheus text format, `/healthz` (the process is
//! alive) and `/readyz` (the config is loaded and the listeners are bound, which is true
//! whenever this listener answers, since it starts after them).

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

pub struct Admin;

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let (status, content_type, body) = match session.req_header().uri.path() {
            "/metrics" => (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                crate::metrics::render().into_bytes(),
            ),
            "/healthz" | "/readyz" => (StatusCode::OK, "text/plain", b"ok\n".to_vec()),
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

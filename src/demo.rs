//! Helpers for trying hookgate out: a demo upstream that echoes what it received, and
//! `hookgate providers`, which lists the presets.

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use sha2::{Digest, Sha256};

use crate::provider::{catalog, Scheme};

/// An upstream that responds to every request with a JSON summary of it, and logs it.
pub struct EchoUpstream;

#[async_trait]
impl ServeHttp for EchoUpstream {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = session.read_request_body().await {
            body.extend_from_slice(&chunk);
        }
        let header = session.req_header();
        let summary = serde_json::json!({
            "upstream": "hookgate demo upstream",
            "method": header.method.as_str(),
            "path": header.uri.to_string(),
            "body_bytes": body.len(),
            "body_sha256": hex::encode(Sha256::digest(&body)),
        });
        tracing::info!(method = %header.method, path = %header.uri, body_bytes = body.len(), "demo upstream received a request");
        let mut text = summary.to_string();
        text.push('\n');
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("content-length", text.len())
            .body(text.into_bytes())
            .unwrap_or_default()
    }
}

/// Prints every preset with the headers it reads, its algorithm, the keys it takes and its
/// timestamp tolerance.
pub fn print_providers() {
    let mut rows = vec![[
        "provider".to_string(),
        "algorithm".to_string(),
        "keys".to_string(),
        "tolerance".to_string(),
        "headers".to_string(),
    ]];
    for entry in catalog::entries() {
        let Some(scheme) = Scheme::preset(entry.name) else {
            continue;
        };
        // Every route's `tolerance:` applies, 300s unless set.
        let tolerance = if scheme.uses_timestamp() { "300s" } else { "-" };
        let mut headers = entry.headers.to_string();
        if scheme.signs_url() {
            headers.push_str("; signs the URL (needs public_url:)");
        }
        rows.push([
            entry.name.to_string(),
            entry.algorithm.to_string(),
            entry.keys.to_string(),
            tolerance.to_string(),
            headers,
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        line.push_str(&row[4]);
        println!("{line}");
    }
    for (alias, name) in Scheme::preset_aliases() {
        println!("{alias:<width$}  same as {name}", width = widths[0]);
    }
    println!(
        "{} presets. Tolerance is the route's `tolerance:` (default 300s) on either side of the \
         gateway's clock. A route without a preset can describe its scheme with an `hmac:` or \
         a `signature:` block; see docs/providers.md.",
        Scheme::preset_names().len()
    );
}

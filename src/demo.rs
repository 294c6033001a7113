//! Helpers for trying hookgate out: a demo upstream that echoes what it received, and
//! `hookgate sign`, which prints a curl command carrying a valid signature.

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use sha2::{Digest, Sha256};

use crate::cli::SignArgs;
use crate::clock::{Clock, SystemClock};
use crate::config::{self, PathMatch};
use crate::provider::sign;

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

/// Prints a curl command that sends `args.data` to the route, signed with its first secret.
pub fn print_signed_curl(args: &SignArgs) -> anyhow::Result<()> {
    let config = config::load(&args.config.config)?;
    let Some(route) = config.routes.iter().find(|r| r.name == args.route) else {
        let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
        anyhow::bail!(
            "no route named {:?}; routes: {}",
            args.route,
            names.join(", ")
        );
    };
    let path = match &route.path {
        PathMatch::Exact(path) => path.clone(),
        PathMatch::Prefix(prefix) => format!("{prefix}demo"),
    };
    let url = route
        .public_url
        .as_ref()
        .map_or_else(|| path.clone(), |origin| format!("{origin}{path}"));
    let Some(key) = route.keys.first() else {
        anyhow::bail!("route {:?} has no secret to sign with", args.route);
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let delivery_id = format!("demo-{nanos}");
    let headers = sign::sign(
        &route.scheme,
        key,
        &sign::Message {
            method: "POST",
            url: &url,
            body: args.data.as_bytes(),
            timestamp: SystemClock.now_unix(),
            id: &delivery_id,
        },
    )
    .map_err(anyhow::Error::msg)?;

    let target = format!("{}{}", args.gateway.trim_end_matches('/'), path);
    let mut command = format!(
        "curl -sS -X POST {} -H 'Content-Type: application/json'",
        shell_quote(&target)
    );
    let mut headers = headers;
    // Senders give each delivery its own id; without one, a second run of the same command
    // would get the duplicate response instead of reaching the upstream.
    if let Some(name) = route.scheme.delivery_id_header() {
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name.as_str()))
        {
            headers.push((name.to_string(), delivery_id.clone()));
        }
    }
    for (name, value) in headers {
        command.push_str(&format!(" -H {}", shell_quote(&format!("{name}: {value}"))));
    }
    command.push_str(&format!(" --data-binary {}", shell_quote(&args.data)));
    println!("{command}");
    Ok(())
}

/// Prints every preset with the header it reads and what it checks besides the body.
pub fn print_providers() {
    println!("{:<20} {:<42} checks", "provider", "signature header");
    for name in crate::provider::Scheme::preset_names() {
        let Some(scheme) = crate::provider::Scheme::preset(name) else {
            continue;
        };
        let header = match (scheme.signature_header(), *name) {
            (Some(header), _) => header.to_string(),
            (None, "gitlab") => "x-gitlab-token (shared token)".to_string(),
            (None, "mailgun") => "(signature fields in the body)".to_string(),
            (None, _) => "-".to_string(),
        };
        let mut checks = Vec::new();
        if !scheme.needs_keys() {
            checks.push("nothing: other guards only");
        }
        if scheme.uses_timestamp() {
            checks.push("timestamp");
        }
        if scheme.signs_url() {
            checks.push("URL (needs public_url)");
        }
        println!("{name:<20} {header:<42} {}", checks.join(", "));
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

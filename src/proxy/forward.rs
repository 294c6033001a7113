//! Forward stage: sends a verified request, body byte for byte, to the upstream through
//! Pingora's pooled connector and streams the upstream's response back to the client.
//!
//! The gateway writes the request itself instead of returning to Pingora's proxy phases,
//! because Pingora 0.9 replays a body read in `request_filter` only up to 64 KiB and sends
//! larger ones without their body.

use std::time::{Duration, Instant};

use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::client::HttpSession;
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::{parse_x509, WrappedX509};
use pingora::{Error, ErrorType};
use std::sync::Arc;

use crate::reject::Reject;

/// Idle time after which a pooled upstream connection is closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Headers that describe one connection rather than the message (RFC 9110, section 7.6.1),
/// plus `Expect`, because the gateway has already sent `100 Continue`.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "expect",
];

/// Result of a forwarded request, for metrics and logs.
pub struct Forwarded {
    pub status: u16,
    /// Time from asking for a connection to the end of the upstream's response header.
    pub upstream_duration: Duration,
}

/// A request for which the upstream has sent its final response header.
pub struct Exchange {
    upstream: HttpSession,
    pub forwarded: Forwarded,
}

/// Sends the request and reads the upstream's final response header. On failure nothing has
/// been written to the client yet, and the returned rejection is the response to send.
pub async fn send_request(
    connector: &Connector,
    peer: &HttpPeer,
    response_timeout: Duration,
    session: &Session,
    body: Bytes,
    marks: &[(http::HeaderName, Option<String>)],
) -> Result<Exchange, (Reject, Box<Error>)> {
    let request = outgoing_request(session, body.len(), marks);
    let started = Instant::now();

    // No retry: once the request is written the upstream may have acted on it, and a second
    // copy would deliver the webhook twice. The sender retries a 502 itself. Pingora's pool
    // drops connections that the upstream closes while idle, which keeps stale reuse rare.
    let upstream = send(connector, peer, response_timeout, &request, &body)
        .await
        .map_err(|e| (classify(&e), e))?;
    let Some(status) = upstream.response_header().map(|r| r.status.as_u16()) else {
        let cause = Error::explain(ErrorType::InvalidHTTPHeader, "no response header");
        return Err((Reject::UpstreamError, cause));
    };
    Ok(Exchange {
        upstream,
        forwarded: Forwarded {
            status,
            upstream_duration: started.elapsed(),
        },
    })
}

/// Streams the upstream's response to the client and returns the connection to the pool.
/// On failure the response is cut short, since its header has already been sent.
pub async fn relay(
    connector: &Connector,
    peer: &HttpPeer,
    session: &mut Session,
    exchange: Exchange,
) -> Result<Forwarded, (Forwarded, Box<Error>)> {
    let Exchange {
        mut upstream,
        forwarded,
    } = exchange;
    let Some(response) = upstream.response_header() else {
        let cause = Error::explain(ErrorType::InvalidHTTPHeader, "no response header");
        return Err((forwarded, cause));
    };
    let response = downstream_response(response, session.is_http2());
    if let Err(e) = relay_response(session, &mut upstream, response).await {
        return Err((forwarded, e));
    }
    if upstream.response_done() {
        connector
            .release_http_session(upstream, peer, Some(POOL_IDLE_TIMEOUT))
            .await;
    }
    Ok(forwarded)
}

/// Builds the request header the upstream receives: the client's, without hop-by-hop
/// headers, with `marks` set or removed.
pub(crate) fn outgoing_request(
    session: &Session,
    body_len: usize,
    marks: &[(http::HeaderName, Option<String>)],
) -> RequestHeader {
    let mut request = upstream_request(session, body_len);
    for (name, value) in marks {
        request.remove_header(name);
        if let Some(value) = value {
            let _ = request.insert_header(name.clone(), value.as_str());
        }
    }
    request
}

/// Most informational (1xx) responses skipped before the final response.
const MAX_INFORMATIONAL: usize = 8;

/// Connects (or reuses a connection), sends the request and reads the final response header,
/// skipping informational responses such as `103 Early Hints`.
pub(crate) async fn send(
    connector: &Connector,
    peer: &HttpPeer,
    response_timeout: Duration,
    request: &RequestHeader,
    body: &Bytes,
) -> Result<HttpSession, Box<Error>> {
    let (mut upstream, _reused) = connector.get_http_session(peer).await?;
    upstream.set_read_timeout(Some(response_timeout));
    let exchange = async {
        upstream
            .write_request_header(Box::new(request.clone()))
            .await?;
        if !body.is_empty() {
            upstream.write_request_body(body.clone(), true).await?;
        }
        upstream.finish_request_body().await?;
        for _ in 0..MAX_INFORMATIONAL {
            upstream.read_response_header().await?;
            let status = upstream.response_header().map(|r| r.status.as_u16());
            match status {
                Some(101) => {
                    return Error::e_explain(
                        ErrorType::InvalidHTTPHeader,
                        "the upstream switched protocols, which webhooks do not use",
                    )
                }
                Some(100..=199) => continue,
                _ => return Ok(()),
            }
        }
        Error::e_explain(
            ErrorType::InvalidHTTPHeader,
            "too many informational responses",
        )
    };
    exchange.await.map(|()| upstream)
}

/// Builds the upstream request header: the client's header, unchanged except for hop-by-hop
/// headers and the framing. A body that arrived chunked, or over HTTP/2, goes out with a
/// `Content-Length`.
fn upstream_request(session: &Session, body_len: usize) -> RequestHeader {
    let mut request = session.req_header().clone();
    // Headers named in `Connection` are hop-by-hop too (RFC 9110, section 7.6.1).
    let named: Vec<String> = request
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty() && name != "host")
        .collect();
    for name in &named {
        request.remove_header(name.as_str());
    }
    let had_length = request.headers.contains_key(http::header::CONTENT_LENGTH)
        && !request
            .headers
            .contains_key(http::header::TRANSFER_ENCODING);
    // A removal looks the name up in both of the header's maps, and most requests carry none
    // of these, so one lookup comes first.
    for name in HOP_BY_HOP {
        if request.headers.contains_key(*name) {
            request.remove_header(*name);
        }
    }
    if session.is_http2() {
        request.set_version(http::Version::HTTP_11);
        if !request.headers.contains_key(http::header::HOST) {
            if let Some(authority) = request.uri.authority().map(|a| a.to_string()) {
                let _ = request.insert_header(http::header::HOST, authority);
            }
        }
    }
    if !had_length && (body_len > 0 || request.method != http::Method::GET) {
        request.remove_header(&http::header::CONTENT_LENGTH);
        let _ = request.insert_header(http::header::CONTENT_LENGTH, body_len.to_string());
    }
    request
}

/// Builds the client's response header from the upstream's. Connection-level headers are
/// dropped, and `Transfer-Encoding` too for HTTP/2 clients, which must not receive it. For
/// HTTP/1 clients it stays, so that Pingora frames the body the same way.
fn downstream_response(response: &ResponseHeader, http2: bool) -> ResponseHeader {
    let mut response = response.clone();
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "trailer",
    ] {
        response.remove_header(name);
    }
    if http2 {
        response.remove_header("transfer-encoding");
    }
    response
}

async fn relay_response(
    session: &mut Session,
    upstream: &mut HttpSession,
    response: ResponseHeader,
) -> Result<(), Box<Error>> {
    let head_only = session.req_header().method == http::Method::HEAD;
    let end_with_header = head_only || upstream.response_done();
    session
        .write_response_header(Box::new(response), end_with_header)
        .await?;
    if end_with_header {
        return Ok(());
    }
    while let Some(chunk) = upstream.read_response_body().await? {
        session.write_response_body(Some(chunk), false).await?;
    }
    session.write_response_body(None, true).await
}

fn classify(error: &Error) -> Reject {
    match error.etype() {
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            Reject::UpstreamTimeout
        }
        ErrorType::ConnectRefused
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::TLSHandshakeFailure
        | ErrorType::TLSHandshakeTimedout
        | ErrorType::InvalidCert
        | ErrorType::SocketError
        | ErrorType::BindError => Reject::UpstreamUnreachable,
        _ => Reject::UpstreamError,
    }
}

/// Peer settings for one upstream.
pub fn peer(upstream: &crate::config::Upstream) -> HttpPeer {
    let mut peer = HttpPeer::new(upstream.address, upstream.tls, upstream.host.clone());
    peer.options.connection_timeout = Some(upstream.connect_timeout);
    peer.options.total_connection_timeout = Some(upstream.connect_timeout);
    peer.options.idle_timeout = Some(POOL_IDLE_TIMEOUT);
    peer.options.verify_cert = upstream.verify;
    peer.options.verify_hostname = upstream.verify;
    if !upstream.ca.is_empty() {
        let certs: Vec<WrappedX509> = upstream
            .ca
            .iter()
            .map(|der| WrappedX509::new(der.clone(), parse_x509))
            .collect();
        peer.options.ca = Some(Arc::from(certs.into_boxed_slice()));
    }
    peer
}

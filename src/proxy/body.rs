//! Body stage: reads the whole request body into memory before anything else happens,
//! bounded by the route's size limit and deadline.

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;
use pingora::ErrorType;
use tokio::time::{timeout_at, Instant};

use crate::reject::Reject;

/// Bytes reserved up front when the client did not declare a length.
const UNKNOWN_LENGTH_RESERVE: usize = 16 * 1024;

/// Body framing declared by the request headers, checked before any byte of the body is read.
pub struct Declared {
    pub content_length: Option<usize>,
    pub expect_continue: bool,
}

/// Checks the framing headers. Pingora's HTTP/1 parser already rejects an invalid
/// `Content-Length`. This also rejects requests that carry both framings or several lengths,
/// because a different parser behind the gateway could read them differently.
pub fn declared(session: &Session, limit: usize) -> Result<Declared, Reject> {
    let headers = &session.req_header().headers;
    let mut lengths = headers.get_all(http::header::CONTENT_LENGTH).iter();
    let content_length = match (lengths.next(), lengths.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(Reject::FramingInvalid),
        (Some(value), None) => {
            let text = value.to_str().map_err(|_| Reject::FramingInvalid)?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Reject::FramingInvalid);
            }
            Some(text.parse::<usize>().map_err(|_| Reject::BodyTooLarge)?)
        }
    };
    let has_transfer_encoding = headers.contains_key(http::header::TRANSFER_ENCODING);
    if has_transfer_encoding && (content_length.is_some() || received_content_length(session)) {
        return Err(Reject::FramingInvalid);
    }
    if content_length.is_some_and(|n| n > limit) {
        return Err(Reject::BodyTooLarge);
    }
    let expect_continue = headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    Ok(Declared {
        content_length,
        expect_continue,
    })
}

/// Checks whether the HTTP/1 header block as received has a `Content-Length` line. Pingora 0.9
/// removes `Content-Length` from the parsed header when `Transfer-Encoding` is also present
/// (RFC 9112, section 6.3), so only the raw block still shows that both were sent.
fn received_content_length(session: &Session) -> bool {
    let Some(http1) = session.as_http1() else {
        return false;
    };
    let name = b"content-length:";
    http1
        .get_headers_raw_bytes()
        .split(|&byte| byte == b'\n')
        .skip(1)
        .any(|line| line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name))
}

/// Sends `100 Continue` when the client waits for it. Pingora does not send it when the
/// body is read in a filter, and by default a 1xx written early turns off keep-alive.
pub async fn send_continue(session: &mut Session) -> Result<(), Reject> {
    session.set_close_on_response_before_downstream_finish(false);
    let result = session.write_continue_response().await;
    session.set_close_on_response_before_downstream_finish(true);
    result.map_err(|_| Reject::BodyIncomplete)
}

/// Reads the whole body, failing once it passes `limit` bytes or `deadline` passes.
pub async fn read(
    session: &mut Session,
    declared: &Declared,
    limit: usize,
    deadline: Instant,
) -> Result<Bytes, Reject> {
    let reserve = declared
        .content_length
        .unwrap_or(UNKNOWN_LENGTH_RESERVE)
        .min(limit);
    let mut body = BytesMut::with_capacity(reserve);
    loop {
        let chunk = match timeout_at(deadline, session.read_request_body()).await {
            Err(_elapsed) => return Err(Reject::BodyTimeout),
            Ok(Err(e)) if matches!(e.etype(), ErrorType::ReadTimedout) => {
                return Err(Reject::BodyTimeout)
            }
            Ok(Err(_)) => return Err(Reject::BodyIncomplete),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => chunk,
        };
        if body.len() + chunk.len() > limit {
            return Err(Reject::BodyTooLarge);
        }
        if body.is_empty() && declared.content_length == Some(chunk.len()) {
            return Ok(chunk);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

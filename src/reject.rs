//! Every way the gateway refuses a request: its status, its stable reason name (the JSON
//! `error` field and the `reason` metric label) and the short message sent to the client.

use std::borrow::Cow;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::provider::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    NoRoute,
    MethodNotAllowed,
    PathInvalid,
    FramingInvalid,
    BodyTooLarge,
    BodyTimeout,
    BodyIncomplete,
    Verify(Failure),
    UpstreamUnreachable,
    UpstreamTimeout,
    UpstreamError,
    IpNotAllowed,
    HeadersTooLarge,
    RateLimited,
    VerifyRateLimited,
    ReplayInFlight,
    UpstreamBusy,
    StoreUnavailable,
    Overloaded,
    QueueFull,
    QueueUnavailable,
}

impl Reject {
    /// Every rejection that is not a verification failure.
    const OTHERS: [Reject; 20] = [
        Reject::NoRoute,
        Reject::MethodNotAllowed,
        Reject::PathInvalid,
        Reject::FramingInvalid,
        Reject::BodyTooLarge,
        Reject::BodyTimeout,
        Reject::BodyIncomplete,
        Reject::UpstreamUnreachable,
        Reject::UpstreamTimeout,
        Reject::UpstreamError,
        Reject::IpNotAllowed,
        Reject::HeadersTooLarge,
        Reject::RateLimited,
        Reject::VerifyRateLimited,
        Reject::ReplayInFlight,
        Reject::UpstreamBusy,
        Reject::StoreUnavailable,
        Reject::Overloaded,
        Reject::QueueFull,
        Reject::QueueUnavailable,
    ];

    /// Lists every rejection, for pre-creating metric series and for the docs.
    pub fn all() -> impl Iterator<Item = Reject> {
        let verify = Failure::ALL.into_iter().map(Reject::Verify);
        Reject::OTHERS.into_iter().chain(verify)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reject::NoRoute => "no_route",
            Reject::MethodNotAllowed => "method_not_allowed",
            Reject::PathInvalid => "path_invalid",
            Reject::FramingInvalid => "framing_invalid",
            Reject::BodyTooLarge => "body_too_large",
            Reject::BodyTimeout => "body_timeout",
            Reject::BodyIncomplete => "body_incomplete",
            Reject::Verify(failure) => failure.as_str(),
            Reject::UpstreamUnreachable => "upstream_unreachable",
            Reject::UpstreamTimeout => "upstream_timeout",
            Reject::UpstreamError => "upstream_error",
            Reject::IpNotAllowed => "ip_not_allowed",
            Reject::HeadersTooLarge => "headers_too_large",
            Reject::RateLimited => "rate_limited",
            Reject::VerifyRateLimited => "verify_rate_limited",
            Reject::ReplayInFlight => "replay_in_flight",
            Reject::UpstreamBusy => "upstream_busy",
            Reject::StoreUnavailable => "store_unavailable",
            Reject::Overloaded => "gateway_overloaded",
            Reject::QueueFull => "queue_full",
            Reject::QueueUnavailable => "queue_unavailable",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Reject::NoRoute => 404,
            Reject::MethodNotAllowed => 405,
            Reject::PathInvalid | Reject::FramingInvalid | Reject::BodyIncomplete => 400,
            Reject::BodyTooLarge => 413,
            Reject::BodyTimeout => 408,
            Reject::Verify(
                Failure::SignatureMalformed
                | Failure::SignedHeaderMissing
                | Failure::SignedHeaderMalformed
                | Failure::TimestampMissing
                | Failure::TimestampMalformed,
            ) => 400,
            Reject::Verify(_) => 401,
            Reject::UpstreamUnreachable | Reject::UpstreamError => 502,
            Reject::UpstreamTimeout => 504,
            Reject::IpNotAllowed => 403,
            Reject::HeadersTooLarge => 431,
            Reject::RateLimited | Reject::VerifyRateLimited => 429,
            Reject::ReplayInFlight => 409,
            Reject::UpstreamBusy
            | Reject::StoreUnavailable
            | Reject::Overloaded
            | Reject::QueueFull
            | Reject::QueueUnavailable => 503,
        }
    }

    pub fn message(self) -> Cow<'static, str> {
        let text = match self {
            Reject::NoRoute => "no route matches this path",
            Reject::MethodNotAllowed => "this route does not accept this method",
            Reject::PathInvalid => "the path contains dot segments or encoded slashes",
            Reject::FramingInvalid => {
                "Content-Length is invalid, repeated or sent with Transfer-Encoding"
            }
            Reject::BodyTooLarge => "the body is larger than this route accepts",
            Reject::BodyTimeout => "the body was not received in time",
            Reject::BodyIncomplete => "the body ended before its declared length",
            Reject::UpstreamUnreachable => "the upstream could not be reached",
            Reject::UpstreamTimeout => "the upstream did not answer in time",
            Reject::UpstreamError => "the upstream sent an invalid response",
            Reject::IpNotAllowed => "this client address may not use this route",
            Reject::HeadersTooLarge => "the request headers are larger than this route accepts",
            Reject::RateLimited => "too many requests; retry after the Retry-After delay",
            Reject::VerifyRateLimited => {
                "too many failed verifications from this address; retry after the Retry-After delay"
            }
            Reject::ReplayInFlight => "a request with this delivery id is being delivered now",
            Reject::UpstreamBusy => "the upstream has too many requests in flight",
            Reject::StoreUnavailable => "the shared store is unavailable",
            Reject::Overloaded => "the gateway is buffering as many bodies as it may; retry later",
            Reject::QueueFull => "the delivery queue is full; retry later",
            Reject::QueueUnavailable => "the delivery queue cannot store the request; retry later",
            Reject::Verify(failure) => return Cow::Owned(failure.to_string()),
        };
        Cow::Borrowed(text)
    }

    /// Returns whether the upstream, rather than the client, caused the rejection.
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            Reject::UpstreamUnreachable | Reject::UpstreamTimeout | Reject::UpstreamError
        )
    }

    /// Writes the rejection as a small JSON response and closes the connection afterwards,
    /// since the request body may be unread. A client that is already gone is not an error.
    pub async fn respond(self, session: &mut Session) {
        self.respond_with(session, &[]).await
    }

    /// Like [`Reject::respond`], with extra response headers such as `Allow` or `Retry-After`.
    pub async fn respond_with(self, session: &mut Session, extra: &[(&str, String)]) {
        let body = format!(
            "{{\"error\":\"{}\",\"message\":\"{}\"}}\n",
            self.as_str(),
            self.message()
        );
        session.set_keepalive(None);
        write_json(session, self.status(), body, extra).await;
    }
}

/// Writes a small JSON response. A client that is already gone is not an error.
pub async fn write_json(
    session: &mut Session,
    status: u16,
    body: String,
    extra: &[(&str, String)],
) {
    let body = Bytes::from(body);
    let Ok(mut header) = ResponseHeader::build(status, Some(3 + extra.len())) else {
        return;
    };
    let _ = header.insert_header("content-type", "application/json");
    let _ = header.insert_header("content-length", body.len().to_string());
    for (name, value) in extra {
        let _ = header.insert_header(name.to_string(), value.as_str());
    }
    if session
        .write_response_header(Box::new(header), false)
        .await
        .is_ok()
    {
        let _ = session.write_response_body(Some(body), true).await;
    }
}

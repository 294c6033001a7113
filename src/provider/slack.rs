//! Slack: `X-Slack-Signature: v0=<hex>` is the HMAC-SHA256 of `v0:<timestamp>:<body>` with
//! the app's signing secret, where the timestamp is `X-Slack-Request-Timestamp` in Unix
//! seconds. Slack's guide rejects timestamps more than five minutes away in either direction.

use std::time::Duration;

use http::HeaderName;

use super::headers::{self, Role};
use super::{timestamp, Algorithm, Encoding, Failure, Key, Request, Verified};

const SIGNATURE: HeaderName = HeaderName::from_static("x-slack-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-slack-request-timestamp");

pub(super) fn verify(
    request: &Request<'_>,
    keys: &[Key],
    now: i64,
    tolerance: Duration,
) -> Result<Verified, Failure> {
    let signature = headers::signature(
        request.headers,
        &SIGNATURE,
        "v0=",
        Encoding::Hex,
        Algorithm::Sha256,
    )?;
    let timestamp_text = headers::required(request.headers, &TIMESTAMP, Role::Timestamp)?;
    let signed_at = timestamp::parse(timestamp_text)?;

    let message = [b"v0:", timestamp_text.as_bytes(), b":", request.body];
    let key_index = Algorithm::Sha256
        .find_key(keys, &message, &[signature])
        .ok_or(Failure::SignatureInvalid)?;
    timestamp::check_window(signed_at, now, tolerance)?;
    Ok(Verified {
        key_index,
        timestamp: Some(signed_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::test_support::{header_map, hmac_sha256, request};
    use crate::provider::{KeyError, Scheme};

    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const BODY: &[u8] = b"token=x&team_id=T1&command=%2Fhello";
    const T: i64 = 1_700_000_000;
    const TOLERANCE: Duration = Duration::from_secs(300);

    fn signature(timestamp: &str) -> String {
        let mac = hmac_sha256(SECRET, &[b"v0:", timestamp.as_bytes(), b":", BODY]);
        format!("v0={}", hex::encode(mac))
    }

    fn verify(pairs: &[(&str, &[u8])], now: i64) -> Result<Result<Verified, Failure>, KeyError> {
        let headers = header_map(pairs);
        let keys = [Scheme::Slack.derive_key(SECRET)?];
        Ok(Scheme::Slack.verify(&request(&headers, BODY), &keys, now, TOLERANCE))
    }

    #[test]
    fn accepts_signed_request() -> Result<(), KeyError> {
        let signature = signature("1700000000");
        let pairs: [(&str, &[u8]); 2] = [
            ("X-Slack-Signature", signature.as_bytes()),
            ("X-Slack-Request-Timestamp", b"1700000000"),
        ];

        assert_eq!(
            verify(&pairs, T + 300)?,
            Ok(Verified {
                key_index: 0,
                timestamp: Some(T)
            })
        );
        Ok(())
    }

    #[test]
    fn rejects_future_timestamp() -> Result<(), KeyError> {
        let signature = signature("1700000000");
        let pairs: [(&str, &[u8]); 2] = [
            ("X-Slack-Signature", signature.as_bytes()),
            ("X-Slack-Request-Timestamp", b"1700000000"),
        ];

        assert_eq!(verify(&pairs, T - 301)?, Err(Failure::TimestampInFuture));
        Ok(())
    }

    #[test]
    fn rejects_repeated_timestamp_header() -> Result<(), KeyError> {
        let signature = signature("1700000000");
        let pairs: [(&str, &[u8]); 3] = [
            ("X-Slack-Signature", signature.as_bytes()),
            ("X-Slack-Request-Timestamp", b"1700000000"),
            ("X-Slack-Request-Timestamp", b"1700000000"),
        ];

        assert_eq!(verify(&pairs, T)?, Err(Failure::TimestampMalformed));
        Ok(())
    }

    #[test]
    fn rejects_duplicated_signature_header() -> Result<(), KeyError> {
        let signature = signature("1700000000");
        let pairs: [(&str, &[u8]); 3] = [
            ("X-Slack-Signature", signature.as_bytes()),
            ("X-Slack-Signature", signature.as_bytes()),
            ("X-Slack-Request-Timestamp", b"1700000000"),
        ];

        assert_eq!(verify(&pairs, T)?, Err(Failure::SignatureMalformed));
        Ok(())
    }

    #[test]
    fn reports_missing_signature_before_timestamp() -> Result<(), KeyError> {
        assert_eq!(verify(&[], T)?, Err(Failure::SignatureMissing));
        Ok(())
    }
}

//! Linear: `Linear-Signature: <hex>` is the HMAC-SHA256 of the body with the webhook secret.
//! The time of sending is the body's top-level `webhookTimestamp` field in Unix milliseconds,
//! which the body signature covers. It is checked against the tolerance after the signature,
//! like a signed timestamp header.

use std::time::Duration;

use serde::Deserialize;

use super::json::Object;
use super::{declared, timestamp, Failure, Key, Request, Verified};

/// The only body field read. Other fields are skipped, and a repeated `webhookTimestamp`
/// fails to parse, so no second value can hide behind the one checked.
#[derive(Deserialize)]
struct Body {
    #[serde(rename = "webhookTimestamp")]
    webhook_timestamp: Option<u64>,
}

pub(super) fn verify(
    request: &Request<'_>,
    keys: &[Key],
    now: i64,
    tolerance: Duration,
) -> Result<Verified, Failure> {
    let verified = declared::verify(&declared::LINEAR, request, keys, now, tolerance)?;

    let signed_at = body_timestamp(request.body)?;
    timestamp::check_window(signed_at, now, tolerance)?;
    Ok(Verified {
        key_index: verified.key_index,
        timestamp: Some(signed_at),
    })
}

/// Returns `webhookTimestamp` in whole Unix seconds. A body that is not a JSON object or whose
/// field is not a non-negative integer is malformed.
fn body_timestamp(body: &[u8]) -> Result<i64, Failure> {
    let Object(body): Object<Body> =
        serde_json::from_slice(body).map_err(|_| Failure::TimestampMalformed)?;
    let millis = body.webhook_timestamp.ok_or(Failure::TimestampMissing)?;
    let millis = i64::try_from(millis).map_err(|_| Failure::TimestampMalformed)?;
    Ok(millis.div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::test_support::{header_map, hmac_sha256, request};
    use crate::provider::{KeyError, Scheme};

    const SECRET: &[u8] = b"lin_wh_0123456789abcdef";
    const T: i64 = 1_700_000_000;
    const TOLERANCE: Duration = Duration::from_secs(60);

    fn body(millis: &str) -> String {
        format!(r#"{{"action":"create","type":"Issue","webhookTimestamp":{millis}}}"#)
    }

    fn verify(body: &str, now: i64) -> Result<Result<Verified, Failure>, KeyError> {
        let signature = hex::encode(hmac_sha256(SECRET, &[body.as_bytes()]));
        let headers = header_map(&[("Linear-Signature", signature.as_bytes())]);
        let keys = [Scheme::Linear.derive_key(SECRET)?];
        let request = request(&headers, body.as_bytes());
        Ok(Scheme::Linear.verify(&request, &keys, now, TOLERANCE))
    }

    #[test]
    fn accepts_fresh_body_timestamp() -> Result<(), KeyError> {
        let result = verify(&body("1700000000123"), T + 60)?;

        assert_eq!(
            result,
            Ok(Verified {
                key_index: 0,
                timestamp: Some(T)
            })
        );
        Ok(())
    }

    #[test]
    fn rejects_stale_and_future_body_timestamp() -> Result<(), KeyError> {
        assert_eq!(
            verify(&body("1700000000000"), T + 61)?,
            Err(Failure::TimestampExpired)
        );
        assert_eq!(
            verify(&body("1700000000000"), T - 61)?,
            Err(Failure::TimestampInFuture)
        );
        Ok(())
    }

    #[test]
    fn seconds_in_body_are_far_in_the_past() -> Result<(), KeyError> {
        assert_eq!(
            verify(&body("1700000000"), T)?,
            Err(Failure::TimestampExpired)
        );
        Ok(())
    }

    #[test]
    fn missing_or_malformed_body_timestamp() -> Result<(), KeyError> {
        let cases = [
            (r#"{"action":"create"}"#, Failure::TimestampMissing),
            (
                r#"{"webhookTimestamp":"1700000000000"}"#,
                Failure::TimestampMalformed,
            ),
            (r#"{"webhookTimestamp":-1}"#, Failure::TimestampMalformed),
            (
                r#"{"webhookTimestamp":1.7e12}"#,
                Failure::TimestampMalformed,
            ),
            (r#"[1700000000000]"#, Failure::TimestampMalformed),
            ("not json", Failure::TimestampMalformed),
            (
                r#"{"webhookTimestamp":1700000000000,"webhookTimestamp":1700000000000}"#,
                Failure::TimestampMalformed,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(verify(body, T)?, Err(expected), "{body}");
        }
        Ok(())
    }

    #[test]
    fn signature_checked_before_body() -> Result<(), KeyError> {
        let headers = header_map(&[("Linear-Signature", "00".repeat(32).as_bytes())]);
        let keys = [Scheme::Linear.derive_key(SECRET)?];

        let result = Scheme::Linear.verify(&request(&headers, b"not json"), &keys, T, TOLERANCE);

        assert_eq!(result, Err(Failure::SignatureInvalid));
        Ok(())
    }
}

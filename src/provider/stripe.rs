//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=<hex>]` where each `v1` is
//! the HMAC-SHA256 of `t.body` with the endpoint secret, `whsec_` prefix included.
//!
//! Stripe sends one `v1` per active secret while a secret is rolled, and any may match. Only
//! `v1` is trusted: `v0` (a test-mode signature) and unknown elements are ignored. Stripe's
//! own libraries accept any future `t`; this check rejects one beyond the tolerance.

use std::time::Duration;

use http::HeaderName;

use super::{headers, timestamp, Algorithm, Encoding, Failure, Key, Request, Verified};

const SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");

pub(super) fn verify(
    request: &Request<'_>,
    keys: &[Key],
    now: i64,
    tolerance: Duration,
) -> Result<Verified, Failure> {
    let header = headers::required(request.headers, &SIGNATURE, headers::Role::Signature)?;
    let parsed = parse(header)?;
    let signed_at = timestamp::parse(parsed.timestamp)?;

    let message = [parsed.timestamp.as_bytes(), b".", request.body];
    let key_index = Algorithm::Sha256
        .find_key(keys, &message, &parsed.signatures)
        .ok_or(Failure::SignatureInvalid)?;
    timestamp::check_window(signed_at, now, tolerance)?;
    Ok(Verified {
        key_index,
        timestamp: Some(signed_at),
    })
}

/// The `t` text and the decoded `v1` signatures of a `Stripe-Signature` header.
struct Parsed<'a> {
    timestamp: &'a str,
    signatures: Vec<Vec<u8>>,
}

/// Splits the header into `name=value` elements separated by `,`, with no spaces.
///
/// An element without `=`, an undecodable `v1`, or a header with no `v1` is malformed. A
/// second `t` is ambiguous because Stripe's Python and Node libraries pick different ones.
fn parse(header: &str) -> Result<Parsed<'_>, Failure> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for element in header.split(',') {
        let (name, value) = element.split_once('=').ok_or(Failure::SignatureMalformed)?;
        match name {
            "t" if timestamp.is_some() => return Err(Failure::TimestampMalformed),
            "t" => timestamp = Some(value),
            "v1" => signatures.push(Encoding::Hex.decode(value, Algorithm::Sha256)?),
            _ => {}
        }
    }

    if signatures.is_empty() {
        return Err(Failure::SignatureMalformed);
    }
    let timestamp = timestamp.ok_or(Failure::TimestampMissing)?;
    Ok(Parsed {
        timestamp,
        signatures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::test_support::{header_map, hmac_sha256, request};
    use crate::provider::{KeyError, Scheme};

    const SECRET: &[u8] = b"whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1"}"#;
    const T: i64 = 1_700_000_000;
    const TOLERANCE: Duration = Duration::from_secs(300);

    fn v1(secret: &[u8], t: &str) -> String {
        hex::encode(hmac_sha256(secret, &[t.as_bytes(), b".", BODY]))
    }

    fn verify(header: &str, now: i64) -> Result<Result<Verified, Failure>, KeyError> {
        let headers = header_map(&[("Stripe-Signature", header.as_bytes())]);
        let keys = [Scheme::Stripe.derive_key(SECRET)?];
        Ok(Scheme::Stripe.verify(&request(&headers, BODY), &keys, now, TOLERANCE))
    }

    #[test]
    fn accepts_any_v1() -> Result<(), KeyError> {
        let header = format!(
            "t={T},v1={},v1={}",
            v1(b"other", "1700000000"),
            v1(SECRET, "1700000000")
        );

        assert_eq!(
            verify(&header, T)?,
            Ok(Verified {
                key_index: 0,
                timestamp: Some(T)
            })
        );
        Ok(())
    }

    #[test]
    fn ignores_v0_only_header() -> Result<(), KeyError> {
        let header = format!("t={T},v0={}", v1(SECRET, "1700000000"));

        assert_eq!(verify(&header, T)?, Err(Failure::SignatureMalformed));
        Ok(())
    }

    #[test]
    fn rejects_future_timestamp() -> Result<(), KeyError> {
        let header = format!("t={T},v1={}", v1(SECRET, "1700000000"));

        assert_eq!(verify(&header, T - 301)?, Err(Failure::TimestampInFuture));
        assert_eq!(verify(&header, T - 300)?.map(|v| v.timestamp), Ok(Some(T)));
        Ok(())
    }

    #[test]
    fn signs_timestamp_text_as_sent() -> Result<(), KeyError> {
        let canonical = format!("t=0{T},v1={}", v1(SECRET, "1700000000"));
        let literal = format!("t=0{T},v1={}", v1(SECRET, "01700000000"));

        assert_eq!(verify(&canonical, T)?, Err(Failure::SignatureInvalid));
        assert_eq!(verify(&literal, T)?.map(|v| v.timestamp), Ok(Some(T)));
        Ok(())
    }

    #[test]
    fn rejects_repeated_t() -> Result<(), KeyError> {
        let header = format!("t={T},t={T},v1={}", v1(SECRET, "1700000000"));

        assert_eq!(verify(&header, T)?, Err(Failure::TimestampMalformed));
        Ok(())
    }

    #[test]
    fn rejects_malformed_elements() -> Result<(), KeyError> {
        let good = v1(SECRET, "1700000000");
        let cases = [
            (format!("t={T},v1:{good}"), Failure::SignatureMalformed),
            (format!("t={T},v1={good},"), Failure::SignatureMalformed),
            (
                format!("t={T},v1={}", &good[..62]),
                Failure::SignatureMalformed,
            ),
            (format!("t={T}, v1={good}"), Failure::SignatureMalformed),
            (format!("v1={good}"), Failure::TimestampMissing),
            (format!("t=1.7e9,v1={good}"), Failure::TimestampMalformed),
            (String::new(), Failure::SignatureMalformed),
        ];
        for (header, expected) in cases {
            assert_eq!(verify(&header, T)?, Err(expected), "{header:?}");
        }
        Ok(())
    }
}

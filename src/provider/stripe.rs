//! Headers made of `name=value` elements holding a timestamp and one or more hex
//! HMAC-SHA256 signatures of `timestamp ‖ joiner ‖ body`. Three presets write them:
//!
//! - Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=<hex>]`, signing `t.body`
//!   with the endpoint secret, `whsec_` prefix included.
//! - Calendly: `Calendly-Webhook-Signature: t=<unix>,v1=<hex>`, signing `t.body`.
//! - Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=<hex>...]`, signing `ts:body`.
//!
//! Stripe sends one `v1` per active secret while a secret is rolled, and any may match. Only
//! the signature element of the layout is trusted: Stripe's `v0` (a test-mode signature) and
//! unknown elements are ignored. Stripe's own libraries accept any future `t`, but this check
//! rejects one beyond the tolerance, for every layout.

use std::time::Duration;

use http::HeaderName;

use super::sign::Message;
use super::{headers, timestamp, Algorithm, Encoding, Failure, Key, Request, Verified};

/// Element names, separator and signed joiner of one provider's signature header.
#[derive(Debug)]
pub(super) struct Layout {
    pub(super) header: HeaderName,
    separator: char,
    timestamp_name: &'static str,
    signature_name: &'static str,
    /// Bytes signed between the timestamp and the body.
    joiner: &'static [u8],
}

pub(super) static STRIPE: Layout = Layout {
    header: HeaderName::from_static("stripe-signature"),
    separator: ',',
    timestamp_name: "t",
    signature_name: "v1",
    joiner: b".",
};

pub(super) static CALENDLY: Layout = Layout {
    header: HeaderName::from_static("calendly-webhook-signature"),
    separator: ',',
    timestamp_name: "t",
    signature_name: "v1",
    joiner: b".",
};

pub(super) static PADDLE: Layout = Layout {
    header: HeaderName::from_static("paddle-signature"),
    separator: ';',
    timestamp_name: "ts",
    signature_name: "h1",
    joiner: b":",
};

pub(super) fn verify(
    request: &Request<'_>,
    keys: &[Key],
    now: i64,
    tolerance: Duration,
    layout: &Layout,
) -> Result<Verified, Failure> {
    let header = headers::required(request.headers, &layout.header, headers::Role::Signature)?;
    let parsed = parse(header, layout)?;
    let signed_at = timestamp::parse(parsed.timestamp)?;

    let message = [parsed.timestamp.as_bytes(), layout.joiner, request.body];
    let key_index = Algorithm::Sha256
        .find_key(keys, &message, &parsed.signatures)
        .ok_or(Failure::SignatureInvalid)?;
    timestamp::check_window(signed_at, now, tolerance)?;
    Ok(Verified {
        key_index,
        timestamp: Some(signed_at),
    })
}

/// Returns the signature header, with one signature, for `message` under `key`.
pub(super) fn sign(layout: &Layout, key: &Key, message: &Message<'_>) -> Vec<(String, String)> {
    let t = message.timestamp.to_string();
    let mac = Algorithm::Sha256.compute(key, &[t.as_bytes(), layout.joiner, message.body]);
    let value = format!(
        "{}={t}{}{}={}",
        layout.timestamp_name,
        layout.separator,
        layout.signature_name,
        Encoding::Hex.encode(&mac)
    );
    vec![(layout.header.to_string(), value)]
}

/// The timestamp text and the decoded signatures of a header.
struct Parsed<'a> {
    timestamp: &'a str,
    signatures: Vec<Vec<u8>>,
}

/// Splits the header into `name=value` elements at the layout's separator, with no spaces.
///
/// An element without `=`, an undecodable signature, or a header with no signature is
/// malformed. A second timestamp is ambiguous because Stripe's Python and Node libraries pick
/// different ones.
fn parse<'a>(header: &'a str, layout: &Layout) -> Result<Parsed<'a>, Failure> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for element in header.split(layout.separator) {
        let (name, value) = element.split_once('=').ok_or(Failure::SignatureMalformed)?;
        if name == layout.timestamp_name {
            if timestamp.is_some() {
                return Err(Failure::TimestampMalformed);
            }
            timestamp = Some(value);
        } else if name == layout.signature_name {
            signatures.push(Encoding::Hex.decode(value, Algorithm::Sha256)?);
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

    fn verify_layout(
        scheme: &Scheme,
        name: &str,
        header: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Result<Verified, Failure>, KeyError> {
        let headers = header_map(&[(name, header.as_bytes())]);
        let keys = [scheme.derive_key(SECRET)?];
        Ok(scheme.verify(&request(&headers, body), &keys, now, TOLERANCE))
    }

    #[test]
    fn paddle_signs_ts_colon_body() -> Result<(), KeyError> {
        let h1 = hex::encode(hmac_sha256(SECRET, &[b"1700000000", b":", BODY]));
        let retired = hex::encode(hmac_sha256(b"retired", &[b"1700000000", b":", BODY]));
        let header = format!("ts={T};h1={retired};h1={h1}");

        let result = verify_layout(&Scheme::Paddle, "Paddle-Signature", &header, BODY, T)?;

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
    fn paddle_rejects_stripe_layout() -> Result<(), KeyError> {
        let h1 = hex::encode(hmac_sha256(SECRET, &[b"1700000000", b":", BODY]));
        let dotted = hex::encode(hmac_sha256(SECRET, &[b"1700000000", b".", BODY]));
        let cases = [
            (format!("ts={T},h1={h1}"), Failure::SignatureMalformed),
            (format!("t={T};v1={h1}"), Failure::SignatureMalformed),
            (format!("ts={T};h1={dotted}"), Failure::SignatureInvalid),
            (format!("h1={h1}"), Failure::TimestampMissing),
            (
                format!("ts={T};ts={T};h1={h1}"),
                Failure::TimestampMalformed,
            ),
        ];
        for (header, expected) in cases {
            let result = verify_layout(&Scheme::Paddle, "Paddle-Signature", &header, BODY, T)?;

            assert_eq!(result, Err(expected), "{header}");
        }
        Ok(())
    }

    #[test]
    fn paddle_rejects_timestamp_outside_tolerance() -> Result<(), KeyError> {
        let h1 = hex::encode(hmac_sha256(SECRET, &[b"1700000000", b":", BODY]));
        let header = format!("ts={T};h1={h1}");

        let old = verify_layout(&Scheme::Paddle, "Paddle-Signature", &header, BODY, T + 301)?;
        let future = verify_layout(&Scheme::Paddle, "Paddle-Signature", &header, BODY, T - 301)?;

        assert_eq!(old, Err(Failure::TimestampExpired));
        assert_eq!(future, Err(Failure::TimestampInFuture));
        Ok(())
    }

    #[test]
    fn calendly_signs_t_dot_body() -> Result<(), KeyError> {
        let header = format!("t={T},v1={}", v1(SECRET, "1700000000"));
        let name = "Calendly-Webhook-Signature";

        let result = verify_layout(&Scheme::Calendly, name, &header, BODY, T)?;
        let stripe_header = verify_layout(&Scheme::Calendly, "Stripe-Signature", &header, BODY, T)?;
        let changed = verify_layout(&Scheme::Calendly, name, &header, b"{}", T)?;

        assert_eq!(result.map(|v| v.timestamp), Ok(Some(T)));
        assert_eq!(stripe_header, Err(Failure::SignatureMissing));
        assert_eq!(changed, Err(Failure::SignatureInvalid));
        Ok(())
    }
}

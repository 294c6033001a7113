//! Mailgun: the signature is a field of the JSON body, not a header:
//! `{"signature": {"timestamp": "<unix>", "token": "<random>", "signature": "<hex>"}, ...}`,
//! where `signature` is the HMAC-SHA256 of `timestamp ‖ token` with the webhook signing key.
//! Events of a subaccount domain also carry `parent-signature`, made with the primary account's
//! key, and either may match.
//!
//! NOTE: Mailgun signs only the timestamp and the token, never the rest of the body, so a
//! verified request may carry any `event-data` at all. Anyone who has seen one delivery can
//! resend its `signature` object with other content until the timestamp leaves the tolerance.
//! Remembering each `token` (`signature.token` in the body) and rejecting a repeat is the
//! replay defence Mailgun recommends, because the body itself cannot be authenticated.

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;

use super::json::Object;
use super::{timestamp, Algorithm, Encoding, Failure, Key, Request, Verified};

/// The body fields read. Other fields are skipped, and a repeated field fails to parse, so no
/// second value can hide behind the one checked.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    signature: Option<Object<Fields<'a>>>,
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    timestamp: TimestampField<'a>,
    #[serde(borrow)]
    token: Cow<'a, str>,
    #[serde(borrow)]
    signature: Cow<'a, str>,
    #[serde(borrow, rename = "parent-signature")]
    parent_signature: Option<Cow<'a, str>>,
}

/// Mailgun's "Securing Webhooks" page writes the timestamp as a string of digits in its example
/// and calls it an integer in its field table, so both are accepted. A string is signed as written and a number as its
/// decimal digits.
#[derive(Deserialize)]
#[serde(untagged)]
enum TimestampField<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Number(u64),
}

pub(super) fn verify(
    request: &Request<'_>,
    keys: &[Key],
    now: i64,
    tolerance: Duration,
) -> Result<Verified, Failure> {
    let Object(body): Object<Body<'_>> =
        serde_json::from_slice(request.body).map_err(|_| Failure::SignatureMalformed)?;
    let Object(fields) = body.signature.ok_or(Failure::SignatureMissing)?;
    let mut signatures = vec![Encoding::Hex.decode(&fields.signature, Algorithm::Sha256)?];
    if let Some(parent) = &fields.parent_signature {
        signatures.push(Encoding::Hex.decode(parent, Algorithm::Sha256)?);
    }
    let timestamp_text = match fields.timestamp {
        TimestampField::Text(text) => text,
        TimestampField::Number(number) => Cow::Owned(number.to_string()),
    };
    let signed_at = timestamp::parse(&timestamp_text)?;

    let message = [timestamp_text.as_bytes(), fields.token.as_bytes()];
    let key_index = Algorithm::Sha256
        .find_key(keys, &message, &signatures)
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

    const KEY: &[u8] = b"key-0123456789abcdef0123456789abcdef";
    const PARENT_KEY: &[u8] = b"key-parent-account";
    const TOKEN: &str = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123";
    const T: i64 = 1_700_000_000;
    const TOLERANCE: Duration = Duration::from_secs(300);

    fn mac(key: &[u8], timestamp: &str, token: &str) -> String {
        hex::encode(hmac_sha256(key, &[timestamp.as_bytes(), token.as_bytes()]))
    }

    /// Builds a body in the shape of Mailgun's JSON webhooks, with `timestamp` as raw JSON.
    fn body(timestamp_json: &str, signature: &str) -> String {
        format!(
            r#"{{"signature":{{"timestamp":{timestamp_json},"token":"{TOKEN}","signature":"{signature}"}},"event-data":{{"event":"delivered","id":"CPgfbmQMTCKtHW6uIWtuVe"}}}}"#
        )
    }

    fn verify(body: &str, now: i64) -> Result<Result<Verified, Failure>, KeyError> {
        let headers = header_map(&[("Content-Type", b"application/json")]);
        let keys = [
            Scheme::Mailgun.derive_key(KEY)?,
            Scheme::Mailgun.derive_key(PARENT_KEY)?,
        ];
        Ok(Scheme::Mailgun.verify(&request(&headers, body.as_bytes()), &keys, now, TOLERANCE))
    }

    #[test]
    fn accepts_string_timestamp() -> Result<(), KeyError> {
        let body = body(r#""1700000000""#, &mac(KEY, "1700000000", TOKEN));

        assert_eq!(
            verify(&body, T)?,
            Ok(Verified {
                key_index: 0,
                timestamp: Some(T)
            })
        );
        Ok(())
    }

    #[test]
    fn accepts_integer_timestamp() -> Result<(), KeyError> {
        let body = body("1700000000", &mac(KEY, "1700000000", TOKEN));

        assert_eq!(verify(&body, T)?.map(|v| v.timestamp), Ok(Some(T)));
        Ok(())
    }

    #[test]
    fn accepts_parent_signature() -> Result<(), KeyError> {
        let other = mac(b"subaccount-key", "1700000000", TOKEN);
        let parent = mac(PARENT_KEY, "1700000000", TOKEN);
        let body = format!(
            r#"{{"signature":{{"timestamp":"1700000000","token":"{TOKEN}","signature":"{other}","parent-signature":"{parent}"}}}}"#
        );

        assert_eq!(verify(&body, T)?.map(|v| v.key_index), Ok(1));
        Ok(())
    }

    #[test]
    fn rejects_changed_token_and_timestamp() -> Result<(), KeyError> {
        let signature = mac(KEY, "1700000000", TOKEN);
        let changed_timestamp = body(r#""1700000001""#, &signature);
        let changed_token = body(r#""1700000000""#, &signature).replace(TOKEN, "x");

        assert_eq!(
            verify(&changed_timestamp, T)?,
            Err(Failure::SignatureInvalid)
        );
        assert_eq!(verify(&changed_token, T)?, Err(Failure::SignatureInvalid));
        Ok(())
    }

    #[test]
    fn rejects_timestamp_outside_tolerance() -> Result<(), KeyError> {
        let body = body(r#""1700000000""#, &mac(KEY, "1700000000", TOKEN));

        assert_eq!(verify(&body, T + 301)?, Err(Failure::TimestampExpired));
        assert_eq!(verify(&body, T - 301)?, Err(Failure::TimestampInFuture));
        Ok(())
    }

    /// Documents the scheme's limit: the event data is not signed.
    #[test]
    fn event_data_is_not_covered() -> Result<(), KeyError> {
        let body = body(r#""1700000000""#, &mac(KEY, "1700000000", TOKEN));
        let altered = body.replace("delivered", "complained");

        assert!(verify(&altered, T)?.is_ok());
        Ok(())
    }

    #[test]
    fn rejects_malformed_bodies() -> Result<(), KeyError> {
        let good = mac(KEY, "1700000000", TOKEN);
        let cases = [
            ("not json".to_string(), Failure::SignatureMalformed),
            (r#"{"event-data":{}}"#.to_string(), Failure::SignatureMissing),
            (
                r#"{"signature":{"timestamp":"1700000000","token":"t"}}"#.to_string(),
                Failure::SignatureMalformed,
            ),
            (body(r#""1700000000""#, &good.to_uppercase()), Failure::SignatureMalformed),
            (body(r#""1700000000""#, &good[..62]), Failure::SignatureMalformed),
            (body(r#""1.7e9""#, &good), Failure::TimestampMalformed),
            (body("-1", &good), Failure::SignatureMalformed),
            (
                body(r#""1700000000""#, &good).replacen(
                    r#""event-data""#,
                    &format!(r#""signature":{{"timestamp":"1","token":"t","signature":"{good}"}},"event-data""#),
                    1,
                ),
                Failure::SignatureMalformed,
            ),
            (
                format!(r#"{{"signature":["1700000000","{TOKEN}","{good}"]}}"#),
                Failure::SignatureMalformed,
            ),
            (
                format!(r#"[{{"timestamp":"1700000000","token":"{TOKEN}","signature":"{good}"}}]"#),
                Failure::SignatureMalformed,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(verify(&body, T)?, Err(expected), "{body}");
        }
        Ok(())
    }
}

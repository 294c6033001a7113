use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::Hmac;
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::*;
use crate::provider::test_support::{header_map, hmac_with, request};
use crate::provider::{KeyError, Scheme};

const SECRET: &[u8] = b"generic-secret";
const BODY: &[u8] = br#"{"event":"ping"}"#;
const T: i64 = 1_700_000_000;
const TOLERANCE: Duration = Duration::from_secs(300);
const TEMPLATE: &str = "{method} {url}|{id}|{timestamp}|{header:X-Account}|{body}";

fn rule(algorithm: Algorithm, encoding: Encoding) -> Result<HmacRule, String> {
    HmacRule::new(
        algorithm,
        "X-Signature",
        Some("sig="),
        encoding,
        TEMPLATE,
        Some("X-Timestamp"),
        Some("X-Delivery"),
    )
}

/// Signs the bytes `TEMPLATE` expands to for the test request, without the code under test.
fn sign(algorithm: Algorithm, encoding: Encoding, key: &[u8]) -> String {
    let parts: [&[u8]; 11] = [
        b"POST",
        b" ",
        b"https://gateway.example.test/hooks/test",
        b"|",
        b"d-1",
        b"|",
        b"1700000000",
        b"|",
        b"acct_9",
        b"|",
        BODY,
    ];
    let mac = match algorithm {
        Algorithm::Sha1 => hmac_with::<Hmac<Sha1>>(key, &parts),
        Algorithm::Sha256 => hmac_with::<Hmac<Sha256>>(key, &parts),
        Algorithm::Sha512 => hmac_with::<Hmac<Sha512>>(key, &parts),
    };
    let text = match encoding {
        Encoding::Hex => hex::encode(mac),
        Encoding::Base64 => STANDARD.encode(mac),
    };
    format!("sig={text}")
}

fn verify_with(
    rule: HmacRule,
    pairs: &[(&str, &[u8])],
    now: i64,
) -> Result<Result<Verified, Failure>, KeyError> {
    let scheme = Scheme::Hmac(rule);
    let keys = [scheme.derive_key(b"unrelated")?, scheme.derive_key(SECRET)?];
    let headers = header_map(pairs);
    Ok(scheme.verify(&request(&headers, BODY), &keys, now, TOLERANCE))
}

fn signed_pairs(signature: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("X-Signature", signature.as_bytes().to_vec()),
        ("X-Timestamp", b"1700000000".to_vec()),
        ("X-Delivery", b"d-1".to_vec()),
        ("X-Account", b"acct_9".to_vec()),
    ]
}

fn borrow<'a>(pairs: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'a str, &'a [u8])> {
    pairs.iter().map(|(n, v)| (*n, v.as_slice())).collect()
}

#[test]
fn round_trip_every_algorithm_and_encoding() -> Result<(), Box<dyn std::error::Error>> {
    for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
        for encoding in [Encoding::Hex, Encoding::Base64] {
            let pairs = signed_pairs(&sign(algorithm, encoding, SECRET));

            let result = verify_with(rule(algorithm, encoding)?, &borrow(&pairs), T + 10)?;

            let expected = Verified {
                key_index: 1,
                timestamp: Some(T),
            };
            assert_eq!(result, Ok(expected), "{algorithm:?} {encoding:?}");
        }
    }
    Ok(())
}

#[test]
fn rejects_other_key_every_algorithm() -> Result<(), Box<dyn std::error::Error>> {
    for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
        for encoding in [Encoding::Hex, Encoding::Base64] {
            let pairs = signed_pairs(&sign(algorithm, encoding, b"attacker"));

            let result = verify_with(rule(algorithm, encoding)?, &borrow(&pairs), T)?;

            assert_eq!(
                result,
                Err(Failure::SignatureInvalid),
                "{algorithm:?} {encoding:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn signed_header_value_is_covered() -> Result<(), Box<dyn std::error::Error>> {
    let mut pairs = signed_pairs(&sign(Algorithm::Sha256, Encoding::Hex, SECRET));
    pairs[3].1 = b"acct_10".to_vec();

    let result = verify_with(rule(Algorithm::Sha256, Encoding::Hex)?, &borrow(&pairs), T)?;

    assert_eq!(result, Err(Failure::SignatureInvalid));
    Ok(())
}

#[test]
fn missing_signed_header() -> Result<(), Box<dyn std::error::Error>> {
    let mut pairs = signed_pairs(&sign(Algorithm::Sha256, Encoding::Hex, SECRET));
    pairs.remove(3);

    let result = verify_with(rule(Algorithm::Sha256, Encoding::Hex)?, &borrow(&pairs), T)?;

    assert_eq!(result, Err(Failure::SignedHeaderMissing));
    Ok(())
}

#[test]
fn missing_id_header() -> Result<(), Box<dyn std::error::Error>> {
    let mut pairs = signed_pairs(&sign(Algorithm::Sha256, Encoding::Hex, SECRET));
    pairs.remove(2);

    let result = verify_with(rule(Algorithm::Sha256, Encoding::Hex)?, &borrow(&pairs), T)?;

    assert_eq!(result, Err(Failure::SignedHeaderMissing));
    Ok(())
}

#[test]
fn repeated_signed_header() -> Result<(), Box<dyn std::error::Error>> {
    let mut pairs = signed_pairs(&sign(Algorithm::Sha256, Encoding::Hex, SECRET));
    pairs.push(("X-Account", b"acct_9".to_vec()));

    let result = verify_with(rule(Algorithm::Sha256, Encoding::Hex)?, &borrow(&pairs), T)?;

    assert_eq!(result, Err(Failure::SignedHeaderMalformed));
    Ok(())
}

#[test]
fn duplicated_signature_header() -> Result<(), Box<dyn std::error::Error>> {
    let signature = sign(Algorithm::Sha256, Encoding::Hex, SECRET);
    let mut pairs = signed_pairs(&signature);
    pairs.push(("X-Signature", signature.into_bytes()));

    let result = verify_with(rule(Algorithm::Sha256, Encoding::Hex)?, &borrow(&pairs), T)?;

    assert_eq!(result, Err(Failure::SignatureMalformed));
    Ok(())
}

#[test]
fn missing_prefix_is_malformed() -> Result<(), Box<dyn std::error::Error>> {
    let signature = sign(Algorithm::Sha256, Encoding::Hex, SECRET);
    let pairs = signed_pairs(signature.trim_start_matches("sig="));

    let result = verify_with(rule(Algorithm::Sha256, Encoding::Hex)?, &borrow(&pairs), T)?;

    assert_eq!(result, Err(Failure::SignatureMalformed));
    Ok(())
}

#[test]
fn rejects_timestamp_outside_tolerance() -> Result<(), Box<dyn std::error::Error>> {
    let pairs = signed_pairs(&sign(Algorithm::Sha256, Encoding::Hex, SECRET));
    let rule = rule(Algorithm::Sha256, Encoding::Hex)?;

    let future = verify_with(rule.clone(), &borrow(&pairs), T - 301)?;
    let expired = verify_with(rule, &borrow(&pairs), T + 301)?;

    assert_eq!(future, Err(Failure::TimestampInFuture));
    assert_eq!(expired, Err(Failure::TimestampExpired));
    Ok(())
}

#[test]
fn body_only_rule_without_prefix() -> Result<(), Box<dyn std::error::Error>> {
    let rule = HmacRule::new(
        Algorithm::Sha256,
        "x-wc-webhook-signature",
        None,
        Encoding::Base64,
        "{body}",
        None,
        None,
    )?;
    let signature = STANDARD.encode(hmac_with::<Hmac<Sha256>>(SECRET, &[BODY]));

    let result = verify_with(
        rule.clone(),
        &[("X-WC-Webhook-Signature", signature.as_bytes())],
        0,
    )?;

    assert!(!Scheme::Hmac(rule).uses_timestamp());
    assert_eq!(
        result,
        Ok(Verified {
            key_index: 1,
            timestamp: None
        })
    );
    Ok(())
}

fn new_error(
    header: &str,
    signed: &str,
    timestamp_header: Option<&str>,
    id_header: Option<&str>,
) -> String {
    HmacRule::new(
        Algorithm::Sha256,
        header,
        None,
        Encoding::Hex,
        signed,
        timestamp_header,
        id_header,
    )
    .err()
    .unwrap_or_default()
}

#[test]
fn new_rejects_template_errors() {
    let unknown = new_error("x-sig", "{body}{nonce}", None, None);
    let unclosed = new_error("x-sig", "{body", None, None);
    let bad_header = new_error("x-sig", "{header:a b}{body}", None, None);

    assert!(
        unknown.starts_with("unknown placeholder {nonce}"),
        "{unknown}"
    );
    assert!(unclosed.starts_with("unclosed '{'"), "{unclosed}");
    assert!(
        bad_header.starts_with("invalid header name"),
        "{bad_header}"
    );
}

#[test]
fn new_rejects_timestamp_without_header() {
    let error = new_error("x-sig", "{timestamp}.{body}", None, None);

    assert!(
        error.starts_with("signed template uses {timestamp}"),
        "{error}"
    );
}

#[test]
fn new_rejects_id_without_header() {
    let error = new_error("x-sig", "{id}.{body}", None, None);

    assert!(error.starts_with("signed template uses {id}"), "{error}");
}

#[test]
fn new_rejects_unsigned_timestamp_header() {
    let error = new_error("x-sig", "{body}", Some("x-ts"), None);

    assert!(error.starts_with("timestamp header x-ts is set"), "{error}");
}

#[test]
fn new_rejects_template_without_body() {
    let empty = new_error("x-sig", "", None, None);
    let no_body = new_error("x-sig", "{method}{url}", None, None);

    assert!(empty.contains("does not contain {body}"), "{empty}");
    assert!(no_body.contains("does not contain {body}"), "{no_body}");
}

#[test]
fn new_rejects_invalid_header_names() {
    let signature = new_error("x sig", "{body}", None, None);
    let timestamp = new_error("x-sig", "{timestamp}{body}", Some("x\nts"), None);
    let id = new_error("x-sig", "{id}{body}", None, Some(""));

    assert!(
        signature.starts_with("invalid signature header name \"x sig\""),
        "{signature}"
    );
    assert!(
        timestamp.starts_with("invalid timestamp header name"),
        "{timestamp}"
    );
    assert!(id.starts_with("invalid id header name \"\""), "{id}");
}

#[test]
fn new_accepts_unused_id_header() {
    let rule = HmacRule::new(
        Algorithm::Sha256,
        "x-sig",
        Some(""),
        Encoding::Hex,
        "{body}",
        None,
        Some("x-delivery"),
    );

    assert!(rule.is_ok());
}

//! Discord and SendGrid with key pairs made in the test. The vectors in `tests/vectors/`
//! cover both with signatures checked by the providers' libraries.

use ed25519_dalek::Signer as _;
use p256::pkcs8::EncodePublicKey;

use super::*;
use crate::provider::test_support::{header_map, request};
use crate::provider::{KeyError, Scheme};

const T: i64 = 1_700_000_000;
const TOLERANCE: Duration = Duration::from_secs(300);
const BODY: &[u8] = br#"{"type":1,"id":"2"}"#;

/// The order of the Ed25519 group, little-endian, as RFC 8032 gives it.
const ED25519_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn discord_key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

fn discord_verify(
    signature: &str,
    timestamp: &str,
    body: &[u8],
    now: i64,
) -> Result<Result<Verified, Failure>, KeyError> {
    let keys = [
        Scheme::Discord
            .derive_key(hex::encode(discord_key(2).verifying_key().as_bytes()).as_bytes())?,
        Scheme::Discord
            .derive_key(hex::encode(discord_key(1).verifying_key().as_bytes()).as_bytes())?,
    ];
    let headers = header_map(&[
        ("X-Signature-Ed25519", signature.as_bytes()),
        ("X-Signature-Timestamp", timestamp.as_bytes()),
    ]);
    Ok(Scheme::Discord.verify(&request(&headers, body), &keys, now, TOLERANCE))
}

fn discord_signature(timestamp: &str, body: &[u8]) -> ed25519_dalek::Signature {
    discord_key(1).sign(&[timestamp.as_bytes(), body].concat())
}

#[test]
fn discord_accepts_signature_of_second_key() -> Result<(), KeyError> {
    let signature = hex::encode(discord_signature("1700000000", BODY).to_bytes());

    assert_eq!(
        discord_verify(&signature, "1700000000", BODY, T + 300)?,
        Ok(Verified {
            key_index: 1,
            timestamp: Some(T)
        })
    );
    Ok(())
}

#[test]
fn discord_accepts_upper_case_hex() -> Result<(), KeyError> {
    let signature = hex::encode_upper(discord_signature("1700000000", BODY).to_bytes());

    assert!(discord_verify(&signature, "1700000000", BODY, T)?.is_ok());
    Ok(())
}

#[test]
fn discord_rejects_changes() -> Result<(), KeyError> {
    let signature = hex::encode(discord_signature("1700000000", BODY).to_bytes());
    let other_key = hex::encode(
        discord_key(3)
            .sign(&[b"1700000000".as_slice(), BODY].concat())
            .to_bytes(),
    );

    assert_eq!(
        discord_verify(&signature, "1700000001", BODY, T)?,
        Err(Failure::SignatureInvalid)
    );
    assert_eq!(
        discord_verify(&signature, "1700000000", b"{}", T)?,
        Err(Failure::SignatureInvalid)
    );
    assert_eq!(
        discord_verify(&other_key, "1700000000", BODY, T)?,
        Err(Failure::SignatureInvalid)
    );
    Ok(())
}

#[test]
fn discord_applies_tolerance_both_ways() -> Result<(), KeyError> {
    let signature = hex::encode(discord_signature("1700000000", BODY).to_bytes());

    assert_eq!(
        discord_verify(&signature, "1700000000", BODY, T + 301)?,
        Err(Failure::TimestampExpired)
    );
    assert_eq!(
        discord_verify(&signature, "1700000000", BODY, T - 301)?,
        Err(Failure::TimestampInFuture)
    );
    Ok(())
}

#[test]
fn discord_rejects_malformed_headers() -> Result<(), KeyError> {
    let signature = hex::encode(discord_signature("1700000000", BODY).to_bytes());
    // Discord expects 401 for every bad signature, so malformed ones count as invalid.
    let cases = [
        (&signature[..126], "1700000000", Failure::SignatureInvalid),
        (&signature[1..], "1700000000", Failure::SignatureInvalid),
        ("zz", "1700000000", Failure::SignatureInvalid),
        (
            signature.as_str(),
            "2023-11-14T22:13:20Z",
            Failure::TimestampMalformed,
        ),
        (signature.as_str(), "", Failure::TimestampMalformed),
    ];
    for (signature, timestamp, expected) in cases {
        assert_eq!(
            discord_verify(signature, timestamp, BODY, T)?,
            Err(expected),
            "{signature} {timestamp}"
        );
    }
    Ok(())
}

/// `S + L` is the same scalar modulo the group order, so a lax verifier accepts it too. Strict
/// verification must reject it, so that a signature has exactly one valid form.
#[test]
fn discord_rejects_non_canonical_s() -> Result<(), KeyError> {
    let mut bytes = discord_signature("1700000000", BODY).to_bytes();
    let mut carry = 0u16;
    for (byte, order) in bytes[32..].iter_mut().zip(ED25519_ORDER) {
        let sum = u16::from(*byte) + u16::from(order) + carry;
        *byte = sum.to_le_bytes()[0];
        carry = sum >> 8;
    }
    // With carry 0 and the top bits clear, `S + L` still fits the 32-byte field.
    assert_eq!(carry, 0);
    assert!(bytes[63] & 0xe0 == 0);

    let result = discord_verify(&hex::encode(bytes), "1700000000", BODY, T)?;

    assert_eq!(result, Err(Failure::SignatureInvalid));
    Ok(())
}

fn sendgrid_key(scalar: u8) -> p256::ecdsa::SigningKey {
    let Ok(key) = p256::ecdsa::SigningKey::from_slice(&[scalar; 32]) else {
        panic!("test scalar is not a valid P-256 private key");
    };
    key
}

fn sendgrid_public_key(scalar: u8) -> String {
    let der = sendgrid_key(scalar)
        .verifying_key()
        .to_public_key_der()
        .map(|der| der.as_bytes().to_vec())
        .unwrap_or_default();
    STANDARD.encode(der)
}

fn sendgrid_signature(scalar: u8, timestamp: &str, body: &[u8]) -> p256::ecdsa::Signature {
    sendgrid_key(scalar).sign(&[timestamp.as_bytes(), body].concat())
}

fn sendgrid_verify(
    signature: &str,
    timestamp: &str,
    body: &[u8],
    now: i64,
) -> Result<Result<Verified, Failure>, KeyError> {
    let keys = [Scheme::Sendgrid.derive_key(sendgrid_public_key(5).as_bytes())?];
    let headers = header_map(&[
        (
            "X-Twilio-Email-Event-Webhook-Signature",
            signature.as_bytes(),
        ),
        (
            "X-Twilio-Email-Event-Webhook-Timestamp",
            timestamp.as_bytes(),
        ),
    ]);
    Ok(Scheme::Sendgrid.verify(&request(&headers, body), &keys, now, TOLERANCE))
}

fn der_base64(signature: &p256::ecdsa::Signature) -> String {
    STANDARD.encode(signature.to_der().as_bytes())
}

#[test]
fn sendgrid_accepts_der_signature() -> Result<(), KeyError> {
    let signature = der_base64(&sendgrid_signature(5, "1700000000", BODY));

    assert_eq!(
        sendgrid_verify(&signature, "1700000000", BODY, T)?,
        Ok(Verified {
            key_index: 0,
            timestamp: Some(T)
        })
    );
    Ok(())
}

/// ECDSA signatures are malleable and SendGrid's libraries accept both forms of `s`.
#[test]
fn sendgrid_accepts_both_forms_of_s() -> Result<(), KeyError> {
    let signature = sendgrid_signature(5, "1700000000", BODY);
    let (r, s) = signature.split_scalars();
    let Ok(flipped) = p256::ecdsa::Signature::from_scalars(r, -*s) else {
        panic!("n - s is a valid scalar");
    };

    assert_ne!(der_base64(&flipped), der_base64(&signature));
    assert!(sendgrid_verify(&der_base64(&flipped), "1700000000", BODY, T)?.is_ok());
    Ok(())
}

#[test]
fn sendgrid_rejects_changes_and_other_key() -> Result<(), KeyError> {
    let signature = der_base64(&sendgrid_signature(5, "1700000000", BODY));
    let other_key = der_base64(&sendgrid_signature(6, "1700000000", BODY));

    assert_eq!(
        sendgrid_verify(&signature, "1700000001", BODY, T)?,
        Err(Failure::SignatureInvalid)
    );
    assert_eq!(
        sendgrid_verify(&signature, "1700000000", b"[]", T)?,
        Err(Failure::SignatureInvalid)
    );
    assert_eq!(
        sendgrid_verify(&other_key, "1700000000", BODY, T)?,
        Err(Failure::SignatureInvalid)
    );
    Ok(())
}

#[test]
fn sendgrid_applies_tolerance_both_ways() -> Result<(), KeyError> {
    let signature = der_base64(&sendgrid_signature(5, "1700000000", BODY));

    assert_eq!(
        sendgrid_verify(&signature, "1700000000", BODY, T + 301)?,
        Err(Failure::TimestampExpired)
    );
    assert_eq!(
        sendgrid_verify(&signature, "1700000000", BODY, T - 301)?,
        Err(Failure::TimestampInFuture)
    );
    Ok(())
}

#[test]
fn sendgrid_rejects_non_der_signatures() -> Result<(), KeyError> {
    let signature = sendgrid_signature(5, "1700000000", BODY);
    let raw = STANDARD.encode(signature.to_bytes());
    let der = der_base64(&signature);
    let mut cases = vec![raw, "A".repeat(100), "not-a-signature".to_string()];
    if der.ends_with('=') {
        cases.push(der.trim_end_matches('=').to_string());
    }
    for text in cases {
        assert_eq!(
            sendgrid_verify(&text, "1700000000", BODY, T)?,
            Err(Failure::SignatureMalformed),
            "{text}"
        );
    }
    Ok(())
}

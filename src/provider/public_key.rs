//! Public-key schemes: the provider signs `timestamp ‖ body` with its private key and the
//! route is configured with the matching public key, so the gateway can verify but never sign.
//!
//! - Discord: `X-Signature-Ed25519: <hex>` (64 bytes, hex of either case) and
//!   `X-Signature-Timestamp: <unix>`, Ed25519 with the application's public key.
//! - SendGrid Event Webhook: `X-Twilio-Email-Event-Webhook-Signature: <base64 DER>` and
//!   `X-Twilio-Email-Event-Webhook-Timestamp: <unix>`, ECDSA P-256 with SHA-256 and the
//!   verification key from SendGrid's Mail Settings.
//!
//! Neither provider documents a time window and their helper libraries check none. This check
//! applies the route's tolerance in both directions, after the signature, as for every other
//! scheme. The timestamp must be digits within the tolerance, so a byte moved between it and
//! the body either makes it malformed or changes the time tenfold.
//!
//! Ed25519 is checked with `verify_strict` (ed25519-dalek 2), which rejects non-canonical and
//! small-order signatures, so a valid signature cannot be rewritten into another valid one.
//! ECDSA is malleable: `(r, n - s)` verifies whenever `(r, s)` does, and SendGrid's libraries
//! accept both, so both are accepted here too.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::HeaderName;
use p256::ecdsa::signature::DigestVerifier;
use sha2::{Digest, Sha256};

use super::headers::{self, Role};
use super::{timestamp, Failure, Key, Request, Verified};

/// The signature and timestamp headers of one public-key scheme.
pub(super) struct Headers {
    pub(super) signature: HeaderName,
    pub(super) timestamp: HeaderName,
}

pub(super) static DISCORD: Headers = Headers {
    signature: HeaderName::from_static("x-signature-ed25519"),
    timestamp: HeaderName::from_static("x-signature-timestamp"),
};

pub(super) static SENDGRID: Headers = Headers {
    signature: HeaderName::from_static("x-twilio-email-event-webhook-signature"),
    timestamp: HeaderName::from_static("x-twilio-email-event-webhook-timestamp"),
};

/// Maximum base64 length of a DER ECDSA P-256 signature, which is at most 72 bytes.
const MAX_DER_BASE64_LEN: usize = 96;

pub(super) fn verify_discord(
    request: &Request<'_>,
    keys: &[Key],
    now: i64,
    tolerance: Duration,
) -> Result<Verified, Failure> {
    let text = headers::required(request.headers, &DISCORD.signature, Role::Signature)?;
    let mut bytes = [0u8; ed25519_dalek::SIGNATURE_LENGTH];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| Failure::SignatureMalformed)?;
    let signature = ed25519_dalek::Signature::from_bytes(&bytes);
    let (timestamp_text, signed_at) = read_timestamp(request, &DISCORD)?;

    // Ed25519 hashes the whole message twice, so it needs one contiguous copy.
    let message = [timestamp_text.as_bytes(), request.body].concat();
    let key_index = keys
        .iter()
        .position(|key| {
            key.ed25519()
                .is_some_and(|key| key.verify_strict(&message, &signature).is_ok())
        })
        .ok_or(Failure::SignatureInvalid)?;
    timestamp::check_window(signed_at, now, tolerance)?;
    Ok(Verified {
        key_index,
        timestamp: Some(signed_at),
    })
}

pub(super) fn verify_sendgrid(
    request: &Request<'_>,
    keys: &[Key],
    now: i64,
    tolerance: Duration,
) -> Result<Verified, Failure> {
    let text = headers::required(request.headers, &SENDGRID.signature, Role::Signature)?;
    // Checking the length first keeps an oversized header from being decoded.
    if text.len() > MAX_DER_BASE64_LEN {
        return Err(Failure::SignatureMalformed);
    }
    let der = STANDARD
        .decode(text)
        .map_err(|_| Failure::SignatureMalformed)?;
    let signature =
        p256::ecdsa::Signature::from_der(&der).map_err(|_| Failure::SignatureMalformed)?;
    let (timestamp_text, signed_at) = read_timestamp(request, &SENDGRID)?;

    let mut digest = Sha256::new();
    digest.update(timestamp_text.as_bytes());
    digest.update(request.body);
    let key_index = keys
        .iter()
        .position(|key| {
            key.p256()
                .is_some_and(|key| key.verify_digest(digest.clone(), &signature).is_ok())
        })
        .ok_or(Failure::SignatureInvalid)?;
    timestamp::check_window(signed_at, now, tolerance)?;
    Ok(Verified {
        key_index,
        timestamp: Some(signed_at),
    })
}

fn read_timestamp<'a>(request: &Request<'a>, headers: &Headers) -> Result<(&'a str, i64), Failure> {
    let text = headers::required(request.headers, &headers.timestamp, Role::Timestamp)?;
    Ok((text, timestamp::parse(text)?))
}

#[cfg(test)]
mod tests;

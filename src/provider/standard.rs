//! Standard Webhooks (version 1 of the specification) and Svix, which uses the same scheme
//! with `svix-` header names.
//!
//! The signature header is a space-separated list of `<version>,<base64>` entries over
//! `<id>.<timestamp>.<body>`: `v1` entries are HMAC-SHA256 with the `whsec_` secret, and
//! `v1a` entries Ed25519 with the `whpk_` public key, checked with `verify_strict`. Any entry
//! may match any configured key. Entries of other versions are skipped. The specification's
//! reference libraries accept `1700000000.0` as a timestamp; this check requires integer
//! seconds.

use std::time::Duration;

use http::HeaderName;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::headers::{self, Role};
use super::sign::Message;
use super::{
    timestamp, Algorithm, Encoding, Failure, Key, KeyAlgorithm, PrivateKey, Request, Verified,
};

/// Names of the three headers of one flavour of the scheme.
pub(super) struct HeaderNames {
    id: HeaderName,
    timestamp: HeaderName,
    signature: HeaderName,
}

pub(super) const WEBHOOK_HEADERS: HeaderNames = HeaderNames {
    id: HeaderName::from_static("webhook-id"),
    timestamp: HeaderName::from_static("webhook-timestamp"),
    signature: HeaderName::from_static("webhook-signature"),
};

pub(super) const SVIX_HEADERS: HeaderNames = HeaderNames {
    id: HeaderName::from_static("svix-id"),
    timestamp: HeaderName::from_static("svix-timestamp"),
    signature: HeaderName::from_static("svix-signature"),
};

pub(super) fn verify(
    request: &Request<'_>,
    keys: &[Key],
    now: i64,
    tolerance: Duration,
    names: &HeaderNames,
) -> Result<Verified, Failure> {
    let header = headers::required(request.headers, &names.signature, Role::Signature)?;
    let signatures = parse_signatures(header)?;
    let id = headers::required(request.headers, &names.id, Role::Signed)?;
    // The signed content joins id, timestamp and body with `.`, so a `.` in the id would let
    // one signature cover a different split of the same bytes.
    if id.contains('.') {
        return Err(Failure::SignedHeaderMalformed);
    }
    let timestamp_text = headers::required(request.headers, &names.timestamp, Role::Timestamp)?;
    let signed_at = timestamp::parse(timestamp_text)?;

    let message = [
        id.as_bytes(),
        b".",
        timestamp_text.as_bytes(),
        b".",
        request.body,
    ];
    let key_index = Algorithm::Sha256
        .find_key(keys, &message, &signatures.v1)
        .or_else(|| find_ed25519_key(keys, &message, &signatures.v1a))
        .ok_or(Failure::SignatureInvalid)?;
    timestamp::check_window(signed_at, now, tolerance)?;
    Ok(Verified {
        key_index,
        timestamp: Some(signed_at),
    })
}

/// The decoded entries of a signature list.
struct Signatures {
    v1: Vec<Vec<u8>>,
    v1a: Vec<ed25519_dalek::Signature>,
}

/// Decodes the `v1` and `v1a` entries of a signature list.
///
/// Runs of spaces count as one separator. An entry without `,`, an undecodable `v1` or `v1a`
/// entry, or a list with neither is malformed.
fn parse_signatures(header: &str) -> Result<Signatures, Failure> {
    let mut signatures = Signatures {
        v1: Vec::new(),
        v1a: Vec::new(),
    };
    for entry in header.split(' ').filter(|entry| !entry.is_empty()) {
        let (version, encoded) = entry.split_once(',').ok_or(Failure::SignatureMalformed)?;
        match version {
            "v1" => signatures
                .v1
                .push(Encoding::Base64.decode(encoded, Algorithm::Sha256)?),
            "v1a" => signatures.v1a.push(decode_ed25519(encoded)?),
            _ => {}
        }
    }
    if signatures.v1.is_empty() && signatures.v1a.is_empty() {
        return Err(Failure::SignatureMalformed);
    }
    Ok(signatures)
}

/// Decodes padded base64 of a 64-byte Ed25519 signature.
fn decode_ed25519(encoded: &str) -> Result<ed25519_dalek::Signature, Failure> {
    // 64 bytes are 88 base64 characters; checking first keeps long text from being decoded.
    if encoded.len() != 88 {
        return Err(Failure::SignatureMalformed);
    }
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| Failure::SignatureMalformed)?;
    let bytes: [u8; ed25519_dalek::SIGNATURE_LENGTH] =
        bytes.try_into().map_err(|_| Failure::SignatureMalformed)?;
    Ok(ed25519_dalek::Signature::from_bytes(&bytes))
}

/// Returns the index of the first Ed25519 key that verifies one of `signatures`.
fn find_ed25519_key(
    keys: &[Key],
    message: &[&[u8]],
    signatures: &[ed25519_dalek::Signature],
) -> Option<usize> {
    if signatures.is_empty() {
        return None;
    }
    // Ed25519 hashes the whole message twice, so it needs one contiguous copy.
    let joined = message.concat();
    keys.iter().position(|key| {
        key.ed25519().is_some_and(|key| {
            signatures
                .iter()
                .any(|signature| key.verify_strict(&joined, signature).is_ok())
        })
    })
}

/// Returns the three headers of a `v1a` delivery of `message`, signed with `private_key`.
pub(super) fn sign_v1a(
    names: &HeaderNames,
    private_key: &PrivateKey,
    message: &Message<'_>,
) -> Result<Vec<(String, String)>, String> {
    let timestamp = message.timestamp.to_string();
    let parts = [
        message.id.as_bytes(),
        b".",
        timestamp.as_bytes(),
        b".",
        message.body,
    ];
    let signature = private_key.sign(KeyAlgorithm::Ed25519, &parts)?;
    Ok(vec![
        (names.id.to_string(), message.id.to_string()),
        (names.timestamp.to_string(), timestamp),
        (
            names.signature.to_string(),
            format!("v1a,{}", STANDARD.encode(signature)),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::test_support::{header_map, hmac_sha256, request};
    use crate::provider::{KeyError, Scheme};

    const TOLERANCE: Duration = Duration::from_secs(300);

    /// The example in Svix's "Verifying webhooks manually" guide.
    const DOC_SECRET: &[u8] = b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const DOC_ID: &[u8] = b"msg_p5jXN8AQM9LWM0D4loKWxJek";
    const DOC_TIMESTAMP: i64 = 1_614_265_330;
    const DOC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const DOC_SIGNATURE: &[u8] = b"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn verify_doc(
        scheme: &Scheme,
        pairs: &[(&str, &[u8])],
        now: i64,
    ) -> Result<Result<Verified, Failure>, KeyError> {
        let headers = header_map(pairs);
        let keys = [scheme.derive_key(DOC_SECRET)?];
        Ok(scheme.verify(&request(&headers, DOC_BODY), &keys, now, TOLERANCE))
    }

    fn svix_doc_headers(signature: &[u8]) -> [(&'static str, &[u8]); 3] {
        [
            ("svix-id", DOC_ID),
            ("svix-timestamp", b"1614265330"),
            ("svix-signature", signature),
        ]
    }

    #[test]
    fn svix_accepts_documented_example() -> Result<(), KeyError> {
        let result = verify_doc(
            &Scheme::Svix,
            &svix_doc_headers(DOC_SIGNATURE),
            DOC_TIMESTAMP,
        )?;

        assert_eq!(
            result,
            Ok(Verified {
                key_index: 0,
                timestamp: Some(DOC_TIMESTAMP)
            })
        );
        Ok(())
    }

    #[test]
    fn standard_ignores_svix_headers() -> Result<(), KeyError> {
        let pairs = svix_doc_headers(DOC_SIGNATURE);

        let result = verify_doc(&Scheme::StandardWebhooks, &pairs, DOC_TIMESTAMP)?;

        assert_eq!(result, Err(Failure::SignatureMissing));
        Ok(())
    }

    #[test]
    fn rejects_future_timestamp() -> Result<(), KeyError> {
        let pairs = svix_doc_headers(DOC_SIGNATURE);

        let result = verify_doc(&Scheme::Svix, &pairs, DOC_TIMESTAMP - 301)?;

        assert_eq!(result, Err(Failure::TimestampInFuture));
        Ok(())
    }

    #[test]
    fn skips_unknown_versions() -> Result<(), KeyError> {
        let list = [b"v2,AAAA v3,AAAA ".as_slice(), DOC_SIGNATURE].concat();

        let result = verify_doc(&Scheme::Svix, &svix_doc_headers(&list), DOC_TIMESTAMP)?;

        assert_eq!(result.map(|v| v.key_index), Ok(0));
        Ok(())
    }

    #[test]
    fn rejects_list_without_v1() -> Result<(), KeyError> {
        let list = b"v1a,AAAA v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

        let result = verify_doc(&Scheme::Svix, &svix_doc_headers(list), DOC_TIMESTAMP)?;

        assert_eq!(result, Err(Failure::SignatureMalformed));
        Ok(())
    }

    #[test]
    fn rejects_duplicated_signature_header() -> Result<(), KeyError> {
        let mut pairs = svix_doc_headers(DOC_SIGNATURE).to_vec();
        pairs.push(("svix-signature", DOC_SIGNATURE));

        let result = verify_doc(&Scheme::Svix, &pairs, DOC_TIMESTAMP)?;

        assert_eq!(result, Err(Failure::SignatureMalformed));
        Ok(())
    }

    #[test]
    fn rejects_id_with_dot() -> Result<(), KeyError> {
        let secret = b"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
        let key = Scheme::Svix.derive_key(secret)?;
        let mac = hmac_sha256(
            &STANDARD.decode(&secret[6..]).unwrap_or_default(),
            &[b"a.b.1.x"],
        );
        let signature = format!("v1,{}", STANDARD.encode(mac));
        let headers = header_map(&[
            ("svix-id", b"a.b"),
            ("svix-timestamp", b"1"),
            ("svix-signature", signature.as_bytes()),
        ]);

        let result = Scheme::Svix.verify(&request(&headers, b"x"), &[key], 1, TOLERANCE);

        assert_eq!(result, Err(Failure::SignedHeaderMalformed));
        Ok(())
    }

    #[test]
    fn missing_id_is_signed_header_missing() -> Result<(), KeyError> {
        let pairs: [(&str, &[u8]); 2] = [
            ("svix-timestamp", b"1614265330"),
            ("svix-signature", DOC_SIGNATURE),
        ];

        let result = verify_doc(&Scheme::Svix, &pairs, DOC_TIMESTAMP)?;

        assert_eq!(result, Err(Failure::SignedHeaderMissing));
        Ok(())
    }

    /// A fixed Ed25519 seed, so the test key is the same on every run.
    const SEED_HEX: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

    fn v1a_request(body: &[u8]) -> Result<(Key, Vec<(String, String)>), String> {
        let private_key = PrivateKey::parse(SEED_HEX.as_bytes())?;
        let signing = ed25519_dalek::SigningKey::from_bytes(
            &hex::decode(SEED_HEX)
                .map_err(|e| e.to_string())?
                .try_into()
                .map_err(|_| "seed length")?,
        );
        let whpk = format!(
            "whpk_{}",
            STANDARD.encode(signing.verifying_key().to_bytes())
        );
        let key = Scheme::StandardWebhooks
            .derive_public_key(whpk.as_bytes())
            .map_err(|e| e.to_string())?;
        let message = Message {
            method: "POST",
            url: "/",
            body,
            timestamp: DOC_TIMESTAMP,
            id: "msg_1",
        };
        let headers = sign_v1a(&WEBHOOK_HEADERS, &private_key, &message)?;
        Ok((key, headers))
    }

    fn pairs(headers: &[(String, String)]) -> Vec<(&str, &[u8])> {
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect()
    }

    #[test]
    fn v1a_verifies_with_public_key() -> Result<(), String> {
        let (key, signed) = v1a_request(DOC_BODY)?;
        let headers = header_map(&pairs(&signed));

        let result = Scheme::StandardWebhooks.verify(
            &request(&headers, DOC_BODY),
            &[key],
            DOC_TIMESTAMP,
            TOLERANCE,
        );

        assert_eq!(result.map(|v| v.key_index), Ok(0));
        Ok(())
    }

    #[test]
    fn v1a_rejects_changed_body() -> Result<(), String> {
        let (key, signed) = v1a_request(DOC_BODY)?;
        let headers = header_map(&pairs(&signed));

        let result = Scheme::StandardWebhooks.verify(
            &request(&headers, b"{\"test\": 1}"),
            &[key],
            DOC_TIMESTAMP,
            TOLERANCE,
        );

        assert_eq!(result, Err(Failure::SignatureInvalid));
        Ok(())
    }

    #[test]
    fn v1a_and_v1_keys_mix() -> Result<(), String> {
        let (public_key, signed) = v1a_request(DOC_BODY)?;
        let secret = Scheme::StandardWebhooks
            .derive_key(DOC_SECRET)
            .map_err(|e| e.to_string())?;
        let headers = header_map(&pairs(&signed));

        let result = Scheme::StandardWebhooks.verify(
            &request(&headers, DOC_BODY),
            &[secret, public_key],
            DOC_TIMESTAMP,
            TOLERANCE,
        );

        assert_eq!(result.map(|v| v.key_index), Ok(1));
        Ok(())
    }

    #[test]
    fn v1a_of_wrong_length_is_malformed() -> Result<(), KeyError> {
        let list = b"v1a,AAAA";

        let result = verify_doc(&Scheme::Svix, &svix_doc_headers(list), DOC_TIMESTAMP)?;

        assert_eq!(result, Err(Failure::SignatureMalformed));
        Ok(())
    }
}

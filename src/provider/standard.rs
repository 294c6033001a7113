//! Standard Webhooks (version 1 of the specification) and Svix, which uses the same scheme
//! with `svix-` header names.
//!
//! The signature header is a space-separated list of `<version>,<base64>` entries. Each `v1`
//! entry is the HMAC-SHA256 of `<id>.<timestamp>.<body>`, and any one may match. Entries of
//! other versions, such as the Ed25519 `v1a`, are skipped. The specification's reference
//! libraries accept `1700000000.0` as a timestamp; this check requires integer seconds.

use std::time::Duration;

use http::HeaderName;

use super::headers::{self, Role};
use super::{timestamp, Algorithm, Encoding, Failure, Key, Request, Verified};

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
        .find_key(keys, &message, &signatures)
        .ok_or(Failure::SignatureInvalid)?;
    timestamp::check_window(signed_at, now, tolerance)?;
    Ok(Verified {
        key_index,
        timestamp: Some(signed_at),
    })
}

/// Decodes the `v1` entries of a signature list.
///
/// Runs of spaces count as one separator. An entry without `,`, an undecodable `v1` entry, or
/// a list with no `v1` entry is malformed.
fn parse_signatures(header: &str) -> Result<Vec<Vec<u8>>, Failure> {
    let mut signatures = Vec::new();
    for entry in header.split(' ').filter(|entry| !entry.is_empty()) {
        let (version, encoded) = entry.split_once(',').ok_or(Failure::SignatureMalformed)?;
        if version == "v1" {
            signatures.push(Encoding::Base64.decode(encoded, Algorithm::Sha256)?);
        }
    }
    if signatures.is_empty() {
        return Err(Failure::SignatureMalformed);
    }
    Ok(signatures)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

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
        let list = [b"v2,AAAA v1a,AAAA ".as_slice(), DOC_SIGNATURE].concat();

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
}

//! GitHub: an HMAC of the raw body with the webhook secret, in lower-case hex after a prefix
//! naming the hash. No timestamp is signed, so replay defence needs `X-GitHub-Delivery`
//! de-duplication elsewhere.

use http::HeaderName;

use super::{headers, Algorithm, Encoding, Failure, Key, Request, Verified};

/// GitHub signature header checked by a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    /// `X-Hub-Signature-256: sha256=<hex>`, which GitHub recommends.
    Sha256,
    /// `X-Hub-Signature: sha1=<hex>`, kept by GitHub for compatibility.
    Sha1,
}

impl Version {
    fn header(self) -> HeaderName {
        match self {
            Version::Sha256 => HeaderName::from_static("x-hub-signature-256"),
            Version::Sha1 => HeaderName::from_static("x-hub-signature"),
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Version::Sha256 => "sha256=",
            Version::Sha1 => "sha1=",
        }
    }

    fn algorithm(self) -> Algorithm {
        match self {
            Version::Sha256 => Algorithm::Sha256,
            Version::Sha1 => Algorithm::Sha1,
        }
    }
}

pub(super) fn verify(
    request: &Request<'_>,
    keys: &[Key],
    version: Version,
) -> Result<Verified, Failure> {
    let algorithm = version.algorithm();
    let signature = headers::signature(
        request.headers,
        &version.header(),
        version.prefix(),
        Encoding::Hex,
        algorithm,
    )?;

    let key_index = algorithm
        .find_key(keys, &[request.body], &[signature])
        .ok_or(Failure::SignatureInvalid)?;
    Ok(Verified {
        key_index,
        timestamp: None,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::provider::test_support::{header_map, request};
    use crate::provider::Scheme;

    const DOC_SECRET: &[u8] = b"It's a Secret to Everybody";
    const DOC_BODY: &[u8] = b"Hello, World!";
    const DOC_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn verify_doc_example(headers: &http::HeaderMap) -> Result<Verified, Failure> {
        let keys = [Scheme::Github
            .derive_key(DOC_SECRET)
            .map_err(|_| Failure::SignatureInvalid)?];
        Scheme::Github.verify(&request(headers, DOC_BODY), &keys, 0, Duration::ZERO)
    }

    /// The example published in GitHub's "Validating webhook deliveries" guide.
    #[test]
    fn accepts_documented_example() {
        let headers = header_map(&[("x-hub-signature-256", DOC_SIGNATURE.as_bytes())]);

        assert_eq!(
            verify_doc_example(&headers),
            Ok(Verified {
                key_index: 0,
                timestamp: None
            })
        );
    }

    #[test]
    fn rejects_duplicated_signature_header() {
        let headers = header_map(&[
            ("x-hub-signature-256", DOC_SIGNATURE.as_bytes()),
            ("x-hub-signature-256", DOC_SIGNATURE.as_bytes()),
        ]);

        assert_eq!(
            verify_doc_example(&headers),
            Err(Failure::SignatureMalformed)
        );
    }

    #[test]
    fn sha256_rule_ignores_legacy_header() {
        let legacy = "sha1=0000000000000000000000000000000000000000";
        let headers = header_map(&[("x-hub-signature", legacy.as_bytes())]);

        assert_eq!(verify_doc_example(&headers), Err(Failure::SignatureMissing));
    }

    #[test]
    fn wrong_length_signature_is_malformed() {
        let short = &DOC_SIGNATURE[..DOC_SIGNATURE.len() - 2];
        let headers = header_map(&[("x-hub-signature-256", short.as_bytes())]);

        assert_eq!(
            verify_doc_example(&headers),
            Err(Failure::SignatureMalformed)
        );
    }
}

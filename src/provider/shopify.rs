//! Shopify: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body with the app's
//! client secret. No timestamp is signed (`X-Shopify-Triggered-At` is not covered), so replay
//! defence needs `X-Shopify-Webhook-Id` de-duplication elsewhere.

use http::HeaderName;

use super::{headers, Algorithm, Encoding, Failure, Key, Request, Verified};

const SIGNATURE: HeaderName = HeaderName::from_static("x-shopify-hmac-sha256");

pub(super) fn verify(request: &Request<'_>, keys: &[Key]) -> Result<Verified, Failure> {
    let signature = headers::signature(
        request.headers,
        &SIGNATURE,
        "",
        Encoding::Base64,
        Algorithm::Sha256,
    )?;

    let key_index = Algorithm::Sha256
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

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    use super::*;
    use crate::provider::test_support::{header_map, hmac_sha256, request};
    use crate::provider::{KeyError, Scheme};

    const SECRET: &[u8] = b"shpss_0123456789abcdef0123456789abcdef";
    const BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;
    /// Computed with Python's `hmac` and `base64` modules, independently of the Rust crates.
    const PYTHON_SIGNATURE: &str = "8++5uqaSbZMvfZWESSDj93PLZ220nqZIKaoc0fiVLe4=";

    fn verify(
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Result<Verified, Failure>, KeyError> {
        let keys = [Scheme::Shopify.derive_key(SECRET)?];
        Ok(Scheme::Shopify.verify(&request(headers, body), &keys, 0, Duration::ZERO))
    }

    #[test]
    fn hmac_crate_agrees_with_python() {
        let signature = STANDARD.encode(hmac_sha256(SECRET, &[BODY]));

        assert_eq!(signature, PYTHON_SIGNATURE);
    }

    #[test]
    fn accepts_body_signature() -> Result<(), KeyError> {
        let headers = header_map(&[("X-Shopify-Hmac-Sha256", PYTHON_SIGNATURE.as_bytes())]);

        let result = verify(&headers, BODY)?;

        assert_eq!(
            result,
            Ok(Verified {
                key_index: 0,
                timestamp: None
            })
        );
        Ok(())
    }

    #[test]
    fn rejects_changed_body() -> Result<(), KeyError> {
        let headers = header_map(&[("X-Shopify-Hmac-Sha256", PYTHON_SIGNATURE.as_bytes())]);
        let mut body = BODY.to_vec();
        body.push(b'\n');

        assert_eq!(verify(&headers, &body)?, Err(Failure::SignatureInvalid));
        Ok(())
    }

    #[test]
    fn rejects_hex_signature() -> Result<(), KeyError> {
        let hex_signature = hex::encode(hmac_sha256(SECRET, &[BODY]));
        let headers = header_map(&[("X-Shopify-Hmac-Sha256", hex_signature.as_bytes())]);

        assert_eq!(verify(&headers, BODY)?, Err(Failure::SignatureMalformed));
        Ok(())
    }

    #[test]
    fn missing_header() -> Result<(), KeyError> {
        let headers = header_map(&[("X-Shopify-Webhook-Id", b"b54557e4")]);

        assert_eq!(verify(&headers, BODY)?, Err(Failure::SignatureMissing));
        Ok(())
    }
}

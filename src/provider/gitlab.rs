//! GitLab: `X-Gitlab-Token` carries the webhook's secret token verbatim. There is no MAC and no
//! timestamp, so the body is not authenticated. The token only proves that the sender has
//! it, and anyone who captures one request can send any other.
//!
//! The comparison hashes both tokens with SHA-256 and compares the digests in constant time,
//! so its timing reveals neither the configured token nor its length.

use hmac::digest::CtOutput;
use http::HeaderName;
use sha2::{Digest, Sha256};

use super::headers::{self, Role};
use super::{Failure, Key, Request, Verified};

pub(super) static TOKEN: HeaderName = HeaderName::from_static("x-gitlab-token");

pub(super) fn verify(request: &Request<'_>, keys: &[Key]) -> Result<Verified, Failure> {
    let token = headers::required_bytes(request.headers, &TOKEN, Role::Signature)?;
    if token.is_empty() {
        return Err(Failure::SignatureMalformed);
    }

    let presented = digest(token);
    let key_index = keys
        .iter()
        .position(|key| {
            key.secret()
                .is_some_and(|secret| digest(secret) == presented)
        })
        .ok_or(Failure::SignatureInvalid)?;
    Ok(Verified {
        key_index,
        timestamp: None,
    })
}

/// `CtOutput` compares in constant time.
fn digest(bytes: &[u8]) -> CtOutput<Sha256> {
    CtOutput::new(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::provider::test_support::{header_map, request};
    use crate::provider::{KeyError, Scheme};

    const TOKEN_TEXT: &[u8] = b"glwt-0123456789abcdef";

    fn verify(pairs: &[(&str, &[u8])]) -> Result<Result<Verified, Failure>, KeyError> {
        let headers = header_map(pairs);
        let keys = [
            Scheme::Gitlab.derive_key(b"old-token")?,
            Scheme::Gitlab.derive_key(TOKEN_TEXT)?,
        ];
        Ok(Scheme::Gitlab.verify(&request(&headers, b"{}"), &keys, 0, Duration::ZERO))
    }

    #[test]
    fn accepts_configured_token() -> Result<(), KeyError> {
        assert_eq!(
            verify(&[("X-Gitlab-Token", TOKEN_TEXT)])?,
            Ok(Verified {
                key_index: 1,
                timestamp: None
            })
        );
        Ok(())
    }

    #[test]
    fn rejects_other_tokens() -> Result<(), KeyError> {
        let prefix = &TOKEN_TEXT[..TOKEN_TEXT.len() - 1];
        let longer = [TOKEN_TEXT, b"x"].concat();
        let upper = TOKEN_TEXT.to_ascii_uppercase();

        for token in [prefix, &longer, &upper, b" glwt-0123456789abcdef"] {
            assert_eq!(
                verify(&[("X-Gitlab-Token", token)])?,
                Err(Failure::SignatureInvalid),
                "{}",
                String::from_utf8_lossy(token)
            );
        }
        Ok(())
    }

    #[test]
    fn compares_non_ascii_token_as_bytes() -> Result<(), KeyError> {
        let token = "t\u{f6}ken".as_bytes();
        let headers = header_map(&[("X-Gitlab-Token", token)]);
        let keys = [Scheme::Gitlab.derive_key(token)?];

        let result = Scheme::Gitlab.verify(&request(&headers, b""), &keys, 0, Duration::ZERO);

        assert_eq!(result.map(|v| v.key_index), Ok(0));
        Ok(())
    }

    #[test]
    fn missing_empty_or_repeated_token() -> Result<(), KeyError> {
        assert_eq!(verify(&[])?, Err(Failure::SignatureMissing));
        assert_eq!(
            verify(&[("X-Gitlab-Token", b"")])?,
            Err(Failure::SignatureMalformed)
        );
        assert_eq!(
            verify(&[
                ("X-Gitlab-Token", TOKEN_TEXT),
                ("X-Gitlab-Token", TOKEN_TEXT)
            ])?,
            Err(Failure::SignatureMalformed)
        );
        Ok(())
    }
}

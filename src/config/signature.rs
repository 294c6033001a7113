//! Resolution of a route's generic `signature:` rule.

use super::error::Problems;
use super::raw::RawSignature;
use crate::provider::{KeyAlgorithm, Scheme, SignatureEncoding, SignatureRule};

/// Builds the scheme of a `signature:` block. `other_scheme` is whether the route also has
/// `provider:` or `hmac:`, which is a problem.
pub(super) fn scheme(
    other_scheme: bool,
    raw: RawSignature,
    at: &str,
    problems: &mut Problems,
) -> Option<Scheme> {
    if other_scheme {
        problems.add(
            at,
            "give one of `provider:`, `hmac:` or `signature:`, not several",
        );
        return None;
    }
    let at = format!("{at}.signature");
    let algorithm = KeyAlgorithm::from_name(&raw.algorithm);
    if algorithm.is_none() {
        problems.add(
            format!("{at}.algorithm"),
            format!(
                "unknown algorithm {:?}; use {}",
                raw.algorithm,
                KeyAlgorithm::NAMES.join(", ")
            ),
        );
    }
    let encoding = match raw.encoding.as_str() {
        "hex" => Some(SignatureEncoding::Hex),
        "base64" => Some(SignatureEncoding::Base64),
        "base64url" => Some(SignatureEncoding::Base64Url),
        other => {
            problems.add(
                format!("{at}.encoding"),
                format!("unknown encoding {other:?}; use hex, base64 or base64url"),
            );
            None
        }
    };
    let rule = SignatureRule::new(
        algorithm?,
        &raw.header,
        raw.prefix.as_deref(),
        encoding?,
        raw.signed.as_deref().unwrap_or("{body}"),
        raw.timestamp_header.as_deref(),
        raw.id_header.as_deref(),
    );
    match rule {
        Ok(rule) => Some(Scheme::Signature(rule)),
        Err(message) => {
            problems.add(at, message);
            None
        }
    }
}

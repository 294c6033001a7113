//! Reading single-valued headers and signatures out of a request.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{Algorithm, Encoding, Failure};

/// The part a header plays in a scheme, which decides the failure it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Signature,
    Timestamp,
    Signed,
}

impl Role {
    fn missing(self) -> Failure {
        match self {
            Role::Signature => Failure::SignatureMissing,
            Role::Timestamp => Failure::TimestampMissing,
            Role::Signed => Failure::SignedHeaderMissing,
        }
    }

    fn malformed(self) -> Failure {
        match self {
            Role::Signature => Failure::SignatureMalformed,
            Role::Timestamp => Failure::TimestampMalformed,
            Role::Signed => Failure::SignedHeaderMalformed,
        }
    }
}

/// Returns the value of a header that must be present exactly once.
///
/// A repeated header is ambiguous, and a value with bytes other than visible ASCII, space or
/// tab cannot be compared as text, so both fail as malformed for `role`.
pub(super) fn required<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    role: Role,
) -> Result<&'a str, Failure> {
    single(headers, name, role)?
        .to_str()
        .map_err(|_| role.malformed())
}

/// Returns the raw bytes of a header that must be present exactly once, for values that are
/// compared as bytes rather than read as text. A repeated header is malformed for `role`.
pub(super) fn required_bytes<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    role: Role,
) -> Result<&'a [u8], Failure> {
    Ok(single(headers, name, role)?.as_bytes())
}

fn single<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    role: Role,
) -> Result<&'a HeaderValue, Failure> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Err(role.missing());
    };
    if values.next().is_some() {
        return Err(role.malformed());
    }
    Ok(value)
}

/// Reads a header that carries one signature after a fixed `prefix` and decodes it.
pub(super) fn signature(
    headers: &HeaderMap,
    name: &HeaderName,
    prefix: &str,
    encoding: Encoding,
    algorithm: Algorithm,
) -> Result<Vec<u8>, Failure> {
    let value = required(headers, name, Role::Signature)?;
    let encoded = value
        .strip_prefix(prefix)
        .ok_or(Failure::SignatureMalformed)?;
    encoding.decode(encoded, algorithm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::test_support::header_map;

    const NAME: HeaderName = HeaderName::from_static("x-sig");

    #[test]
    fn required_returns_single_value() {
        let headers = header_map(&[("x-sig", b"abc")]);

        assert_eq!(required(&headers, &NAME, Role::Signature), Ok("abc"));
    }

    #[test]
    fn required_missing_per_role() {
        let headers = header_map(&[]);

        assert_eq!(
            required(&headers, &NAME, Role::Signature),
            Err(Failure::SignatureMissing)
        );
        assert_eq!(
            required(&headers, &NAME, Role::Timestamp),
            Err(Failure::TimestampMissing)
        );
        assert_eq!(
            required(&headers, &NAME, Role::Signed),
            Err(Failure::SignedHeaderMissing)
        );
    }

    #[test]
    fn required_rejects_repeated_header() {
        let headers = header_map(&[("x-sig", b"a"), ("x-sig", b"a")]);

        assert_eq!(
            required(&headers, &NAME, Role::Signature),
            Err(Failure::SignatureMalformed)
        );
        assert_eq!(
            required(&headers, &NAME, Role::Timestamp),
            Err(Failure::TimestampMalformed)
        );
    }

    #[test]
    fn required_rejects_non_ascii_value() {
        let headers = header_map(&[("x-sig", "sha256=é".as_bytes()), ("x-ts", b"\xff1")]);

        assert_eq!(
            required(&headers, &NAME, Role::Signature),
            Err(Failure::SignatureMalformed)
        );
        assert_eq!(
            required(&headers, &HeaderName::from_static("x-ts"), Role::Signed),
            Err(Failure::SignedHeaderMalformed)
        );
    }

    #[test]
    fn required_bytes_keeps_non_ascii_value() {
        let headers = header_map(&[("x-sig", b"t\xc3\xb6ken"), ("x-two", b"a"), ("x-two", b"b")]);

        assert_eq!(
            required_bytes(&headers, &NAME, Role::Signature),
            Ok(&b"t\xc3\xb6ken"[..])
        );
        assert_eq!(
            required_bytes(&headers, &HeaderName::from_static("x-two"), Role::Signature),
            Err(Failure::SignatureMalformed)
        );
    }

    #[test]
    fn signature_requires_prefix() {
        let hex = "ab".repeat(32);
        let headers = header_map(&[("x-sig", hex.as_bytes())]);

        let result = signature(&headers, &NAME, "sha256=", Encoding::Hex, Algorithm::Sha256);

        assert_eq!(result, Err(Failure::SignatureMalformed));
    }
}

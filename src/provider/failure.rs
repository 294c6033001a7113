//! Reasons a request fails verification.

/// Reason a request failed verification. [`Failure::as_str`] is the metric label and log field.
/// `Display` is a short message that never contains key material or header values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The signature header is absent.
    #[error("signature header missing")]
    SignatureMissing,
    /// The signature header is repeated, not visible ASCII or not in the scheme's format. A
    /// header with no signature of the trusted version counts too, such as a Stripe header with
    /// only `v0` or a Standard Webhooks list with only `v1a`. So does a signature that does not
    /// decode to exactly one MAC of the algorithm's length.
    #[error("signature header malformed")]
    SignatureMalformed,
    /// The signatures are well formed but none matches any configured key.
    #[error("signature does not match any configured secret")]
    SignatureInvalid,
    /// A header that the scheme signs is absent: `webhook-id` or `svix-id`, or a header named
    /// in a generic rule's template.
    #[error("signed header missing")]
    SignedHeaderMissing,
    /// A header that the scheme signs is repeated or not visible ASCII, or a Standard Webhooks
    /// id contains `.`, which would make the signed content ambiguous.
    #[error("signed header malformed")]
    SignedHeaderMalformed,
    /// The scheme signs a timestamp but the request carries none.
    #[error("timestamp missing")]
    TimestampMissing,
    /// The timestamp is repeated, or is not 1 to 19 ASCII digits that fit an `i64`.
    #[error("timestamp malformed")]
    TimestampMalformed,
    /// The signed timestamp is older than the tolerance.
    #[error("timestamp older than tolerance")]
    TimestampExpired,
    /// The signed timestamp is further in the future than the tolerance.
    #[error("timestamp further in the future than tolerance")]
    TimestampInFuture,
}

impl Failure {
    /// Every variant, in declaration order.
    pub const ALL: [Failure; 9] = [
        Failure::SignatureMissing,
        Failure::SignatureMalformed,
        Failure::SignatureInvalid,
        Failure::SignedHeaderMissing,
        Failure::SignedHeaderMalformed,
        Failure::TimestampMissing,
        Failure::TimestampMalformed,
        Failure::TimestampExpired,
        Failure::TimestampInFuture,
    ];

    /// Returns the stable snake_case label used in metrics, logs and JSON reject bodies.
    pub fn as_str(&self) -> &'static str {
        match self {
            Failure::SignatureMissing => "signature_missing",
            Failure::SignatureMalformed => "signature_malformed",
            Failure::SignatureInvalid => "signature_invalid",
            Failure::SignedHeaderMissing => "signed_header_missing",
            Failure::SignedHeaderMalformed => "signed_header_malformed",
            Failure::TimestampMissing => "timestamp_missing",
            Failure::TimestampMalformed => "timestamp_malformed",
            Failure::TimestampExpired => "timestamp_expired",
            Failure::TimestampInFuture => "timestamp_in_future",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn labels_are_distinct_snake_case() {
        let labels: HashSet<&str> = Failure::ALL.iter().map(Failure::as_str).collect();

        assert_eq!(labels.len(), Failure::ALL.len());
        for label in labels {
            assert!(
                label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "label {label} is not snake_case"
            );
        }
    }

    #[test]
    fn messages_are_lower_case() {
        for failure in Failure::ALL {
            let message = failure.to_string();
            assert!(
                message.starts_with(|c: char| c.is_ascii_lowercase()),
                "message {message:?} does not start lower case"
            );
        }
    }
}

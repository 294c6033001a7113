//! MAC keys derived from configured secrets.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Prefix of Standard Webhooks and Svix secrets, followed by the base64 key.
const WHSEC_PREFIX: &[u8] = b"whsec_";

/// Key bytes derived from one configured secret. `Debug` prints `Key(<redacted>)`.
#[derive(Clone)]
pub struct Key {
    bytes: Vec<u8>,
}

/// Reason a configured secret cannot become a key. Messages never contain the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("secret is empty; set the signing secret the provider shows for this endpoint")]
    Empty,
    #[error(
        "secret is not valid base64 after the optional whsec_ prefix; \
         copy the whole secret exactly as the provider shows it"
    )]
    InvalidBase64,
}

impl Key {
    /// Uses the secret's bytes unchanged as the key.
    pub(super) fn from_raw(secret: &[u8]) -> Result<Key, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Key {
            bytes: secret.to_vec(),
        })
    }

    /// Strips an optional `whsec_` prefix and decodes the rest as padded standard base64.
    pub(super) fn from_whsec(secret: &[u8]) -> Result<Key, KeyError> {
        let encoded = secret.strip_prefix(WHSEC_PREFIX).unwrap_or(secret);
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| KeyError::InvalidBase64)?;
        if bytes.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Key { bytes })
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let key = Key::from_raw(b"hunter2");

        assert_eq!(format!("{key:?}"), "Ok(Key(<redacted>))");
    }

    #[test]
    fn raw_keeps_whsec_prefix() {
        let key = Key::from_raw(b"whsec_abc");

        assert_eq!(key.as_ref().map(Key::bytes), Ok(&b"whsec_abc"[..]));
    }

    #[test]
    fn whsec_prefix_is_optional() {
        let prefixed = Key::from_whsec(b"whsec_AAEC");
        let bare = Key::from_whsec(b"AAEC");

        assert_eq!(prefixed.as_ref().map(Key::bytes), Ok(&[0u8, 1, 2][..]));
        assert_eq!(bare.as_ref().map(Key::bytes), Ok(&[0u8, 1, 2][..]));
    }

    #[test]
    fn whsec_rejects_invalid_base64() {
        let result = Key::from_whsec(b"whsec_this-is-not-base64!!");

        assert_eq!(result.map(|_| ()), Err(KeyError::InvalidBase64));
    }

    #[test]
    fn empty_secret_rejected() {
        assert_eq!(Key::from_raw(b"").map(|_| ()), Err(KeyError::Empty));
        assert_eq!(Key::from_whsec(b"whsec_").map(|_| ()), Err(KeyError::Empty));
    }
}

//! Keys derived from configured secrets and public keys.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::pkcs8::DecodePublicKey;

/// Prefix of Standard Webhooks and Svix secrets, followed by the base64 key.
const WHSEC_PREFIX: &[u8] = b"whsec_";

/// Prefix of Standard Webhooks Ed25519 public keys, followed by the base64 key.
const WHPK_PREFIX: &[u8] = b"whpk_";

/// Start of a PEM document, which a P-256 public key may be written as.
const PEM_PREFIX: &[u8] = b"-----BEGIN ";

/// Key material derived from one configured secret or public key. `Debug` prints
/// `Key(<redacted>)`.
#[derive(Clone)]
pub struct Key {
    material: Material,
}

#[derive(Clone)]
enum Material {
    /// Bytes of a shared secret: an HMAC key, or a token that the request carries verbatim.
    Secret(Vec<u8>),
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
    /// No material, for the `none` preset, which checks no signature.
    Unused,
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
    #[error(
        "public key is not 64 hex digits encoding an Ed25519 public key; \
         copy the application's public key exactly as the provider shows it"
    )]
    InvalidEd25519Key,
    #[error(
        "public key is not an ECDSA P-256 public key in base64 DER (SubjectPublicKeyInfo) \
         or PEM; copy the verification key exactly as the provider shows it"
    )]
    InvalidP256Key,
    #[error(
        "public key is not whpk_ followed by base64 of a 32-byte Ed25519 public key; \
         copy the whole key exactly as the provider shows it"
    )]
    InvalidWhpkKey,
    #[error(
        "public key is not PEM, hex or base64 of a key of the rule's algorithm; \
         check the algorithm and copy the key exactly as the provider shows it"
    )]
    InvalidPublicKey,
    #[error(
        "RSA public key is shorter than 2048 bits, which is too weak to trust; \
         ask the sender for a key of 2048 bits or more"
    )]
    RsaKeyTooSmall,
    #[error("this is a whpk_ public key; move the entry from `secrets:` to `public_keys:`")]
    WhpkInSecrets,
    #[error(
        "this is a PEM key, not a shared secret, and an HMAC keyed with a public key can be \
         forged by anyone; use the secret the provider shows for this endpoint"
    )]
    PemInSecrets,
    #[error("this is a whsec_ secret; move the entry from `public_keys:` to `secrets:`")]
    WhsecInPublicKeys,
    #[error(
        "this is a whsk_ private key, which stays with the sender; \
         list its whpk_ public key under `public_keys:` instead"
    )]
    WhskPrivateKey,
    #[error(
        "this provider verifies with a shared secret, not a public key; \
         move the entry from `public_keys:` to `secrets:`"
    )]
    SecretExpected,
    #[error(
        "a `signature:` rule verifies with public keys; \
         move the entry from `secrets:` to `public_keys:`"
    )]
    PublicKeyExpected,
}

impl Key {
    /// Uses the secret's bytes unchanged as the key. A PEM document is rejected, because it
    /// is a public or private key pasted where the shared secret belongs.
    pub(super) fn from_raw(secret: &[u8]) -> Result<Key, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::Empty);
        }
        if secret.trim_ascii_start().starts_with(PEM_PREFIX) {
            return Err(KeyError::PemInSecrets);
        }
        Ok(Key::secret_bytes(secret.to_vec()))
    }

    /// Strips an optional `whsec_` prefix and decodes the rest as padded standard base64.
    pub(super) fn from_whsec(secret: &[u8]) -> Result<Key, KeyError> {
        reject_other_standard_prefix(secret, WHSEC_PREFIX)?;
        let encoded = secret.strip_prefix(WHSEC_PREFIX).unwrap_or(secret);
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| KeyError::InvalidBase64)?;
        if bytes.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Key::secret_bytes(bytes))
    }

    /// Parses an Ed25519 public key written as 64 hex digits of either case, the form Discord
    /// shows. Leading and trailing whitespace is ignored. A small-order (weak) key is
    /// rejected, because strict verification could never accept a signature under it.
    pub(super) fn from_ed25519_hex(text: &[u8]) -> Result<Key, KeyError> {
        let text = text.trim_ascii();
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        let mut bytes = [0u8; ed25519_dalek::PUBLIC_KEY_LENGTH];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| KeyError::InvalidEd25519Key)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| KeyError::InvalidEd25519Key)?;
        if key.is_weak() {
            return Err(KeyError::InvalidEd25519Key);
        }
        Ok(Key {
            material: Material::Ed25519(key),
        })
    }

    /// Parses an ECDSA P-256 public key written as base64 DER SubjectPublicKeyInfo (the form
    /// SendGrid shows) or as a PEM `PUBLIC KEY` document. Leading and trailing whitespace is
    /// ignored.
    pub(super) fn from_p256_spki(text: &[u8]) -> Result<Key, KeyError> {
        let text = text.trim_ascii();
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        let key = if text.starts_with(PEM_PREFIX) {
            let pem = std::str::from_utf8(text).map_err(|_| KeyError::InvalidP256Key)?;
            p256::ecdsa::VerifyingKey::from_public_key_pem(pem)
        } else {
            let der = STANDARD
                .decode(text)
                .map_err(|_| KeyError::InvalidP256Key)?;
            p256::ecdsa::VerifyingKey::from_public_key_der(&der)
        };
        let key = key.map_err(|_| KeyError::InvalidP256Key)?;
        Ok(Key {
            material: Material::P256(key),
        })
    }

    /// Parses a Standard Webhooks Ed25519 public key: `whpk_` followed by padded standard
    /// base64 of the 32 key bytes. The prefix may be left out. Leading and trailing
    /// whitespace is ignored, and a small-order (weak) key is rejected.
    pub(super) fn from_whpk(text: &[u8]) -> Result<Key, KeyError> {
        let text = text.trim_ascii();
        reject_other_standard_prefix(text, WHPK_PREFIX)?;
        let encoded = text.strip_prefix(WHPK_PREFIX).unwrap_or(text);
        if encoded.is_empty() {
            return Err(KeyError::Empty);
        }
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| KeyError::InvalidWhpkKey)?;
        let bytes: [u8; ed25519_dalek::PUBLIC_KEY_LENGTH] =
            bytes.try_into().map_err(|_| KeyError::InvalidWhpkKey)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| KeyError::InvalidWhpkKey)?;
        if key.is_weak() {
            return Err(KeyError::InvalidWhpkKey);
        }
        Ok(Key::from_ed25519(key))
    }

    pub(super) fn from_ed25519(key: ed25519_dalek::VerifyingKey) -> Key {
        Key {
            material: Material::Ed25519(key),
        }
    }

    pub(super) fn from_p256(key: p256::ecdsa::VerifyingKey) -> Key {
        Key {
            material: Material::P256(key),
        }
    }

    pub(super) fn from_rsa(key: rsa::RsaPublicKey) -> Key {
        Key {
            material: Material::Rsa(key),
        }
    }

    /// Accepts any secret, even an empty one, and keeps none of it.
    pub(super) fn unused() -> Key {
        Key {
            material: Material::Unused,
        }
    }

    fn secret_bytes(bytes: Vec<u8>) -> Key {
        Key {
            material: Material::Secret(bytes),
        }
    }

    /// Returns the shared secret, or `None` for a public key or the `none` preset's key.
    pub(super) fn secret(&self) -> Option<&[u8]> {
        match &self.material {
            Material::Secret(bytes) => Some(bytes),
            _ => None,
        }
    }

    pub(super) fn ed25519(&self) -> Option<&ed25519_dalek::VerifyingKey> {
        match &self.material {
            Material::Ed25519(key) => Some(key),
            _ => None,
        }
    }

    pub(super) fn p256(&self) -> Option<&p256::ecdsa::VerifyingKey> {
        match &self.material {
            Material::P256(key) => Some(key),
            _ => None,
        }
    }

    pub(super) fn rsa(&self) -> Option<&rsa::RsaPublicKey> {
        match &self.material {
            Material::Rsa(key) => Some(key),
            _ => None,
        }
    }
}

/// Rejects a Standard Webhooks key whose prefix names another kind of key than `expected`,
/// with an error that names the list it belongs in.
fn reject_other_standard_prefix(text: &[u8], expected: &[u8]) -> Result<(), KeyError> {
    let kinds = [
        (WHSEC_PREFIX, KeyError::WhsecInPublicKeys),
        (WHPK_PREFIX, KeyError::WhpkInSecrets),
        (b"whsk_".as_slice(), KeyError::WhskPrivateKey),
    ];
    for (prefix, error) in kinds {
        if prefix != expected && text.starts_with(prefix) {
            return Err(error);
        }
    }
    Ok(())
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SendGrid's published test verification key, base64 DER SubjectPublicKeyInfo.
    const SENDGRID_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";

    /// An Ed25519 public key (the Discord vectors' test key).
    const ED25519_KEY: &str = "21e5924f73f48a4cef37011ed7bd42b67be8b09262d1a01b61dee7b132e78599";

    #[test]
    fn debug_is_redacted() {
        let key = Key::from_raw(b"hunter2");

        assert_eq!(format!("{key:?}"), "Ok(Key(<redacted>))");
    }

    #[test]
    fn public_key_debug_is_redacted() {
        let ed25519 = Key::from_ed25519_hex(ED25519_KEY.as_bytes());
        let p256 = Key::from_p256_spki(SENDGRID_KEY.as_bytes());

        assert_eq!(format!("{ed25519:?}"), "Ok(Key(<redacted>))");
        assert_eq!(format!("{p256:?}"), "Ok(Key(<redacted>))");
        assert_eq!(format!("{:?}", Key::unused()), "Key(<redacted>)");
    }

    #[test]
    fn raw_keeps_whsec_prefix() {
        let key = Key::from_raw(b"whsec_abc");

        assert_eq!(key.as_ref().map(Key::secret), Ok(Some(&b"whsec_abc"[..])));
    }

    #[test]
    fn whsec_prefix_is_optional() {
        let prefixed = Key::from_whsec(b"whsec_AAEC");
        let bare = Key::from_whsec(b"AAEC");

        assert_eq!(
            prefixed.as_ref().map(Key::secret),
            Ok(Some(&[0u8, 1, 2][..]))
        );
        assert_eq!(bare.as_ref().map(Key::secret), Ok(Some(&[0u8, 1, 2][..])));
    }

    #[test]
    fn whsec_rejects_invalid_base64() {
        let result = Key::from_whsec(b"whsec_this-is-not-base64!!");

        assert_eq!(result.map(|_| ()), Err(KeyError::InvalidBase64));
    }

    #[test]
    fn raw_rejects_pem_key() {
        let pem =
            format!("\n-----BEGIN PUBLIC KEY-----\n{SENDGRID_KEY}\n-----END PUBLIC KEY-----\n");

        assert_eq!(
            Key::from_raw(pem.as_bytes()).map(|_| ()),
            Err(KeyError::PemInSecrets)
        );
    }

    #[test]
    fn standard_key_in_wrong_list_says_where() {
        let whpk = format!("whpk_{}", STANDARD.encode([7u8; 32]));
        let whsk = format!("whsk_{}", STANDARD.encode([7u8; 32]));

        assert_eq!(
            Key::from_whsec(whpk.as_bytes()).map(|_| ()),
            Err(KeyError::WhpkInSecrets)
        );
        assert_eq!(
            Key::from_whpk(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").map(|_| ()),
            Err(KeyError::WhsecInPublicKeys)
        );
        assert_eq!(
            Key::from_whsec(whsk.as_bytes()).map(|_| ()),
            Err(KeyError::WhskPrivateKey)
        );
        assert_eq!(
            Key::from_whpk(whsk.as_bytes()).map(|_| ()),
            Err(KeyError::WhskPrivateKey)
        );
    }

    #[test]
    fn whsec_rejects_whpk_public_key() {
        let result = Key::from_whsec(b"whpk_AAEC");

        assert_eq!(result.map(|_| ()), Err(KeyError::WhpkInSecrets));
    }

    #[test]
    fn empty_secret_rejected() {
        assert_eq!(Key::from_raw(b"").map(|_| ()), Err(KeyError::Empty));
        assert_eq!(Key::from_whsec(b"whsec_").map(|_| ()), Err(KeyError::Empty));
        assert_eq!(
            Key::from_ed25519_hex(b" ").map(|_| ()),
            Err(KeyError::Empty)
        );
        assert_eq!(Key::from_p256_spki(b"\n").map(|_| ()), Err(KeyError::Empty));
    }

    #[test]
    fn ed25519_accepts_either_case_and_whitespace() {
        let upper = ED25519_KEY.to_ascii_uppercase();
        let padded = format!("  {ED25519_KEY}\n");

        assert!(Key::from_ed25519_hex(upper.as_bytes()).is_ok());
        assert!(Key::from_ed25519_hex(padded.as_bytes()).is_ok());
    }

    #[test]
    fn ed25519_rejects_bad_text() {
        let short = &ED25519_KEY[..62];
        let long = format!("{ED25519_KEY}00");
        let not_hex = ED25519_KEY.replace('e', "g");
        // The identity point, which has small order.
        let weak = format!("01{}", "00".repeat(31));

        for text in [short, &long, &not_hex, &weak, SENDGRID_KEY] {
            assert_eq!(
                Key::from_ed25519_hex(text.as_bytes()).map(|_| ()),
                Err(KeyError::InvalidEd25519Key),
                "{text}"
            );
        }
    }

    #[test]
    fn p256_accepts_der_and_pem() {
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            &SENDGRID_KEY[..64],
            &SENDGRID_KEY[64..]
        );

        let der = Key::from_p256_spki(SENDGRID_KEY.as_bytes());
        let from_pem = Key::from_p256_spki(pem.as_bytes());

        assert!(der.as_ref().is_ok_and(|key| key.p256().is_some()));
        assert_eq!(
            from_pem.ok().and_then(|key| key.p256().copied()),
            der.ok().and_then(|key| key.p256().copied())
        );
    }

    #[test]
    fn p256_rejects_bad_text() {
        let truncated = &SENDGRID_KEY[..SENDGRID_KEY.len() - 8];
        let pem_garbage = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----";

        for text in [truncated, pem_garbage, ED25519_KEY, "not base64!"] {
            assert_eq!(
                Key::from_p256_spki(text.as_bytes()).map(|_| ()),
                Err(KeyError::InvalidP256Key),
                "{text}"
            );
        }
    }

    #[test]
    fn material_kinds_do_not_mix() -> Result<(), KeyError> {
        let secret = Key::from_raw(b"s")?;
        let ed25519 = Key::from_ed25519_hex(ED25519_KEY.as_bytes())?;

        assert!(secret.ed25519().is_none());
        assert!(secret.p256().is_none());
        assert!(ed25519.secret().is_none());
        assert!(Key::unused().secret().is_none());
        Ok(())
    }
}

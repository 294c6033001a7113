//! Keys written as text: a PEM document, or the key's bytes in hex or base64. Used by the
//! generic `signature:` rule for public keys and by `hookgate sign` for private keys.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;

/// Start of a PEM document.
const PEM_PREFIX: &str = "-----BEGIN ";

/// Key text after the outer encoding is removed.
pub(super) enum KeyText<'a> {
    /// A PEM document, kept whole for the parsers of the RustCrypto crates.
    Pem(&'a str),
    /// Bytes decoded from hex or base64: raw key bytes or DER, depending on the key.
    Bytes(Vec<u8>),
}

impl KeyText<'_> {
    /// Returns whether a PEM document has this label, such as `RSA PUBLIC KEY`.
    pub(super) fn is_pem_labelled(&self, label: &str) -> bool {
        matches!(self, KeyText::Pem(pem) if pem.starts_with(&format!("{PEM_PREFIX}{label}-----")))
    }
}

/// Reads key text, ignoring leading and trailing whitespace.
///
/// Text that starts like PEM is PEM. Text of an even number of hex digits is hex, and any
/// other text is base64 in the standard or URL-safe alphabet, with or without padding.
/// Returns `None` when the text is empty or none of these.
pub(super) fn read(text: &[u8]) -> Option<KeyText<'_>> {
    let text = std::str::from_utf8(text).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    if text.starts_with(PEM_PREFIX) {
        return Some(KeyText::Pem(text));
    }
    if text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex::decode(text).ok().map(KeyText::Bytes);
    }
    decode_base64(text).map(KeyText::Bytes)
}

/// Decodes base64 in either alphabet, padded or not.
pub(super) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pem_hex_and_base64() {
        let pem = "\n-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";

        assert!(matches!(read(pem.as_bytes()), Some(KeyText::Pem(_))));
        assert!(matches!(read(b"00ff"), Some(KeyText::Bytes(bytes)) if bytes == [0, 255]));
        assert!(matches!(read(b"AP8="), Some(KeyText::Bytes(bytes)) if bytes == [0, 255]));
        assert!(matches!(read(b"_-8"), Some(KeyText::Bytes(bytes)) if bytes == [255, 239]));
    }

    #[test]
    fn rejects_empty_and_garbage() {
        assert!(read(b"  \n").is_none());
        assert!(read(b"not a key!").is_none());
        assert!(read(b"\xff\xfe").is_none());
    }

    #[test]
    fn pem_label_is_checked() {
        let pem = "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----";
        let Some(text) = read(pem.as_bytes()) else {
            panic!("PEM not read");
        };

        assert!(text.is_pem_labelled("RSA PUBLIC KEY"));
        assert!(!text.is_pem_labelled("PUBLIC KEY"));
    }
}

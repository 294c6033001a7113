//! Text encodings of signatures in headers.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{Algorithm, Failure};

/// Text encoding of a signature in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Lower-case hexadecimal, also for generic rules. GitHub, Stripe and Slack send lower
    /// case, and the official GitHub and Stripe libraries reject upper-case digits.
    Hex,
    /// Standard base64 alphabet with `=` padding (RFC 4648, section 4).
    Base64,
}

impl Encoding {
    /// Encodes a computed MAC the way this encoding writes it, for signing.
    pub(super) fn encode(self, mac: &[u8]) -> String {
        match self {
            Encoding::Hex => hex::encode(mac),
            Encoding::Base64 => STANDARD.encode(mac),
        }
    }

    /// Decodes one signature, which must be exactly one MAC of `algorithm`.
    ///
    /// Fails with [`Failure::SignatureMalformed`] on any other character, padding or length,
    /// including a wrong length that would otherwise decode.
    pub(super) fn decode(self, text: &str, algorithm: Algorithm) -> Result<Vec<u8>, Failure> {
        let mac_len = algorithm.output_len();
        let bytes = match self {
            Encoding::Hex => {
                let lower_hex = text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                if text.len() != 2 * mac_len || !lower_hex {
                    return Err(Failure::SignatureMalformed);
                }
                let mut bytes = vec![0; mac_len];
                hex::decode_to_slice(text, &mut bytes).map_err(|_| Failure::SignatureMalformed)?;
                bytes
            }
            Encoding::Base64 => {
                // Checking the length first keeps an oversized header from being decoded.
                if text.len() != mac_len.div_ceil(3) * 4 {
                    return Err(Failure::SignatureMalformed);
                }
                STANDARD
                    .decode(text)
                    .map_err(|_| Failure::SignatureMalformed)?
            }
        };
        if bytes.len() != mac_len {
            return Err(Failure::SignatureMalformed);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1_HEX: &str = "8835a3ef9e0452a6ceb4aa162500e21fb5d271ee";

    #[test]
    fn hex_decodes_lower_case() {
        let bytes = Encoding::Hex.decode(SHA1_HEX, Algorithm::Sha1);

        assert_eq!(bytes.map(|b| b.len()), Ok(20));
    }

    #[test]
    fn hex_rejects_upper_case() {
        let upper = SHA1_HEX.to_ascii_uppercase();

        assert_eq!(
            Encoding::Hex.decode(&upper, Algorithm::Sha1),
            Err(Failure::SignatureMalformed)
        );
    }

    #[test]
    fn hex_wrong_length_is_malformed() {
        let short = &SHA1_HEX[..38];
        let odd = &SHA1_HEX[..39];
        let sha256_len = SHA1_HEX.repeat(2);

        assert_eq!(
            Encoding::Hex.decode(short, Algorithm::Sha1),
            Err(Failure::SignatureMalformed)
        );
        assert_eq!(
            Encoding::Hex.decode(odd, Algorithm::Sha1),
            Err(Failure::SignatureMalformed)
        );
        assert_eq!(
            Encoding::Hex.decode(&sha256_len, Algorithm::Sha1),
            Err(Failure::SignatureMalformed)
        );
    }

    #[test]
    fn base64_decodes_padded() {
        let text = STANDARD.encode([7u8; 32]);

        assert_eq!(
            Encoding::Base64.decode(&text, Algorithm::Sha256),
            Ok(vec![7u8; 32])
        );
    }

    #[test]
    fn base64_rejects_unpadded_and_url_safe() {
        let padded = STANDARD.encode([0xfbu8; 32]);
        let unpadded = padded.trim_end_matches('=');
        let url_safe = padded.replace('+', "-").replace('/', "_");

        assert_eq!(
            Encoding::Base64.decode(unpadded, Algorithm::Sha256),
            Err(Failure::SignatureMalformed)
        );
        assert_eq!(
            Encoding::Base64.decode(&url_safe, Algorithm::Sha256),
            Err(Failure::SignatureMalformed)
        );
    }

    #[test]
    fn base64_wrong_length_is_malformed() {
        let sha1_mac = STANDARD.encode([1u8; 20]);

        assert_eq!(
            Encoding::Base64.decode(&sha1_mac, Algorithm::Sha256),
            Err(Failure::SignatureMalformed)
        );
    }
}

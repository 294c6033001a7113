//! Private keys for `hookgate sign` and `hookgate send`, which sign the way a public-key
//! provider would, so that a route configured with the matching public key can be tested
//! without the provider. The gateway itself never loads a private key.

use std::fmt;

use ed25519_dalek::Signer;
use p256::ecdsa::signature::{DigestSigner, RandomizedDigestSigner};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256};

use super::key_text::{self, KeyText};
use super::KeyAlgorithm;

/// A private signing key. `Debug` prints `PrivateKey(<redacted>)`.
pub struct PrivateKey(Material);

enum Material {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    Rsa(rsa::RsaPrivateKey),
}

impl PrivateKey {
    /// Parses a private key. PEM documents may be PKCS#8 `PRIVATE KEY` (Ed25519, P-256 or
    /// RSA) or PKCS#1 `RSA PRIVATE KEY`. Other text is an Ed25519 key: hex or base64 of its
    /// 32-byte seed, or of the 64-byte seed and public key, with an optional `whsk_` prefix
    /// (the Standard Webhooks form). Errors never contain key material.
    pub fn parse(text: &[u8]) -> Result<PrivateKey, String> {
        let text = text.trim_ascii();
        let text = text.strip_prefix(b"whsk_").unwrap_or(text);
        let invalid = || {
            "the private key is not a PKCS#8 or PKCS#1 PEM document, nor hex or base64 of an \
             Ed25519 seed; export it with `openssl pkcs8 -topk8 -nocrypt`"
                .to_string()
        };
        let material = match key_text::read(text).ok_or_else(invalid)? {
            KeyText::Pem(pem) if pem.contains("RSA PRIVATE KEY") => {
                Material::Rsa(rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|_| invalid())?)
            }
            KeyText::Pem(pem) => parse_pkcs8(pem).ok_or_else(invalid)?,
            KeyText::Bytes(bytes) => {
                let seed: [u8; 32] = bytes
                    .get(..32)
                    .filter(|_| bytes.len() == 32 || bytes.len() == 64)
                    .and_then(|seed| seed.try_into().ok())
                    .ok_or_else(invalid)?;
                Material::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
        };
        Ok(PrivateKey(material))
    }

    /// Signs the concatenated `message` with `algorithm`. Ed25519 signatures are 64 bytes,
    /// ECDSA signatures DER, and RSA signatures as long as the modulus.
    pub(super) fn sign(
        &self,
        algorithm: KeyAlgorithm,
        message: &[&[u8]],
    ) -> Result<Vec<u8>, String> {
        let mut digest = Sha256::new();
        for part in message {
            digest.update(part);
        }
        let signature = match (&self.0, algorithm) {
            (Material::Ed25519(key), KeyAlgorithm::Ed25519) => {
                key.sign(&message.concat()).to_bytes().to_vec()
            }
            (Material::P256(key), KeyAlgorithm::EcdsaP256Sha256) => {
                let signature: p256::ecdsa::Signature = key.sign_digest(digest);
                signature.to_der().as_bytes().to_vec()
            }
            (Material::Rsa(key), KeyAlgorithm::RsaPkcs1v15Sha256) => {
                let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
                let signature: rsa::pkcs1v15::Signature = signer.sign_digest(digest);
                Box::<[u8]>::from(signature).to_vec()
            }
            (Material::Rsa(key), KeyAlgorithm::RsaPssSha256) => {
                let signer = rsa::pss::SigningKey::<Sha256>::new(key.clone());
                let signature: rsa::pss::Signature =
                    signer.sign_digest_with_rng(&mut rand_core::OsRng, digest);
                Box::<[u8]>::from(signature).to_vec()
            }
            _ => return Err(format!("the private key is not a {} key", algorithm.name())),
        };
        Ok(signature)
    }
}

fn parse_pkcs8(pem: &str) -> Option<Material> {
    if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        return Some(Material::Ed25519(key));
    }
    if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
        return Some(Material::P256(key));
    }
    rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .ok()
        .map(Material::Rsa)
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_seed_as_hex_and_whsk_base64() -> Result<(), String> {
        let hex_key = PrivateKey::parse("07".repeat(32).as_bytes())?;
        let whsk = format!(
            "whsk_{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32])
        );
        let base64_key = PrivateKey::parse(whsk.as_bytes())?;

        let first = hex_key.sign(KeyAlgorithm::Ed25519, &[b"m"])?;
        let second = base64_key.sign(KeyAlgorithm::Ed25519, &[b"m"])?;

        assert_eq!(first, second);
        assert_eq!(first.len(), 64);
        Ok(())
    }

    #[test]
    fn wrong_algorithm_is_an_error() -> Result<(), String> {
        let key = PrivateKey::parse("07".repeat(32).as_bytes())?;

        let result = key.sign(KeyAlgorithm::RsaPssSha256, &[b"m"]);

        assert_eq!(
            result,
            Err("the private key is not a rsa-pss-sha256 key".to_string())
        );
        Ok(())
    }

    #[test]
    fn garbage_is_rejected_without_echo() {
        let error = PrivateKey::parse(b"secret-looking text!")
            .err()
            .unwrap_or_default();

        assert!(error.starts_with("the private key is not"), "{error}");
        assert!(!error.contains("secret-looking"), "{error}");
    }

    #[test]
    fn debug_is_redacted() -> Result<(), String> {
        let key = PrivateKey::parse("07".repeat(32).as_bytes())?;

        assert_eq!(format!("{key:?}"), "PrivateKey(<redacted>)");
        Ok(())
    }
}

//! The generic public-key scheme: a signature over a configured template, verified with the
//! route's `public_keys:`. Ed25519, ECDSA P-256 with SHA-256, and RSA with SHA-256 in PKCS#1
//! v1.5 or PSS padding, all through the RustCrypto crates.
//!
//! Ed25519 uses `verify_strict`, which rejects non-canonical and small-order signatures.
//! ECDSA signatures may be DER or the fixed 64-byte `r ‖ s` form, and both `s` and `n - s`
//! verify, as in the `p256` crate.
//!
//! NOTE: PSS expects a 32-byte salt, as long as the SHA-256 digest. A signer that uses
//! another salt length fails verification; a `salt_length` setting would remove this.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http::HeaderName;
use p256::ecdsa::signature::DigestVerifier;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use super::headers::{self, Role};
use super::hmac_rule::{check_template, header_name};
use super::key_text::{self, KeyText};
use super::sign::Message;
use super::template::{self, Part};
use super::{timestamp, Failure, Key, KeyError, PrivateKey, Request, Verified};

/// Smallest RSA modulus accepted, in bits. Shorter keys are too weak to trust.
const MIN_RSA_BITS: usize = 2048;

/// Maximum signature text length in characters: hex of a 4096-bit RSA signature, the largest
/// key the `rsa` crate loads, with room for a prefix. Longer text is malformed before it is
/// decoded.
const MAX_SIGNATURE_TEXT: usize = 1500;

/// Signature algorithm of a generic `signature:` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Ed25519,
    EcdsaP256Sha256,
    RsaPkcs1v15Sha256,
    RsaPssSha256,
}

impl KeyAlgorithm {
    /// Every configuration name, in the order error messages list them.
    pub const NAMES: &'static [&'static str] = &[
        "ed25519",
        "ecdsa-p256-sha256",
        "rsa-pkcs1v15-sha256",
        "rsa-pss-sha256",
    ];

    /// Returns the algorithm with this configuration name.
    pub fn from_name(name: &str) -> Option<KeyAlgorithm> {
        match name {
            "ed25519" => Some(KeyAlgorithm::Ed25519),
            "ecdsa-p256-sha256" => Some(KeyAlgorithm::EcdsaP256Sha256),
            "rsa-pkcs1v15-sha256" => Some(KeyAlgorithm::RsaPkcs1v15Sha256),
            "rsa-pss-sha256" => Some(KeyAlgorithm::RsaPssSha256),
            _ => None,
        }
    }

    /// Returns the configuration name.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            KeyAlgorithm::RsaPkcs1v15Sha256 => "rsa-pkcs1v15-sha256",
            KeyAlgorithm::RsaPssSha256 => "rsa-pss-sha256",
        }
    }
}

/// Text encoding of a public-key signature in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    /// Hexadecimal digits of either case.
    Hex,
    /// Standard base64 with `=` padding.
    Base64,
    /// URL-safe base64 (RFC 4648, section 5), with or without padding.
    Base64Url,
}

impl SignatureEncoding {
    fn decode(self, text: &str) -> Result<Vec<u8>, Failure> {
        if text.is_empty() || text.len() > MAX_SIGNATURE_TEXT {
            return Err(Failure::SignatureMalformed);
        }
        let decoded = match self {
            SignatureEncoding::Hex => hex::decode(text).ok(),
            SignatureEncoding::Base64 => STANDARD.decode(text).ok(),
            SignatureEncoding::Base64Url => URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok(),
        };
        decoded.ok_or(Failure::SignatureMalformed)
    }

    fn encode(self, signature: &[u8]) -> String {
        match self {
            SignatureEncoding::Hex => hex::encode(signature),
            SignatureEncoding::Base64 => STANDARD.encode(signature),
            SignatureEncoding::Base64Url => URL_SAFE_NO_PAD.encode(signature),
        }
    }
}

/// A public-key signing scheme described by configuration.
#[derive(Debug, Clone)]
pub struct SignatureRule {
    algorithm: KeyAlgorithm,
    header: HeaderName,
    prefix: String,
    encoding: SignatureEncoding,
    template: Vec<Part>,
    timestamp_header: Option<HeaderName>,
    id_header: Option<HeaderName>,
}

impl SignatureRule {
    /// Builds a rule, or returns a message naming the invalid value and the fix. The
    /// template and header settings follow the same rules as [`super::HmacRule::new`].
    pub fn new(
        algorithm: KeyAlgorithm,
        header: &str,
        prefix: Option<&str>,
        encoding: SignatureEncoding,
        signed: &str,
        timestamp_header: Option<&str>,
        id_header: Option<&str>,
    ) -> Result<SignatureRule, String> {
        let header = header_name(header, "signature header")?;
        let timestamp_header = timestamp_header
            .map(|name| header_name(name, "timestamp header"))
            .transpose()?;
        let id_header = id_header
            .map(|name| header_name(name, "id header"))
            .transpose()?;
        let template = template::parse(signed)?;
        check_template(&template, timestamp_header.as_ref(), id_header.as_ref())?;
        Ok(SignatureRule {
            algorithm,
            header,
            prefix: prefix.unwrap_or_default().to_owned(),
            encoding,
            template,
            timestamp_header,
            id_header,
        })
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    pub(super) fn signature_header(&self) -> &HeaderName {
        &self.header
    }

    pub(super) fn id_header(&self) -> Option<&HeaderName> {
        self.id_header.as_ref()
    }

    pub(super) fn uses_timestamp(&self) -> bool {
        self.timestamp_header.is_some()
    }

    pub(super) fn signs_url(&self) -> bool {
        self.template.contains(&Part::Url)
    }

    /// Parses a public key of the rule's algorithm. PEM may be SubjectPublicKeyInfo, or PKCS#1
    /// `RSA PUBLIC KEY`. Hex or base64 text encodes the key's bytes: the 32 raw bytes or DER for
    /// Ed25519, a SEC1 point or DER for P-256, and DER (SubjectPublicKeyInfo or PKCS#1) for
    /// RSA.
    pub fn parse_key(&self, text: &[u8]) -> Result<Key, KeyError> {
        let Some(text) = key_text::read(text) else {
            return Err(if text.trim_ascii().is_empty() {
                KeyError::Empty
            } else {
                KeyError::InvalidPublicKey
            });
        };
        let key = match self.algorithm {
            KeyAlgorithm::Ed25519 => parse_ed25519(&text).map(Key::from_ed25519),
            KeyAlgorithm::EcdsaP256Sha256 => parse_p256(&text).map(Key::from_p256),
            KeyAlgorithm::RsaPkcs1v15Sha256 | KeyAlgorithm::RsaPssSha256 => {
                let Some(key) = parse_rsa(&text) else {
                    return Err(KeyError::InvalidPublicKey);
                };
                if key.size() * 8 < MIN_RSA_BITS {
                    return Err(KeyError::RsaKeyTooSmall);
                }
                Some(Key::from_rsa(key))
            }
        };
        key.ok_or(KeyError::InvalidPublicKey)
    }

    pub(super) fn verify(
        &self,
        request: &Request<'_>,
        keys: &[Key],
        now: i64,
        tolerance: Duration,
    ) -> Result<Verified, Failure> {
        let value = headers::required(request.headers, &self.header, Role::Signature)?;
        let encoded = value
            .strip_prefix(self.prefix.as_str())
            .ok_or(Failure::SignatureMalformed)?;
        let signature = self.encoding.decode(encoded)?;
        let timestamp_text = match &self.timestamp_header {
            Some(name) => Some(headers::required(request.headers, name, Role::Timestamp)?),
            None => None,
        };
        let signed_at = timestamp_text
            .map(|text| template::parse_timestamp(&self.template, text))
            .transpose()?;

        let message = template::collect(
            &self.template,
            request,
            timestamp_text,
            self.id_header.as_ref(),
        )?;
        let key_index = find_key(self.algorithm, keys, &message, &signature)?
            .ok_or(Failure::SignatureInvalid)?;
        if let Some(signed_at) = signed_at {
            timestamp::check_window(signed_at, now, tolerance)?;
        }
        Ok(Verified {
            key_index,
            timestamp: signed_at,
        })
    }

    /// Returns the headers that carry a valid signature of `message` under `private_key`,
    /// which must be a key of the rule's algorithm.
    pub(super) fn sign(
        &self,
        private_key: &PrivateKey,
        message: &Message<'_>,
    ) -> Result<Vec<(String, String)>, String> {
        let timestamp = message.timestamp.to_string();
        let mut headers = http::HeaderMap::new();
        let mut signed_headers = Vec::new();

        for (name, value) in [
            (&self.timestamp_header, timestamp.as_str()),
            (&self.id_header, message.id),
        ] {
            if let Some(name) = name {
                let value = http::HeaderValue::from_str(value).map_err(|e| e.to_string())?;
                headers.insert(name.clone(), value);
                signed_headers.push((name.to_string(), value_of(&headers, name)));
            }
        }
        let request = Request {
            method: message.method,
            url: message.url,
            headers: &headers,
            body: message.body,
        };
        let timestamp_text = self.timestamp_header.as_ref().map(|_| timestamp.as_str());
        let parts = template::collect(
            &self.template,
            &request,
            timestamp_text,
            self.id_header.as_ref(),
        )
        .map_err(|_| {
            "the template signs a {header:NAME} that hookgate sign cannot fill in".to_string()
        })?;

        let signature = private_key.sign(self.algorithm, &parts)?;
        let value = format!("{}{}", self.prefix, self.encoding.encode(&signature));
        signed_headers.push((self.header.to_string(), value));
        Ok(signed_headers)
    }
}

fn value_of(headers: &http::HeaderMap, name: &HeaderName) -> String {
    super::hmac_rule::value_text(headers, name)
}

/// Returns the index of the first key that verifies `signature` over the concatenated
/// `message`, or fails when the signature cannot be read for the algorithm.
fn find_key(
    algorithm: KeyAlgorithm,
    keys: &[Key],
    message: &[&[u8]],
    signature: &[u8],
) -> Result<Option<usize>, Failure> {
    let digest = || {
        let mut digest = Sha256::new();
        for part in message {
            digest.update(part);
        }
        digest
    };
    let found = match algorithm {
        KeyAlgorithm::Ed25519 => {
            let bytes: [u8; ed25519_dalek::SIGNATURE_LENGTH] = signature
                .try_into()
                .map_err(|_| Failure::SignatureMalformed)?;
            let signature = ed25519_dalek::Signature::from_bytes(&bytes);
            // Ed25519 hashes the whole message twice, so it needs one contiguous copy.
            let joined = message.concat();
            keys.iter().position(|key| {
                key.ed25519()
                    .is_some_and(|key| key.verify_strict(&joined, &signature).is_ok())
            })
        }
        KeyAlgorithm::EcdsaP256Sha256 => {
            let signature = match signature.len() {
                64 => p256::ecdsa::Signature::from_slice(signature),
                _ => p256::ecdsa::Signature::from_der(signature),
            }
            .map_err(|_| Failure::SignatureMalformed)?;
            keys.iter().position(|key| {
                key.p256()
                    .is_some_and(|key| key.verify_digest(digest(), &signature).is_ok())
            })
        }
        KeyAlgorithm::RsaPkcs1v15Sha256 => {
            let signature = rsa::pkcs1v15::Signature::try_from(signature)
                .map_err(|_| Failure::SignatureMalformed)?;
            keys.iter().position(|key| {
                key.rsa().is_some_and(|key| {
                    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone())
                        .verify_digest(digest(), &signature)
                        .is_ok()
                })
            })
        }
        KeyAlgorithm::RsaPssSha256 => {
            let signature = rsa::pss::Signature::try_from(signature)
                .map_err(|_| Failure::SignatureMalformed)?;
            keys.iter().position(|key| {
                key.rsa().is_some_and(|key| {
                    rsa::pss::VerifyingKey::<Sha256>::new(key.clone())
                        .verify_digest(digest(), &signature)
                        .is_ok()
                })
            })
        }
    };
    Ok(found)
}

fn parse_ed25519(text: &KeyText<'_>) -> Option<ed25519_dalek::VerifyingKey> {
    let key = match text {
        KeyText::Pem(pem) => ed25519_dalek::VerifyingKey::from_public_key_pem(pem).ok()?,
        KeyText::Bytes(bytes) => match <[u8; 32]>::try_from(bytes.as_slice()) {
            Ok(raw) => ed25519_dalek::VerifyingKey::from_bytes(&raw).ok()?,
            Err(_) => ed25519_dalek::VerifyingKey::from_public_key_der(bytes).ok()?,
        },
    };
    // A small-order key could never verify a strictly checked signature.
    (!key.is_weak()).then_some(key)
}

fn parse_p256(text: &KeyText<'_>) -> Option<p256::ecdsa::VerifyingKey> {
    match text {
        KeyText::Pem(pem) => p256::ecdsa::VerifyingKey::from_public_key_pem(pem).ok(),
        KeyText::Bytes(bytes) => p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
            .or_else(|_| p256::ecdsa::VerifyingKey::from_public_key_der(bytes))
            .ok(),
    }
}

fn parse_rsa(text: &KeyText<'_>) -> Option<rsa::RsaPublicKey> {
    match text {
        KeyText::Pem(pem) if text.is_pem_labelled("RSA PUBLIC KEY") => {
            rsa::RsaPublicKey::from_pkcs1_pem(pem).ok()
        }
        KeyText::Pem(pem) => rsa::RsaPublicKey::from_public_key_pem(pem).ok(),
        KeyText::Bytes(bytes) => rsa::RsaPublicKey::from_public_key_der(bytes)
            .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(bytes))
            .ok(),
    }
}

#[cfg(test)]
mod tests;

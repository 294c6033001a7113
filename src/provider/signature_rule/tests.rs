//! The generic `signature:` rule with each algorithm: signed by `PrivateKey`, verified with
//! the public key in each accepted text form, and rejected after any change.

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

use super::*;
use crate::provider::sign::Message;
use crate::provider::test_support::{header_map, request};
use crate::provider::Scheme;

const T: i64 = 1_700_000_000;
const TOLERANCE: Duration = Duration::from_secs(300);
const BODY: &[u8] = br#"{"event":"signed"}"#;
/// A fixed Ed25519 seed (RFC 8032, test 1), so the key is the same on every run.
const ED25519_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

/// Returns the RSA key that every test shares, because generating one is slow.
fn rsa_key() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(
        || match rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048) {
            Ok(key) => key,
            Err(error) => panic!("RSA key generation failed: {error}"),
        },
    )
}

fn p256_key() -> p256::ecdsa::SigningKey {
    match p256::ecdsa::SigningKey::from_slice(&[7u8; 32]) {
        Ok(key) => key,
        Err(error) => panic!("P-256 test key rejected: {error}"),
    }
}

fn ed25519_key() -> ed25519_dalek::SigningKey {
    let mut seed = [0u8; 32];
    if hex::decode_to_slice(ED25519_SEED, &mut seed).is_err() {
        panic!("test seed is not hex");
    }
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

/// Returns the private key as PEM and the public key in every text form the rule accepts.
fn keys_for(algorithm: KeyAlgorithm) -> (String, Vec<String>) {
    let result = match algorithm {
        KeyAlgorithm::Ed25519 => {
            let key = ed25519_key();
            let public = key.verifying_key();
            (
                key.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()),
                vec![
                    public.to_public_key_pem(LineEnding::LF).unwrap_or_default(),
                    hex::encode(public.to_bytes()),
                    STANDARD.encode(public.to_bytes()),
                ],
            )
        }
        KeyAlgorithm::EcdsaP256Sha256 => {
            let key = p256_key();
            let public = key.verifying_key();
            let der = public
                .to_public_key_der()
                .map(|d| d.to_vec())
                .unwrap_or_default();
            (
                key.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()),
                vec![
                    public.to_public_key_pem(LineEnding::LF).unwrap_or_default(),
                    STANDARD.encode(&der),
                    hex::encode(public.to_encoded_point(false).as_bytes()),
                ],
            )
        }
        KeyAlgorithm::RsaPkcs1v15Sha256 | KeyAlgorithm::RsaPssSha256 => {
            let key = rsa_key();
            let public = key.to_public_key();
            let der = public
                .to_public_key_der()
                .map(|d| d.to_vec())
                .unwrap_or_default();
            (
                key.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()),
                vec![
                    public.to_public_key_pem(LineEnding::LF).unwrap_or_default(),
                    public.to_pkcs1_pem(LineEnding::LF).unwrap_or_default(),
                    STANDARD.encode(&der),
                ],
            )
        }
    };
    match result {
        (Ok(private), public) => (private, public),
        (Err(error), _) => panic!("test key not encoded: {error}"),
    }
}

fn rule(algorithm: KeyAlgorithm, encoding: SignatureEncoding) -> Scheme {
    let rule = SignatureRule::new(
        algorithm,
        "X-Signature",
        Some("v1="),
        encoding,
        "{timestamp}.{body}",
        Some("X-Timestamp"),
        None,
    );
    match rule {
        Ok(rule) => Scheme::Signature(rule),
        Err(error) => panic!("test rule rejected: {error}"),
    }
}

const ALGORITHMS: [KeyAlgorithm; 4] = [
    KeyAlgorithm::Ed25519,
    KeyAlgorithm::EcdsaP256Sha256,
    KeyAlgorithm::RsaPkcs1v15Sha256,
    KeyAlgorithm::RsaPssSha256,
];

fn signed_headers(scheme: &Scheme, private_pem: &str, body: &[u8]) -> Vec<(String, String)> {
    let private_key = match PrivateKey::parse(private_pem.as_bytes()) {
        Ok(key) => key,
        Err(error) => panic!("private key rejected: {error}"),
    };
    let message = Message {
        method: "POST",
        url: "/",
        body,
        timestamp: T,
        id: "id",
    };
    match crate::provider::sign::sign_with_private_key(scheme, &private_key, &message) {
        Ok(headers) => headers,
        Err(error) => panic!("signing failed: {error}"),
    }
}

fn verify(
    scheme: &Scheme,
    headers: &[(String, String)],
    body: &[u8],
    key: &Key,
) -> Result<Verified, Failure> {
    let pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let headers = header_map(&pairs);
    scheme.verify(
        &request(&headers, body),
        std::slice::from_ref(key),
        T,
        TOLERANCE,
    )
}

#[test]
fn every_algorithm_and_key_form_verifies() {
    for algorithm in ALGORITHMS {
        for encoding in [
            SignatureEncoding::Hex,
            SignatureEncoding::Base64,
            SignatureEncoding::Base64Url,
        ] {
            let scheme = rule(algorithm, encoding);
            let (private_pem, public_forms) = keys_for(algorithm);
            let headers = signed_headers(&scheme, &private_pem, BODY);

            for public in public_forms {
                let key = match scheme.derive_public_key(public.as_bytes()) {
                    Ok(key) => key,
                    Err(error) => panic!("{algorithm:?}: {public:?} rejected: {error}"),
                };

                let result = verify(&scheme, &headers, BODY, &key);

                assert_eq!(
                    result.map(|v| v.timestamp),
                    Ok(Some(T)),
                    "{algorithm:?} {encoding:?} {public:?}"
                );
            }
        }
    }
}

#[test]
fn changed_body_timestamp_or_signature_is_rejected() {
    for algorithm in ALGORITHMS {
        let scheme = rule(algorithm, SignatureEncoding::Base64);
        let (private_pem, public_forms) = keys_for(algorithm);
        let key = match scheme.derive_public_key(public_forms[0].as_bytes()) {
            Ok(key) => key,
            Err(error) => panic!("{algorithm:?}: {error}"),
        };
        let headers = signed_headers(&scheme, &private_pem, BODY);
        let mut later = headers.clone();
        later[0].1 = (T + 1).to_string();
        let mut forged = headers.clone();
        let other = signed_headers(&scheme, &private_pem, b"{}");
        forged[1].1 = other[1].1.clone();

        assert_eq!(
            verify(&scheme, &headers, b"{\"event\":\"changed\"}", &key),
            Err(Failure::SignatureInvalid),
            "{algorithm:?} body"
        );
        assert_eq!(
            verify(&scheme, &later, BODY, &key),
            Err(Failure::SignatureInvalid),
            "{algorithm:?} timestamp"
        );
        assert_eq!(
            verify(&scheme, &forged, BODY, &key),
            Err(Failure::SignatureInvalid),
            "{algorithm:?} signature"
        );
    }
}

#[test]
fn pkcs1v15_and_pss_do_not_mix() {
    let pkcs1 = rule(KeyAlgorithm::RsaPkcs1v15Sha256, SignatureEncoding::Base64);
    let pss = rule(KeyAlgorithm::RsaPssSha256, SignatureEncoding::Base64);
    let (private_pem, public_forms) = keys_for(KeyAlgorithm::RsaPssSha256);
    let key = match pss.derive_public_key(public_forms[0].as_bytes()) {
        Ok(key) => key,
        Err(error) => panic!("{error}"),
    };
    let headers = signed_headers(&pkcs1, &private_pem, BODY);

    assert_eq!(
        verify(&pss, &headers, BODY, &key),
        Err(Failure::SignatureInvalid)
    );
}

#[test]
fn key_of_other_algorithm_is_rejected() {
    let (_, ed25519_forms) = keys_for(KeyAlgorithm::Ed25519);
    let rsa = rule(KeyAlgorithm::RsaPkcs1v15Sha256, SignatureEncoding::Base64);
    let p256 = rule(KeyAlgorithm::EcdsaP256Sha256, SignatureEncoding::Base64);

    assert_eq!(
        rsa.derive_public_key(ed25519_forms[0].as_bytes())
            .map(|_| ()),
        Err(KeyError::InvalidPublicKey)
    );
    assert_eq!(
        p256.derive_public_key(ed25519_forms[1].as_bytes())
            .map(|_| ()),
        Err(KeyError::InvalidPublicKey)
    );
    assert_eq!(
        p256.derive_key(b"a shared secret").map(|_| ()),
        Err(KeyError::PublicKeyExpected)
    );
}

#[test]
fn malformed_signatures_fail_as_malformed() {
    let scheme = rule(KeyAlgorithm::Ed25519, SignatureEncoding::Hex);
    let (_, public_forms) = keys_for(KeyAlgorithm::Ed25519);
    let key = match scheme.derive_public_key(public_forms[1].as_bytes()) {
        Ok(key) => key,
        Err(error) => panic!("{error}"),
    };
    let long = format!("v1={}", "ab".repeat(MAX_SIGNATURE_TEXT));

    for value in ["v1=zz", "v1=abcd", "sig", long.as_str()] {
        let headers = vec![
            ("X-Timestamp".to_string(), T.to_string()),
            ("X-Signature".to_string(), value.to_string()),
        ];

        assert_eq!(
            verify(&scheme, &headers, BODY, &key),
            Err(Failure::SignatureMalformed),
            "{value}"
        );
    }
}

#[test]
fn rsa_key_under_2048_bits_rejected() {
    let small = match rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024) {
        Ok(key) => key,
        Err(error) => panic!("RSA key generation failed: {error}"),
    };
    let pem = small
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap_or_default();
    let rule = match SignatureRule::new(
        KeyAlgorithm::RsaPssSha256,
        "X-Signature",
        None,
        SignatureEncoding::Base64,
        "{body}",
        None,
        None,
    ) {
        Ok(rule) => rule,
        Err(error) => panic!("rule rejected: {error}"),
    };

    assert_eq!(
        rule.parse_key(pem.as_bytes()).map(|_| ()),
        Err(KeyError::RsaKeyTooSmall)
    );
}

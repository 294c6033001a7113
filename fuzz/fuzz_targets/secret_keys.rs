//! Secret and public-key decoding. Every scheme rejects an empty secret. Standard Webhooks
//! and Svix accept exactly canonical padded base64 after an optional `whsec_`, and sign with
//! the decoded bytes. Other HMAC schemes sign with the bytes unchanged, and Discord accepts
//! only 64 hex digits. A key's `Debug` output leaves the secret out.

#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hookgate::provider::sign::{sign, Message};
use hookgate::provider::{Algorithm, Key, KeyError, Scheme};
use hookgate_fuzz::{all_schemes, reference_hmac};
use libfuzzer_sys::fuzz_target;

/// Checks that a key's `Debug` output is the same whatever the secret. A [`KeyError`] carries
/// no data, so its messages cannot contain the secret.
fn assert_redacted(derived: &Result<Key, KeyError>) {
    if let Ok(key) = derived {
        assert_eq!(format!("{key:?}"), "Key(<redacted>)");
    }
}

/// Returns the MAC key `scheme` should derive from `secret`, or `None` when it must be
/// rejected. Only HMAC schemes over raw bytes are covered.
fn expected_mac_key(scheme: &Scheme, secret: &[u8]) -> Option<Vec<u8>> {
    let bytes = match scheme {
        Scheme::StandardWebhooks | Scheme::Svix | Scheme::Clerk | Scheme::Resend => {
            // A public or private Standard Webhooks key is refused under `secrets:`.
            if secret.starts_with(b"whpk_") || secret.starts_with(b"whsk_") {
                return None;
            }
            let encoded = secret.strip_prefix(b"whsec_").unwrap_or(secret);
            let decoded = STANDARD.decode(encoded).ok()?;
            // Only canonical base64 decodes, so encoding again gives the same text.
            assert_eq!(STANDARD.encode(&decoded).as_bytes(), encoded);
            decoded
        }
        // A PEM document is a public key, never an HMAC secret.
        _ if secret.trim_ascii_start().starts_with(b"-----BEGIN ") => return None,
        _ => secret.to_vec(),
    };
    (!bytes.is_empty()).then_some(bytes)
}

/// Returns the signature header that GitHub, Standard Webhooks or Svix send for body `{}` with id
/// `msg_1` at time 0, computed from the MAC key without hookgate.
fn reference_signature(scheme: &str, mac_key: &[u8]) -> Option<(String, String)> {
    let pair = match scheme {
        "github" => {
            let mac = reference_hmac(Algorithm::Sha256, mac_key, &[b"{}"]);
            (
                "X-Hub-Signature-256",
                format!("sha256={}", hex::encode(mac)),
            )
        }
        "standard-webhooks" | "svix" => {
            let mac = reference_hmac(Algorithm::Sha256, mac_key, &[b"msg_1.0.{}"]);
            let name = if scheme == "svix" {
                "svix-signature"
            } else {
                "webhook-signature"
            };
            (name, format!("v1,{}", STANDARD.encode(mac)))
        }
        _ => return None,
    };
    Some((pair.0.to_string(), pair.1))
}

fuzz_target!(|secret: &[u8]| {
    for scheme in all_schemes() {
        let derived = scheme.derive_key(secret);
        assert_redacted(&derived);
        if secret.is_empty() && scheme.needs_keys() {
            assert_eq!(
                derived.as_ref().err(),
                Some(&KeyError::Empty),
                "{}",
                scheme.name()
            );
        }
        match scheme.name() {
            "discord" => {
                if derived.is_ok() {
                    let text = secret.trim_ascii();
                    assert_eq!(text.len(), 64, "discord key length");
                    assert!(text.iter().all(u8::is_ascii_hexdigit), "discord key digits");
                }
            }
            // SendGrid decodes a P-256 public key, and these other schemes are covered by the
            // empty-secret and redaction checks above.
            "sendgrid" | "none" | "gitlab" | "mailgun" | "twilio" | "linear" | "hmac" => {}
            _ => {
                let expected = expected_mac_key(&scheme, secret);
                assert_eq!(derived.is_ok(), expected.is_some(), "{}", scheme.name());
                let (Ok(key), Some(mac_key)) = (derived, expected) else {
                    continue;
                };
                let Some(expected) = reference_signature(scheme.name(), &mac_key) else {
                    continue;
                };
                let message = Message {
                    method: "POST",
                    url: "/hooks/x",
                    body: b"{}",
                    timestamp: 0,
                    id: "msg_1",
                };
                let Ok(headers) = sign(&scheme, &key, &message) else {
                    panic!("{} cannot sign", scheme.name());
                };
                assert!(
                    headers.contains(&expected),
                    "{}: {headers:?} lacks {expected:?}",
                    scheme.name()
                );
            }
        }
    }
});

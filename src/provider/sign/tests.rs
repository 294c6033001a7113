//! Round trips through `sign` and `verify` for every scheme, tampered twins of each signed
//! request, and a loop that flips every byte of a small body under every preset.

use std::time::Duration;

use ed25519_dalek::Signer;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;
use crate::provider::test_support::hmac_sha256;
use crate::provider::{Encoding, Failure, HmacRule, Request, Verified};

const NOW: i64 = 1_700_000_000;
const TOLERANCE: Duration = Duration::from_secs(300);
const SECRET: &[u8] = b"whsec_c2lnbi1yb3VuZC10cmlw";
const URL: &str = "https://hooks.example.test/hooks/x?tenant=acme";

/// Presets whose request body is not authenticated at all: GitLab only sends a shared token,
/// and `none` checks nothing.
const BODY_NOT_SIGNED: [&str; 2] = ["gitlab", "none"];

/// Presets that `sign` cannot sign for: the public-key schemes and Mailgun.
const NOT_SIGNABLE: [&str; 3] = ["mailgun", "sendgrid", "discord"];

/// A signed request: the keys to verify with, its headers and its body.
struct Signed {
    keys: Vec<Key>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn presets() -> Vec<Scheme> {
    Scheme::preset_names()
        .iter()
        .filter_map(|name| Scheme::preset(name))
        .collect()
}

fn hmac_rule() -> Scheme {
    let rule = HmacRule::new(
        Algorithm::Sha512,
        "X-Sig",
        Some("v1="),
        Encoding::Base64,
        "{method} {url}\n{id}.{timestamp}.{body}",
        Some("X-Ts"),
        Some("X-Id"),
    );
    Scheme::Hmac(rule.expect("valid rule"))
}

/// Returns a small body that every scheme accepts. Linear needs its timestamp field, Twilio
/// reads form parameters, and the rest sign any bytes.
fn small_body(scheme: &Scheme) -> Vec<u8> {
    match scheme {
        Scheme::Linear => br#"{"a":1,"webhookTimestamp":1700000000000}"#.to_vec(),
        Scheme::Twilio => b"From=%2B15005550006&Body=hi+there".to_vec(),
        _ => br#"{"a":1,"b":"xyz"}"#.to_vec(),
    }
}

/// Signs a request with `sign` where hookgate can, and independently of the code under test
/// for the schemes it cannot.
fn signed_request(scheme: &Scheme) -> Signed {
    match scheme {
        Scheme::Mailgun => mailgun_request(),
        Scheme::Discord => discord_request(br#"{"type":1}"#),
        Scheme::Sendgrid => sendgrid_request(b"[{\"event\":\"processed\"}]\r\n"),
        _ => {
            let key = scheme.derive_key(SECRET).expect("key");
            let body = small_body(scheme);
            let message = Message {
                method: "POST",
                url: URL,
                body: &body,
                timestamp: NOW,
                id: "msg_1",
            };
            let headers = sign(scheme, &key, &message).expect("sign");
            Signed {
                keys: vec![key],
                headers,
                body,
            }
        }
    }
}

/// Builds a Mailgun body with only the signature object, which is all that Mailgun signs.
fn mailgun_request() -> Signed {
    let mac = hmac_sha256(SECRET, &[b"1700000000", b"token-0123456789"]);
    let body = format!(
        r#"{{"signature":{{"timestamp":"1700000000","token":"token-0123456789","signature":"{}"}}}}"#,
        hex::encode(mac)
    );
    Signed {
        keys: vec![Scheme::Mailgun.derive_key(SECRET).expect("key")],
        headers: Vec::new(),
        body: body.into_bytes(),
    }
}

fn discord_request(body: &[u8]) -> Signed {
    let signing_key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let public_hex = hex::encode(signing_key.verifying_key().as_bytes());
    let signature = signing_key.sign(&[b"1700000000".as_slice(), body].concat());
    Signed {
        keys: vec![Scheme::Discord
            .derive_key(public_hex.as_bytes())
            .expect("key")],
        headers: vec![
            ("X-Signature-Timestamp".to_string(), NOW.to_string()),
            (
                "X-Signature-Ed25519".to_string(),
                hex::encode(signature.to_bytes()),
            ),
        ],
        body: body.to_vec(),
    }
}

fn sendgrid_request(body: &[u8]) -> Signed {
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey;

    let signing_key = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).expect("scalar");
    let der = signing_key
        .verifying_key()
        .to_public_key_der()
        .expect("encode key");
    let signature: p256::ecdsa::Signature =
        signing_key.sign(&[b"1700000000".as_slice(), body].concat());
    Signed {
        keys: vec![Scheme::Sendgrid
            .derive_key(STANDARD.encode(der.as_bytes()).as_bytes())
            .expect("key")],
        headers: vec![
            (
                "X-Twilio-Email-Event-Webhook-Timestamp".to_string(),
                NOW.to_string(),
            ),
            (
                "X-Twilio-Email-Event-Webhook-Signature".to_string(),
                STANDARD.encode(signature.to_der().as_bytes()),
            ),
        ],
        body: body.to_vec(),
    }
}

fn verify(scheme: &Scheme, signed: &Signed, body: &[u8]) -> Result<Verified, Failure> {
    let mut map = HeaderMap::new();
    for (name, value) in &signed.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
        map.append(name, HeaderValue::from_str(value).expect("header value"));
    }
    let request = Request {
        method: "POST",
        url: URL,
        headers: &map,
        body,
    };
    scheme.verify(&request, &signed.keys, NOW, TOLERANCE)
}

/// Returns `headers` with every value passed through `change`.
fn change_headers(
    headers: &[(String, String)],
    change: impl Fn(&str, &str) -> String,
) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.clone(), change(name, value)))
        .collect()
}

/// Changes the signature in a header value so that it still decodes but no longer matches.
fn change_signature(scheme: &Scheme, text: &str) -> String {
    if !matches!(scheme, Scheme::Sendgrid) {
        return change_middle_character(text);
    }
    // A changed base64 character could break the DER structure, so flip a bit of `s`, which
    // the DER signature ends with.
    let mut der = STANDARD.decode(text).expect("base64 signature");
    let last = der.len() - 1;
    der[last] ^= 0x01;
    STANDARD.encode(der)
}

/// Replaces the character in the middle of `text` with another of the same kind, so that hex
/// and base64 stay decodable but the signature changes.
fn change_middle_character(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = match bytes[middle] {
        b'9' => b'0',
        b'f' => b'a',
        b'z' => b'a',
        b'Z' => b'A',
        byte @ (b'0'..=b'8' | b'a'..=b'e' | b'g'..=b'y' | b'A'..=b'Y') => byte + 1,
        _ => b'0',
    };
    String::from_utf8(bytes).expect("ascii")
}

#[test]
fn every_scheme_verifies_its_own_signature() {
    let mut schemes = presets();
    schemes.push(hmac_rule());
    for scheme in schemes {
        let signed = signed_request(&scheme);

        let result = verify(&scheme, &signed, &signed.body);

        assert_eq!(result.map(|v| v.key_index), Ok(0), "{}", scheme.name());
    }
}

#[test]
fn sign_reports_timestamp_of_timed_schemes() {
    for scheme in presets().into_iter().filter(Scheme::uses_timestamp) {
        let signed = signed_request(&scheme);

        let result = verify(&scheme, &signed, &signed.body);

        assert_eq!(
            result.map(|v| v.timestamp),
            Ok(Some(NOW)),
            "{}",
            scheme.name()
        );
    }
}

#[test]
fn unsignable_schemes_explain_why() {
    let key = Key::from_raw(SECRET).expect("key");
    let message = Message {
        method: "POST",
        url: URL,
        body: b"{}",
        timestamp: NOW,
        id: "msg_1",
    };
    let failing: Vec<&str> = presets()
        .iter()
        .filter(|scheme| sign(scheme, &key, &message).is_err())
        .map(Scheme::name)
        .collect();

    assert_eq!(failing, NOT_SIGNABLE);
    for name in NOT_SIGNABLE {
        let scheme = Scheme::preset(name).expect("preset");
        let error = sign(&scheme, &key, &message).err().unwrap_or_default();
        assert!(
            error.contains("cannot") || error.contains("--private-key-file"),
            "{name}: {error}"
        );
    }
}

#[test]
fn tampered_body_fails() {
    for scheme in presets() {
        if BODY_NOT_SIGNED.contains(&scheme.name()) {
            continue;
        }
        let signed = signed_request(&scheme);
        let mut body = signed.body.clone();
        let middle = body.len() / 2;
        body[middle] ^= 0x01;

        let result = verify(&scheme, &signed, &body);

        assert!(result.is_err(), "{} accepted a changed body", scheme.name());
    }
}

#[test]
fn tampered_timestamp_fails() {
    let one_second_later = [
        ("1700000000000", "1700000001000"),
        ("2023-11-14T22:13:20Z", "2023-11-14T22:13:21Z"),
        ("1700000000", "1700000001"),
    ];
    // Linear and Mailgun carry the timestamp in the body, which the body tests cover.
    let in_headers = presets()
        .into_iter()
        .filter(|s| s.uses_timestamp() && !matches!(s, Scheme::Linear | Scheme::Mailgun));
    for scheme in in_headers {
        let mut signed = signed_request(&scheme);
        let changed = change_headers(&signed.headers, |_, value| {
            let (from, to) = one_second_later
                .iter()
                .find(|(from, _)| value.contains(from))
                .copied()
                .unwrap_or(("", ""));
            if from.is_empty() {
                value.to_string()
            } else {
                value.replacen(from, to, 1)
            }
        });
        assert_ne!(changed, signed.headers, "{}: no timestamp", scheme.name());
        signed.headers = changed;

        let result = verify(&scheme, &signed, &signed.body);

        assert_eq!(
            result,
            Err(Failure::SignatureInvalid),
            "{} accepted a changed timestamp",
            scheme.name()
        );
    }
}

#[test]
fn tampered_signature_fails() {
    for scheme in presets() {
        let Some(header) = scheme
            .signature_header()
            .or(matches!(scheme, Scheme::Gitlab).then_some(&gitlab::TOKEN))
        else {
            continue;
        };
        let mut signed = signed_request(&scheme);
        let changed = change_headers(&signed.headers, |name, value| {
            if name.eq_ignore_ascii_case(header.as_str()) {
                change_signature(&scheme, value)
            } else {
                value.to_string()
            }
        });
        assert_ne!(changed, signed.headers, "{}: no signature", scheme.name());
        signed.headers = changed;

        let result = verify(&scheme, &signed, &signed.body);

        assert_eq!(
            result,
            Err(Failure::SignatureInvalid),
            "{} accepted a changed signature",
            scheme.name()
        );
    }
}

/// Flips each bit 0 and bit 7 of every body byte in turn. Every preset that signs the body
/// must reject each change. Mailgun's body here contains only the fields Mailgun signs,
/// because its other fields are never covered (see `mailgun::tests::event_data_is_not_covered`).
#[test]
fn every_body_byte_flip_fails() {
    let mut wrong = Vec::new();
    for scheme in presets() {
        let signed = signed_request(&scheme);
        assert_eq!(
            verify(&scheme, &signed, &signed.body).map(|v| v.key_index),
            Ok(0),
            "{}",
            scheme.name()
        );
        for index in 0..signed.body.len() {
            for mask in [0x01, 0x80] {
                let mut body = signed.body.clone();
                body[index] ^= mask;
                let unsigned = BODY_NOT_SIGNED.contains(&scheme.name());

                let result = verify(&scheme, &signed, &body);

                if result.is_ok() != unsigned {
                    wrong.push(format!(
                        "{} byte {index} ^ {mask:#04x}: {result:?}",
                        scheme.name()
                    ));
                }
            }
        }
    }

    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn mailgun_body_signature_verifies() {
    let key = Key::from_raw(SECRET).expect("key");
    let message = Message {
        method: "POST",
        url: URL,
        body: br#"{"event-data":{"event":"delivered"},"signature":{"token":"old"}}"#,
        timestamp: NOW,
        id: "token-1",
    };
    let body = sign_mailgun_body(&key, &message).expect("JSON object body");
    let headers = HeaderMap::new();
    let request = Request {
        method: "POST",
        url: URL,
        headers: &headers,
        body: &body,
    };

    let result = Scheme::Mailgun.verify(&request, std::slice::from_ref(&key), NOW, TOLERANCE);

    assert_eq!(result.map(|v| v.timestamp), Ok(Some(NOW)));
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(json["signature"]["token"], "token-1");
    assert_eq!(json["event-data"]["event"], "delivered");
}

#[test]
fn mailgun_body_must_be_an_object() {
    let key = Key::from_raw(SECRET).expect("key");
    let message = Message {
        method: "POST",
        url: URL,
        body: b"[1,2]",
        timestamp: NOW,
        id: "token-1",
    };

    let result = sign_mailgun_body(&key, &message);

    assert_eq!(
        result,
        Err("mailgun signs a JSON object body; give one".to_string())
    );
}

//! Twilio's URL variants, form decoding and `bodySHA256` handling. The vectors in
//! `tests/vectors/twilio.json` cover the same paths with signatures from Twilio's library.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::*;
use crate::provider::test_support::{header_map, hmac_with};
use crate::provider::{KeyError, Scheme};

const TOKEN: &[u8] = b"12345";

fn hmac_sha1_base64(key: &[u8], text: &[u8]) -> String {
    STANDARD.encode(hmac_with::<hmac::Hmac<sha1::Sha1>>(key, &[text]))
}

fn verify_at(
    url: &str,
    pairs: &[(&str, &[u8])],
    body: &[u8],
) -> Result<Result<Verified, Failure>, KeyError> {
    let headers = header_map(pairs);
    let keys = [Scheme::Twilio.derive_key(TOKEN)?];
    let request = Request {
        method: "POST",
        url,
        headers: &headers,
        body,
    };
    Ok(Scheme::Twilio.verify(&request, &keys, 0, Duration::ZERO))
}

/// The example in Twilio's webhook security guide: Auth Token `12345`, this URL and these
/// POST parameters give `0/KCTR6DLpKmkAf8muzZqo1nDgQ=`.
#[test]
fn accepts_documented_example() -> Result<(), KeyError> {
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let body = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234\
                 &From=%2B12349013030&To=%2B18005551212";
    let pairs: [(&str, &[u8]); 1] = [("X-Twilio-Signature", b"0/KCTR6DLpKmkAf8muzZqo1nDgQ=")];

    assert_eq!(
        verify_at(url, &pairs, body)?,
        Ok(Verified {
            key_index: 0,
            timestamp: None
        })
    );
    Ok(())
}

#[test]
fn url_variants_toggle_default_port() {
    let cases: [(&str, &[&str]); 8] = [
        (
            "https://a.test/p?q=1",
            &["https://a.test/p?q=1", "https://a.test:443/p?q=1"],
        ),
        (
            "https://a.test:443/p",
            &["https://a.test:443/p", "https://a.test/p"],
        ),
        (
            "http://a.test/p",
            &["http://a.test/p", "http://a.test:80/p"],
        ),
        ("http://a.test:80", &["http://a.test:80", "http://a.test"]),
        ("https://a.test:8443/p", &["https://a.test:8443/p"]),
        (
            "https://[::1]/p",
            &["https://[::1]/p", "https://[::1]:443/p"],
        ),
        (
            "https://[::1]:443/p",
            &["https://[::1]:443/p", "https://[::1]/p"],
        ),
        ("/hooks/twilio?x=1", &["/hooks/twilio?x=1"]),
    ];
    for (url, expected) in cases {
        assert_eq!(url_variants(url), expected, "{url}");
    }
}

#[test]
fn http_port_443_is_not_default() {
    assert_eq!(url_variants("http://a.test:443/p"), ["http://a.test:443/p"]);
}

#[test]
fn percent_decoding_follows_form_rules() {
    assert_eq!(percent_decode(b"%2B1+2"), b"+1 2");
    assert_eq!(percent_decode(b"%e2%80%93"), "\u{2013}".as_bytes());
    assert_eq!(percent_decode(b"100%"), b"100%");
    assert_eq!(percent_decode(b"%zz%4"), b"%zz%4");
    assert_eq!(percent_decode(b"%+1"), b"% 1");
}

#[test]
fn form_sorts_names_then_values() {
    let form = sorted_form(b"b=2&a=9&&a=1&flag&a=1");

    let expected: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"a".to_vec(), b"1".to_vec()),
        (b"a".to_vec(), b"1".to_vec()),
        (b"a".to_vec(), b"9".to_vec()),
        (b"b".to_vec(), b"2".to_vec()),
        (b"flag".to_vec(), Vec::new()),
    ];
    assert_eq!(form, expected);
}

#[test]
fn json_body_is_checked_against_body_sha256() -> Result<(), KeyError> {
    let body = br#"{"event":"test"}"#;
    let url = format!(
        "https://a.test/hook?bodySHA256={}",
        hex::encode(Sha256::digest(body))
    );
    let signature = hmac_sha1_base64(TOKEN, url.as_bytes());
    let pairs: [(&str, &[u8]); 1] = [("X-Twilio-Signature", signature.as_bytes())];

    assert_eq!(verify_at(&url, &pairs, body)?.map(|v| v.key_index), Ok(0));
    assert_eq!(
        verify_at(&url, &pairs, br#"{"event":"tEst"}"#)?,
        Err(Failure::SignatureInvalid)
    );
    Ok(())
}

#[test]
fn body_sha256_must_be_lower_case_and_single() -> Result<(), KeyError> {
    let body = b"{}";
    let hash = hex::encode(Sha256::digest(body));
    let upper = format!("https://a.test/hook?bodySHA256={}", hash.to_uppercase());
    let twice = format!("https://a.test/hook?bodySHA256={hash}&bodySHA256={hash}");
    for url in [upper, twice] {
        let signature = hmac_sha1_base64(TOKEN, url.as_bytes());
        let pairs: [(&str, &[u8]); 1] = [("X-Twilio-Signature", signature.as_bytes())];

        assert_eq!(
            verify_at(&url, &pairs, body)?,
            Err(Failure::SignatureInvalid),
            "{url}"
        );
    }
    Ok(())
}

#[test]
fn shared_key_settings_select_sha256() -> Result<(), KeyError> {
    let url = "https://a.test/hook";
    let body = b"A=1";
    let mac = hmac_with::<hmac::Hmac<Sha256>>(TOKEN, &[url.as_bytes(), b"A1"]);
    let signature = STANDARD.encode(mac);
    let settings = b"key=rule_1,algorithm=HMAC_SHA256";
    let pairs: [(&str, &[u8]); 2] = [
        ("X-Twilio-Signature", signature.as_bytes()),
        ("X-Twilio-Webhooks-Signature-Settings", settings),
    ];

    assert_eq!(verify_at(url, &pairs, body)?.map(|v| v.key_index), Ok(0));
    assert_eq!(
        verify_at(url, &pairs[..1], body)?,
        Err(Failure::SignatureMalformed),
        "a SHA-256 signature is too long for SHA-1"
    );
    Ok(())
}

#[test]
fn settings_with_unknown_algorithm_are_malformed() -> Result<(), KeyError> {
    let signature = hmac_sha1_base64(TOKEN, b"https://a.test/hook");
    for settings in [
        "key=rule_1,algorithm=HMAC_SHA512",
        "key=rule_1",
        "algorithm",
        "algorithm=HMAC_SHA256,algorithm=HMAC_SHA256",
    ] {
        let pairs: [(&str, &[u8]); 2] = [
            ("X-Twilio-Signature", signature.as_bytes()),
            ("X-Twilio-Webhooks-Signature-Settings", settings.as_bytes()),
        ];

        assert_eq!(
            verify_at("https://a.test/hook", &pairs, b"")?,
            Err(Failure::SignatureMalformed),
            "{settings}"
        );
    }
    Ok(())
}

#[test]
fn sign_round_trips_form_and_json() -> Result<(), KeyError> {
    let key = Scheme::Twilio.derive_key(TOKEN)?;
    let json = br#"{"a":1}"#;
    let json_url = format!(
        "https://a.test/h?bodySHA256={}",
        hex::encode(Sha256::digest(json))
    );
    let cases: [(&str, &[u8]); 2] = [
        ("https://a.test/h?x=1", b"To=%2B1&Body=caf%C3%A9+ok"),
        (&json_url, json),
    ];
    for (url, body) in cases {
        let message = Message {
            method: "POST",
            url,
            body,
            timestamp: 0,
            id: "",
        };
        let headers = sign(&key, &message).unwrap_or_default();
        let pairs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect();

        assert_eq!(
            verify_at(url, &pairs, body)?.map(|v| v.key_index),
            Ok(0),
            "{url}"
        );
    }
    Ok(())
}

/// Documents the scheme's limit: Twilio signs decoded parameters, so encodings of the same
/// parameters share one signature and the upstream must read parameters only by name.
#[test]
fn form_encoding_is_not_signed() -> Result<(), KeyError> {
    let url = "https://a.test/h";
    let signature = hmac_sha1_base64(TOKEN, b"https://a.test/hABodyhi there");
    let pairs: [(&str, &[u8]); 1] = [("X-Twilio-Signature", signature.as_bytes())];

    for body in [
        b"Body=hi+there&A=".as_slice(),
        b"A&Body=hi%20there",
        b"Body=hi there&&A=",
        b"%42ody=hi+there&A",
    ] {
        assert_eq!(
            verify_at(url, &pairs, body)?.map(|v| v.key_index),
            Ok(0),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    Ok(())
}

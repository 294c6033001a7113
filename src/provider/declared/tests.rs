//! Each declared preset against signatures computed with the hmac crate directly, from the
//! signed string its provider documents, plus the checks specific to each.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::*;
use crate::provider::test_support::{header_map, hmac_sha256, hmac_with, request};
use crate::provider::{KeyError, Scheme};

const SECRET: &[u8] = b"declared-preset-secret";
const T: i64 = 1_700_000_000;
const TOLERANCE: Duration = Duration::from_secs(300);
const BODY: &[u8] = br#"{"id":"evt_1","amount":1234}"#;
/// The URL `test_support::request` puts in every request.
const URL: &[u8] = b"https://gateway.example.test/hooks/test";

fn verify(
    scheme: &Scheme,
    pairs: &[(&str, &[u8])],
    body: &[u8],
    now: i64,
) -> Result<Result<Verified, Failure>, KeyError> {
    let headers = header_map(pairs);
    let keys = [
        scheme.derive_key(b"other-secret")?,
        scheme.derive_key(SECRET)?,
    ];
    Ok(scheme.verify(&request(&headers, body), &keys, now, TOLERANCE))
}

fn hex_mac(parts: &[&[u8]]) -> String {
    hex::encode(hmac_sha256(SECRET, parts))
}

fn base64_mac(parts: &[&[u8]]) -> String {
    STANDARD.encode(hmac_sha256(SECRET, parts))
}

fn valid(timestamp: Option<i64>) -> Result<Verified, Failure> {
    Ok(Verified {
        key_index: 1,
        timestamp,
    })
}

#[test]
fn specs_sign_every_header_they_read() {
    for spec in ALL {
        let signs = |part: Part| spec.signed.contains(&part);

        assert!(signs(Part::Body), "{}", spec.header);
        assert_eq!(
            signs(Part::Timestamp),
            spec.timestamp.is_some(),
            "{}",
            spec.header
        );
        assert_eq!(signs(Part::Id), spec.id.is_some(), "{}", spec.header);
    }
}

#[test]
fn square_signs_url_then_body() -> Result<(), KeyError> {
    let signature = base64_mac(&[URL, BODY]);
    let pairs: [(&str, &[u8]); 1] = [("x-square-hmacsha256-signature", signature.as_bytes())];

    assert_eq!(verify(&Scheme::Square, &pairs, BODY, T)?, valid(None));
    Ok(())
}

#[test]
fn square_rejects_other_url() -> Result<(), KeyError> {
    let signature = base64_mac(&[b"https://gateway.example.test/hooks/other", BODY]);
    let pairs: [(&str, &[u8]); 1] = [("x-square-hmacsha256-signature", signature.as_bytes())];

    assert_eq!(
        verify(&Scheme::Square, &pairs, BODY, T)?,
        Err(Failure::SignatureInvalid)
    );
    Ok(())
}

#[test]
fn zendesk_signs_rfc3339_timestamp_then_body() -> Result<(), KeyError> {
    let timestamp = b"2023-11-14T22:13:20Z";
    let signature = base64_mac(&[timestamp, BODY]);
    let pairs: [(&str, &[u8]); 2] = [
        ("X-Zendesk-Webhook-Signature", signature.as_bytes()),
        ("X-Zendesk-Webhook-Signature-Timestamp", timestamp),
    ];

    assert_eq!(verify(&Scheme::Zendesk, &pairs, BODY, T)?, valid(Some(T)));
    assert_eq!(
        verify(&Scheme::Zendesk, &pairs, BODY, T + 301)?,
        Err(Failure::TimestampExpired)
    );
    assert_eq!(
        verify(&Scheme::Zendesk, &pairs, BODY, T - 301)?,
        Err(Failure::TimestampInFuture)
    );
    Ok(())
}

#[test]
fn zendesk_signs_timestamp_alone_without_body() -> Result<(), KeyError> {
    let timestamp = b"2023-11-14T22:13:20Z";
    let signature = base64_mac(&[timestamp]);
    let pairs: [(&str, &[u8]); 2] = [
        ("X-Zendesk-Webhook-Signature", signature.as_bytes()),
        ("X-Zendesk-Webhook-Signature-Timestamp", timestamp),
    ];

    assert_eq!(verify(&Scheme::Zendesk, &pairs, b"", T)?, valid(Some(T)));
    Ok(())
}

#[test]
fn zendesk_rejects_unix_seconds_timestamp() -> Result<(), KeyError> {
    let signature = base64_mac(&[b"1700000000", BODY]);
    let pairs: [(&str, &[u8]); 2] = [
        ("X-Zendesk-Webhook-Signature", signature.as_bytes()),
        ("X-Zendesk-Webhook-Signature-Timestamp", b"1700000000"),
    ];

    assert_eq!(
        verify(&Scheme::Zendesk, &pairs, BODY, T)?,
        Err(Failure::TimestampMalformed)
    );
    Ok(())
}

#[test]
fn pagerduty_accepts_any_listed_v1() -> Result<(), KeyError> {
    let good = hex_mac(&[BODY]);
    let other = hex::encode(hmac_sha256(b"retired", &[BODY]));
    let header = format!("v1={other},v1={good}");
    let spaced = format!("v1={other}, v1={good}");

    for header in [header, spaced] {
        let pairs: [(&str, &[u8]); 1] = [("X-PagerDuty-Signature", header.as_bytes())];

        assert_eq!(
            verify(&Scheme::Pagerduty, &pairs, BODY, T)?,
            valid(None),
            "{header}"
        );
    }
    Ok(())
}

#[test]
fn pagerduty_needs_a_v1_entry() -> Result<(), KeyError> {
    let good = hex_mac(&[BODY]);
    let cases = [
        (format!("v2={good}"), Failure::SignatureMalformed),
        (good.clone(), Failure::SignatureMalformed),
        (format!("v1={}", &good[..62]), Failure::SignatureMalformed),
        (format!("v2=x,v1={good}"), Failure::SignatureInvalid),
    ];
    for (header, expected) in cases {
        let pairs: [(&str, &[u8]); 1] = [("X-PagerDuty-Signature", header.as_bytes())];
        let body = if expected == Failure::SignatureInvalid {
            b"changed".as_slice()
        } else {
            BODY
        };

        assert_eq!(
            verify(&Scheme::Pagerduty, &pairs, body, T)?,
            Err(expected),
            "{header}"
        );
    }
    Ok(())
}

#[test]
fn twitch_signs_id_timestamp_and_body() -> Result<(), KeyError> {
    let id = b"befa7b53-d79d-478f-86b9-120f112b044e";
    let timestamp = b"2023-11-14T22:13:20.123456789Z";
    let signature = format!("sha256={}", hex_mac(&[id, timestamp, BODY]));
    let pairs: [(&str, &[u8]); 3] = [
        ("Twitch-Eventsub-Message-Id", id),
        ("Twitch-Eventsub-Message-Timestamp", timestamp),
        ("Twitch-Eventsub-Message-Signature", signature.as_bytes()),
    ];

    assert_eq!(verify(&Scheme::Twitch, &pairs, BODY, T)?, valid(Some(T)));
    assert_eq!(
        verify(&Scheme::Twitch, &pairs, BODY, T + 301)?,
        Err(Failure::TimestampExpired)
    );
    assert_eq!(
        verify(&Scheme::Twitch, &pairs, BODY, T - 301)?,
        Err(Failure::TimestampInFuture)
    );
    Ok(())
}

#[test]
fn twitch_requires_message_id() -> Result<(), KeyError> {
    let timestamp = b"2023-11-14T22:13:20Z";
    let signature = format!("sha256={}", hex_mac(&[timestamp, BODY]));
    let pairs: [(&str, &[u8]); 2] = [
        ("Twitch-Eventsub-Message-Timestamp", timestamp),
        ("Twitch-Eventsub-Message-Signature", signature.as_bytes()),
    ];

    assert_eq!(
        verify(&Scheme::Twitch, &pairs, BODY, T)?,
        Err(Failure::SignedHeaderMissing)
    );
    Ok(())
}

#[test]
fn bitbucket_signs_body_in_hex() -> Result<(), KeyError> {
    let signature = format!("sha256={}", hex_mac(&[BODY]));
    let pairs: [(&str, &[u8]); 1] = [("X-Hub-Signature", signature.as_bytes())];
    let sha1 = format!("sha1={}", "0".repeat(40));
    let github_legacy: [(&str, &[u8]); 1] = [("X-Hub-Signature", sha1.as_bytes())];

    assert_eq!(verify(&Scheme::Bitbucket, &pairs, BODY, T)?, valid(None));
    assert_eq!(
        verify(&Scheme::Bitbucket, &github_legacy, BODY, T)?,
        Err(Failure::SignatureMalformed)
    );
    Ok(())
}

#[test]
fn hubspot_signs_method_url_body_and_millis() -> Result<(), KeyError> {
    let millis = b"1700000000123";
    let signature = base64_mac(&[b"POST", URL, BODY, millis]);
    let pairs: [(&str, &[u8]); 2] = [
        ("X-HubSpot-Signature-v3", signature.as_bytes()),
        ("X-HubSpot-Request-Timestamp", millis),
    ];

    assert_eq!(verify(&Scheme::Hubspot, &pairs, BODY, T)?, valid(Some(T)));
    assert_eq!(
        verify(&Scheme::Hubspot, &pairs, BODY, T + 301)?,
        Err(Failure::TimestampExpired)
    );
    Ok(())
}

/// A zero moved from the end of the body to the front of the timestamp leaves the signed
/// bytes and the time unchanged, so a leading zero must be rejected.
#[test]
fn hubspot_rejects_zero_moved_into_timestamp() -> Result<(), KeyError> {
    let body = b"count=10";
    let signature = base64_mac(&[b"POST", URL, body, b"1700000000000"]);
    let pairs: [(&str, &[u8]); 2] = [
        ("X-HubSpot-Signature-v3", signature.as_bytes()),
        ("X-HubSpot-Request-Timestamp", b"01700000000000"),
    ];

    assert_eq!(
        verify(&Scheme::Hubspot, &pairs, b"count=1", T)?,
        Err(Failure::TimestampMalformed)
    );
    Ok(())
}

/// The last character of a signed URL moved to the front of the body leaves the signed bytes
/// unchanged, so a body that is not JSON is rejected.
#[test]
fn url_and_body_splice_rejected() -> Result<(), KeyError> {
    let millis = b"1700000000123";
    let hubspot = base64_mac(&[b"POST", URL, b"7", BODY, millis]);
    let hubspot_pairs: [(&str, &[u8]); 2] = [
        ("X-HubSpot-Signature-v3", hubspot.as_bytes()),
        ("X-HubSpot-Request-Timestamp", millis),
    ];
    let square = base64_mac(&[URL, b"7", BODY]);
    let square_pairs: [(&str, &[u8]); 1] = [("x-square-hmacsha256-signature", square.as_bytes())];
    let spliced = [b"7".as_slice(), BODY].concat();

    assert_eq!(
        verify(&Scheme::Hubspot, &hubspot_pairs, &spliced, T)?,
        Err(Failure::SignatureInvalid)
    );
    assert_eq!(
        verify(&Scheme::Square, &square_pairs, &spliced, T)?,
        Err(Failure::SignatureInvalid)
    );
    Ok(())
}

#[test]
fn woocommerce_signs_body_in_base64() -> Result<(), KeyError> {
    let signature = base64_mac(&[BODY]);
    let pairs: [(&str, &[u8]); 1] = [("X-WC-Webhook-Signature", signature.as_bytes())];

    assert_eq!(verify(&Scheme::Woocommerce, &pairs, BODY, T)?, valid(None));
    Ok(())
}

#[test]
fn sentry_signs_raw_body_and_ignores_timestamp() -> Result<(), KeyError> {
    let signature = hex_mac(&[BODY]);
    let pairs: [(&str, &[u8]); 2] = [
        ("Sentry-Hook-Signature", signature.as_bytes()),
        ("Sentry-Hook-Timestamp", b"1"),
    ];

    assert_eq!(verify(&Scheme::Sentry, &pairs, BODY, T)?, valid(None));
    Ok(())
}

#[test]
fn sign_fails_for_timestamp_outside_rfc3339_years() -> Result<(), KeyError> {
    let key = Scheme::Zendesk.derive_key(SECRET)?;
    let message = Message {
        method: "POST",
        url: "https://x.test/",
        body: BODY,
        timestamp: i64::MAX,
        id: "1",
    };

    let result = sign(&ZENDESK, &key, &message);

    assert!(result.is_err());
    Ok(())
}

fn sha1_mac(parts: &[&[u8]]) -> Vec<u8> {
    hmac_with::<hmac::Hmac<sha1::Sha1>>(SECRET, parts)
}

#[test]
fn intercom_signs_body_with_sha1() -> Result<(), KeyError> {
    let signature = format!("sha1={}", hex::encode(sha1_mac(&[BODY])));
    let pairs: [(&str, &[u8]); 1] = [("X-Hub-Signature", signature.as_bytes())];
    let sha256 = format!("sha256={}", hex_mac(&[BODY]));
    let jira_style: [(&str, &[u8]); 1] = [("X-Hub-Signature", sha256.as_bytes())];

    assert_eq!(verify(&Scheme::Intercom, &pairs, BODY, T)?, valid(None));
    assert_eq!(
        verify(&Scheme::Intercom, &jira_style, BODY, T)?,
        Err(Failure::SignatureMalformed)
    );
    Ok(())
}

#[test]
fn typeform_signs_body_in_prefixed_base64() -> Result<(), KeyError> {
    let signature = format!("sha256={}", base64_mac(&[BODY]));
    let pairs: [(&str, &[u8]); 1] = [("Typeform-Signature", signature.as_bytes())];
    let hex = format!("sha256={}", hex_mac(&[BODY]));
    let hex_pairs: [(&str, &[u8]); 1] = [("Typeform-Signature", hex.as_bytes())];

    assert_eq!(verify(&Scheme::Typeform, &pairs, BODY, T)?, valid(None));
    assert_eq!(
        verify(&Scheme::Typeform, &hex_pairs, BODY, T)?,
        Err(Failure::SignatureMalformed)
    );
    Ok(())
}

#[test]
fn vercel_signs_body_with_sha1_hex() -> Result<(), KeyError> {
    let signature = hex::encode(sha1_mac(&[BODY]));
    let pairs: [(&str, &[u8]); 1] = [("x-vercel-signature", signature.as_bytes())];

    assert_eq!(verify(&Scheme::Vercel, &pairs, BODY, T)?, valid(None));
    Ok(())
}

#[test]
fn jira_signs_body_in_hex() -> Result<(), KeyError> {
    let signature = format!("sha256={}", hex_mac(&[BODY]));
    let pairs: [(&str, &[u8]); 1] = [("X-Hub-Signature", signature.as_bytes())];

    assert_eq!(verify(&Scheme::Jira, &pairs, BODY, T)?, valid(None));
    assert_eq!(
        Scheme::Jira.delivery_id_header().map(|h| h.as_str()),
        Some("x-atlassian-webhook-identifier")
    );
    Ok(())
}

#[test]
fn zoom_signs_v0_timestamp_and_body() -> Result<(), KeyError> {
    let t = T.to_string();
    let signature = format!("v0={}", hex_mac(&[b"v0:", t.as_bytes(), b":", BODY]));
    let pairs: [(&str, &[u8]); 2] = [
        ("x-zm-signature", signature.as_bytes()),
        ("x-zm-request-timestamp", t.as_bytes()),
    ];

    assert_eq!(verify(&Scheme::Zoom, &pairs, BODY, T)?, valid(Some(T)));
    assert_eq!(
        verify(&Scheme::Zoom, &pairs, BODY, T + 301)?,
        Err(Failure::TimestampExpired)
    );
    Ok(())
}

#[test]
fn twitter_signs_body_in_prefixed_base64() -> Result<(), KeyError> {
    let signature = format!("sha256={}", base64_mac(&[BODY]));
    let pairs: [(&str, &[u8]); 1] = [("x-twitter-webhooks-signature", signature.as_bytes())];

    assert_eq!(verify(&Scheme::Twitter, &pairs, BODY, T)?, valid(None));
    Ok(())
}

//! A correctly signed request passes exactly when its timestamp text is 1 to 19 ASCII
//! digits whose value is within the tolerance of the clock. Signs, spaces, fractions,
//! exponents and values beyond `i64` are rejected; leading zeros do not change the value.

#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hookgate::provider::{Algorithm, Scheme};
use hookgate_fuzz::{generic_rules, header_map, key_for, reference_hmac, verify_within};
use libfuzzer_sys::fuzz_target;

/// The clock of this target.
const NOW: i64 = 1_700_000_000;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Timestamp text; when `near` is set, `NOW + near.0` with `near.1` leading zeros follows it.
    text: Vec<u8>,
    near: Option<(i16, u8)>,
    tolerance: u16,
    secret: Vec<u8>,
    body: Vec<u8>,
}

/// The rule every scheme must follow.
fn acceptable(text: &[u8], tolerance: u64) -> bool {
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let Some(value) = std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
    else {
        return false;
    };
    (i128::from(NOW) - i128::from(value)).abs() <= i128::from(tolerance)
}

/// Headers with timestamp `t` as given and a correct MAC over that text.
fn signed(scheme: &Scheme, secret: &[u8], t: &[u8], body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let hmac = |parts: &[&[u8]]| reference_hmac(Algorithm::Sha256, secret, parts);
    let pair = |name: &str, value: &[u8]| (name.to_string(), value.to_vec());
    match scheme {
        Scheme::Stripe => {
            let mac = hex::encode(hmac(&[t, b".", body]));
            vec![pair(
                "stripe-signature",
                &[b"t=", t, b",v1=", mac.as_bytes()].concat(),
            )]
        }
        Scheme::Slack => {
            let mac = hex::encode(hmac(&[b"v0:", t, b":", body]));
            vec![
                pair("x-slack-request-timestamp", t),
                pair("x-slack-signature", format!("v0={mac}").as_bytes()),
            ]
        }
        Scheme::StandardWebhooks | Scheme::Svix => {
            let prefix = if matches!(scheme, Scheme::Svix) {
                "svix"
            } else {
                "webhook"
            };
            let mac = STANDARD.encode(hmac(&[b"msg_1.", t, b".", body]));
            vec![
                pair(&format!("{prefix}-id"), b"msg_1"),
                pair(&format!("{prefix}-timestamp"), t),
                pair(
                    &format!("{prefix}-signature"),
                    format!("v1,{mac}").as_bytes(),
                ),
            ]
        }
        // The first generic rule: `sha256=` and hex over `{timestamp}.{body}`, in X-Ts.
        _ => {
            let mac = hex::encode(hmac(&[t, b".", body]));
            vec![
                pair("x-ts", t),
                pair("x-sig", format!("sha256={mac}").as_bytes()),
            ]
        }
    }
}

fuzz_target!(|input: Input| {
    let mut text = input.text.clone();
    if let Some((delta, zeros)) = input.near {
        text.extend(std::iter::repeat_n(b'0', usize::from(zeros % 4)));
        text.extend((NOW + i64::from(delta)).to_string().bytes());
    }
    // Header values cannot hold control characters, so such text never reaches a verifier.
    if http::HeaderValue::from_bytes(&text).is_err() {
        return;
    }
    let tolerance = u64::from(input.tolerance % 1000);
    let expected = acceptable(&text, tolerance);
    let schemes = [
        Scheme::Stripe,
        Scheme::Slack,
        Scheme::StandardWebhooks,
        Scheme::Svix,
    ];
    let rules = generic_rules().into_iter().take(1);

    for scheme in schemes.into_iter().chain(rules) {
        let Some(key) = key_for(&scheme, &input.secret) else {
            return;
        };
        let headers = header_map(&signed(&scheme, &input.secret, &text, &input.body));
        let window = Duration::from_secs(tolerance);

        let result = verify_within(&scheme, &headers, &input.body, &[key], NOW, window);

        assert_eq!(
            result.is_ok(),
            expected,
            "{} with timestamp {:?} and tolerance {tolerance} s: {result:?}",
            scheme.name(),
            String::from_utf8_lossy(&text)
        );
        if let Ok(verified) = result {
            let value = std::str::from_utf8(&text).ok().and_then(|t| t.parse().ok());
            assert_eq!(verified.timestamp, value, "reported timestamp");
        }
    }
});

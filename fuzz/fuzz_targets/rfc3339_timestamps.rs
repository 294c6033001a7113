//! RFC 3339 timestamps, as Twitch signs them: hookgate accepts a subset of what `chrono`
//! accepts and reads the same instant, rounded down to whole seconds. Every text `chrono`
//! accepts is accepted too unless it uses lower-case `t` or `z`, a space separator, a leap
//! second or more than nine fraction digits, which hookgate rejects on purpose.

#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use hookgate::provider::{Algorithm, Scheme};
use hookgate_fuzz::{header_map, key_for, reference_hmac, verify_within};
use libfuzzer_sys::fuzz_target;

/// Tolerance wide enough for any four-digit year, so that only the format decides.
const ANY_TIME: Duration = Duration::from_secs(1_000_000_000_000);

#[derive(Arbitrary, Debug)]
struct Input {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    /// Fraction digits, each taken modulo 10, at most 12.
    fraction: Vec<u8>,
    /// `None` writes `Z`, otherwise a sign, hours and minutes.
    offset: Option<(bool, u8, u8)>,
    /// One byte of the text replaced by a visible ASCII character.
    edit: Option<(usize, u8)>,
}

impl Input {
    fn text(&self) -> String {
        let mut text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year % 10_000,
            self.month % 14,
            self.day % 33,
            self.hour % 25,
            self.minute % 61,
            self.second % 62
        );
        if !self.fraction.is_empty() {
            text.push('.');
            for digit in self.fraction.iter().take(12) {
                text.push(char::from(b'0' + digit % 10));
            }
        }
        match self.offset {
            None => text.push('Z'),
            Some((east, hours, minutes)) => {
                let sign = if east { '+' } else { '-' };
                text.push_str(&format!("{sign}{:02}:{:02}", hours % 25, minutes % 61));
            }
        }
        let mut bytes = text.into_bytes();
        if let Some((at, byte)) = self.edit {
            let at = at % bytes.len();
            bytes[at] = b' ' + byte % 95;
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Returns whether `text` uses only the forms hookgate accepts beyond what `chrono` checks.
fn strict_form(text: &str) -> bool {
    let fraction_digits = text.split_once('.').map_or(0, |(_, rest)| {
        rest.bytes().take_while(u8::is_ascii_digit).count()
    });
    let leap_second = text.get(17..19) == Some("60");
    !text.contains(['t', 'z', ' ']) && fraction_digits <= 9 && !leap_second
}

fuzz_target!(|input: Input| {
    let text = input.text();
    let secret = b"twitch-secret";
    let scheme = Scheme::Twitch;
    let Some(key) = key_for(&scheme, secret) else {
        return;
    };
    let body = b"{}";
    let mac = reference_hmac(
        Algorithm::Sha256,
        secret,
        &[b"msg_1", text.as_bytes(), body],
    );
    let pairs = vec![
        ("twitch-eventsub-message-id".to_string(), b"msg_1".to_vec()),
        (
            "twitch-eventsub-message-timestamp".to_string(),
            text.clone().into_bytes(),
        ),
        (
            "twitch-eventsub-message-signature".to_string(),
            format!("sha256={}", hex::encode(mac)).into_bytes(),
        ),
    ];
    let headers = header_map(&pairs);
    let keys = std::slice::from_ref(&key);

    match chrono::DateTime::parse_from_rfc3339(&text) {
        Ok(instant) => {
            let seconds = instant.timestamp();
            // With no tolerance, only a timestamp read as exactly `seconds` passes.
            let result = verify_within(&scheme, &headers, body, keys, seconds, Duration::ZERO);
            if strict_form(&text) {
                assert!(result.is_ok(), "{text:?} is {seconds}: {result:?}");
            }
            if let Ok(verified) = result {
                assert_eq!(verified.timestamp, Some(seconds), "{text:?}");
            } else {
                let anywhere = verify_within(&scheme, &headers, body, keys, seconds, ANY_TIME);
                assert!(
                    anywhere.is_err(),
                    "{text:?} read as another instant than {seconds}"
                );
            }
        }
        Err(_) => {
            let result = verify_within(&scheme, &headers, body, keys, 0, ANY_TIME);
            assert!(
                result.is_err(),
                "{text:?} is not RFC 3339 but verified: {result:?}"
            );
        }
    }
});

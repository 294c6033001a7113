//! Signature, timestamp and id headers with any values never verify: not without keys, and
//! not with a key, because no value was made with it. The one exception is GitLab's shared
//! token, which verifies when a token header carries the secret itself.

#![no_main]

use arbitrary::Arbitrary;
use hookgate_fuzz::{all_schemes, header_map, key_for, verify, HEADER_NAMES};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Header values, each for the name at index `name % HEADER_NAMES.len()`.
    headers: Vec<(u8, Vec<u8>)>,
    body: Vec<u8>,
    secret: Vec<u8>,
    now: i64,
}

fuzz_target!(|input: Input| {
    let pairs: Vec<(String, Vec<u8>)> = input
        .headers
        .iter()
        .map(|(name, value)| {
            let name = HEADER_NAMES[usize::from(*name) % HEADER_NAMES.len()];
            (name.to_string(), value.clone())
        })
        .collect();
    let headers = header_map(&pairs);

    for scheme in all_schemes() {
        if scheme.name() == "none" {
            continue;
        }
        let without_keys = verify(&scheme, &headers, &input.body, &[], input.now);
        assert!(
            without_keys.is_err(),
            "{} verified with no keys",
            scheme.name()
        );

        let Some(key) = key_for(&scheme, &input.secret) else {
            continue;
        };
        let with_key = verify(&scheme, &headers, &input.body, &[key], input.now);
        let token_sent = headers
            .get_all("x-gitlab-token")
            .iter()
            .any(|value| value.as_bytes() == input.secret.as_slice());
        if scheme.name() == "gitlab" && token_sent {
            continue;
        }
        assert!(
            with_key.is_err(),
            "{} verified headers not made with its key: {headers:?}",
            scheme.name()
        );
    }
});

//! Preset names and the per-preset properties of [`Scheme`].

use super::test_support::{header_map, hmac_sha256, request};
use super::*;

#[test]
fn preset_names_round_trip() {
    for name in Scheme::preset_names() {
        let scheme = Scheme::preset(name);
        assert!(scheme.is_some(), "preset {name} not found");
        assert_eq!(scheme.map(|s| s.name()), Some(*name));
    }
}

#[test]
fn preset_unknown_name() {
    assert!(Scheme::preset("hmac").is_none());
    assert!(Scheme::preset("GitHub").is_none());
    assert!(Scheme::preset("").is_none());
}

#[test]
fn uses_timestamp_per_preset() {
    let timed: Vec<&str> = Scheme::preset_names()
        .iter()
        .copied()
        .filter(|name| Scheme::preset(name).is_some_and(|s| s.uses_timestamp()))
        .collect();
    assert_eq!(
        timed,
        [
            "stripe",
            "slack",
            "standard-webhooks",
            "svix",
            "zendesk",
            "linear",
            "twitch",
            "paddle",
            "mailgun",
            "sendgrid",
            "discord",
            "hubspot",
            "calendly",
            "clerk",
            "resend",
            "zoom"
        ]
    );
}

#[test]
fn aliases_select_their_preset() {
    for (alias, name) in Scheme::preset_aliases() {
        assert_eq!(Scheme::preset(alias).map(|s| s.name()), Some(*name));
        assert!(!Scheme::preset_names().contains(alias), "{alias}");
    }
}

#[test]
fn at_least_thirty_presets() {
    assert!(Scheme::preset_names().len() >= 30);
}

#[test]
fn preset_names_are_unique() {
    let mut names = Scheme::preset_names().to_vec();
    names.sort_unstable();
    names.dedup();

    assert_eq!(names.len(), Scheme::preset_names().len());
}

#[test]
fn signature_header_per_preset() {
    let without: Vec<&str> = Scheme::preset_names()
        .iter()
        .copied()
        .filter(|name| Scheme::preset(name).is_some_and(|s| s.signature_header().is_none()))
        .collect();

    assert_eq!(without, ["mailgun", "gitlab", "none"]);
}

#[test]
fn signs_url_per_preset() {
    let url_bound: Vec<&str> = Scheme::preset_names()
        .iter()
        .copied()
        .filter(|name| Scheme::preset(name).is_some_and(|s| s.signs_url()))
        .collect();
    let rule = HmacRule::new(
        Algorithm::Sha256,
        "x-sig",
        None,
        Encoding::Hex,
        "{url}{body}",
        None,
        None,
    );

    assert_eq!(url_bound, ["twilio", "square", "hubspot"]);
    assert!(rule.is_ok_and(|rule| Scheme::Hmac(rule).signs_url()));
}

#[test]
fn none_verifies_without_keys() -> Result<(), KeyError> {
    let headers = header_map(&[]);
    let key = Scheme::Unsigned.derive_key(b"")?;

    let without_keys = Scheme::Unsigned.verify(&request(&headers, b"x"), &[], 0, Duration::ZERO);
    let with_key = Scheme::Unsigned.verify(&request(&headers, b""), &[key], 0, Duration::ZERO);

    let expected = Ok(Verified {
        key_index: 0,
        timestamp: None,
    });
    assert_eq!(without_keys, expected);
    assert_eq!(with_key, expected);
    assert!(!Scheme::Unsigned.needs_keys());
    assert!(Scheme::Github.needs_keys());
    Ok(())
}

#[test]
fn public_key_preset_rejects_shared_secret() {
    let discord = Scheme::Discord.derive_key(b"a shared secret");
    let sendgrid = Scheme::Sendgrid.derive_key(b"a shared secret");

    assert_eq!(discord.map(|_| ()), Err(KeyError::InvalidEd25519Key));
    assert_eq!(sendgrid.map(|_| ()), Err(KeyError::InvalidP256Key));
}

#[test]
fn public_key_never_matches_hmac_scheme() -> Result<(), KeyError> {
    let key = Scheme::Discord
        .derive_key(b"21e5924f73f48a4cef37011ed7bd42b67be8b09262d1a01b61dee7b132e78599")?;
    // The HMAC of the body under an empty key, which a key without a secret must not
    // stand in for.
    let signature = format!("sha256={}", hex::encode(hmac_sha256(b"", &[b"{}"])));
    let headers = header_map(&[("x-hub-signature-256", signature.as_bytes())]);

    let result = Scheme::Github.verify(&request(&headers, b"{}"), &[key], 0, Duration::ZERO);

    assert_eq!(result, Err(Failure::SignatureInvalid));
    Ok(())
}

#[test]
fn rotation_reports_second_key() -> Result<(), KeyError> {
    let body = br#"{"id":1}"#;
    let signature = format!("sha256={}", hex::encode(hmac_sha256(b"new", &[body])));
    let headers = header_map(&[("x-hub-signature-256", signature.as_bytes())]);
    let keys = [
        Scheme::Github.derive_key(b"old")?,
        Scheme::Github.derive_key(b"new")?,
    ];

    let result = Scheme::Github.verify(&request(&headers, body), &keys, 0, Duration::ZERO);

    assert_eq!(
        result,
        Ok(Verified {
            key_index: 1,
            timestamp: None
        })
    );
    Ok(())
}

#[test]
fn no_keys_is_invalid() {
    let body = b"{}";
    let signature = format!("sha256={}", hex::encode(hmac_sha256(b"k", &[body])));
    let headers = header_map(&[("x-hub-signature-256", signature.as_bytes())]);

    let result = Scheme::Github.verify(&request(&headers, body), &[], 0, Duration::ZERO);

    assert_eq!(result, Err(Failure::SignatureInvalid));
}

//! Helpers shared by the fuzz targets: the schemes under test, key derivation that every
//! scheme accepts, header maps from raw pairs, and reference HMACs computed without hookgate.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use hookgate::provider::{Algorithm, Encoding, Failure, HmacRule, Key, Request, Scheme, Verified};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Every header a preset or [`generic_rules`] reads, so that fuzzed values reach the parsers.
pub const HEADER_NAMES: &[&str] = &[
    "x-hub-signature-256",
    "x-hub-signature",
    "stripe-signature",
    "paddle-signature",
    "calendly-webhook-signature",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-shopify-hmac-sha256",
    "x-twilio-signature",
    "x-square-hmacsha256-signature",
    "x-zendesk-webhook-signature",
    "x-zendesk-webhook-signature-timestamp",
    "x-pagerduty-signature",
    "linear-signature",
    "twitch-eventsub-message-id",
    "twitch-eventsub-message-timestamp",
    "twitch-eventsub-message-signature",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-wc-webhook-signature",
    "sentry-hook-signature",
    "x-gitlab-token",
    "x-signature-ed25519",
    "x-signature-timestamp",
    "x-twilio-email-event-webhook-signature",
    "x-twilio-email-event-webhook-timestamp",
    "x-twilio-webhooks-signature-settings",
    "x-github-delivery",
    "x-gitlab-webhook-uuid",
    "x-shopify-webhook-id",
    "x-request-id",
    "x-request-uuid",
    "x-sig",
    "x-ts",
    "x-id",
];

/// Presets whose signature does not cover raw bytes the way [`sign`](hookgate::provider::sign)
/// writes them. Discord and SendGrid use public keys, Mailgun puts its signature inside the
/// body, GitLab and `none` check a shared token or nothing, Linear signs a field inside the
/// body, and Twilio signs form parameters.
pub const NOT_BYTE_SIGNED: &[&str] = &[
    "discord", "sendgrid", "mailgun", "gitlab", "none", "linear", "twilio",
];

/// Generic rules that cover each algorithm, both encodings, a prefix and every placeholder.
pub fn generic_rules() -> Vec<Scheme> {
    let rules = [
        HmacRule::new(
            Algorithm::Sha256,
            "X-Sig",
            Some("sha256="),
            Encoding::Hex,
            "{timestamp}.{body}",
            Some("X-Ts"),
            None,
        ),
        HmacRule::new(
            Algorithm::Sha512,
            "X-Sig",
            Some("v1="),
            Encoding::Base64,
            "{method} {url}\n{id}.{timestamp}.{body}",
            Some("X-Ts"),
            Some("X-Id"),
        ),
        HmacRule::new(
            Algorithm::Sha1,
            "X-Sig",
            None,
            Encoding::Base64,
            "{body}",
            None,
            None,
        ),
    ];
    rules.into_iter().flatten().map(Scheme::Hmac).collect()
}

/// Returns every preset, then [`generic_rules`].
pub fn all_schemes() -> Vec<Scheme> {
    let presets = Scheme::preset_names()
        .iter()
        .filter_map(|name| Scheme::preset(name));
    presets.chain(generic_rules()).collect()
}

/// Returns the presets and rules that [`hookgate::provider::sign::sign`] signs over raw bytes.
pub fn byte_signed_schemes() -> Vec<Scheme> {
    all_schemes()
        .into_iter()
        .filter(|scheme| !NOT_BYTE_SIGNED.contains(&scheme.name()))
        .collect()
}

/// Derives a key whose MAC key is `secret` itself: `whsec_` and base64 for Standard Webhooks
/// and the Svix family, the bytes unchanged for every other scheme. `None` for an empty
/// secret, and for a secret that the scheme refuses (a PEM document, say).
pub fn key_for(scheme: &Scheme, secret: &[u8]) -> Option<Key> {
    let text = match scheme {
        Scheme::StandardWebhooks | Scheme::Svix | Scheme::Clerk | Scheme::Resend => {
            format!("whsec_{}", STANDARD.encode(secret)).into_bytes()
        }
        _ => secret.to_vec(),
    };
    scheme.derive_key(&text).ok()
}

/// Builds a header map from `pairs`, skipping names or values HTTP cannot carry, as a
/// server's parser would have rejected them before any verifier ran.
pub fn header_map(pairs: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    map
}

/// Verifies a `POST` to `/hooks/x` with a five-minute tolerance.
pub fn verify(
    scheme: &Scheme,
    headers: &HeaderMap,
    body: &[u8],
    keys: &[Key],
    now: i64,
) -> Result<Verified, Failure> {
    verify_within(scheme, headers, body, keys, now, Duration::from_secs(300))
}

/// Verifies a `POST` to `/hooks/x` with `tolerance`.
pub fn verify_within(
    scheme: &Scheme,
    headers: &HeaderMap,
    body: &[u8],
    keys: &[Key],
    now: i64,
    tolerance: Duration,
) -> Result<Verified, Failure> {
    let request = Request {
        method: "POST",
        url: "/hooks/x",
        headers,
        body,
    };
    scheme.verify(&request, keys, now, tolerance)
}

/// HMAC of the concatenated `parts` under `key`, computed with the `hmac` crate directly.
pub fn reference_hmac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
            return Vec::new();
        };
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(key, parts),
        Algorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(key, parts),
        Algorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(key, parts),
    }
}

//! Signature verification stage: decides whether a webhook request was signed by its provider
//! with one of the route's keys and, for schemes that sign a timestamp, whether that timestamp
//! lies within the tolerance on either side of the current time.
//!
//! Every scheme computes the MAC over the raw body bytes as received and compares MACs in
//! constant time. Request data never causes a panic: a header that is absent, repeated, not
//! visible ASCII or not in the scheme's format produces a [`Failure`].
//!
//! For schemes with a timestamp the MAC is checked before the time window, so
//! `timestamp_expired` and `timestamp_in_future` only count requests that were signed with a
//! configured key: a replay or a clock offset, not a forgery.

mod encoding;
mod failure;
mod github;
mod headers;
mod hmac_rule;
mod key;
mod mac;
mod shopify;
pub mod sign;
mod slack;
mod standard;
mod stripe;
mod template;
mod timestamp;

#[cfg(test)]
mod test_support;

use std::time::Duration;

pub use encoding::Encoding;
pub use failure::Failure;
pub use hmac_rule::HmacRule;
pub use key::{Key, KeyError};
pub use mac::Algorithm;

/// The parts of an HTTP request that a signature can cover.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// URL substituted for `{url}` in a generic rule. The caller chooses it, normally the
    /// public URL the provider sent the request to.
    pub url: &'a str,
    pub headers: &'a http::HeaderMap,
    /// Raw body bytes, exactly as received.
    pub body: &'a [u8],
}

/// Outcome of a successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Index into the `keys` slice of the first key that matched.
    pub key_index: usize,
    /// Signed timestamp in Unix seconds, for schemes that have one.
    pub timestamp: Option<i64>,
}

/// A signing scheme: one provider preset or a generic HMAC rule.
#[derive(Debug, Clone)]
pub enum Scheme {
    /// `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the body.
    Github,
    /// GitHub's legacy `X-Hub-Signature: sha1=<hex>`, HMAC-SHA1 of the body. Opt-in only.
    GithubSha1,
    /// `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 of `t.body`.
    Stripe,
    /// `X-Slack-Signature: v0=<hex>` with `X-Slack-Request-Timestamp`, HMAC-SHA256 of
    /// `v0:timestamp:body`.
    Slack,
    /// `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64> ...`, HMAC-SHA256
    /// of `id.timestamp.body`.
    StandardWebhooks,
    /// Standard Webhooks with `svix-id`, `svix-timestamp` and `svix-signature` headers.
    /// White-labelled Svix senders use the `webhook-*` names and need `StandardWebhooks`.
    Svix,
    /// `X-Shopify-Hmac-Sha256: <base64>`, HMAC-SHA256 of the body.
    Shopify,
    /// A rule built from configuration.
    Hmac(HmacRule),
}

const PRESET_NAMES: &[&str] = &[
    "github",
    "github-sha1",
    "stripe",
    "slack",
    "standard-webhooks",
    "svix",
    "shopify",
];

impl Scheme {
    /// Returns the preset with this name, or `None` for an unknown name. Names are
    /// case-sensitive and listed by [`Scheme::preset_names`].
    pub fn preset(name: &str) -> Option<Scheme> {
        let scheme = match name {
            "github" => Scheme::Github,
            "github-sha1" => Scheme::GithubSha1,
            "stripe" => Scheme::Stripe,
            "slack" => Scheme::Slack,
            "standard-webhooks" => Scheme::StandardWebhooks,
            "svix" => Scheme::Svix,
            "shopify" => Scheme::Shopify,
            _ => return None,
        };
        Some(scheme)
    }

    /// Returns every name that [`Scheme::preset`] accepts.
    pub fn preset_names() -> &'static [&'static str] {
        PRESET_NAMES
    }

    /// Returns the preset name, or `"hmac"` for a generic rule. The set of values is fixed,
    /// so it can be a metric label.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Github => "github",
            Scheme::GithubSha1 => "github-sha1",
            Scheme::Stripe => "stripe",
            Scheme::Slack => "slack",
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Svix => "svix",
            Scheme::Shopify => "shopify",
            Scheme::Hmac(_) => "hmac",
        }
    }

    /// Derives the MAC key from one configured secret.
    ///
    /// Standard Webhooks and Svix secrets are `whsec_` followed by base64 (the prefix may be
    /// left out) and the decoded bytes are the key. Every other scheme uses the secret's bytes
    /// unchanged, which for Stripe includes its `whsec_` prefix.
    pub fn derive_key(&self, secret: &[u8]) -> Result<Key, KeyError> {
        match self {
            Scheme::StandardWebhooks | Scheme::Svix => Key::from_whsec(secret),
            _ => Key::from_raw(secret),
        }
    }

    /// Returns the header that carries the sender's delivery id, for logs and duplicate
    /// detection. Stripe and Slack send none in a header.
    pub fn delivery_id_header(&self) -> Option<&http::HeaderName> {
        static GITHUB: http::HeaderName = http::HeaderName::from_static("x-github-delivery");
        static WEBHOOK: http::HeaderName = http::HeaderName::from_static("webhook-id");
        static SVIX: http::HeaderName = http::HeaderName::from_static("svix-id");
        static SHOPIFY: http::HeaderName = http::HeaderName::from_static("x-shopify-webhook-id");
        match self {
            Scheme::Github | Scheme::GithubSha1 => Some(&GITHUB),
            Scheme::StandardWebhooks => Some(&WEBHOOK),
            Scheme::Svix => Some(&SVIX),
            Scheme::Shopify => Some(&SHOPIFY),
            Scheme::Stripe | Scheme::Slack => None,
            Scheme::Hmac(rule) => rule.id_header(),
        }
    }

    /// Returns the header that carries the signature.
    pub fn signature_header(&self) -> &http::HeaderName {
        static GITHUB: http::HeaderName = http::HeaderName::from_static("x-hub-signature-256");
        static GITHUB_SHA1: http::HeaderName = http::HeaderName::from_static("x-hub-signature");
        static STRIPE: http::HeaderName = http::HeaderName::from_static("stripe-signature");
        static SLACK: http::HeaderName = http::HeaderName::from_static("x-slack-signature");
        static WEBHOOK: http::HeaderName = http::HeaderName::from_static("webhook-signature");
        static SVIX: http::HeaderName = http::HeaderName::from_static("svix-signature");
        static SHOPIFY: http::HeaderName = http::HeaderName::from_static("x-shopify-hmac-sha256");
        match self {
            Scheme::Github => &GITHUB,
            Scheme::GithubSha1 => &GITHUB_SHA1,
            Scheme::Stripe => &STRIPE,
            Scheme::Slack => &SLACK,
            Scheme::StandardWebhooks => &WEBHOOK,
            Scheme::Svix => &SVIX,
            Scheme::Shopify => &SHOPIFY,
            Scheme::Hmac(rule) => rule.signature_header(),
        }
    }

    /// Returns whether the scheme signs a timestamp that `verify` checks against the tolerance.
    pub fn uses_timestamp(&self) -> bool {
        match self {
            Scheme::Stripe | Scheme::Slack | Scheme::StandardWebhooks | Scheme::Svix => true,
            Scheme::Github | Scheme::GithubSha1 | Scheme::Shopify => false,
            Scheme::Hmac(rule) => rule.uses_timestamp(),
        }
    }

    /// Verifies the request's signature against every key in `keys`, where any key may match.
    ///
    /// `now` is the current time in Unix seconds. A signed timestamp is rejected when it is
    /// more than `tolerance` (whole seconds) older or newer than `now`. With no keys every
    /// well-formed request fails with [`Failure::SignatureInvalid`].
    pub fn verify(
        &self,
        request: &Request<'_>,
        keys: &[Key],
        now: i64,
        tolerance: Duration,
    ) -> Result<Verified, Failure> {
        match self {
            Scheme::Github => github::verify(request, keys, github::Version::Sha256),
            Scheme::GithubSha1 => github::verify(request, keys, github::Version::Sha1),
            Scheme::Stripe => stripe::verify(request, keys, now, tolerance),
            Scheme::Slack => slack::verify(request, keys, now, tolerance),
            Scheme::StandardWebhooks => {
                standard::verify(request, keys, now, tolerance, &standard::WEBHOOK_HEADERS)
            }
            Scheme::Svix => {
                standard::verify(request, keys, now, tolerance, &standard::SVIX_HEADERS)
            }
            Scheme::Shopify => shopify::verify(request, keys),
            Scheme::Hmac(rule) => rule.verify(request, keys, now, tolerance),
        }
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(timed, ["stripe", "slack", "standard-webhooks", "svix"]);
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
}

//! Signature verification stage: decides whether a webhook request was signed by its provider
//! with one of the route's keys and, for schemes that sign a timestamp, whether that timestamp
//! lies within the tolerance on either side of the current time.
//!
//! HMAC schemes compute the MAC over the raw body bytes as received and compare MACs in
//! constant time. Public-key schemes verify Ed25519, ECDSA or RSA signatures over the same
//! raw bytes. The exceptions, each documented on its variant, are Mailgun (only fields of the body
//! are signed), GitLab (a shared token, compared in constant time) and `none` (no check).
//! Request data never causes a panic: a header that is absent, repeated, not visible ASCII or
//! not in the scheme's format produces a [`Failure`].
//!
//! For schemes with a timestamp the signature is checked before the time window, so
//! `timestamp_expired` and `timestamp_in_future` only count requests that were signed with a
//! configured key: a replay or a clock offset, not a forgery.

pub mod catalog;
mod declared;
mod encoding;
mod failure;
mod github;
mod gitlab;
pub mod handshake;
mod headers;
mod hmac_rule;
mod json;
mod key;
mod key_text;
mod linear;
mod mac;
mod mailgun;
mod private_key;
mod public_key;
mod public_url;
mod rfc3339;
mod shopify;
pub mod sign;
mod signature_rule;
mod slack;
mod standard;
mod stripe;
mod template;
mod timestamp;
mod twilio;

#[cfg(test)]
mod test_support;

use std::time::Duration;

use http::HeaderName;

pub use encoding::Encoding;
pub use failure::Failure;
pub use hmac_rule::HmacRule;
pub use key::{Key, KeyError};
pub use mac::Algorithm;
pub use private_key::PrivateKey;
pub use public_url::PublicUrl;
pub use signature_rule::{KeyAlgorithm, SignatureEncoding, SignatureRule};

/// The parts of an HTTP request that a signature can cover.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The public URL the provider sent the request to, query string included exactly as
    /// received. Twilio, Square and HubSpot sign it, and a generic rule may sign it as `{url}`.
    pub url: &'a str,
    pub headers: &'a http::HeaderMap,
    /// Raw body bytes, exactly as received.
    pub body: &'a [u8],
}

/// Outcome of a successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Index into the `keys` slice of the first key that matched. Always 0 for `none`.
    pub key_index: usize,
    /// Signed timestamp in Unix seconds, rounded down, for schemes that have one.
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
    /// Clerk, which sends through Svix: the `Svix` scheme under its own name.
    Clerk,
    /// Resend, which sends through Svix: the `Svix` scheme under its own name.
    Resend,
    /// `X-Shopify-Hmac-Sha256: <base64>`, HMAC-SHA256 of the body.
    Shopify,
    /// `X-Twilio-Signature: <base64>`, HMAC-SHA1 (or HMAC-SHA256 for a SharedKey) of the URL
    /// and the sorted form parameters, or of a URL whose `bodySHA256` matches the body.
    Twilio,
    /// `x-square-hmacsha256-signature: <base64>`, HMAC-SHA256 of `url ‖ body`.
    Square,
    /// `X-Zendesk-Webhook-Signature: <base64>` with an RFC 3339
    /// `X-Zendesk-Webhook-Signature-Timestamp`, HMAC-SHA256 of `timestamp ‖ body`.
    Zendesk,
    /// `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 of the body.
    Pagerduty,
    /// `Linear-Signature: <hex>`, HMAC-SHA256 of the body, whose `webhookTimestamp` field
    /// (Unix milliseconds) is checked against the tolerance.
    Linear,
    /// `Twitch-Eventsub-Message-Signature: sha256=<hex>`, HMAC-SHA256 of
    /// `message id ‖ RFC 3339 message timestamp ‖ body`.
    Twitch,
    /// `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=<hex>...]`, HMAC-SHA256 of `ts:body`.
    Paddle,
    /// JSON body field `signature: {timestamp, token, signature}`, HMAC-SHA256 of
    /// `timestamp ‖ token`. The rest of the body is not signed.
    Mailgun,
    /// `X-Twilio-Email-Event-Webhook-Signature: <base64 DER>` with
    /// `X-Twilio-Email-Event-Webhook-Timestamp`, ECDSA P-256 SHA-256 of `timestamp ‖ body`
    /// under a public key.
    Sendgrid,
    /// `X-Gitlab-Token: <token>`, the configured token sent verbatim. The body is not signed.
    Gitlab,
    /// `X-Hub-Signature: sha256=<hex>`, HMAC-SHA256 of the body.
    Bitbucket,
    /// `X-Signature-Ed25519: <hex>` with `X-Signature-Timestamp`, Ed25519 of
    /// `timestamp ‖ body` under a public key.
    Discord,
    /// `X-HubSpot-Signature-v3: <base64>` with `X-HubSpot-Request-Timestamp` (Unix
    /// milliseconds), HMAC-SHA256 of `method ‖ url ‖ body ‖ timestamp`.
    Hubspot,
    /// `Calendly-Webhook-Signature: t=<unix>,v1=<hex>`, HMAC-SHA256 of `t.body`.
    Calendly,
    /// `X-WC-Webhook-Signature: <base64>`, HMAC-SHA256 of the body.
    Woocommerce,
    /// `Sentry-Hook-Signature: <hex>`, HMAC-SHA256 of the body.
    Sentry,
    /// `X-Hub-Signature: sha1=<hex>`, HMAC-SHA1 of the body.
    Intercom,
    /// `Typeform-Signature: sha256=<base64>`, HMAC-SHA256 of the body.
    Typeform,
    /// `x-vercel-signature: <hex>`, HMAC-SHA1 of the body.
    Vercel,
    /// `X-Hub-Signature: sha256=<hex>`, HMAC-SHA256 of the body (Jira admin webhooks).
    Jira,
    /// `x-zm-signature: v0=<hex>` with `x-zm-request-timestamp`, HMAC-SHA256 of
    /// `v0:timestamp:body`. The gateway responds to `endpoint.url_validation` itself.
    Zoom,
    /// `x-twitter-webhooks-signature: sha256=<base64>`, HMAC-SHA256 of the body. The gateway
    /// responds to the `GET ?crc_token=` challenge-response check itself.
    Twitter,
    /// Preset `none`: no signature is checked and every request is verified. The gateway's
    /// other checks (size, rate and IP limits, duplicate detection) still apply.
    Unsigned,
    /// A rule built from configuration.
    Hmac(HmacRule),
    /// A public-key rule built from configuration.
    Signature(SignatureRule),
}

const PRESET_NAMES: &[&str] = &[
    "github",
    "github-sha1",
    "stripe",
    "slack",
    "standard-webhooks",
    "svix",
    "shopify",
    "twilio",
    "square",
    "zendesk",
    "pagerduty",
    "linear",
    "twitch",
    "paddle",
    "mailgun",
    "sendgrid",
    "gitlab",
    "bitbucket",
    "discord",
    "hubspot",
    "calendly",
    "woocommerce",
    "sentry",
    "clerk",
    "resend",
    "intercom",
    "typeform",
    "vercel",
    "jira",
    "zoom",
    "twitter",
    "none",
];

/// Other names that [`Scheme::preset`] accepts, each with the preset it selects.
const PRESET_ALIASES: &[(&str, &str)] = &[("x", "twitter")];

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
            "twilio" => Scheme::Twilio,
            "square" => Scheme::Square,
            "zendesk" => Scheme::Zendesk,
            "pagerduty" => Scheme::Pagerduty,
            "linear" => Scheme::Linear,
            "twitch" => Scheme::Twitch,
            "paddle" => Scheme::Paddle,
            "mailgun" => Scheme::Mailgun,
            "sendgrid" => Scheme::Sendgrid,
            "gitlab" => Scheme::Gitlab,
            "bitbucket" => Scheme::Bitbucket,
            "discord" => Scheme::Discord,
            "hubspot" => Scheme::Hubspot,
            "calendly" => Scheme::Calendly,
            "woocommerce" => Scheme::Woocommerce,
            "sentry" => Scheme::Sentry,
            "clerk" => Scheme::Clerk,
            "resend" => Scheme::Resend,
            "intercom" => Scheme::Intercom,
            "typeform" => Scheme::Typeform,
            "vercel" => Scheme::Vercel,
            "jira" => Scheme::Jira,
            "zoom" => Scheme::Zoom,
            "twitter" | "x" => Scheme::Twitter,
            "none" => Scheme::Unsigned,
            _ => return None,
        };
        Some(scheme)
    }

    /// Returns the name of every preset, one per scheme. [`Scheme::preset_aliases`] lists the
    /// other names that select one of them.
    pub fn preset_names() -> &'static [&'static str] {
        PRESET_NAMES
    }

    /// Returns the alternative preset names, each with the name of the preset it selects.
    pub fn preset_aliases() -> &'static [(&'static str, &'static str)] {
        PRESET_ALIASES
    }

    /// Returns the preset name, or `"hmac"` or `"signature"` for a generic rule. The set of values is fixed,
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
            Scheme::Twilio => "twilio",
            Scheme::Square => "square",
            Scheme::Zendesk => "zendesk",
            Scheme::Pagerduty => "pagerduty",
            Scheme::Linear => "linear",
            Scheme::Twitch => "twitch",
            Scheme::Paddle => "paddle",
            Scheme::Mailgun => "mailgun",
            Scheme::Sendgrid => "sendgrid",
            Scheme::Gitlab => "gitlab",
            Scheme::Bitbucket => "bitbucket",
            Scheme::Discord => "discord",
            Scheme::Hubspot => "hubspot",
            Scheme::Calendly => "calendly",
            Scheme::Woocommerce => "woocommerce",
            Scheme::Sentry => "sentry",
            Scheme::Clerk => "clerk",
            Scheme::Resend => "resend",
            Scheme::Intercom => "intercom",
            Scheme::Typeform => "typeform",
            Scheme::Vercel => "vercel",
            Scheme::Jira => "jira",
            Scheme::Zoom => "zoom",
            Scheme::Twitter => "twitter",
            Scheme::Unsigned => "none",
            Scheme::Hmac(_) => "hmac",
            Scheme::Signature(_) => "signature",
        }
    }

    /// Derives the key from one entry of a route's `secrets:`.
    ///
    /// Standard Webhooks and the Svix family take `whsec_` followed by base64 (the prefix may
    /// be left out) and the decoded bytes are the key. Discord and SendGrid take their public
    /// key here too, as [`Scheme::derive_public_key`] does, because routes written before
    /// `public_keys:` existed list it under `secrets:`. `none` accepts any secret, even an
    /// empty one, and keeps none of it. A generic `signature:` rule takes no secrets. Every
    /// other scheme uses the secret's bytes unchanged, which for Stripe includes its `whsec_`
    /// prefix.
    pub fn derive_key(&self, secret: &[u8]) -> Result<Key, KeyError> {
        match self {
            Scheme::StandardWebhooks | Scheme::Svix | Scheme::Clerk | Scheme::Resend => {
                Key::from_whsec(secret)
            }
            Scheme::Discord => Key::from_ed25519_hex(secret),
            Scheme::Sendgrid => Key::from_p256_spki(secret),
            Scheme::Signature(_) => Err(KeyError::PublicKeyExpected),
            Scheme::Unsigned => Ok(Key::unused()),
            _ => Key::from_raw(secret),
        }
    }

    /// Derives the key from one entry of a route's `public_keys:`.
    ///
    /// Discord takes the application's Ed25519 public key as 64 hex digits, and SendGrid its
    /// ECDSA P-256 verification key as base64 DER SubjectPublicKeyInfo or PEM. Standard
    /// Webhooks and the Svix family take an Ed25519 key for `v1a` signatures, written as
    /// `whpk_` followed by base64 of its 32 bytes. A generic `signature:` rule takes PEM, hex
    /// or base64, as [`SignatureRule::parse_key`] describes. `none` accepts anything and keeps
    /// none of it. Schemes that verify with a shared secret fail with
    /// [`KeyError::SecretExpected`].
    pub fn derive_public_key(&self, text: &[u8]) -> Result<Key, KeyError> {
        match self {
            Scheme::StandardWebhooks | Scheme::Svix | Scheme::Clerk | Scheme::Resend => {
                Key::from_whpk(text)
            }
            Scheme::Discord => Key::from_ed25519_hex(text),
            Scheme::Sendgrid => Key::from_p256_spki(text),
            Scheme::Signature(rule) => rule.parse_key(text),
            Scheme::Unsigned => Ok(Key::unused()),
            _ => Err(KeyError::SecretExpected),
        }
    }

    /// Returns whether the route may list keys under `public_keys:`.
    pub fn accepts_public_keys(&self) -> bool {
        matches!(
            self,
            Scheme::StandardWebhooks
                | Scheme::Svix
                | Scheme::Clerk
                | Scheme::Resend
                | Scheme::Discord
                | Scheme::Sendgrid
                | Scheme::Signature(_)
        )
    }

    /// Returns whether the scheme needs keys. Only `none` does not.
    pub fn needs_keys(&self) -> bool {
        !matches!(self, Scheme::Unsigned)
    }

    /// Returns whether the scheme signs the request URL, which the gateway must then fill from
    /// the route's public URL.
    pub fn signs_url(&self) -> bool {
        match self {
            Scheme::Twilio | Scheme::Square | Scheme::Hubspot => true,
            Scheme::Hmac(rule) => rule.signs_url(),
            Scheme::Signature(rule) => rule.signs_url(),
            _ => false,
        }
    }

    /// Returns the header that carries the sender's delivery id, for logs and duplicate
    /// detection, or `None` for schemes without one in a header (such as Stripe and Slack,
    /// and Mailgun, whose `signature.token` body field serves instead).
    pub fn delivery_id_header(&self) -> Option<&HeaderName> {
        static GITHUB: HeaderName = HeaderName::from_static("x-github-delivery");
        static WEBHOOK: HeaderName = HeaderName::from_static("webhook-id");
        static SVIX: HeaderName = HeaderName::from_static("svix-id");
        static SHOPIFY: HeaderName = HeaderName::from_static("x-shopify-webhook-id");
        // A unique id that GitLab sends with every webhook request.
        static GITLAB: HeaderName = HeaderName::from_static("x-gitlab-webhook-uuid");
        match self {
            Scheme::Github | Scheme::GithubSha1 => Some(&GITHUB),
            Scheme::StandardWebhooks => Some(&WEBHOOK),
            Scheme::Svix | Scheme::Clerk | Scheme::Resend => Some(&SVIX),
            Scheme::Shopify => Some(&SHOPIFY),
            Scheme::Gitlab => Some(&GITLAB),
            Scheme::Square => declared::SQUARE.delivery_id.as_ref(),
            Scheme::Zendesk => declared::ZENDESK.delivery_id.as_ref(),
            Scheme::Pagerduty => declared::PAGERDUTY.delivery_id.as_ref(),
            Scheme::Linear => declared::LINEAR.delivery_id.as_ref(),
            Scheme::Twitch => declared::TWITCH.delivery_id.as_ref(),
            Scheme::Bitbucket => declared::BITBUCKET.delivery_id.as_ref(),
            Scheme::Hubspot => declared::HUBSPOT.delivery_id.as_ref(),
            Scheme::Woocommerce => declared::WOOCOMMERCE.delivery_id.as_ref(),
            Scheme::Sentry => declared::SENTRY.delivery_id.as_ref(),
            Scheme::Jira => declared::JIRA.delivery_id.as_ref(),
            Scheme::Intercom
            | Scheme::Typeform
            | Scheme::Vercel
            | Scheme::Zoom
            | Scheme::Twitter => None,
            Scheme::Stripe
            | Scheme::Slack
            | Scheme::Twilio
            | Scheme::Paddle
            | Scheme::Mailgun
            | Scheme::Sendgrid
            | Scheme::Discord
            | Scheme::Calendly
            | Scheme::Unsigned => None,
            Scheme::Hmac(rule) => rule.id_header(),
            Scheme::Signature(rule) => rule.id_header(),
        }
    }

    /// Returns the header that carries the signature, or `None` when no header carries one.
    ///
    /// Mailgun signs fields of the body, and `none` checks nothing. GitLab's header carries the
    /// shared token itself, which is the same on every request. It is a credential, so it must
    /// not be stored as a request fingerprint.
    pub fn signature_header(&self) -> Option<&HeaderName> {
        static GITHUB: HeaderName = HeaderName::from_static("x-hub-signature-256");
        static GITHUB_SHA1: HeaderName = HeaderName::from_static("x-hub-signature");
        static SLACK: HeaderName = HeaderName::from_static("x-slack-signature");
        static WEBHOOK: HeaderName = HeaderName::from_static("webhook-signature");
        static SVIX: HeaderName = HeaderName::from_static("svix-signature");
        static SHOPIFY: HeaderName = HeaderName::from_static("x-shopify-hmac-sha256");
        let header = match self {
            Scheme::Github => &GITHUB,
            Scheme::GithubSha1 => &GITHUB_SHA1,
            Scheme::Stripe => &stripe::STRIPE.header,
            Scheme::Slack => &SLACK,
            Scheme::StandardWebhooks => &WEBHOOK,
            Scheme::Svix | Scheme::Clerk | Scheme::Resend => &SVIX,
            Scheme::Shopify => &SHOPIFY,
            Scheme::Twilio => &twilio::SIGNATURE,
            Scheme::Square => &declared::SQUARE.header,
            Scheme::Zendesk => &declared::ZENDESK.header,
            Scheme::Pagerduty => &declared::PAGERDUTY.header,
            Scheme::Linear => &declared::LINEAR.header,
            Scheme::Twitch => &declared::TWITCH.header,
            Scheme::Paddle => &stripe::PADDLE.header,
            Scheme::Sendgrid => &public_key::SENDGRID.signature,
            Scheme::Bitbucket => &declared::BITBUCKET.header,
            Scheme::Discord => &public_key::DISCORD.signature,
            Scheme::Hubspot => &declared::HUBSPOT.header,
            Scheme::Calendly => &stripe::CALENDLY.header,
            Scheme::Woocommerce => &declared::WOOCOMMERCE.header,
            Scheme::Sentry => &declared::SENTRY.header,
            Scheme::Intercom => &declared::INTERCOM.header,
            Scheme::Typeform => &declared::TYPEFORM.header,
            Scheme::Vercel => &declared::VERCEL.header,
            Scheme::Jira => &declared::JIRA.header,
            Scheme::Zoom => &declared::ZOOM.header,
            Scheme::Twitter => &declared::TWITTER.header,
            Scheme::Mailgun | Scheme::Gitlab | Scheme::Unsigned => return None,
            Scheme::Hmac(rule) => rule.signature_header(),
            Scheme::Signature(rule) => rule.signature_header(),
        };
        Some(header)
    }

    /// Returns whether the scheme signs a timestamp that `verify` checks against the tolerance.
    pub fn uses_timestamp(&self) -> bool {
        match self {
            Scheme::Stripe
            | Scheme::Slack
            | Scheme::StandardWebhooks
            | Scheme::Svix
            | Scheme::Zendesk
            | Scheme::Linear
            | Scheme::Twitch
            | Scheme::Paddle
            | Scheme::Mailgun
            | Scheme::Sendgrid
            | Scheme::Discord
            | Scheme::Hubspot
            | Scheme::Calendly
            | Scheme::Clerk
            | Scheme::Resend
            | Scheme::Zoom => true,
            Scheme::Github
            | Scheme::GithubSha1
            | Scheme::Shopify
            | Scheme::Twilio
            | Scheme::Square
            | Scheme::Pagerduty
            | Scheme::Gitlab
            | Scheme::Bitbucket
            | Scheme::Woocommerce
            | Scheme::Sentry
            | Scheme::Intercom
            | Scheme::Typeform
            | Scheme::Vercel
            | Scheme::Jira
            | Scheme::Twitter
            | Scheme::Unsigned => false,
            Scheme::Hmac(rule) => rule.uses_timestamp(),
            Scheme::Signature(rule) => rule.uses_timestamp(),
        }
    }

    /// Verifies the request's signature against every key in `keys`, where any key may match.
    ///
    /// `now` is the current time in Unix seconds. A signed timestamp is rejected when it is
    /// more than `tolerance` (whole seconds) older or newer than `now`. With no keys every
    /// well-formed request fails with [`Failure::SignatureInvalid`], except under `none`,
    /// which verifies every request with `key_index` 0 and needs no keys.
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
            Scheme::Stripe => stripe::verify(request, keys, now, tolerance, &stripe::STRIPE),
            Scheme::Slack => slack::verify(request, keys, now, tolerance),
            Scheme::StandardWebhooks => {
                standard::verify(request, keys, now, tolerance, &standard::WEBHOOK_HEADERS)
            }
            Scheme::Svix | Scheme::Clerk | Scheme::Resend => {
                standard::verify(request, keys, now, tolerance, &standard::SVIX_HEADERS)
            }
            Scheme::Shopify => shopify::verify(request, keys),
            Scheme::Twilio => twilio::verify(request, keys),
            Scheme::Square => {
                let verified = declared::verify(&declared::SQUARE, request, keys, now, tolerance)?;
                json_or_empty(request.body)?;
                Ok(verified)
            }
            Scheme::Zendesk => declared::verify(&declared::ZENDESK, request, keys, now, tolerance),
            Scheme::Pagerduty => {
                declared::verify(&declared::PAGERDUTY, request, keys, now, tolerance)
            }
            Scheme::Linear => linear::verify(request, keys, now, tolerance),
            Scheme::Twitch => declared::verify(&declared::TWITCH, request, keys, now, tolerance),
            Scheme::Paddle => stripe::verify(request, keys, now, tolerance, &stripe::PADDLE),
            Scheme::Mailgun => mailgun::verify(request, keys, now, tolerance),
            Scheme::Sendgrid => public_key::verify_sendgrid(request, keys, now, tolerance),
            Scheme::Gitlab => gitlab::verify(request, keys),
            Scheme::Bitbucket => {
                declared::verify(&declared::BITBUCKET, request, keys, now, tolerance)
            }
            // Discord probes an endpoint with bad signatures and expects 401 for each, so a
            // malformed signature is reported as an invalid one.
            Scheme::Discord => {
                public_key::verify_discord(request, keys, now, tolerance).map_err(|failure| {
                    match failure {
                        Failure::SignatureMalformed => Failure::SignatureInvalid,
                        other => other,
                    }
                })
            }
            Scheme::Hubspot => {
                let verified = declared::verify(&declared::HUBSPOT, request, keys, now, tolerance)?;
                json_or_empty(request.body)?;
                Ok(verified)
            }
            Scheme::Calendly => stripe::verify(request, keys, now, tolerance, &stripe::CALENDLY),
            Scheme::Woocommerce => {
                declared::verify(&declared::WOOCOMMERCE, request, keys, now, tolerance)
            }
            Scheme::Sentry => declared::verify(&declared::SENTRY, request, keys, now, tolerance),
            Scheme::Intercom => {
                declared::verify(&declared::INTERCOM, request, keys, now, tolerance)
            }
            Scheme::Typeform => {
                declared::verify(&declared::TYPEFORM, request, keys, now, tolerance)
            }
            Scheme::Vercel => declared::verify(&declared::VERCEL, request, keys, now, tolerance),
            Scheme::Jira => declared::verify(&declared::JIRA, request, keys, now, tolerance),
            Scheme::Zoom => declared::verify(&declared::ZOOM, request, keys, now, tolerance),
            // The gateway's CRC response is a valid signature of any body that is a token.
            Scheme::Twitter if handshake::is_token(request.body) => Err(Failure::SignatureInvalid),
            Scheme::Twitter => declared::verify(&declared::TWITTER, request, keys, now, tolerance),
            Scheme::Unsigned => Ok(Verified {
                key_index: 0,
                timestamp: None,
            }),
            Scheme::Hmac(rule) => rule.verify(request, keys, now, tolerance),
            Scheme::Signature(rule) => rule.verify(request, keys, now, tolerance),
        }
    }
}

/// Checks that a body is empty or one JSON document. HubSpot and Square sign the URL and the
/// body with nothing between them, so characters could move from the end of a signed query
/// to the front of the body, or back, and keep the signature valid. Both send JSON bodies,
/// and such a move leaves a body that is not JSON.
fn json_or_empty(body: &[u8]) -> Result<(), Failure> {
    if body.is_empty() || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        Ok(())
    } else {
        Err(Failure::SignatureInvalid)
    }
}

#[cfg(test)]
mod tests;

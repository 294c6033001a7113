//! Per-preset descriptions (headers read, algorithm, key list) for `hookgate providers`.

use super::Scheme;

/// One preset as a user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: &'static str,
    /// Headers the sender sends for verification, signature header first.
    pub headers: &'static str,
    /// Signature algorithm, or what is compared instead.
    pub algorithm: &'static str,
    /// Key list the route fills: `secrets` or `public_keys`.
    pub keys: &'static str,
}

/// Returns the entry of every preset in [`Scheme::preset_names`] order.
pub fn entries() -> Vec<Entry> {
    Scheme::preset_names()
        .iter()
        .map(|&name| {
            let (headers, algorithm, keys) = describe(name);
            Entry {
                name,
                headers,
                algorithm,
                keys,
            }
        })
        .collect()
}

fn describe(name: &str) -> (&'static str, &'static str, &'static str) {
    const SECRETS: &str = "secrets";
    const PUBLIC: &str = "public_keys";
    const STANDARD: &str = "HMAC-SHA256 (v1), Ed25519 (v1a)";
    const BOTH: &str = "secrets (v1), public_keys (v1a)";
    match name {
        "github" => ("x-hub-signature-256", "HMAC-SHA256", SECRETS),
        "github-sha1" => ("x-hub-signature", "HMAC-SHA1", SECRETS),
        "stripe" => ("stripe-signature", "HMAC-SHA256", SECRETS),
        "slack" => (
            "x-slack-signature, x-slack-request-timestamp",
            "HMAC-SHA256",
            SECRETS,
        ),
        "standard-webhooks" => (
            "webhook-signature, webhook-id, webhook-timestamp",
            STANDARD,
            BOTH,
        ),
        "svix" | "clerk" | "resend" => ("svix-signature, svix-id, svix-timestamp", STANDARD, BOTH),
        "shopify" => ("x-shopify-hmac-sha256", "HMAC-SHA256", SECRETS),
        "twilio" => (
            "x-twilio-signature",
            "HMAC-SHA1 (HMAC-SHA256 for a SharedKey)",
            SECRETS,
        ),
        "square" => ("x-square-hmacsha256-signature", "HMAC-SHA256", SECRETS),
        "zendesk" => (
            "x-zendesk-webhook-signature, x-zendesk-webhook-signature-timestamp",
            "HMAC-SHA256",
            SECRETS,
        ),
        "pagerduty" => ("x-pagerduty-signature", "HMAC-SHA256", SECRETS),
        "linear" => ("linear-signature", "HMAC-SHA256", SECRETS),
        "twitch" => (
            "twitch-eventsub-message-signature, twitch-eventsub-message-id, \
             twitch-eventsub-message-timestamp",
            "HMAC-SHA256",
            SECRETS,
        ),
        "paddle" => ("paddle-signature", "HMAC-SHA256", SECRETS),
        "mailgun" => (
            "(signature fields in the JSON body)",
            "HMAC-SHA256",
            SECRETS,
        ),
        "sendgrid" => (
            "x-twilio-email-event-webhook-signature, x-twilio-email-event-webhook-timestamp",
            "ECDSA P-256 SHA-256",
            PUBLIC,
        ),
        "gitlab" => ("x-gitlab-token", "shared token", SECRETS),
        "bitbucket" | "jira" => ("x-hub-signature", "HMAC-SHA256", SECRETS),
        "discord" => (
            "x-signature-ed25519, x-signature-timestamp",
            "Ed25519",
            PUBLIC,
        ),
        "hubspot" => (
            "x-hubspot-signature-v3, x-hubspot-request-timestamp",
            "HMAC-SHA256",
            SECRETS,
        ),
        "calendly" => ("calendly-webhook-signature", "HMAC-SHA256", SECRETS),
        "woocommerce" => ("x-wc-webhook-signature", "HMAC-SHA256", SECRETS),
        "sentry" => ("sentry-hook-signature", "HMAC-SHA256", SECRETS),
        "intercom" => ("x-hub-signature", "HMAC-SHA1", SECRETS),
        "typeform" => ("typeform-signature", "HMAC-SHA256", SECRETS),
        "vercel" => ("x-vercel-signature", "HMAC-SHA1", SECRETS),
        "zoom" => (
            "x-zm-signature, x-zm-request-timestamp",
            "HMAC-SHA256",
            SECRETS,
        ),
        "twitter" => ("x-twitter-webhooks-signature", "HMAC-SHA256", SECRETS),
        "none" => ("-", "none (other guards only)", "-"),
        _ => ("?", "?", "?"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_described() {
        for entry in entries() {
            assert_ne!(entry.headers, "?", "{}", entry.name);
        }
    }

    #[test]
    fn first_header_is_the_signature_header() {
        for entry in entries() {
            let Some(scheme) = Scheme::preset(entry.name) else {
                panic!("{} is not a preset", entry.name);
            };
            let first = entry.headers.split(", ").next().unwrap_or_default();

            match scheme.signature_header() {
                Some(header) => assert_eq!(first, header.as_str(), "{}", entry.name),
                None => assert!(
                    matches!(entry.name, "mailgun" | "gitlab" | "none"),
                    "{}",
                    entry.name
                ),
            }
        }
    }

    #[test]
    fn public_key_presets_say_so() {
        for entry in entries() {
            let Some(scheme) = Scheme::preset(entry.name) else {
                panic!("{} is not a preset", entry.name);
            };

            assert_eq!(
                entry.keys.contains("public_keys"),
                scheme.accepts_public_keys(),
                "{}",
                entry.name
            );
        }
    }
}

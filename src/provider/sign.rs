//! Signing, the reverse of verification: produces the headers a provider would send, for
//! `hookgate sign` and for tests that round-trip every scheme.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{
    declared, gitlab, public_key, standard, stripe, twilio, Algorithm, Key, KeyAlgorithm,
    PrivateKey, Scheme,
};

/// The parts of a request that a signature can cover.
pub struct Message<'a> {
    pub method: &'a str,
    /// The URL substituted for `{url}` in generic rules.
    pub url: &'a str,
    pub body: &'a [u8],
    /// Signing time in Unix seconds, for schemes with a timestamp.
    pub timestamp: i64,
    /// Delivery id, for schemes that sign one.
    pub id: &'a str,
}

/// Returns the headers, as `(name, value)` pairs, that carry a valid signature of `message`.
///
/// Fails for schemes that need a private key, which [`sign_with_private_key`] takes (Discord,
/// SendGrid and `signature:` rules), and for Mailgun, whose signature belongs inside the body.
/// `none` returns no headers.
pub fn sign(
    scheme: &Scheme,
    key: &Key,
    message: &Message<'_>,
) -> Result<Vec<(String, String)>, String> {
    let body = message.body;
    let t = message.timestamp.to_string();
    let hex_mac =
        |algorithm: Algorithm, parts: &[&[u8]]| hex::encode(algorithm.compute(key, parts));
    let headers = match scheme {
        Scheme::Github => vec![(
            "X-Hub-Signature-256".to_string(),
            format!("sha256={}", hex_mac(Algorithm::Sha256, &[body])),
        )],
        Scheme::GithubSha1 => vec![(
            "X-Hub-Signature".to_string(),
            format!("sha1={}", hex_mac(Algorithm::Sha1, &[body])),
        )],
        Scheme::Stripe => vec![(
            "Stripe-Signature".to_string(),
            format!(
                "t={t},v1={}",
                hex_mac(Algorithm::Sha256, &[t.as_bytes(), b".", body])
            ),
        )],
        Scheme::Slack => vec![
            ("X-Slack-Request-Timestamp".to_string(), t.clone()),
            (
                "X-Slack-Signature".to_string(),
                format!(
                    "v0={}",
                    hex_mac(Algorithm::Sha256, &[b"v0:", t.as_bytes(), b":", body])
                ),
            ),
        ],
        Scheme::StandardWebhooks | Scheme::Svix | Scheme::Clerk | Scheme::Resend => {
            // A route's first key is a `whpk_` public key when it lists no `whsec_` secret.
            if key.secret().is_none() {
                return Err(format!(
                    "{} has only a public key here, which cannot sign; \
                     pass the private key with --private-key-file to sign v1a",
                    scheme.name()
                ));
            }
            let prefix = if matches!(scheme, Scheme::StandardWebhooks) {
                "webhook"
            } else {
                "svix"
            };
            let id = message.id.as_bytes();
            let mac = Algorithm::Sha256.compute(key, &[id, b".", t.as_bytes(), b".", body]);
            vec![
                (format!("{prefix}-id"), message.id.to_string()),
                (format!("{prefix}-timestamp"), t.clone()),
                (
                    format!("{prefix}-signature"),
                    format!("v1,{}", STANDARD.encode(mac)),
                ),
            ]
        }
        Scheme::Shopify => vec![(
            "X-Shopify-Hmac-Sha256".to_string(),
            STANDARD.encode(Algorithm::Sha256.compute(key, &[body])),
        )],
        Scheme::Twilio => twilio::sign(key, message)?,
        Scheme::Square => declared::sign(&declared::SQUARE, key, message)?,
        Scheme::Zendesk => declared::sign(&declared::ZENDESK, key, message)?,
        Scheme::Pagerduty => declared::sign(&declared::PAGERDUTY, key, message)?,
        Scheme::Linear => declared::sign(&declared::LINEAR, key, message)?,
        Scheme::Twitch => declared::sign(&declared::TWITCH, key, message)?,
        Scheme::Bitbucket => declared::sign(&declared::BITBUCKET, key, message)?,
        Scheme::Hubspot => declared::sign(&declared::HUBSPOT, key, message)?,
        Scheme::Woocommerce => declared::sign(&declared::WOOCOMMERCE, key, message)?,
        Scheme::Sentry => declared::sign(&declared::SENTRY, key, message)?,
        Scheme::Intercom => declared::sign(&declared::INTERCOM, key, message)?,
        Scheme::Typeform => declared::sign(&declared::TYPEFORM, key, message)?,
        Scheme::Vercel => declared::sign(&declared::VERCEL, key, message)?,
        Scheme::Jira => declared::sign(&declared::JIRA, key, message)?,
        Scheme::Zoom => declared::sign(&declared::ZOOM, key, message)?,
        Scheme::Twitter => declared::sign(&declared::TWITTER, key, message)?,
        Scheme::Paddle => stripe::sign(&stripe::PADDLE, key, message),
        Scheme::Calendly => stripe::sign(&stripe::CALENDLY, key, message),
        Scheme::Gitlab => {
            let token = key.secret().unwrap_or_default();
            let token = std::str::from_utf8(token)
                .ok()
                .filter(|token| http::HeaderValue::from_str(token).is_ok())
                .ok_or(
                    "the GitLab token is not printable text, so it cannot be written as a header",
                )?;
            vec![(gitlab::TOKEN.to_string(), token.to_string())]
        }
        Scheme::Mailgun => {
            return Err("mailgun carries its signature inside the JSON body \
                 (signature.timestamp, .token and .signature), so it cannot be added as a header"
                .to_string())
        }
        Scheme::Sendgrid | Scheme::Discord | Scheme::Signature(_) => {
            return Err(format!(
                "{} signs with a private key and the route holds only the public key; \
                 pass the private key with --private-key-file",
                scheme.name()
            ))
        }
        Scheme::Unsigned => Vec::new(),
        Scheme::Hmac(rule) => rule.sign(key, message)?,
    };
    Ok(headers)
}

/// Returns `message.body` with Mailgun's `signature` object set: the timestamp, `message.id`
/// as the token, and their HMAC-SHA256 under `key`. The body must be a JSON object, and a
/// `signature` field it already has is replaced. Mailgun signs only these fields, which is
/// why [`sign`] cannot sign for it with headers.
pub fn sign_mailgun_body(key: &Key, message: &Message<'_>) -> Result<Vec<u8>, String> {
    let mut body: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(message.body)
        .map_err(|_| "mailgun signs a JSON object body; give one".to_string())?;
    let timestamp = message.timestamp.to_string();
    let mac = Algorithm::Sha256.compute(key, &[timestamp.as_bytes(), message.id.as_bytes()]);
    let signature = serde_json::json!({
        "timestamp": timestamp,
        "token": message.id,
        "signature": hex::encode(mac),
    });
    body.insert("signature".to_string(), signature);
    serde_json::to_vec(&body).map_err(|e| e.to_string())
}

/// Returns the headers, as `(name, value)` pairs, that carry a valid signature of `message`
/// made with `private_key`: Discord and SendGrid as those providers sign, `v1a` for Standard
/// Webhooks and the Svix family, and a generic `signature:` rule. Other schemes verify with
/// a shared secret and fail here.
pub fn sign_with_private_key(
    scheme: &Scheme,
    private_key: &PrivateKey,
    message: &Message<'_>,
) -> Result<Vec<(String, String)>, String> {
    let timestamp = message.timestamp.to_string();
    let signed = [timestamp.as_bytes(), message.body];
    let headers = match scheme {
        Scheme::Discord => {
            let signature = private_key.sign(KeyAlgorithm::Ed25519, &signed)?;
            vec![
                (
                    public_key::DISCORD.signature.to_string(),
                    hex::encode(signature),
                ),
                (public_key::DISCORD.timestamp.to_string(), timestamp),
            ]
        }
        Scheme::Sendgrid => {
            let signature = private_key.sign(KeyAlgorithm::EcdsaP256Sha256, &signed)?;
            vec![
                (
                    public_key::SENDGRID.signature.to_string(),
                    STANDARD.encode(signature),
                ),
                (public_key::SENDGRID.timestamp.to_string(), timestamp),
            ]
        }
        Scheme::StandardWebhooks => {
            standard::sign_v1a(&standard::WEBHOOK_HEADERS, private_key, message)?
        }
        Scheme::Svix | Scheme::Clerk | Scheme::Resend => {
            standard::sign_v1a(&standard::SVIX_HEADERS, private_key, message)?
        }
        Scheme::Signature(rule) => rule.sign(private_key, message)?,
        _ => {
            return Err(format!(
                "{} verifies with a shared secret, not a public key; \
                 pass the secret instead of a private key",
                scheme.name()
            ))
        }
    };
    Ok(headers)
}

#[cfg(test)]
mod tests;

//! Signing, the reverse of verification: produces the headers a provider would send, for
//! `hookgate sign` and for tests that round-trip every scheme.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{Algorithm, Key, Scheme};

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
        Scheme::StandardWebhooks | Scheme::Svix => {
            let prefix = if matches!(scheme, Scheme::Svix) {
                "svix"
            } else {
                "webhook"
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
        Scheme::Hmac(rule) => rule.sign(key, message)?,
    };
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::provider::{Algorithm, Encoding, HmacRule, Request};

    const NOW: i64 = 1_700_000_000;

    fn schemes() -> Vec<Scheme> {
        let mut schemes: Vec<Scheme> = Scheme::preset_names()
            .iter()
            .filter_map(|name| Scheme::preset(name))
            .collect();
        let rule = HmacRule::new(
            Algorithm::Sha512,
            "X-Sig",
            Some("v1="),
            Encoding::Base64,
            "{method} {url}\n{id}.{timestamp}.{body}",
            Some("X-Ts"),
            Some("X-Id"),
        );
        schemes.push(Scheme::Hmac(rule.expect("valid rule")));
        schemes
    }

    fn verify(scheme: &Scheme, key: &Key, headers: &[(String, String)], body: &[u8]) -> bool {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            let name = http::HeaderName::from_bytes(name.as_bytes()).expect("header name");
            map.append(name, value.parse().expect("header value"));
        }
        let request = Request {
            method: "POST",
            url: "/hooks/x",
            headers: &map,
            body,
        };
        scheme
            .verify(
                &request,
                std::slice::from_ref(key),
                NOW,
                Duration::from_secs(300),
            )
            .is_ok()
    }

    #[test]
    fn every_scheme_verifies_its_own_signature() {
        for scheme in schemes() {
            let key = scheme
                .derive_key(b"whsec_c2lnbi1yb3VuZC10cmlw")
                .expect("key");
            let message = Message {
                method: "POST",
                url: "/hooks/x",
                body: b"{\"a\":1}",
                timestamp: NOW,
                id: "msg_1",
            };
            let headers = sign(&scheme, &key, &message).expect("sign");
            assert!(
                verify(&scheme, &key, &headers, b"{\"a\":1}"),
                "{}",
                scheme.name()
            );
            assert!(
                !verify(&scheme, &key, &headers, b"{\"a\":2}"),
                "{} tampered",
                scheme.name()
            );
        }
    }
}

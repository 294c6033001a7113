//! The delivery id that duplicate detection remembers for a verified request.

use sha2::{Digest, Sha256};

use crate::config::DeliveryId;
use crate::provider::Scheme;

/// Ids longer than this are stored as their SHA-256, to bound the store's memory.
const MAX_ID_BYTES: usize = 128;

/// Returns the delivery id of a verified request under `rule`. When the configured source is
/// absent from the request, the signature header is used instead, because a replay carries the
/// same signature. Returns `None` only when that is missing too.
pub fn delivery_id(
    rule: &DeliveryId,
    scheme: &Scheme,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Option<String> {
    let header_text = |name: &http::HeaderName| {
        headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let signature = || {
        let name = scheme.signature_header()?;
        header_text(name).map(|s| format!("sig:{s}"))
    };
    let id = match rule {
        DeliveryId::Auto => match (scheme, scheme.delivery_id_header()) {
            (_, Some(name)) => header_text(name),
            (Scheme::Stripe, None) => json_field(body, "id"),
            _ => None,
        },
        DeliveryId::Signature => None,
        DeliveryId::Header(name) => header_text(name),
        DeliveryId::JsonField(field) => json_field(body, field),
    };
    let id = id.filter(|id| !id.is_empty()).or_else(signature)?;
    if id.len() > MAX_ID_BYTES {
        return Some(format!(
            "sha256:{}",
            hex::encode(Sha256::digest(id.as_bytes()))
        ));
    }
    Some(id)
}

/// Reads a top-level string or integer field of a JSON object body. The document is scanned,
/// not built, and only up to the field, so the cost is that of the bytes before it.
fn json_field(body: &[u8], field: &str) -> Option<String> {
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let visitor = FieldVisitor {
        field,
        found: &mut found,
    };
    // The visitor stops reading at the field, so the deserializer reports an unfinished
    // object even when the field was found.
    let _ = serde::Deserializer::deserialize_map(&mut deserializer, visitor);
    found
}

/// Visitor that finds one key of a JSON object and skips the values before it.
struct FieldVisitor<'a> {
    field: &'a str,
    found: &'a mut Option<String>,
}

impl<'de> serde::de::Visitor<'de> for FieldVisitor<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key != self.field {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            *self.found = match map.next_value::<serde_json::Value>()? {
                serde_json::Value::String(text) => Some(text),
                serde_json::Value::Number(number) => Some(number.to_string()),
                _ => None,
            };
            return Err(serde::de::Error::custom("field found"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        map
    }

    #[test]
    fn auto_uses_preset_header() {
        let found = delivery_id(
            &DeliveryId::Auto,
            &Scheme::Github,
            &headers(&[
                ("x-github-delivery", "abc"),
                ("x-hub-signature-256", "sha256=00"),
            ]),
            b"{}",
        );
        assert_eq!(found.as_deref(), Some("abc"));
    }

    #[test]
    fn auto_reads_stripe_event_id() {
        let found = delivery_id(
            &DeliveryId::Auto,
            &Scheme::Stripe,
            &headers(&[("stripe-signature", "t=1,v1=00")]),
            br#"{"id":"evt_1","object":"event"}"#,
        );
        assert_eq!(found.as_deref(), Some("evt_1"));
    }

    #[test]
    fn json_id_is_the_top_level_field() {
        let body = br#"{"data":{"id":"inner","items":[{"id":1}]},"id":"evt_2","x":[1,2]}"#;
        let found = delivery_id(&DeliveryId::Auto, &Scheme::Stripe, &headers(&[]), body);
        assert_eq!(found.as_deref(), Some("evt_2"));
    }

    #[test]
    fn json_id_found_before_rest_is_read() {
        let body = br#"{"id":"evt_3","data":{"truncated":"#;
        let found = delivery_id(&DeliveryId::Auto, &Scheme::Stripe, &headers(&[]), body);
        assert_eq!(found.as_deref(), Some("evt_3"));
    }

    #[test]
    fn json_id_that_is_not_text_falls_back() {
        let request = headers(&[("stripe-signature", "t=1,v1=00")]);
        let found = delivery_id(
            &DeliveryId::Auto,
            &Scheme::Stripe,
            &request,
            br#"{"id":null}"#,
        );
        assert_eq!(found.as_deref(), Some("sig:t=1,v1=00"));
    }

    #[test]
    fn missing_id_falls_back_to_signature() {
        let found = delivery_id(
            &DeliveryId::Auto,
            &Scheme::Slack,
            &headers(&[("x-slack-signature", "v0=ab")]),
            b"x=1",
        );
        assert_eq!(found.as_deref(), Some("sig:v0=ab"));
        let none = delivery_id(&DeliveryId::Auto, &Scheme::Slack, &headers(&[]), b"x=1");
        assert_eq!(none, None);
    }

    #[test]
    fn long_ids_are_hashed() {
        let long = "a".repeat(500);
        let found = delivery_id(
            &DeliveryId::Signature,
            &Scheme::Shopify,
            &headers(&[("x-shopify-hmac-sha256", &long)]),
            b"",
        );
        assert!(found.is_some_and(|id| id.starts_with("sha256:") && id.len() == 71));
    }
}

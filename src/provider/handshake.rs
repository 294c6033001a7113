//! Handshakes that a sender makes before it delivers. The gateway computes the response from
//! the route's first secret and sends it itself, so no handshake reaches the upstream.
//!
//! - Zoom `endpoint.url_validation`: a POST whose JSON body carries `payload.plainToken`.
//!   The response is `{"plainToken": ..., "encryptedToken": hex HMAC-SHA256(secret, token)}`.
//! - X (Twitter) challenge-response check: `GET ?crc_token=<token>`. The response is
//!   `{"response_token": "sha256=" + base64 HMAC-SHA256(consumer secret, token)}`.
//!
//! Both responses are MACs over text the client chooses, under the same secret that signs
//! deliveries. So that a response can never serve as the signature of a real delivery, a
//! token must be 1 to [`MAX_TOKEN_LEN`] characters of the base64 and base64url alphabets
//! (`A-Z a-z 0-9 + / = - _`). Zoom signs `v0:...`, and a JSON object or array starts with
//! `{` or `[`, so neither fits. X signs the raw body, so `twitter` verification rejects a
//! body that is a token (see [`is_token`]). Slack's `url_verification` is signed like any event, so it is
//! verified and forwarded, not handled here.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{Algorithm, Failure, Key, Scheme};

/// Maximum token length in characters; a longer token is rejected.
pub const MAX_TOKEN_LEN: usize = 128;

/// The gateway's response to a handshake: a JSON body sent with status 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub body: String,
}

/// Computes the response to an X challenge-response check: a GET request with a
/// `crc_token` query parameter to a `twitter` route. Returns `None` for any other request.
pub fn query_response(
    scheme: &Scheme,
    method: &str,
    query: Option<&str>,
    keys: &[Key],
) -> Option<Result<Response, Failure>> {
    if !matches!(scheme, Scheme::Twitter) || method != "GET" {
        return None;
    }
    let encoded = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("crc_token="))?;
    let Some(token) = percent_decode(encoded) else {
        return Some(Err(Failure::SignedHeaderMalformed));
    };
    let response = token_mac(&token, keys).map(|mac| {
        let token = format!("sha256={}", STANDARD.encode(mac));
        Response {
            body: serde_json::json!({ "response_token": token }).to_string(),
        }
    });
    Some(response)
}

/// Computes the response to a Zoom `endpoint.url_validation` request to a `zoom` route.
/// Returns `None` for any other request, including a body that is not JSON.
pub fn body_response(
    scheme: &Scheme,
    body: &[u8],
    keys: &[Key],
) -> Option<Result<Response, Failure>> {
    if !matches!(scheme, Scheme::Zoom) {
        return None;
    }
    // A byte search is cheaper than parsing every delivery's JSON.
    let marker: &[u8] = b"endpoint.url_validation";
    if !body.windows(marker.len()).any(|window| window == marker) {
        return None;
    }
    let event: serde_json::Value = serde_json::from_slice(body).ok()?;
    if event.get("event")?.as_str()? != "endpoint.url_validation" {
        return None;
    }
    let Some(token) = event
        .pointer("/payload/plainToken")
        .and_then(|t| t.as_str())
    else {
        return Some(Err(Failure::SignedHeaderMalformed));
    };
    Some(token_mac(token, keys).map(|mac| {
        Response {
            body: serde_json::json!({ "plainToken": token, "encryptedToken": hex::encode(mac) })
                .to_string(),
        }
    }))
}

/// Returns whether `bytes` is a token that the gateway responds to in a handshake: 1 to
/// [`MAX_TOKEN_LEN`] characters of the base64 and base64url alphabets.
///
/// X signs a delivery with the same HMAC as the CRC response, over the raw body, so a
/// `twitter` delivery whose body is such a token could carry a signature that anyone can get
/// from the gateway. Verification rejects those bodies; X's deliveries are JSON objects.
pub fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= MAX_TOKEN_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// Computes HMAC-SHA256 of `token` under the route's first shared secret.
fn token_mac(token: &str, keys: &[Key]) -> Result<Vec<u8>, Failure> {
    if !is_token(token.as_bytes()) {
        return Err(Failure::SignedHeaderMalformed);
    }
    let key = keys
        .iter()
        .find(|key| key.secret().is_some())
        .ok_or(Failure::SignatureInvalid)?;
    Ok(Algorithm::Sha256.compute(key, &[token.as_bytes()]))
}

/// Decodes `%XX` escapes of a query parameter value. Returns `None` for an escape that is not
/// two hex digits or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let digits = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(digits, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::test_support::hmac_sha256;
    use crate::provider::KeyError;

    const SECRET: &[u8] = b"handshake-secret";

    fn keys(scheme: &Scheme) -> Result<Vec<Key>, KeyError> {
        Ok(vec![scheme.derive_key(SECRET)?])
    }

    #[test]
    fn twitter_crc_response() -> Result<(), KeyError> {
        let token = "9b4507b3-9040-4669-9ca3-6b94edb50553";
        let expected = format!(
            "sha256={}",
            STANDARD.encode(hmac_sha256(SECRET, &[token.as_bytes()]))
        );

        let response = query_response(
            &Scheme::Twitter,
            "GET",
            Some(&format!("x=1&crc_token={token}")),
            &keys(&Scheme::Twitter)?,
        );

        let body = response
            .and_then(Result::ok)
            .map(|r| r.body)
            .unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(json["response_token"], expected.as_str());
        Ok(())
    }

    #[test]
    fn twitter_ignores_other_requests() -> Result<(), KeyError> {
        let keys = keys(&Scheme::Twitter)?;

        assert!(query_response(&Scheme::Twitter, "POST", Some("crc_token=a"), &keys).is_none());
        assert!(query_response(&Scheme::Twitter, "GET", Some("token=a"), &keys).is_none());
        assert!(query_response(&Scheme::Github, "GET", Some("crc_token=a"), &keys).is_none());
        Ok(())
    }

    #[test]
    fn token_that_could_be_a_body_is_rejected() -> Result<(), KeyError> {
        let keys = keys(&Scheme::Twitter)?;
        let long = "a".repeat(MAX_TOKEN_LEN + 1);

        for token in [
            "%7B%7D",
            "{}",
            "v0:1:x",
            "v0%3A1%3Ax",
            "",
            "%zz",
            long.as_str(),
        ] {
            let query = format!("crc_token={token}");
            let response = query_response(&Scheme::Twitter, "GET", Some(&query), &keys);

            assert_eq!(
                response,
                Some(Err(Failure::SignedHeaderMalformed)),
                "{token}"
            );
        }
        Ok(())
    }

    #[test]
    fn twitter_rejects_body_that_is_a_token() -> Result<(), KeyError> {
        let keys = keys(&Scheme::Twitter)?;
        let headers = http::HeaderMap::new();

        for body in [&b"true"[..], b"12345", b"null"] {
            let request = crate::provider::Request {
                method: "POST",
                url: "/hooks/x",
                headers: &headers,
                body,
            };
            let result = Scheme::Twitter.verify(&request, &keys, 0, Default::default());

            assert_eq!(result, Err(Failure::SignatureInvalid), "{body:?}");
        }
        assert!(!is_token(b"{\"id\":1}"));
        assert!(!is_token(&[b'a'; MAX_TOKEN_LEN + 1]));
        Ok(())
    }

    #[test]
    fn zoom_url_validation_response() -> Result<(), KeyError> {
        let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
        let expected = hex::encode(hmac_sha256(SECRET, &[b"qgg8vlvZRS6UYooatFL8Aw"]));

        let response = body_response(&Scheme::Zoom, body, &keys(&Scheme::Zoom)?);

        let body = response
            .and_then(Result::ok)
            .map(|r| r.body)
            .unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(json["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
        assert_eq!(json["encryptedToken"], expected.as_str());
        Ok(())
    }

    #[test]
    fn zoom_events_are_not_handshakes() -> Result<(), KeyError> {
        let keys = keys(&Scheme::Zoom)?;

        assert!(body_response(&Scheme::Zoom, br#"{"event":"meeting.started"}"#, &keys).is_none());
        assert!(body_response(&Scheme::Zoom, b"not json", &keys).is_none());
        assert_eq!(
            body_response(
                &Scheme::Zoom,
                br#"{"event":"endpoint.url_validation"}"#,
                &keys
            ),
            Some(Err(Failure::SignedHeaderMalformed))
        );
        Ok(())
    }

    #[test]
    fn twitter_token_is_percent_decoded() -> Result<(), KeyError> {
        let keys = keys(&Scheme::Twitter)?;
        let expected = format!(
            "sha256={}",
            STANDARD.encode(hmac_sha256(SECRET, &[b"ab+c/d=="]))
        );

        let response = query_response(
            &Scheme::Twitter,
            "GET",
            Some("crc_token=ab%2Bc%2Fd%3D%3D"),
            &keys,
        );

        let body = response
            .and_then(Result::ok)
            .map(|r| r.body)
            .unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(json["response_token"], expected.as_str());
        Ok(())
    }
}

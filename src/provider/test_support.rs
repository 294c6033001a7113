//! Helpers shared by the unit tests of this module. The signing helpers call the hmac crate
//! directly, so they do not depend on the code under test.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::Request;

/// Builds a header map, keeping repeated names as repeated entries. Panics on a name or value
/// that `http` rejects, which only a broken test can pass.
pub(super) fn header_map(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        let parsed_name = HeaderName::from_bytes(name.as_bytes());
        let parsed_value = HeaderValue::from_bytes(value);
        match (parsed_name, parsed_value) {
            (Ok(parsed_name), Ok(parsed_value)) => headers.append(parsed_name, parsed_value),
            _ => panic!("test header {name:?} is not valid HTTP"),
        };
    }
    headers
}

/// Builds a POST request to a fixed URL with the given headers and body.
pub(super) fn request<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Request<'a> {
    Request {
        method: "POST",
        url: "https://gateway.example.test/hooks/test",
        headers,
        body,
    }
}

/// Computes HMAC-SHA256 of the concatenated parts.
pub(super) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    hmac_with::<Hmac<sha2::Sha256>>(key, parts)
}

/// Computes an HMAC of the concatenated parts with the MAC type `M`.
pub(super) fn hmac_with<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        panic!("HMAC rejected a key");
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

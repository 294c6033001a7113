//! Twilio: `X-Twilio-Signature` is the base64 HMAC-SHA1, with the account's Auth Token, of
//! the full URL Twilio requested followed by the POST parameters: each name and value,
//! sorted by name, concatenated with no separators.
//!
//! - The URL is `Request::url`, which the gateway fills with the public URL, query string
//!   included exactly as sent. Like Twilio's libraries, the check also tries the URL with the
//!   default port (`:443` for https, `:80` for http) added or removed. Any other difference,
//!   such as `http` for `https`, another host or a dropped query, fails.
//! - A request whose URL has a `bodySHA256` query parameter (Twilio sends one with a JSON
//!   body) signs the URL alone, and the lower-case hex SHA-256 of the raw body must equal that
//!   parameter.
//! - Otherwise the body is read as `application/x-www-form-urlencoded`. Values of a repeated
//!   name are sorted too, as Twilio's libraries do, and equal values are all kept.
//! - When a Webhooks Rule signs with a SharedKey, `X-Twilio-Webhooks-Signature-Settings:
//!   key=<id>,algorithm=HMAC_SHA256` names HMAC-SHA256, over the same string.
//!
//! No timestamp is signed, so replay defence needs duplicate detection elsewhere. The form
//! encoding is not signed either: parameter order, `+` or `%20`, and where the boundary
//! between the query and the first name falls can change without changing the signature, so
//! the upstream must read parameters only by name.

use http::HeaderName;
use sha2::{Digest, Sha256};

use super::headers::{self, Role};
use super::sign::Message;
use super::{Algorithm, Encoding, Failure, Key, Request, Verified};

pub(super) static SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
const SETTINGS: HeaderName = HeaderName::from_static("x-twilio-webhooks-signature-settings");

/// The query parameter that carries the hex SHA-256 of a JSON body.
const BODY_HASH_PARAMETER: &[u8] = b"bodySHA256";

pub(super) fn verify(request: &Request<'_>, keys: &[Key]) -> Result<Verified, Failure> {
    let algorithm = algorithm(request.headers)?;
    let signature =
        headers::signature(request.headers, &SIGNATURE, "", Encoding::Base64, algorithm)?;
    let body_hash = body_hash_parameter(request.url)?;
    let parameters = match body_hash {
        Some(_) => Vec::new(),
        None => sorted_form(request.body),
    };

    let key_index = url_variants(request.url)
        .iter()
        .filter_map(|url| {
            let message = message_parts(url, &parameters);
            algorithm.find_key(keys, &message, std::slice::from_ref(&signature))
        })
        .min()
        .ok_or(Failure::SignatureInvalid)?;
    if let Some(expected) = body_hash {
        let actual = hex::encode(Sha256::digest(request.body));
        if actual.as_bytes() != expected {
            return Err(Failure::SignatureInvalid);
        }
    }
    Ok(Verified {
        key_index,
        timestamp: None,
    })
}

/// Returns the `X-Twilio-Signature` header for `message`, signed with HMAC-SHA1.
///
/// A URL with a `bodySHA256` parameter is signed alone, and the parameter must already contain
/// the body's hash. Without one, the body is read as form parameters.
pub(super) fn sign(key: &Key, message: &Message<'_>) -> Result<Vec<(String, String)>, String> {
    let parameters = match body_hash_parameter(message.url) {
        Ok(Some(_)) => Vec::new(),
        Ok(None) => sorted_form(message.body),
        Err(_) => return Err("the URL has more than one bodySHA256 parameter".to_string()),
    };
    let mac = Algorithm::Sha1.compute(key, &message_parts(message.url, &parameters));
    Ok(vec![(SIGNATURE.to_string(), Encoding::Base64.encode(&mac))])
}

/// Returns the HMAC named by the SharedKey settings header, or SHA-1 without one.
fn algorithm(headers: &http::HeaderMap) -> Result<Algorithm, Failure> {
    if !headers.contains_key(&SETTINGS) {
        return Ok(Algorithm::Sha1);
    }
    let settings = headers::required(headers, &SETTINGS, Role::Signature)?;
    let mut named = None;
    for element in settings.split(',') {
        let (name, value) = element.split_once('=').ok_or(Failure::SignatureMalformed)?;
        if name.trim() == "algorithm" {
            if named.is_some() {
                return Err(Failure::SignatureMalformed);
            }
            named = Some(value.trim());
        }
    }
    // No other algorithm name is known, and an unknown one must not fall back to SHA-1.
    match named {
        Some("HMAC_SHA256") => Ok(Algorithm::Sha256),
        _ => Err(Failure::SignatureMalformed),
    }
}

/// Returns the value of the URL's `bodySHA256` query parameter, if it has one. Two of them
/// fail, because it would be unclear which one the body must match.
fn body_hash_parameter(url: &str) -> Result<Option<&[u8]>, Failure> {
    let Some((_, query)) = url.split_once('?') else {
        return Ok(None);
    };
    let query = query.split('#').next().unwrap_or_default();
    let mut found = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name.as_bytes() == BODY_HASH_PARAMETER {
            if found.is_some() {
                return Err(Failure::SignatureInvalid);
            }
            found = Some(value.as_bytes());
        }
    }
    Ok(found)
}

/// Returns `url` and, when it starts with `https://` or `http://`, the same URL with the
/// scheme's default port removed if present or added if absent.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return variants,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let has_port = match authority.rfind(':') {
        // A colon inside `[...]` belongs to an IPv6 address, not to a port.
        Some(colon) => !authority[colon..].contains(']'),
        None => false,
    };
    let other = if let Some(host) = authority.strip_suffix(default_port) {
        format!("{scheme}://{host}{tail}")
    } else if !has_port {
        format!("{scheme}://{authority}{default_port}{tail}")
    } else {
        return variants;
    };
    variants.push(other);
    variants
}

/// Decodes an `application/x-www-form-urlencoded` body into name and value bytes, sorted by
/// name and then by value.
///
/// `+` is a space and `%XX` is a byte. A `%` not followed by two hex digits is kept as it is.
/// A pair without `=` has an empty value, and empty pairs between `&`s are skipped.
fn sorted_form(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut parameters: Vec<(Vec<u8>, Vec<u8>)> = body
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(equals) => (
                percent_decode(&pair[..equals]),
                percent_decode(&pair[equals + 1..]),
            ),
            None => (percent_decode(pair), Vec::new()),
        })
        .collect();
    parameters.sort();
    parameters
}

fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let byte = text[i];
        let escaped = match (byte, text.get(i + 1..i + 3)) {
            (b'%', Some(digits)) => hex_byte(digits),
            _ => None,
        };
        match (byte, escaped) {
            (_, Some(value)) => {
                decoded.push(value);
                i += 3;
            }
            (b'+', None) => {
                decoded.push(b' ');
                i += 1;
            }
            (_, None) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    decoded
}

fn hex_byte(digits: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(text, 16).ok()
}

/// Returns the signed string as borrowed parts: the URL, then each name and value.
fn message_parts<'a>(url: &'a str, parameters: &'a [(Vec<u8>, Vec<u8>)]) -> Vec<&'a [u8]> {
    let mut parts = Vec::with_capacity(1 + 2 * parameters.len());
    parts.push(url.as_bytes());
    for (name, value) in parameters {
        parts.push(name);
        parts.push(value);
    }
    parts
}

#[cfg(test)]
mod tests;

//! Signing, the reverse of verification, for `hookgate sign` and tests.

use super::{Key, Scheme};

/// The parts of a request that a signature covers.
pub struct Message<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub body: &'a [u8],
    pub timestamp: i64,
    pub id: &'a str,
}

/// Returns the headers that carry a valid signature of `message` under `key`.
pub fn sign(
    _scheme: &Scheme,
    _key: &Key,
    _message: &Message<'_>,
) -> Result<Vec<(String, String)>, String> {
    Err("signing is not implemented yet".to_string())
}

//! A route's keys: `secrets:` for shared-secret schemes and `public_keys:` for public-key
//! schemes, each read from `env:` or `file:` and turned into verification keys.

use std::path::Path;

use super::error::Problems;
use super::raw::RawSecret;
use super::secret;
use crate::provider::{Key, KeyError, Scheme};

/// Keys of one route, in config order: `secrets:` first, then `public_keys:`.
#[derive(Default)]
pub(super) struct RouteKeys {
    pub(super) keys: Vec<Key>,
    /// Each key's `name:`, or its list and position such as `0` or `public_keys[1]`.
    pub(super) labels: Vec<String>,
}

/// Loads and derives every key of a route, reporting each problem at its entry.
///
/// Secrets keep their historical labels (`0`, `1`, ...) so that metric series do not change.
/// A scheme that needs keys and has none in either list is a problem, and so is an entry in
/// the list the scheme does not take.
pub(super) fn resolve(
    secrets: &[RawSecret],
    public_keys: &[RawSecret],
    scheme: Option<&Scheme>,
    at: &str,
    base: &Path,
    problems: &mut Problems,
) -> RouteKeys {
    let mut route_keys = RouteKeys {
        keys: Vec::new(),
        labels: Vec::new(),
    };
    let needs_keys = scheme.is_none_or(|s| s.needs_keys());
    if secrets.is_empty() && public_keys.is_empty() && needs_keys {
        let (list, message) = missing_keys(scheme);
        problems.add(format!("{at}.{list}"), message);
    }
    let lists: [(&str, &[RawSecret]); 2] = [("secrets", secrets), ("public_keys", public_keys)];
    for (list, entries) in lists {
        for (i, raw) in entries.iter().enumerate() {
            let path = format!("{at}.{list}[{i}]");
            let loaded = match secret::load(raw, base) {
                Ok(loaded) => loaded,
                Err(message) => {
                    problems.add(path, message);
                    continue;
                }
            };
            let Some(scheme) = scheme else { continue };
            match derive(scheme, list, loaded.expose()) {
                Ok(key) => {
                    route_keys.keys.push(key);
                    route_keys.labels.push(label(raw, list, i));
                }
                Err(e) => problems.add(path, format!("{}: {e}", secret::describe(raw))),
            }
        }
    }
    route_keys
}

/// Returns the list a route without keys should add, and the error message naming it.
fn missing_keys(scheme: Option<&Scheme>) -> (&'static str, &'static str) {
    match scheme {
        Some(Scheme::StandardWebhooks | Scheme::Svix | Scheme::Clerk | Scheme::Resend) => (
            "secrets",
            "no keys; add the whsec_ secret as `secrets: [{ env: VARIABLE }]`, \
             or a whpk_ public key for v1a signatures as `public_keys: [{ env: VARIABLE }]`",
        ),
        Some(scheme) if scheme.accepts_public_keys() => (
            "public_keys",
            "no public keys; add `public_keys: [{ env: VARIABLE }]` or `[{ file: PATH }]`",
        ),
        _ => (
            "secrets",
            "no secrets; add `secrets: [{ env: VARIABLE }]` or `[{ file: PATH }]`",
        ),
    }
}

fn derive(scheme: &Scheme, list: &str, bytes: &[u8]) -> Result<Key, KeyError> {
    if list == "secrets" {
        scheme.derive_key(bytes)
    } else {
        scheme.derive_public_key(bytes)
    }
}

fn label(raw: &RawSecret, list: &str, index: usize) -> String {
    match (&raw.name, list) {
        (Some(name), _) => name.clone(),
        (None, "secrets") => index.to_string(),
        (None, _) => format!("{list}[{index}]"),
    }
}

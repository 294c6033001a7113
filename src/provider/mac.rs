//! HMAC computation and constant-time comparison against received signatures.

use hmac::digest::{CtOutput, KeyInit, Output, OutputSizeUser};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::Key;

/// Hash function of an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// Returns the MAC length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    /// Returns the index of the first key whose MAC over the concatenation of `message`
    /// equals one of `signatures`.
    ///
    /// The message parts are fed to the MAC one after another, so the body is never copied.
    /// Each key hashes the message once and every signature is compared in constant time.
    pub(super) fn find_key(
        self,
        keys: &[Key],
        message: &[&[u8]],
        signatures: &[Vec<u8>],
    ) -> Option<usize> {
        match self {
            Algorithm::Sha1 => find_key_with::<Hmac<Sha1>>(keys, message, signatures),
            Algorithm::Sha256 => find_key_with::<Hmac<Sha256>>(keys, message, signatures),
            Algorithm::Sha512 => find_key_with::<Hmac<Sha512>>(keys, message, signatures),
        }
    }
}

impl Algorithm {
    /// Computes the MAC of the concatenation of `message` under `key`, for signing.
    pub(super) fn compute(self, key: &Key, message: &[&[u8]]) -> Vec<u8> {
        match self {
            Algorithm::Sha1 => compute_with::<Hmac<Sha1>>(key, message),
            Algorithm::Sha256 => compute_with::<Hmac<Sha256>>(key, message),
            Algorithm::Sha512 => compute_with::<Hmac<Sha512>>(key, message),
        }
    }
}

fn compute_with<M: Mac + KeyInit>(key: &Key, message: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so only a key without a secret (a public key or the
    // `none` preset's key) fails here. `sign` never passes one, because each scheme derives
    // its own keys.
    let Some(Ok(mut mac)) = key.secret().map(<M as KeyInit>::new_from_slice) else {
        return Vec::new();
    };
    for part in message {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn find_key_with<M: Mac + KeyInit + Clone>(
    keys: &[Key],
    message: &[&[u8]],
    signatures: &[Vec<u8>],
) -> Option<usize> {
    keys.iter().position(|key| {
        // HMAC accepts keys of any length, so only a key without a secret is skipped here.
        let Some(Ok(mut mac)) = key.secret().map(<M as KeyInit>::new_from_slice) else {
            return false;
        };
        for part in message {
            mac.update(part);
        }
        // The MAC is finalized once per key, then compared with each signature in constant
        // time. A length is not secret, and `clone_from_slice` needs it to match.
        let tag = mac.finalize();
        let tag_len = <M as OutputSizeUser>::output_size();
        signatures.iter().any(|signature| {
            signature.len() == tag_len
                && tag == CtOutput::new(Output::<M>::clone_from_slice(signature))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::test_support::hmac_sha256;

    fn key(secret: &[u8]) -> Key {
        match Key::from_raw(secret) {
            Ok(key) => key,
            Err(error) => panic!("test key rejected: {error}"),
        }
    }

    #[test]
    fn split_message_equals_joined() {
        let signature = hmac_sha256(b"k", &[b"t.body"]);

        let found = Algorithm::Sha256.find_key(&[key(b"k")], &[b"t", b".", b"body"], &[signature]);

        assert_eq!(found, Some(0));
    }

    #[test]
    fn any_signature_may_match() {
        let good = hmac_sha256(b"k", &[b"m"]);
        let other = hmac_sha256(b"x", &[b"m"]);

        let found = Algorithm::Sha256.find_key(&[key(b"k")], &[b"m"], &[other, good]);

        assert_eq!(found, Some(0));
    }

    #[test]
    fn truncated_signature_never_matches() {
        let mut signature = hmac_sha256(b"k", &[b"m"]);
        signature.pop();

        let found = Algorithm::Sha256.find_key(&[key(b"k")], &[b"m"], &[signature]);

        assert_eq!(found, None);
    }
}

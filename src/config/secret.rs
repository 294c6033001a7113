//! Secret sources (`env:` and `file:`) and a byte string type that never prints its value.

use std::fmt;
use std::path::Path;

use super::raw::RawSecret;

/// Secret bytes read from the environment or a file. `Debug` and `Display` redact them.
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Describes where a secret came from, for error messages and logs, never its value.
pub fn describe(raw: &RawSecret) -> String {
    match (&raw.env, &raw.file) {
        (Some(name), _) => format!("env {name}"),
        (None, Some(path)) => format!("file {path}"),
        (None, None) => "secret".to_string(),
    }
}

/// Reads one secret; a relative `file:` path is resolved against `base`, the directory of
/// the config file. Errors name the source and the fix, never the contents.
pub fn load(raw: &RawSecret, base: &Path) -> Result<Secret, String> {
    let bytes = match (&raw.env, &raw.file) {
        (Some(_), Some(_)) => {
            return Err("give either `env:` or `file:` for a secret, not both".to_string())
        }
        (None, None) => {
            return Err("a secret needs `env: VARIABLE` or `file: PATH`".to_string());
        }
        (Some(name), None) => match std::env::var_os(name) {
            Some(value) => value.into_encoded_bytes(),
            None => {
                return Err(format!(
                    "environment variable {name} is not set; export it before starting hookgate"
                ))
            }
        },
        (None, Some(path)) => {
            let mut bytes = std::fs::read(base.join(path)).map_err(|e| {
                format!(
                    "cannot read secret file {}: {e}; \
                     check the path and that hookgate may read the file",
                    base.join(path).display()
                )
            })?;
            strip_trailing_newline(&mut bytes);
            bytes
        }
    };
    if bytes.is_empty() {
        return Err(format!(
            "{} is empty; set a non-empty secret",
            describe(raw)
        ));
    }
    Ok(Secret(bytes))
}

/// Removes one trailing `\n` or `\r\n`, as an editor or `echo` leaves it after a secret.
pub fn strip_trailing_newline(bytes: &mut Vec<u8>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let secret = Secret(b"hunter2".to_vec());
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{secret}"), "<redacted>");
    }

    #[test]
    fn file_secret_loses_one_trailing_newline() {
        let mut bytes = b"abc\n\n".to_vec();
        strip_trailing_newline(&mut bytes);
        assert_eq!(bytes, b"abc\n");
        let mut bytes = b"abc\r\n".to_vec();
        strip_trailing_newline(&mut bytes);
        assert_eq!(bytes, b"abc");
    }
}

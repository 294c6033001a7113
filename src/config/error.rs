//! Config errors in compiler style: `file:line:column: key.path: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use super::locate::{Location, Locator};

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub location: Location,
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: ",
            self.file.display(),
            self.location.line,
            self.location.column
        )?;
        if !self.path.is_empty() {
            write_escaped(f, &self.path)?;
            f.write_str(": ")?;
        }
        write_escaped(f, &self.message)
    }
}

/// Writes `text` with control characters escaped (`\n`, `\u{1b}`), so that a key or value
/// quoted from the file cannot break an error across lines or forge another error line.
fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            f.write_fmt(format_args!("{c}"))?;
        }
    }
    Ok(())
}

/// Every problem found in one config file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors while the config is resolved, locating each one by its key path.
pub struct Problems<'a> {
    file: &'a Path,
    locator: &'a Locator,
    errors: Vec<ConfigError>,
}

impl<'a> Problems<'a> {
    pub fn new(file: &'a Path, locator: &'a Locator) -> Self {
        Problems {
            file,
            locator,
            errors: Vec::new(),
        }
    }

    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let location = self.locator.find(&path);
        self.add_at(path, location, message);
    }

    pub fn add_at(&mut self, path: String, location: Location, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            location,
            path,
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn finish(mut self) -> ConfigErrors {
        self.errors
            .sort_by_key(|e| (e.location.line, e.location.column));
        ConfigErrors(self.errors)
    }
}

//! Maps a key path such as `routes[1].secrets[0].env` to the line and column where it is
//! written, so that every config error can point into the YAML file.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// Positions of every key and sequence item in one YAML document.
#[derive(Debug, Default)]
pub struct Locator {
    positions: HashMap<String, Location>,
}

impl Locator {
    /// Indexes `text`. A document that does not parse yields an empty index; the serde
    /// parser reports the syntax error with its own position.
    pub fn new(text: &str) -> Self {
        let mut walker = Walker::default();
        let _ = Parser::new_from_str(text).load(&mut walker, false);
        Locator {
            positions: walker.positions,
        }
    }

    /// Returns the position of `path`, or of its nearest ancestor that is written in the file
    /// (a missing key has no position of its own).
    pub fn find(&self, path: &str) -> Location {
        let mut candidate = path;
        loop {
            if let Some(location) = self.positions.get(candidate) {
                return *location;
            }
            match candidate.rfind(['.', '[']) {
                Some(cut) => candidate = &candidate[..cut],
                None => return Location { line: 1, column: 1 },
            }
        }
    }
}

enum Frame {
    Mapping { key: Option<String> },
    Sequence { index: usize },
}

#[derive(Default)]
struct Walker {
    stack: Vec<(String, Frame)>,
    positions: HashMap<String, Location>,
}

impl Walker {
    /// Handles the start of a node: a mapping key, or a value at the current path.
    /// Returns the node's path when it is a value.
    fn node(&mut self, scalar: Option<&str>, mark: Marker) -> Option<String> {
        let location = Location {
            line: mark.line(),
            column: mark.col() + 1,
        };
        let Some((parent, frame)) = self.stack.last_mut() else {
            return Some(String::new());
        };
        match frame {
            Frame::Mapping { key: key @ None } => {
                let name = scalar.unwrap_or_default().to_string();
                let path = join_key(parent, &name);
                self.positions.entry(path).or_insert(location);
                // A block mapping's start mark can come after its first key; an error about
                // the whole mapping should point at that key.
                if let Some(start) = self.positions.get_mut(parent.as_str()) {
                    if (location.line, location.column) < (start.line, start.column) {
                        *start = location;
                    }
                }
                *key = Some(name);
                None
            }
            Frame::Mapping { key: Some(name) } => Some(join_key(parent, name)),
            Frame::Sequence { index } => {
                let path = format!("{parent}[{index}]");
                self.positions.entry(path.clone()).or_insert(location);
                Some(path)
            }
        }
    }

    /// Handles a scalar or alias, which is either a key or a complete value.
    fn leaf(&mut self, scalar: Option<&str>, mark: Marker) {
        if self.node(scalar, mark).is_some() {
            self.value_done();
        }
    }

    /// Marks the value of the innermost collection entry as complete.
    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some((_, Frame::Mapping { key })) => *key = None,
            Some((_, Frame::Sequence { index })) => *index += 1,
            None => {}
        }
    }
}

fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) => self.leaf(Some(&value), mark),
            Event::Alias(_) => self.leaf(None, mark),
            Event::MappingStart(..) => {
                let path = self.node(None, mark).unwrap_or_default();
                self.stack.push((path, Frame::Mapping { key: None }));
            }
            Event::SequenceStart(..) => {
                let path = self.node(None, mark).unwrap_or_default();
                self.stack.push((path, Frame::Sequence { index: 0 }));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
listeners:
  - address: \"127.0.0.1:8080\"
routes:
  - name: a
    secrets:
      - env: A
      - { file: /x }
  - name: b
";

    #[test]
    fn finds_nested_keys_and_items() {
        let locator = Locator::new(DOC);
        assert_eq!(locator.find("listeners"), Location { line: 1, column: 1 });
        assert_eq!(
            locator.find("listeners[0].address"),
            Location { line: 2, column: 5 }
        );
        assert_eq!(
            locator.find("routes[0].secrets[1].file"),
            Location {
                line: 7,
                column: 11
            }
        );
        assert_eq!(
            locator.find("routes[1].name"),
            Location { line: 8, column: 5 }
        );
    }

    #[test]
    fn falls_back_to_nearest_ancestor() {
        let locator = Locator::new(DOC);
        assert_eq!(
            locator.find("routes[1].upstream"),
            Location { line: 8, column: 5 }
        );
        assert_eq!(
            locator.find("admin.address"),
            Location { line: 1, column: 1 }
        );
    }
}

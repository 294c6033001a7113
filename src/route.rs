//! Routing: picks the route for a request path. Exact paths win over prefixes, and the
//! longest prefix wins among prefixes.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{PathMatch, Route};

pub struct RouteTable<T> {
    exact: HashMap<String, Arc<T>>,
    /// Sorted by prefix length, longest first.
    prefixes: Vec<(String, Arc<T>)>,
}

impl<T> RouteTable<T> {
    /// Builds the table from routes paired with their per-route state.
    pub fn new(routes: impl IntoIterator<Item = (PathMatch, Arc<T>)>) -> Self {
        let mut exact = HashMap::new();
        let mut prefixes = Vec::new();
        for (matcher, value) in routes {
            match matcher {
                PathMatch::Exact(path) => {
                    exact.insert(path, value);
                }
                PathMatch::Prefix(prefix) => prefixes.push((prefix, value)),
            }
        }
        prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        RouteTable { exact, prefixes }
    }

    /// Finds the route for `path` (without the query string).
    pub fn find(&self, path: &str) -> Option<&Arc<T>> {
        self.exact.get(path).or_else(|| {
            self.prefixes
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix.as_str()))
                .map(|(_, value)| value)
        })
    }
}

/// Whether `path` could mean a different path to an upstream that normalizes it: a `.` or
/// `..` segment, or a percent-encoded dot, slash or backslash.
pub fn is_ambiguous(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
        || path.contains('\\')
    {
        return true;
    }
    path.split('/')
        .any(|segment| segment == "." || segment == "..")
}

/// Path of the route for display, used in start-up logs.
pub fn describe(route: &Route) -> String {
    match &route.path {
        PathMatch::Exact(path) => path.clone(),
        PathMatch::Prefix(prefix) => format!("{prefix}*"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable<&'static str> {
        RouteTable::new([
            (PathMatch::Exact("/hooks/github".into()), Arc::new("github")),
            (PathMatch::Prefix("/hooks/".into()), Arc::new("any")),
            (PathMatch::Prefix("/hooks/crm/".into()), Arc::new("crm")),
        ])
    }

    #[test]
    fn exact_path_wins_over_prefix() {
        assert_eq!(table().find("/hooks/github").map(|r| **r), Some("github"));
    }

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(table().find("/hooks/crm/a").map(|r| **r), Some("crm"));
        assert_eq!(table().find("/hooks/other").map(|r| **r), Some("any"));
        assert_eq!(table().find("/other").map(|r| **r), None);
    }

    #[test]
    fn exact_match_ignores_trailing_slash_variants() {
        assert_eq!(table().find("/hooks/github/").map(|r| **r), Some("any"));
    }

    #[test]
    fn detects_dot_segments_and_encoded_separators() {
        assert!(is_ambiguous("/hooks/github/../admin"));
        assert!(is_ambiguous("/hooks/./github"));
        assert!(is_ambiguous("/hooks/%2E%2E/admin"));
        assert!(is_ambiguous("/hooks%2fgithub"));
        assert!(!is_ambiguous("/hooks/github"));
        assert!(!is_ambiguous("/hooks/v1.2/x..y"));
    }
}

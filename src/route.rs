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

/// Whether `path` could mean a different path to an upstream that normalizes or decodes
/// it: a `.` or `..` segment (also with `;parameters`, which Tomcat and Spring strip), a
/// percent-encoded dot, slash, backslash or percent sign (double encoding), an encoded byte
/// outside ASCII (overlong UTF-8 dots), or a raw byte outside printable ASCII.
pub fn is_ambiguous(path: &str) -> bool {
    if path
        .bytes()
        .any(|b| !(0x21..0x7f).contains(&b) || b == b'\\')
    {
        return true;
    }
    let lower = path.to_ascii_lowercase();
    let encoded = ["%2e", "%2f", "%5c", "%25"];
    if encoded.iter().any(|e| lower.contains(e)) {
        return true;
    }
    let encoded_high_byte = lower
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'%' && matches!(w[1], b'8'..=b'9' | b'a'..=b'f'));
    if encoded_high_byte {
        return true;
    }
    path.split('/').any(|segment| {
        let name = segment.split(';').next().unwrap_or_default();
        name == "." || name == ".."
    })
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
        assert!(is_ambiguous("/hooks/crm/..;/..;/admin"));
        assert!(is_ambiguous("/hooks/crm/%252e%252e/admin"));
        assert!(is_ambiguous("/hooks/crm/%c0%ae%c0%ae/admin"));
        assert!(is_ambiguous("/hooks/crm/\t/admin"));
        assert!(is_ambiguous("/hooks/crm/．．/admin"));
        assert!(!is_ambiguous("/hooks/github"));
        assert!(!is_ambiguous("/hooks/v1.2/x..y"));
        assert!(!is_ambiguous("/hooks/crm/a%20b;v=1"));
    }
}

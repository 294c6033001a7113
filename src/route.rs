//! Routing: picks the route for a request path. Exact paths win over prefixes, and the
//! longest prefix wins among prefixes.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{PathMatch, Route};

pub struct RouteTable<T> {
    /// Routes without `host:`.
    any_host: PathTable<T>,
    /// Routes with `host:`, by lower-case host name.
    by_host: HashMap<String, PathTable<T>>,
}

struct PathTable<T> {
    exact: HashMap<String, Arc<T>>,
    /// Sorted by prefix length, longest first.
    prefixes: Vec<(String, Arc<T>)>,
}

impl<T> PathTable<T> {
    fn new() -> Self {
        PathTable {
            exact: HashMap::new(),
            prefixes: Vec::new(),
        }
    }

    fn insert(&mut self, matcher: PathMatch, value: Arc<T>) {
        match matcher {
            PathMatch::Exact(path) => {
                self.exact.insert(path, value);
            }
            PathMatch::Prefix(prefix) => {
                self.prefixes.push((prefix, value));
                self.prefixes
                    .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
            }
        }
    }

    fn find(&self, path: &str) -> Option<&Arc<T>> {
        self.exact.get(path).or_else(|| {
            self.prefixes
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix.as_str()))
                .map(|(_, value)| value)
        })
    }
}

impl<T> RouteTable<T> {
    /// Builds the table from routes, each with its optional host and its per-route state.
    pub fn new(routes: impl IntoIterator<Item = (Option<String>, PathMatch, Arc<T>)>) -> Self {
        let mut table = RouteTable {
            any_host: PathTable::new(),
            by_host: HashMap::new(),
        };
        for (host, matcher, value) in routes {
            match host {
                Some(host) => table
                    .by_host
                    .entry(host)
                    .or_insert_with(PathTable::new)
                    .insert(matcher, value),
                None => table.any_host.insert(matcher, value),
            }
        }
        table
    }

    /// Finds the route for `path` (without the query string) on `host` (lower case, no port):
    /// routes declared for that host first, then routes for any host.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Arc<T>> {
        host.and_then(|host| self.by_host.get(host))
            .and_then(|table| table.find(path))
            .or_else(|| self.any_host.find(path))
    }
}

/// Returns the request's host, lower case and without port: the URI's authority (HTTP/2 and
/// absolute-form requests), else the `Host` header.
pub fn request_host(header: &pingora::http::RequestHeader) -> Option<String> {
    let from_uri = header.uri.host().map(str::to_string);
    let from_header = || {
        let value = header.headers.get(http::header::HOST)?.to_str().ok()?;
        let authority = value.parse::<http::uri::Authority>().ok()?;
        Some(authority.host().to_string())
    };
    from_uri
        .or_else(from_header)
        .map(|h| h.to_ascii_lowercase())
}

/// Returns whether `path` could mean a different path to an upstream that normalizes or
/// decodes it. That is the case for:
/// - a `.` or `..` segment, also followed by `;parameters`, which Tomcat and Spring strip;
/// - a percent-encoded dot, slash, backslash or percent sign (double encoding);
/// - an encoded byte outside ASCII, as in overlong UTF-8 dots;
/// - a `%` without two hex digits, since IIS decodes `%u002e` as a dot;
/// - a raw byte outside printable ASCII.
pub fn is_ambiguous(path: &str) -> bool {
    if path
        .bytes()
        .any(|b| !(0x21..0x7f).contains(&b) || b == b'\\')
    {
        return true;
    }
    if path.contains('%') && has_ambiguous_escape(path) {
        return true;
    }
    path.split('/').any(|segment| {
        let name = segment.split(';').next().unwrap_or_default();
        name == "." || name == ".."
    })
}

/// Checks the percent-escapes of a path for the cases [`is_ambiguous`] lists.
fn has_ambiguous_escape(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let encoded = ["%2e", "%2f", "%5c", "%25"];
    if encoded.iter().any(|e| lower.contains(e)) {
        return true;
    }
    let bytes = lower.as_bytes();
    let invalid_escape = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if invalid_escape {
        return true;
    }
    bytes
        .windows(2)
        .any(|w| w[0] == b'%' && matches!(w[1], b'8'..=b'9' | b'a'..=b'f'))
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
            (
                None,
                PathMatch::Exact("/hooks/github".into()),
                Arc::new("github"),
            ),
            (None, PathMatch::Prefix("/hooks/".into()), Arc::new("any")),
            (
                None,
                PathMatch::Prefix("/hooks/crm/".into()),
                Arc::new("crm"),
            ),
            (
                Some("a.test".into()),
                PathMatch::Exact("/hooks/github".into()),
                Arc::new("a-github"),
            ),
        ])
    }

    #[test]
    fn host_routes_win_for_their_host() {
        let table = table();
        assert_eq!(
            table.find(Some("a.test"), "/hooks/github").map(|r| **r),
            Some("a-github")
        );
        assert_eq!(
            table.find(Some("b.test"), "/hooks/github").map(|r| **r),
            Some("github")
        );
        assert_eq!(
            table.find(Some("a.test"), "/hooks/crm/x").map(|r| **r),
            Some("crm")
        );
    }

    #[test]
    fn exact_path_wins_over_prefix() {
        assert_eq!(
            table().find(None, "/hooks/github").map(|r| **r),
            Some("github")
        );
    }

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(table().find(None, "/hooks/crm/a").map(|r| **r), Some("crm"));
        assert_eq!(table().find(None, "/hooks/other").map(|r| **r), Some("any"));
        assert_eq!(table().find(None, "/other").map(|r| **r), None);
    }

    #[test]
    fn exact_match_ignores_trailing_slash_variants() {
        assert_eq!(
            table().find(None, "/hooks/github/").map(|r| **r),
            Some("any")
        );
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

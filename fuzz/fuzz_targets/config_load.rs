//! Config loading with any text: it either loads, or fails with at least one error, each
//! line of which reads `FILE:LINE:COLUMN: message` with the line inside the text. An inline
//! secret string is never echoed in the errors.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// Config file name in the errors. The directory does not exist, so relative secret and
/// certificate paths name no real file.
const FILE: &str = "/nonexistent-hookgate-fuzz/gateway.yaml";

/// Returns whether loading `text` stays on this machine and ends. Every URL host must be an
/// IP literal, because the loader resolves upstream host names with the system resolver. No
/// string may name a device or kernel file, because reading one may never end.
fn stays_local(text: &str) -> bool {
    fn scalar_is_local(text: &str) -> bool {
        if ["/dev", "/proc", "/sys"].iter().any(|p| text.contains(p)) {
            return false;
        }
        let Ok(uri) = text.parse::<http::Uri>() else {
            return true;
        };
        let Some(host) = uri.host() else {
            return true;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.parse::<std::net::IpAddr>().is_ok()
    }
    fn value_is_local(value: &serde_yaml::Value) -> bool {
        match value {
            serde_yaml::Value::String(text) => scalar_is_local(text),
            serde_yaml::Value::Sequence(items) => items.iter().all(value_is_local),
            serde_yaml::Value::Mapping(map) => map
                .iter()
                .all(|(key, value)| value_is_local(key) && value_is_local(value)),
            serde_yaml::Value::Tagged(tagged) => value_is_local(&tagged.value),
            _ => true,
        }
    }
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(document) => value_is_local(&document),
        // The loader stops at a syntax error, before it looks at any value.
        Err(_) => true,
    }
}

fuzz_target!(|text: &str| {
    if !stays_local(text) {
        return;
    }
    let Err(errors) = hookgate::config::parse(Path::new(FILE), text) else {
        return;
    };
    assert!(!errors.0.is_empty(), "an Err carries no errors");
    let last_line = yaml_line_count(text) + 1;
    let rendered = errors.to_string();
    for line in rendered.lines() {
        let Some(rest) = line.strip_prefix(&format!("{FILE}:")) else {
            panic!("error line without the file name: {line:?}");
        };
        let mut fields = rest.splitn(3, ':');
        let line_number = fields.next().and_then(|n| n.parse::<usize>().ok());
        let column = fields.next().and_then(|n| n.parse::<usize>().ok());
        let message = fields.next().unwrap_or_default();
        assert!(
            line_number.is_some_and(|n| (1..=last_line).contains(&n)),
            "line number missing or outside the text: {line:?}"
        );
        assert!(column.is_some_and(|c| c >= 1), "column missing: {line:?}");
        assert!(message.len() > 1, "no message after the location: {line:?}");
    }

    // A secret written inline, `secrets: [ "..." ]`, is an error that must not quote it.
    if let Ok(document) = serde_yaml::from_str::<serde_yaml::Value>(text) {
        for secret in inline_secrets(&document) {
            if secret.len() >= 8 && !FILE.contains(&secret) {
                assert!(
                    !rendered.contains(&secret),
                    "inline secret echoed: {rendered}"
                );
            }
        }
    }
});

/// Counts lines as the YAML parser does, which reports line numbers: YAML 1.1 also ends a
/// line at a lone carriage return, at U+0085 (next line) and at U+2028 and U+2029.
fn yaml_line_count(text: &str) -> usize {
    let unified = text
        .replace("\r\n", "\n")
        .replace(['\r', '\u{85}', '\u{2028}', '\u{2029}'], "\n");
    unified.lines().count().max(1)
}

/// Strings written directly as items of a route's `secrets:` list.
fn inline_secrets(document: &serde_yaml::Value) -> Vec<String> {
    let routes = document.get("routes").and_then(|r| r.as_sequence());
    routes
        .into_iter()
        .flatten()
        .filter_map(|route| route.get("secrets")?.as_sequence())
        .flatten()
        .filter_map(|secret| secret.as_str().map(str::to_string))
        .collect()
}

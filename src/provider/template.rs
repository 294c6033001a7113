//! The `signed` template of a generic HMAC rule: literal text with placeholders for the parts
//! of the request that the provider signs.

use http::HeaderName;

use super::headers::{self, Role};
use super::{timestamp, Failure, Request};

/// One piece of a parsed template, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    Literal(String),
    Body,
    Timestamp,
    Id,
    Method,
    Url,
    Header(HeaderName),
}

const PLACEHOLDERS: &str = "{body}, {timestamp}, {id}, {method}, {url} or {header:NAME}";

/// Parses a template such as `v0:{timestamp}:{body}`.
///
/// `{{` and `}}` stand for literal braces. Errors name the offending text and the fix.
pub(super) fn parse(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = template;
    while let Some(index) = rest.find(['{', '}']) {
        literal.push_str(&rest[..index]);
        let tail = &rest[index..];

        if let Some(after) = tail.strip_prefix("{{") {
            literal.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            literal.push('}');
            rest = after;
        } else if tail.starts_with('}') {
            return Err(format!(
                "unmatched '}}' at byte {} of signed template {template:?}; \
                 write '}}}}' for a literal brace",
                template.len() - tail.len()
            ));
        } else {
            let Some(end) = tail.find('}') else {
                return Err(format!(
                    "unclosed '{{' at byte {} of signed template {template:?}; \
                     close the placeholder with '}}' or write '{{{{' for a literal brace",
                    template.len() - tail.len()
                ));
            };
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(placeholder(&tail[1..end])?);
            rest = &tail[end + 1..];
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

/// Collects the bytes a template signs as borrowed slices, in template order.
///
/// `timestamp_text` is the timestamp header's value and `id_header` the header read for
/// `{id}`. A missing header fails as it would for a preset.
pub(super) fn collect<'a>(
    template: &'a [Part],
    request: &Request<'a>,
    timestamp_text: Option<&'a str>,
    id_header: Option<&HeaderName>,
) -> Result<Vec<&'a [u8]>, Failure> {
    let mut message = Vec::with_capacity(template.len());
    for part in template {
        let bytes = match part {
            Part::Literal(text) => text.as_bytes(),
            Part::Body => request.body,
            Part::Method => request.method.as_bytes(),
            Part::Url => request.url.as_bytes(),
            Part::Timestamp => timestamp_text.ok_or(Failure::TimestampMissing)?.as_bytes(),
            Part::Id => {
                let name = id_header.ok_or(Failure::SignedHeaderMissing)?;
                headers::required(request.headers, name, Role::Signed)?.as_bytes()
            }
            Part::Header(name) => {
                headers::required(request.headers, name, Role::Signed)?.as_bytes()
            }
        };
        message.push(bytes);
    }
    Ok(message)
}

/// Parses the timestamp header's `text` for `template`, in Unix seconds.
///
/// Where a placeholder comes right before `{timestamp}`, as in `{body}{timestamp}`, a leading
/// zero is rejected. Otherwise a request whose body ends in `0` could be sent with that `0`
/// moved to the front of the timestamp, and the signed bytes and the time would not change.
pub(super) fn parse_timestamp(template: &[Part], text: &str) -> Result<i64, Failure> {
    let follows_placeholder = template
        .windows(2)
        .any(|pair| pair[1] == Part::Timestamp && !matches!(pair[0], Part::Literal(_)));
    if follows_placeholder {
        timestamp::parse_without_leading_zero(text)
    } else {
        timestamp::parse(text)
    }
}

fn placeholder(name: &str) -> Result<Part, String> {
    let part = match name {
        "body" => Part::Body,
        "timestamp" => Part::Timestamp,
        "id" => Part::Id,
        "method" => Part::Method,
        "url" => Part::Url,
        _ => {
            let Some(header) = name.strip_prefix("header:") else {
                return Err(format!(
                    "unknown placeholder {{{name}}} in signed template; use {PLACEHOLDERS}"
                ));
            };
            let header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                format!(
                    "invalid header name {header:?} in {{{name}}}; \
                     use an HTTP header name such as x-request-id"
                )
            })?;
            Part::Header(header)
        }
    };
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(text: &str) -> Part {
        Part::Literal(text.to_owned())
    }

    #[test]
    fn parses_placeholders_and_literals() {
        let parts = parse("v0:{timestamp}:{body}");

        assert_eq!(
            parts,
            Ok(vec![
                literal("v0:"),
                Part::Timestamp,
                literal(":"),
                Part::Body
            ])
        );
    }

    #[test]
    fn timestamp_after_placeholder_has_no_leading_zero() -> Result<(), String> {
        let after_body = parse("{body}{timestamp}")?;
        let after_id = parse("{id}{timestamp}.{body}")?;
        let after_literal = parse("{body}.{timestamp}")?;

        assert_eq!(
            parse_timestamp(&after_body, "01700000000"),
            Err(Failure::TimestampMalformed)
        );
        assert_eq!(
            parse_timestamp(&after_id, "01700000000"),
            Err(Failure::TimestampMalformed)
        );
        assert_eq!(
            parse_timestamp(&after_body, "1700000000"),
            Ok(1_700_000_000)
        );
        assert_eq!(parse_timestamp(&after_body, "0"), Ok(0));
        assert_eq!(
            parse_timestamp(&after_literal, "01700000000"),
            Ok(1_700_000_000)
        );
        Ok(())
    }

    #[test]
    fn parses_every_placeholder() {
        let parts = parse("{method}{url}{id}{timestamp}{body}{header:X-Request-Id}");

        assert_eq!(
            parts,
            Ok(vec![
                Part::Method,
                Part::Url,
                Part::Id,
                Part::Timestamp,
                Part::Body,
                Part::Header(HeaderName::from_static("x-request-id")),
            ])
        );
    }

    #[test]
    fn doubled_braces_are_literal() {
        let parts = parse("{{x}}{body}}}");

        assert_eq!(parts, Ok(vec![literal("{x}"), Part::Body, literal("}")]));
    }

    #[test]
    fn empty_template_has_no_parts() {
        assert_eq!(parse(""), Ok(vec![]));
    }

    #[test]
    fn rejects_unknown_placeholder() {
        let error = parse("{bodyy}").err().unwrap_or_default();

        assert!(error.starts_with("unknown placeholder {bodyy}"), "{error}");
        assert!(error.contains("{header:NAME}"), "{error}");
    }

    #[test]
    fn rejects_placeholder_names_in_other_case() {
        let error = parse("{Body}").err().unwrap_or_default();

        assert!(error.starts_with("unknown placeholder {Body}"), "{error}");
    }

    #[test]
    fn rejects_unclosed_brace() {
        let error = parse("{timestamp}.{body").err().unwrap_or_default();

        assert!(error.starts_with("unclosed '{' at byte 12"), "{error}");
    }

    #[test]
    fn rejects_unmatched_closing_brace() {
        let error = parse("{body}x}").err().unwrap_or_default();

        assert!(error.starts_with("unmatched '}' at byte 7"), "{error}");
    }

    #[test]
    fn rejects_invalid_header_name() {
        for template in ["{header:}", "{header:x y}", "{header:x:y}", "{header:é}"] {
            let error = parse(template).err().unwrap_or_default();

            assert!(
                error.starts_with("invalid header name"),
                "{template}: {error}"
            );
        }
    }

    #[test]
    fn nested_brace_is_unknown_placeholder() {
        let error = parse("{bo{dy}").err().unwrap_or_default();

        assert!(error.starts_with("unknown placeholder {bo{dy}"), "{error}");
    }
}

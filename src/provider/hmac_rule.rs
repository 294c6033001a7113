//! The generic scheme: an HMAC over a configured template, for providers without a preset.

use std::time::Duration;

use http::HeaderName;

use super::headers::{self, Role};
use super::template::{self, Part};
use super::{timestamp, Algorithm, Encoding, Failure, Key, Request, Verified};

/// A signing scheme described by configuration: which header carries the signature, how it is
/// written, and which bytes the provider signs.
#[derive(Debug, Clone)]
pub struct HmacRule {
    algorithm: Algorithm,
    header: HeaderName,
    prefix: String,
    encoding: Encoding,
    template: Vec<Part>,
    timestamp_header: Option<HeaderName>,
    id_header: Option<HeaderName>,
}

impl HmacRule {
    /// Builds a rule, or returns a message naming the invalid value and the fix.
    ///
    /// `signed` is literal text with the placeholders `{body}`, `{timestamp}`, `{id}`,
    /// `{method}`, `{url}` and `{header:NAME}`, and `{{` or `}}` for a literal brace. It must
    /// contain `{body}`, so that the body is authenticated. `{timestamp}` needs
    /// `timestamp_header`, whose value is Unix seconds, and `{id}` needs `id_header`. A
    /// `timestamp_header` also needs `{timestamp}`, because an unsigned timestamp does not
    /// prevent replay. An `id_header` without `{id}` is accepted and never read. An empty
    /// `prefix` means none; any other must be text a header value can start with.
    pub fn new(
        algorithm: Algorithm,
        header: &str,
        prefix: Option<&str>,
        encoding: Encoding,
        signed: &str,
        timestamp_header: Option<&str>,
        id_header: Option<&str>,
    ) -> Result<HmacRule, String> {
        let header = header_name(header, "signature header")?;
        let timestamp_header = timestamp_header
            .map(|name| header_name(name, "timestamp header"))
            .transpose()?;
        let id_header = id_header
            .map(|name| header_name(name, "id header"))
            .transpose()?;
        if let Some(prefix) = prefix {
            check_prefix(prefix)?;
        }
        let template = template::parse(signed)?;
        check_template(&template, timestamp_header.as_ref(), id_header.as_ref())?;

        Ok(HmacRule {
            algorithm,
            header,
            prefix: prefix.unwrap_or_default().to_owned(),
            encoding,
            template,
            timestamp_header,
            id_header,
        })
    }

    pub(super) fn signature_header(&self) -> &HeaderName {
        &self.header
    }

    pub(super) fn id_header(&self) -> Option<&HeaderName> {
        self.id_header.as_ref()
    }

    pub(super) fn uses_timestamp(&self) -> bool {
        self.timestamp_header.is_some()
    }

    pub(super) fn signs_url(&self) -> bool {
        self.template.contains(&Part::Url)
    }

    pub(super) fn verify(
        &self,
        request: &Request<'_>,
        keys: &[Key],
        now: i64,
        tolerance: Duration,
    ) -> Result<Verified, Failure> {
        let signature = headers::signature(
            request.headers,
            &self.header,
            &self.prefix,
            self.encoding,
            self.algorithm,
        )?;
        let timestamp_text = match &self.timestamp_header {
            Some(name) => Some(headers::required(request.headers, name, Role::Timestamp)?),
            None => None,
        };
        let signed_at = timestamp_text
            .map(|text| template::parse_timestamp(&self.template, text))
            .transpose()?;

        let message = self.message(request, timestamp_text)?;
        let key_index = self
            .algorithm
            .find_key(keys, &message, &[signature])
            .ok_or(Failure::SignatureInvalid)?;
        if let Some(signed_at) = signed_at {
            timestamp::check_window(signed_at, now, tolerance)?;
        }
        Ok(Verified {
            key_index,
            timestamp: signed_at,
        })
    }

    /// Returns the headers that carry a valid signature of `message` under `key`.
    pub(super) fn sign(
        &self,
        key: &Key,
        message: &super::sign::Message<'_>,
    ) -> Result<Vec<(String, String)>, String> {
        let timestamp = message.timestamp.to_string();
        let mut headers = http::HeaderMap::new();
        let mut signed_headers = Vec::new();
        for (name, value) in [
            (&self.timestamp_header, &timestamp),
            (&self.id_header, &message.id.to_string()),
        ] {
            if let Some(name) = name {
                let value = http::HeaderValue::from_str(value).map_err(|e| e.to_string())?;
                headers.insert(name.clone(), value);
                signed_headers.push((name.to_string(), value_text(&headers, name)));
            }
        }
        let request = Request {
            method: message.method,
            url: message.url,
            headers: &headers,
            body: message.body,
        };
        let timestamp_text = self.timestamp_header.as_ref().map(|_| timestamp.as_str());
        let parts = self.message(&request, timestamp_text).map_err(|_| {
            "the template signs a {header:NAME} that hookgate sign cannot fill in".to_string()
        })?;
        let mac = self.algorithm.compute(key, &parts);
        let signature = format!("{}{}", self.prefix, self.encoding.encode(&mac));
        signed_headers.push((self.header.to_string(), signature));
        Ok(signed_headers)
    }

    /// Collects the signed bytes as borrowed slices in template order.
    fn message<'a>(
        &'a self,
        request: &Request<'a>,
        timestamp_text: Option<&'a str>,
    ) -> Result<Vec<&'a [u8]>, Failure> {
        // `new` guarantees the headers that `{timestamp}` and `{id}` read.
        template::collect(
            &self.template,
            request,
            timestamp_text,
            self.id_header.as_ref(),
        )
    }
}

pub(super) fn value_text(headers: &http::HeaderMap, name: &HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

pub(super) fn header_name(name: &str, setting: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        format!("invalid {setting} name {name:?}; use an HTTP header name such as x-signature")
    })
}

/// Rejects a prefix that no received header value can start with, so that the rule would
/// reject every request. Signature headers are read as visible ASCII, space or tab, and HTTP
/// parsers remove whitespace at the start of a value.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let readable = prefix
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    if !readable || prefix.starts_with([' ', '\t']) {
        return Err(format!(
            "invalid prefix {prefix:?}: a signature header cannot start with it; \
             use visible ASCII characters such as \"sha256=\""
        ));
    }
    Ok(())
}

/// Rejects templates whose placeholders and configured headers do not fit together. The
/// generic `signature:` rule shares these checks.
pub(super) fn check_template(
    template: &[Part],
    timestamp_header: Option<&HeaderName>,
    id_header: Option<&HeaderName>,
) -> Result<(), String> {
    if !template.contains(&Part::Body) {
        return Err(
            "signed template does not contain {body}, so the body would not be authenticated; \
             add {body} where the provider signs it"
                .to_owned(),
        );
    }
    let signs_timestamp = template.contains(&Part::Timestamp);
    if signs_timestamp && timestamp_header.is_none() {
        return Err(
            "signed template uses {timestamp} but no timestamp header is set; \
             set the timestamp header or remove {timestamp}"
                .to_owned(),
        );
    }
    if let (false, Some(name)) = (signs_timestamp, timestamp_header) {
        return Err(format!(
            "timestamp header {name} is set but the signed template does not contain \
             {{timestamp}}; add {{timestamp}} where the provider signs it, or remove the \
             timestamp header because an unsigned timestamp does not prevent replay"
        ));
    }
    if template.contains(&Part::Id) && id_header.is_none() {
        return Err(
            "signed template uses {id} but no id header is set; set the id header or remove {id}"
                .to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;

//! Presets written as data: the header that carries the signature and how it is written, the
//! parts of the request that the provider signs in order, and the headers that carry a signed
//! timestamp or id. One [`verify`] and one [`sign`] serve every preset here.
//!
//! The signed parts are concatenated with no separator, as each provider does. Where a
//! timestamp sits next to other signed text, a byte moved across that boundary must not leave
//! a request that still verifies. RFC 3339 timestamps prevent that by their strict format (see
//! `rfc3339`). HubSpot's milliseconds do through `timestamp::parse_millis`, which rejects a
//! leading zero, and the tolerance, because any other moved digit changes the time tenfold.

use std::time::Duration;

use http::HeaderName;

use super::headers::{self, Role};
use super::sign::Message;
use super::{rfc3339, timestamp, Algorithm, Encoding, Failure, Key, Request, Verified};

/// One provider's signing scheme.
#[derive(Debug)]
pub(super) struct Spec {
    pub(super) header: HeaderName,
    format: Format,
    encoding: Encoding,
    algorithm: Algorithm,
    signed: &'static [Part],
    pub(super) timestamp: Option<Timestamp>,
    /// Header whose value is signed as [`Part::Id`].
    id: Option<HeaderName>,
    /// Header that identifies a delivery, for logs and duplicate detection. Not signed unless
    /// it is also `id`.
    pub(super) delivery_id: Option<HeaderName>,
}

/// Layout of the signature header.
#[derive(Debug)]
enum Format {
    /// One signature after a fixed prefix, which may be empty.
    Single { prefix: &'static str },
    /// Signatures separated by `separator`, each after `prefix`, with optional spaces around
    /// each entry. Entries with another prefix are skipped, and at least one must have it.
    List {
        separator: char,
        prefix: &'static str,
    },
}

/// One signed part of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Method,
    /// `Request::url`, which the gateway fills with the public URL the provider called.
    Url,
    Id,
    /// The timestamp header's text, exactly as received.
    Timestamp,
    Body,
    /// Fixed text between the other parts, such as Zoom's `v0:`.
    Literal(&'static str),
}

/// A signed timestamp header and the way its value is written.
#[derive(Debug)]
pub(super) struct Timestamp {
    header: HeaderName,
    format: TimeFormat,
}

#[derive(Debug, Clone, Copy)]
enum TimeFormat {
    /// Unix seconds, 1 to 19 digits.
    UnixSeconds,
    /// Unix milliseconds, with no leading zero.
    UnixMillis,
    /// RFC 3339, such as `2023-11-14T22:13:20.123456789Z`.
    Rfc3339,
}

impl TimeFormat {
    fn parse(self, text: &str) -> Result<i64, Failure> {
        match self {
            TimeFormat::UnixSeconds => timestamp::parse(text),
            TimeFormat::UnixMillis => timestamp::parse_millis(text),
            TimeFormat::Rfc3339 => rfc3339::parse(text),
        }
    }

    fn format(self, unix_seconds: i64) -> Option<String> {
        match self {
            TimeFormat::UnixSeconds => Some(unix_seconds.to_string()),
            TimeFormat::UnixMillis => unix_seconds.checked_mul(1000).map(|ms| ms.to_string()),
            TimeFormat::Rfc3339 => rfc3339::format(unix_seconds),
        }
    }
}

/// Square: `x-square-hmacsha256-signature: <base64>` over the notification URL and the body.
/// The URL must equal the subscription URL byte for byte.
pub(super) static SQUARE: Spec = Spec {
    header: HeaderName::from_static("x-square-hmacsha256-signature"),
    format: Format::Single { prefix: "" },
    encoding: Encoding::Base64,
    algorithm: Algorithm::Sha256,
    signed: &[Part::Url, Part::Body],
    timestamp: None,
    id: None,
    delivery_id: None,
};

/// Zendesk: `X-Zendesk-Webhook-Signature: <base64>` over the timestamp header and the body.
/// Zendesk's "Anatomy of a webhook request" page shows the timestamp in RFC 3339, such as
/// `2021-03-25T05:09:27Z`. A GET or DELETE webhook may have no body, and then only the
/// timestamp is signed.
pub(super) static ZENDESK: Spec = Spec {
    header: HeaderName::from_static("x-zendesk-webhook-signature"),
    format: Format::Single { prefix: "" },
    encoding: Encoding::Base64,
    algorithm: Algorithm::Sha256,
    signed: &[Part::Timestamp, Part::Body],
    timestamp: Some(Timestamp {
        header: HeaderName::from_static("x-zendesk-webhook-signature-timestamp"),
        format: TimeFormat::Rfc3339,
    }),
    id: None,
    delivery_id: None,
};

/// PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`, one signature of the body
/// per active secret.
pub(super) static PAGERDUTY: Spec = Spec {
    header: HeaderName::from_static("x-pagerduty-signature"),
    format: Format::List {
        separator: ',',
        prefix: "v1=",
    },
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    signed: &[Part::Body],
    timestamp: None,
    id: None,
    delivery_id: None,
};

/// Linear: `Linear-Signature: <hex>` over the body. The timestamp is a body field, which
/// `linear` checks after this signature.
pub(super) static LINEAR: Spec = Spec {
    header: HeaderName::from_static("linear-signature"),
    format: Format::Single { prefix: "" },
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    signed: &[Part::Body],
    timestamp: None,
    id: None,
    delivery_id: None,
};

/// Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=<hex>` over the message id,
/// the RFC 3339 message timestamp and the body.
pub(super) static TWITCH: Spec = Spec {
    header: HeaderName::from_static("twitch-eventsub-message-signature"),
    format: Format::Single { prefix: "sha256=" },
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    signed: &[Part::Id, Part::Timestamp, Part::Body],
    timestamp: Some(Timestamp {
        header: HeaderName::from_static("twitch-eventsub-message-timestamp"),
        format: TimeFormat::Rfc3339,
    }),
    id: Some(HeaderName::from_static("twitch-eventsub-message-id")),
    delivery_id: Some(HeaderName::from_static("twitch-eventsub-message-id")),
};

/// Bitbucket: `X-Hub-Signature: sha256=<hex>` over the body. GitHub uses the same header name
/// for its legacy SHA-1 signature.
pub(super) static BITBUCKET: Spec = Spec {
    header: HeaderName::from_static("x-hub-signature"),
    format: Format::Single { prefix: "sha256=" },
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    signed: &[Part::Body],
    timestamp: None,
    id: None,
    // Bitbucket Cloud's per-request id. Bitbucket Data Center sends `X-Request-Id` instead.
    delivery_id: Some(HeaderName::from_static("x-request-uuid")),
};

/// HubSpot v3: `X-HubSpot-Signature-v3: <base64>` over the method, the URL, the body and the
/// `X-HubSpot-Request-Timestamp` header (Unix milliseconds).
///
/// NOTE: HubSpot decodes some percent-encoded characters of the URL before signing, and which
/// ones is not confirmed here, so the URL is signed exactly as given. A URL with
/// percent-encoded characters may therefore fail verification, but it is never wrongly
/// accepted.
pub(super) static HUBSPOT: Spec = Spec {
    header: HeaderName::from_static("x-hubspot-signature-v3"),
    format: Format::Single { prefix: "" },
    encoding: Encoding::Base64,
    algorithm: Algorithm::Sha256,
    signed: &[Part::Method, Part::Url, Part::Body, Part::Timestamp],
    timestamp: Some(Timestamp {
        header: HeaderName::from_static("x-hubspot-request-timestamp"),
        format: TimeFormat::UnixMillis,
    }),
    id: None,
    delivery_id: None,
};

/// WooCommerce: `X-WC-Webhook-Signature: <base64>` over the body.
pub(super) static WOOCOMMERCE: Spec = Spec {
    header: HeaderName::from_static("x-wc-webhook-signature"),
    format: Format::Single { prefix: "" },
    encoding: Encoding::Base64,
    algorithm: Algorithm::Sha256,
    signed: &[Part::Body],
    timestamp: None,
    id: None,
    delivery_id: None,
};

/// Sentry integration platform: `Sentry-Hook-Signature: <hex>` over the body.
/// `Sentry-Hook-Timestamp` is not signed, so it is not checked.
///
/// NOTE: Sentry's examples sign the re-serialised JSON body. The raw body is signed here, which
/// matches only while Sentry sends the same compact JSON it signs. A mismatch fails closed.
pub(super) static SENTRY: Spec = Spec {
    header: HeaderName::from_static("sentry-hook-signature"),
    format: Format::Single { prefix: "" },
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    signed: &[Part::Body],
    timestamp: None,
    id: None,
    delivery_id: Some(HeaderName::from_static("request-id")),
};

/// Intercom: `X-Hub-Signature: sha1=<hex>`, HMAC-SHA1 of the body with the app's client
/// secret (Intercom's "Signed notifications" page).
pub(super) static INTERCOM: Spec = Spec {
    header: HeaderName::from_static("x-hub-signature"),
    format: Format::Single { prefix: "sha1=" },
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha1,
    signed: &[Part::Body],
    timestamp: None,
    id: None,
    delivery_id: None,
};

/// Typeform: `Typeform-Signature: sha256=<base64>`, HMAC-SHA256 of the body. The digest is
/// base64 after a `sha256=` prefix, unlike GitHub's hex.
pub(super) static TYPEFORM: Spec = Spec {
    header: HeaderName::from_static("typeform-signature"),
    format: Format::Single { prefix: "sha256=" },
    encoding: Encoding::Base64,
    algorithm: Algorithm::Sha256,
    signed: &[Part::Body],
    timestamp: None,
    id: None,
    delivery_id: None,
};

/// Vercel: `x-vercel-signature: <hex>`, HMAC-SHA1 of the body with the webhook secret or the
/// integration's client secret.
pub(super) static VERCEL: Spec = Spec {
    header: HeaderName::from_static("x-vercel-signature"),
    format: Format::Single { prefix: "" },
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha1,
    signed: &[Part::Body],
    timestamp: None,
    id: None,
    delivery_id: None,
};

/// Jira admin webhooks created with a secret: `X-Hub-Signature: sha256=<hex>`, HMAC-SHA256 of
/// the body. Webhooks registered by Connect or OAuth apps carry a JWT instead and do not fit.
pub(super) static JIRA: Spec = Spec {
    header: HeaderName::from_static("x-hub-signature"),
    format: Format::Single { prefix: "sha256=" },
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    signed: &[Part::Body],
    timestamp: None,
    id: None,
    delivery_id: Some(HeaderName::from_static("x-atlassian-webhook-identifier")),
};

/// Zoom: `x-zm-signature: v0=<hex>`, HMAC-SHA256 with the app's secret token of
/// `v0:<x-zm-request-timestamp>:<body>`, the timestamp in Unix seconds.
pub(super) static ZOOM: Spec = Spec {
    header: HeaderName::from_static("x-zm-signature"),
    format: Format::Single { prefix: "v0=" },
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    signed: &[
        Part::Literal("v0:"),
        Part::Timestamp,
        Part::Literal(":"),
        Part::Body,
    ],
    timestamp: Some(Timestamp {
        header: HeaderName::from_static("x-zm-request-timestamp"),
        format: TimeFormat::UnixSeconds,
    }),
    id: None,
    delivery_id: None,
};

/// X (Twitter) webhooks: `x-twitter-webhooks-signature: sha256=<base64>`, HMAC-SHA256 of the
/// body with the app's consumer secret.
///
/// NOTE: X's pages read here name the header and define the CRC response, but not the
/// delivery signature. This format, the CRC's HMAC over the raw body, is the one independent
/// implementations verify. A different format would fail closed.
pub(super) static TWITTER: Spec = Spec {
    header: HeaderName::from_static("x-twitter-webhooks-signature"),
    format: Format::Single { prefix: "sha256=" },
    encoding: Encoding::Base64,
    algorithm: Algorithm::Sha256,
    signed: &[Part::Body],
    timestamp: None,
    id: None,
    delivery_id: None,
};

/// Every spec, for tests that check them all.
#[cfg(test)]
pub(super) static ALL: [&Spec; 15] = [
    &SQUARE,
    &ZENDESK,
    &PAGERDUTY,
    &LINEAR,
    &TWITCH,
    &BITBUCKET,
    &HUBSPOT,
    &WOOCOMMERCE,
    &SENTRY,
    &INTERCOM,
    &TYPEFORM,
    &VERCEL,
    &JIRA,
    &ZOOM,
    &TWITTER,
];

pub(super) fn verify(
    spec: &Spec,
    request: &Request<'_>,
    keys: &[Key],
    now: i64,
    tolerance: Duration,
) -> Result<Verified, Failure> {
    let signatures = spec.signatures(request.headers)?;
    let timestamp = match &spec.timestamp {
        Some(timestamp) => {
            let text = headers::required(request.headers, &timestamp.header, Role::Timestamp)?;
            Some((text, timestamp.format.parse(text)?))
        }
        None => None,
    };
    let id = match &spec.id {
        Some(name) => Some(headers::required(request.headers, name, Role::Signed)?),
        None => None,
    };

    let message = spec.message(request, id, timestamp.map(|(text, _)| text))?;
    let key_index = spec
        .algorithm
        .find_key(keys, &message, &signatures)
        .ok_or(Failure::SignatureInvalid)?;
    let signed_at = timestamp.map(|(_, signed_at)| signed_at);
    if let Some(signed_at) = signed_at {
        timestamp::check_window(signed_at, now, tolerance)?;
    }
    Ok(Verified {
        key_index,
        timestamp: signed_at,
    })
}

/// Returns the headers that carry a valid signature of `message` under `key`: the signed
/// timestamp and id headers the spec has, then the signature header.
pub(super) fn sign(
    spec: &Spec,
    key: &Key,
    message: &Message<'_>,
) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    let timestamp = match &spec.timestamp {
        Some(timestamp) => {
            let text = timestamp.format.format(message.timestamp).ok_or_else(|| {
                format!(
                    "timestamp {} cannot be written as {}",
                    message.timestamp, timestamp.header
                )
            })?;
            headers.push((timestamp.header.to_string(), text.clone()));
            Some(text)
        }
        None => None,
    };
    if let Some(name) = &spec.id {
        headers.push((name.to_string(), message.id.to_string()));
    }

    let request = Request {
        method: message.method,
        url: message.url,
        headers: &http::HeaderMap::new(),
        body: message.body,
    };
    let parts = spec
        .message(&request, Some(message.id), timestamp.as_deref())
        .map_err(|failure| format!("cannot build the signed message: {failure}"))?;
    let mac = spec.algorithm.compute(key, &parts);
    let prefix = match spec.format {
        Format::Single { prefix } | Format::List { prefix, .. } => prefix,
    };
    let value = format!("{prefix}{}", spec.encoding.encode(&mac));
    headers.push((spec.header.to_string(), value));
    Ok(headers)
}

impl Spec {
    /// Reads and decodes the signatures in the signature header.
    fn signatures(&self, headers: &http::HeaderMap) -> Result<Vec<Vec<u8>>, Failure> {
        match self.format {
            Format::Single { prefix } => Ok(vec![headers::signature(
                headers,
                &self.header,
                prefix,
                self.encoding,
                self.algorithm,
            )?]),
            Format::List { separator, prefix } => {
                let value = headers::required(headers, &self.header, Role::Signature)?;
                let mut signatures = Vec::new();
                for entry in value.split(separator).map(|entry| entry.trim_matches(' ')) {
                    if let Some(encoded) = entry.strip_prefix(prefix) {
                        signatures.push(self.encoding.decode(encoded, self.algorithm)?);
                    }
                }
                if signatures.is_empty() {
                    return Err(Failure::SignatureMalformed);
                }
                Ok(signatures)
            }
        }
    }

    /// Collects the signed parts as borrowed slices, in order.
    fn message<'a>(
        &self,
        request: &Request<'a>,
        id: Option<&'a str>,
        timestamp: Option<&'a str>,
    ) -> Result<Vec<&'a [u8]>, Failure> {
        self.signed
            .iter()
            .map(|part| match part {
                Part::Method => Ok(request.method.as_bytes()),
                Part::Url => Ok(request.url.as_bytes()),
                Part::Body => Ok(request.body),
                Part::Literal(text) => Ok(text.as_bytes()),
                // The spec consistency test guarantees the headers for both parts below.
                Part::Id => id.map(str::as_bytes).ok_or(Failure::SignedHeaderMissing),
                Part::Timestamp => timestamp
                    .map(str::as_bytes)
                    .ok_or(Failure::TimestampMissing),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

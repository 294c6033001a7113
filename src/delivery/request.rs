//! A queued request: the request line, the header block as the upstream receives it and the
//! body bytes, with the encoding that both queue backends store.

use bytes::Bytes;
use pingora::http::{HeaderNameVariant, RequestHeader};

/// A verified request waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub method: String,
    /// Path and query exactly as received.
    pub target: Vec<u8>,
    /// Header names, with their case as received, and values in order.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Bytes,
}

/// Queue state of one stored request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub route: String,
    /// Identifier within the queue: a sequence number (local) or a stream id (Redis).
    pub id: String,
    /// Delivery id used to store a request only once; empty when the request has none.
    pub delivery_id: String,
    /// Unix milliseconds at which the gateway acknowledged the request.
    pub accepted_ms: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Error of the last failed attempt; empty before the first failure.
    pub last_error: String,
    pub request: StoredRequest,
}

impl StoredRequest {
    /// Captures the request header that would be forwarded, with `body`.
    pub fn capture(header: &RequestHeader, body: Bytes) -> StoredRequest {
        let mut headers = Vec::with_capacity(header.headers.len());
        let _ = header.map(|name, value| {
            let name = match name {
                HeaderNameVariant::Case(name) => name.as_slice().to_vec(),
                HeaderNameVariant::Titled(name) => name.as_bytes().to_vec(),
            };
            headers.push((name, value.as_bytes().to_vec()));
            Ok(())
        });
        StoredRequest {
            method: header.method.as_str().to_string(),
            target: header.raw_path().to_vec(),
            headers,
            body,
        }
    }

    /// Rebuilds the request header. It fails only on a record with an invalid method, target
    /// or header, which `capture` never produces.
    pub fn header(&self) -> Result<RequestHeader, Box<pingora::Error>> {
        let mut header =
            RequestHeader::build(self.method.as_str(), &self.target, Some(self.headers.len()))?;
        for (name, value) in &self.headers {
            let value = http::HeaderValue::from_bytes(value).map_err(|_| {
                pingora::Error::explain(
                    pingora::ErrorType::InvalidHTTPHeader,
                    "stored header value",
                )
            })?;
            header.append_header(Bytes::copy_from_slice(name), value)?;
        }
        Ok(header)
    }

    /// Bytes counted against `queue.max_bytes`.
    pub fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        self.method.len() + self.target.len() + headers + self.body.len()
    }

    /// Encodes the header block as `name:value` lines. Names cannot contain `:` and neither
    /// part can contain a line feed, so the encoding cannot be ambiguous.
    pub fn encode_headers(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.push(b':');
            out.extend_from_slice(value);
            out.push(b'\n');
        }
        out
    }

    /// Decodes what [`StoredRequest::encode_headers`] wrote.
    pub fn decode_headers(encoded: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        encoded
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| match line.iter().position(|b| *b == b':') {
                Some(colon) => (line[..colon].to_vec(), line[colon + 1..].to_vec()),
                None => (line.to_vec(), Vec::new()),
            })
            .collect()
    }

    /// Returns the value of header `name`, compared without case.
    pub fn header_value(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }
}

/// Current time in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_block_round_trips_with_case_and_order() {
        let mut header = RequestHeader::build("POST", b"/hooks/a?x=1&y=%20", None).expect("build");
        header
            .append_header("X-Hub-Signature-256", "sha256=00")
            .expect("append");
        header.append_header("x-repeat", "one").expect("append");
        header
            .append_header("X-Repeat", "two: with colon")
            .expect("append");
        let stored = StoredRequest::capture(&header, Bytes::from_static(b"\x00\xffbody"));

        let decoded = StoredRequest::decode_headers(&stored.encode_headers());
        assert_eq!(decoded, stored.headers);
        let rebuilt = stored.header().expect("rebuild");
        assert_eq!(rebuilt.raw_path(), b"/hooks/a?x=1&y=%20");
        assert_eq!(rebuilt.method, http::Method::POST);
        let values: Vec<_> = rebuilt.headers.get_all("x-repeat").iter().collect();
        assert_eq!(values, ["one", "two: with colon"]);
        assert_eq!(stored.headers[0].0, b"X-Hub-Signature-256");
    }
}

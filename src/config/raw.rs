//! `gateway.yaml` as written: serde structs that reject unknown keys. The resolve step turns
//! them into the validated model in `config::model`.

use serde::{Deserialize, Deserializer};

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as { address: \"127.0.0.1:8080\" }"
)]
pub struct RawListener {
    /// `host:port` to accept webhooks on; port 0 picks a free port.
    pub address: String,
    /// Serve HTTPS with these certificates.
    pub tls: Option<RawTls>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as { cert: PATH, key: PATH } or { certs: [ { cert: PATH, key: PATH } ] }"
)]
pub struct RawTls {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub certs: Option<Vec<RawCert>>,
    /// Offer HTTP/2 through ALPN. Default: true.
    pub http2: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as { cert: PATH, key: PATH, default: true }"
)]
pub struct RawCert {
    pub cert: String,
    pub key: String,
    /// Serve this certificate when the client's SNI matches no certificate.
    pub default: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping such as { ca_file: PATH }")]
pub struct RawUpstreamTls {
    /// PEM file of the CA certificates that may sign the upstream's certificate.
    pub ca_file: Option<String>,
    /// Skip certificate verification. Default: false.
    pub insecure_skip_verify: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as { address: \"127.0.0.1:9090\" }"
)]
pub struct RawAdmin {
    /// `host:port` for `/metrics`, `/healthz` and `/readyz`.
    pub address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of server settings such as { threads: 2 }"
)]
pub struct RawServer {
    /// Worker threads for the webhook listeners. Default: 2.
    pub threads: Option<usize>,
    /// Time given to requests in flight after SIGTERM. Default: 10s.
    #[serde(default, deserialize_with = "text_or_number")]
    pub grace_period: Option<String>,
    /// Log one info line per request under the `hookgate::access` target. Default: false.
    pub access_log: Option<bool>,
    /// Rejections of one reason on one route within a minute that raise a warning. Default: 100.
    pub reject_warning_threshold: Option<u64>,
    /// CIDR blocks of proxies whose `X-Forwarded-For` names the client. Default: none.
    pub trusted_proxies: Option<Vec<String>>,
    /// Header that carries to the upstream how a request was verified. Default: none.
    pub verified_header: Option<String>,
    /// Bytes of request bodies held in memory at once, across all requests. Default: 256MiB.
    #[serde(default, deserialize_with = "text_or_number")]
    pub max_buffered_bytes: Option<String>,
    /// Time to receive a request head, from the connection's start or the previous
    /// response's end. Default: 10s.
    #[serde(default, deserialize_with = "text_or_number")]
    pub header_timeout: Option<String>,
    /// Client connections open at once on the webhook listeners. Default: 10000.
    pub max_connections: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a route: a mapping with name, path, provider, secrets and upstream"
)]
pub struct RawRoute {
    pub name: Option<String>,
    pub path: Option<String>,
    pub path_prefix: Option<String>,
    pub methods: Option<Vec<String>>,
    pub provider: Option<String>,
    pub hmac: Option<RawHmac>,
    /// A generic public-key rule, in place of `provider:` or `hmac:`.
    pub signature: Option<RawSignature>,
    #[serde(default)]
    pub secrets: Vec<RawSecret>,
    /// Public keys of public-key schemes, with the same `env:` and `file:` sources as
    /// `secrets:`. Default: none.
    #[serde(default)]
    pub public_keys: Vec<RawSecret>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub tolerance: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub max_body: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub body_timeout: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub connect_timeout: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub upstream_timeout: Option<String>,
    pub public_url: Option<String>,
    pub upstream: Option<String>,
    pub upstream_tls: Option<RawUpstreamTls>,
    pub host: Option<String>,
    /// `enforce` (default) or `report`: verify and count, but forward every request. `report`
    /// is rejected with `delivery: async`.
    pub mode: Option<String>,
    pub allow_ips: Option<Vec<String>>,
    pub rate_limit: Option<RawRateLimit>,
    pub failed_verify_limit: Option<RawRateLimit>,
    pub replay: Option<RawReplay>,
    pub max_in_flight: Option<usize>,
    pub store_failure: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub max_header_bytes: Option<String>,
    /// `sync` (default) or `async`: store, acknowledge and deliver from the queue.
    pub delivery: Option<String>,
    /// Retry, concurrency and acknowledgement settings of `delivery: async`.
    #[serde(rename = "async")]
    pub async_delivery: Option<super::delivery::RawAsync>,
}

impl RawRoute {
    /// Moves the guard settings out, to be merged with `defaults:`.
    pub fn take_guards(&mut self) -> RawGuards {
        RawGuards {
            allow_ips: self.allow_ips.take(),
            rate_limit: self.rate_limit.take(),
            failed_verify_limit: self.failed_verify_limit.take(),
            replay: self.replay.take(),
            max_in_flight: self.max_in_flight.take(),
            store_failure: self.store_failure.take(),
            max_header_bytes: self.max_header_bytes.take(),
        }
    }
}

/// Guard settings, as written under `defaults:` or in a route.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of guard settings such as { rate_limit: { rate: 50/s } }"
)]
pub struct RawGuards {
    /// CIDR blocks whose clients may use the route; all when absent.
    pub allow_ips: Option<Vec<String>>,
    pub rate_limit: Option<RawRateLimit>,
    pub failed_verify_limit: Option<RawRateLimit>,
    pub replay: Option<RawReplay>,
    pub max_in_flight: Option<usize>,
    pub store_failure: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub max_header_bytes: Option<String>,
}

impl RawGuards {
    /// Fills every setting missing here from `defaults`.
    pub fn or(self, defaults: &RawGuards) -> RawGuards {
        RawGuards {
            allow_ips: self.allow_ips.or_else(|| defaults.allow_ips.clone()),
            rate_limit: self.rate_limit.or_else(|| defaults.rate_limit.clone()),
            failed_verify_limit: self
                .failed_verify_limit
                .or_else(|| defaults.failed_verify_limit.clone()),
            replay: self.replay.or_else(|| defaults.replay.clone()),
            max_in_flight: self.max_in_flight.or(defaults.max_in_flight),
            store_failure: self
                .store_failure
                .or_else(|| defaults.store_failure.clone()),
            max_header_bytes: self
                .max_header_bytes
                .or_else(|| defaults.max_header_bytes.clone()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as { key: client_ip, rate: 50/s, burst: 100 }"
)]
pub struct RawRateLimit {
    /// `false` turns an inherited or built-in limit off. Default: true.
    pub enabled: Option<bool>,
    /// `client_ip`, `route` or `header:NAME`. Default: client_ip.
    pub key: Option<String>,
    /// Sustained rate, `COUNT/UNIT` with unit s, m or h.
    pub rate: Option<String>,
    /// Requests admitted at once. Default: the rate's count.
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as { id: auto, window: 1h }"
)]
pub struct RawReplay {
    /// `false` turns duplicate detection off. Default: true.
    pub enabled: Option<bool>,
    /// `auto`, `signature`, `header:NAME` or `json:FIELD`. Default: auto.
    pub id: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as { redis: \"redis://127.0.0.1:6379\" }"
)]
pub struct RawStore {
    /// Redis URL; without it the state stays in this process.
    pub redis: Option<String>,
    /// Prefix of every Redis key. Default: `hookgate:`.
    pub prefix: Option<String>,
    /// Most delivery ids and rate-limit buckets kept in memory. Default: 100000.
    pub max_entries: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with algorithm, header, encoding and signed"
)]
pub struct RawHmac {
    pub algorithm: String,
    pub header: String,
    pub prefix: Option<String>,
    pub encoding: String,
    pub signed: Option<String>,
    pub timestamp_header: Option<String>,
    pub id_header: Option<String>,
}

/// A generic public-key rule: the algorithm, where the signature is, and what is signed.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with algorithm, header, encoding and signed"
)]
pub struct RawSignature {
    /// `ed25519`, `ecdsa-p256-sha256`, `rsa-pkcs1v15-sha256` or `rsa-pss-sha256`.
    pub algorithm: String,
    /// Header that carries the signature.
    pub header: String,
    /// Text before the encoded signature in the header. Default: none.
    pub prefix: Option<String>,
    /// `hex`, `base64` or `base64url`.
    pub encoding: String,
    /// Template of the signed bytes, as for `hmac:`. Default: `{body}`.
    pub signed: Option<String>,
    /// Header with the signed Unix timestamp in seconds. Default: none.
    pub timestamp_header: Option<String>,
    /// Header whose value `{id}` signs. Default: none.
    pub id_header: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as { env: NAME } or { file: PATH }"
)]
pub struct RawSecret {
    /// Name of the environment variable that contains the secret.
    pub env: Option<String>,
    /// Path of the file that contains the secret. One trailing newline is stripped.
    pub file: Option<String>,
    /// Label for metrics and logs, so an operator can tell rotated secrets apart.
    pub name: Option<String>,
}

/// Reads a size or duration written as text (`1MiB`, `5m`) or as a bare number (`1024`), so
/// that the unit parser can judge both and explain what is missing.
pub(super) fn text_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Number(u64),
    }
    Ok(
        Option::<Scalar>::deserialize(deserializer)?.map(|scalar| match scalar {
            Scalar::Text(text) => text,
            Scalar::Number(number) => number.to_string(),
        }),
    )
}

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
    #[serde(default)]
    pub secrets: Vec<RawSecret>,
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
fn text_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
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

//! Configuration: reads `gateway.yaml`, checks every key, and resolves it into a model of
//! parsed values (addresses, durations, byte sizes, decoded keys) that the proxy uses as is.
//! Loading reports every problem at once, each as `file:line:column: key.path: message`.

mod delivery;
mod error;
mod guards;
mod keys;
mod locate;
mod raw;
mod resolve;
mod secret;
mod signature;
mod tls;
mod units;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use delivery::{AsyncDelivery, DeliveryMode, QueueBackend, QueueSettings};
pub use error::{ConfigError, ConfigErrors};
pub use secret::{strip_trailing_newline, Secret};

use crate::provider::{Key, PublicUrl, Scheme};
pub use crate::store::Limit;

/// A validated gateway configuration.
#[derive(Debug)]
pub struct Config {
    pub file: PathBuf,
    pub listeners: Vec<Listener>,
    pub admin: Option<SocketAddr>,
    pub server: Server,
    pub store: StoreSettings,
    pub routes: Vec<Route>,
    /// Store of `delivery: async` routes; required when any route uses it.
    pub queue: Option<QueueSettings>,
}

/// Location of the guard state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    Memory { max_entries: usize },
    Redis { url: String, prefix: String },
}

/// A plain-HTTP socket that accepts webhooks.
#[derive(Debug, Clone)]
pub struct Listener {
    pub address: SocketAddr,
    pub tls: Option<ListenerTls>,
}

/// HTTPS settings of a listener.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    pub certs: Vec<TlsCert>,
    /// Whether HTTP/2 is offered through ALPN beside HTTP/1.1.
    pub http2: bool,
}

/// One certificate chain and key, as paths resolved against the config file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCert {
    pub cert: String,
    pub key: String,
    /// Served when the client's SNI matches no certificate; the first one otherwise.
    pub default: bool,
}

/// Process-wide settings.
#[derive(Debug, Clone)]
pub struct Server {
    /// Worker threads for the webhook listeners.
    pub threads: usize,
    /// Time given to requests in flight after SIGTERM before the process exits.
    pub grace_period: Duration,
    /// Whether each request gets an info line under the `hookgate::access` target.
    pub access_log: bool,
    /// Rejections of one reason on one route within a minute that raise one warning.
    pub reject_warning_threshold: u64,
    /// Proxies whose `X-Forwarded-For` header names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Header sent to the upstream with the route, provider and matching secret of a verified
    /// request; a copy sent by the client is removed.
    pub verified_header: Option<http::HeaderName>,
    /// Bytes of request bodies held in memory at once; each request reserves its
    /// `Content-Length`, or its route's `max_body` when the length is not declared.
    pub max_buffered_bytes: usize,
    /// Time to receive a request head, counted from the start of the connection (after any
    /// TLS handshake) or from the end of the previous response on a keep-alive connection.
    pub header_timeout: Duration,
    /// Client connections open at once on the webhook listeners; more are closed on accept.
    pub max_connections: usize,
}

/// One webhook endpoint: which requests it takes, how they are verified, where they go.
#[derive(Debug)]
pub struct Route {
    /// Unique name, `[a-z0-9_-]+`; the `route` label in metrics and logs.
    pub name: String,
    pub path: PathMatch,
    /// Methods accepted; others get 405.
    pub methods: Vec<http::Method>,
    pub scheme: Scheme,
    /// One key per entry of `secrets:`, then one per entry of `public_keys:`, in config
    /// order; any one may match.
    pub keys: Vec<Key>,
    /// Labels of the keys: their `name:`, or their position (`0` for the first secret,
    /// `public_keys[0]` for the first public key).
    pub key_labels: Vec<String>,
    /// Allowed distance between a signed timestamp and the gateway's clock, either way.
    pub tolerance: Duration,
    /// Largest accepted body in bytes.
    pub max_body: usize,
    /// Time allowed to receive the whole body, counted from the end of the headers.
    pub body_timeout: Duration,
    /// URL senders call: an origin such as `https://hooks.example.com`, followed by the
    /// received path and query when signed, or the full URL the sender was given. URL-bound
    /// schemes and `{url}` templates sign it.
    pub public_url: Option<PublicUrl>,
    pub upstream: Upstream,
    pub guards: Guards,
    /// Host name the route serves (lower case, without port); any host when absent.
    pub host: Option<String>,
    /// In report mode a failed verification is counted and logged, and the request is
    /// forwarded anyway, marked in the `X-Hookgate-Report` header.
    pub report_only: bool,
    pub delivery: DeliveryMode,
}

/// The checks that sit beside verification on one route.
#[derive(Debug, Clone)]
pub struct Guards {
    /// Client networks allowed to use the route; empty allows all.
    pub allow_ips: Vec<ipnet::IpNet>,
    pub rate_limit: Option<RateLimit>,
    /// Limit on failed verifications per client IP, checked before the body is read.
    pub failed_verify_limit: Option<Limit>,
    pub replay: Option<Replay>,
    /// Requests forwarded to this route's upstream at once, across routes sharing it.
    pub max_in_flight: usize,
    pub store_failure: StoreFailure,
    /// Largest accepted request line plus header block, in bytes.
    pub max_header_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct RateLimit {
    pub key: RateKey,
    pub limit: Limit,
}

/// Key by which a rate limit counts requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    ClientIp,
    Route,
    Header(http::HeaderName),
}

/// Duplicate detection settings.
#[derive(Debug, Clone)]
pub struct Replay {
    pub id: DeliveryId,
    /// How long a delivered id is remembered.
    pub window: Duration,
}

/// Source of a request's delivery id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryId {
    /// The preset's id header, Stripe's event `id`, or else the signature header.
    Auto,
    Signature,
    Header(http::HeaderName),
    /// A top-level string or number field of a JSON body.
    JsonField(String),
}

/// Policy of a route when the shared store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    /// Respond 503 and forward nothing.
    Closed,
    /// Skip the guards that need the store.
    Open,
}

/// Path matcher of a route; the query string is not part of the match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
}

/// The app that receives verified webhooks.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The URL as configured, for logs.
    pub url: String,
    pub address: SocketAddr,
    pub tls: bool,
    /// Host name sent as SNI and checked against the certificate when `tls` is set.
    pub host: String,
    pub connect_timeout: Duration,
    /// Time allowed for the upstream to start its response once the request is sent.
    pub response_timeout: Duration,
    /// DER certificates of the CAs trusted for an `https://` upstream; the system's roots
    /// when empty.
    pub ca: Vec<Vec<u8>>,
    /// Whether the upstream's certificate is verified.
    pub verify: bool,
}

/// Whether loading a config reads the secrets and public keys its routes name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLoading {
    Read,
    /// Leave every route's `keys` empty and check none of its key entries, for commands
    /// that neither verify nor sign, such as `hookgate queue`.
    Skip,
}

/// Reads and validates the config at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with(path, KeyLoading::Read)
}

/// Reads and validates the config at `path`, reading the routes' keys or not.
pub fn load_with(path: &Path, keys: KeyLoading) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            location: locate::Location { line: 1, column: 1 },
            path: String::new(),
            message: format!("cannot read config file: {e}"),
        }])
    })?;
    resolve::resolve(path, &text, keys)
}

/// Validates config `text` as if it were read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    resolve::resolve(path, text, KeyLoading::Read)
}

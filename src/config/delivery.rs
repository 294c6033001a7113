//! Resolves asynchronous delivery: the top-level `queue:` block and each route's `delivery:`
//! and `async:` keys.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::Problems;
use super::units;

const DEFAULT_ACK_STATUS: u16 = 202;
const DEFAULT_CONCURRENCY: usize = 4;
const DEFAULT_MAX_ATTEMPTS: u32 = 20;
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);
const DEFAULT_MAX_BYTES: usize = 1 << 30;
const DEFAULT_MAX_ENTRIES: usize = 1_000_000;
const DEFAULT_PREFIX: &str = "hookgate:";
/// Name of the local queue's file inside `queue.dir`.
pub const QUEUE_FILE: &str = "queue.redb";

/// The `queue:` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as { dir: /var/lib/hookgate/queue } or { redis: \"redis://127.0.0.1:6379\" }"
)]
pub struct RawQueue {
    /// Directory of the local queue file; relative paths start at the config file's directory.
    pub dir: Option<String>,
    /// Redis URL of a shared broker, in place of `dir`.
    pub redis: Option<String>,
    /// Prefix of every Redis key of the queue. Default: `hookgate:`.
    pub prefix: Option<String>,
    /// Consumer name of this gateway in the Redis consumer groups. Default: host name and
    /// process id.
    pub consumer: Option<String>,
    /// Bytes of queued requests (pending and dead-lettered) the local queue holds. Default: 1GiB.
    #[serde(default, deserialize_with = "super::raw::text_or_number")]
    pub max_bytes: Option<String>,
    /// Queued requests, pending and dead-lettered, per queue (local) or per route (Redis).
    /// Default: 1000000.
    pub max_entries: Option<usize>,
}

/// A route's `async:` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as { concurrency: 4, max_attempts: 20, backoff: 1s }"
)]
pub struct RawAsync {
    /// Status sent to the sender once the request is stored. Default: 202.
    pub ack_status: Option<u16>,
    /// Deliveries in flight to the upstream at once. Default: 4, or 1 when `ordered`.
    pub concurrency: Option<usize>,
    /// Deliver one at a time in acceptance order. Default: false.
    pub ordered: Option<bool>,
    /// Attempts before a request is dead-lettered. Default: 20.
    pub max_attempts: Option<u32>,
    /// Age after which a request is dead-lettered instead of tried again. Default: 24h.
    #[serde(default, deserialize_with = "super::raw::text_or_number")]
    pub max_age: Option<String>,
    /// Wait before the second attempt; doubled for each later one. Default: 1s.
    #[serde(default, deserialize_with = "super::raw::text_or_number")]
    pub backoff: Option<String>,
    /// Maximum wait between two attempts, `Retry-After` included. Default: 5m.
    #[serde(default, deserialize_with = "super::raw::text_or_number")]
    pub max_backoff: Option<String>,
}

/// Store of the accepted requests of `delivery: async` routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    pub backend: QueueBackend,
    /// Queued requests the queue accepts before it responds 503 `queue_full`.
    pub max_entries: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueBackend {
    /// A redb file in this directory, used by one gateway process.
    Local {
        dir: PathBuf,
        /// Bytes of stored requests (headers and bodies) accepted before 503 `queue_full`.
        max_bytes: usize,
    },
    /// Redis Streams with one consumer group per route, shared by several gateways.
    Redis {
        url: String,
        prefix: String,
        consumer: String,
    },
}

impl QueueSettings {
    /// Path of the local queue file; `None` for Redis.
    pub fn file(&self) -> Option<PathBuf> {
        match &self.backend {
            QueueBackend::Local { dir, .. } => Some(dir.join(QUEUE_FILE)),
            QueueBackend::Redis { .. } => None,
        }
    }
}

/// Delivery mode of a route: how it hands verified requests to its upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Forward while the sender waits and relay the upstream's response.
    Sync,
    /// Store, acknowledge, and deliver from the queue with retries.
    Async(AsyncDelivery),
}

/// Delivery settings of a `delivery: async` route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncDelivery {
    /// Status of the acknowledgement, 200 to 299.
    pub ack_status: u16,
    /// Deliveries in flight at once; 1 when `ordered`.
    pub concurrency: usize,
    /// Whether requests are delivered one at a time in acceptance order.
    pub ordered: bool,
    pub max_attempts: u32,
    /// Age, counted from acceptance, after which no further attempt is made.
    pub max_age: Duration,
    /// Wait before the second attempt, doubled for each later attempt, with jitter.
    pub backoff: Duration,
    /// Upper bound of every wait between attempts, a `Retry-After` value included.
    pub max_backoff: Duration,
}

/// Resolves the `queue:` block.
pub fn resolve_queue(
    raw: Option<RawQueue>,
    base: &Path,
    problems: &mut Problems,
) -> Option<QueueSettings> {
    let raw = raw?;
    let max_entries = raw.max_entries.unwrap_or(DEFAULT_MAX_ENTRIES);
    if max_entries == 0 {
        problems.add("queue.max_entries", "max_entries must be at least 1");
    }
    let backend = match (raw.dir, raw.redis) {
        (Some(_), Some(_)) => {
            problems.add(
                "queue",
                "give either `dir:` (local queue) or `redis:` (shared broker), not both",
            );
            return None;
        }
        (None, None) => {
            problems.add(
                "queue",
                "the queue has no store; add `dir: PATH` for a local queue or `redis: URL` for a shared broker",
            );
            return None;
        }
        (Some(dir), None) => local(dir, raw.max_bytes, raw.prefix, raw.consumer, base, problems),
        (None, Some(url)) => {
            if raw.max_bytes.is_some() {
                problems.add(
                    "queue.max_bytes",
                    "max_bytes only applies to a local queue; Redis limits its memory with maxmemory, so use max_entries",
                );
            }
            if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                problems.add(
                    "queue.redis",
                    "invalid Redis URL; write it as redis://HOST:PORT or rediss://HOST:PORT",
                );
            }
            QueueBackend::Redis {
                url,
                prefix: raw.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_string()),
                consumer: raw.consumer.unwrap_or_else(default_consumer),
            }
        }
    };
    Some(QueueSettings {
        backend,
        max_entries,
    })
}

fn local(
    dir: String,
    max_bytes: Option<String>,
    prefix: Option<String>,
    consumer: Option<String>,
    base: &Path,
    problems: &mut Problems,
) -> QueueBackend {
    for (key, present) in [
        ("prefix", prefix.is_some()),
        ("consumer", consumer.is_some()),
    ] {
        if present {
            problems.add(
                format!("queue.{key}"),
                format!("{key} only applies to a Redis broker; add `redis:` or remove it"),
            );
        }
    }
    let dir = base.join(dir);
    if dir.exists() && !dir.is_dir() {
        problems.add(
            "queue.dir",
            format!(
                "{} exists and is not a directory; point `dir` at a directory for the queue file",
                dir.display()
            ),
        );
    }
    let max_bytes = super::resolve::size(
        max_bytes.as_deref(),
        "queue.max_bytes",
        DEFAULT_MAX_BYTES,
        problems,
    );
    QueueBackend::Local { dir, max_bytes }
}

/// Host name and process id, unique among the gateways on one Redis unless two hosts share a
/// name.
fn default_consumer() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "hookgate".to_string());
    format!("{host}-{}", std::process::id())
}

/// Resolves a route's `delivery:` and `async:` keys; `queue` is the resolved `queue:` block.
pub fn resolve_mode(
    mode: Option<&str>,
    raw: Option<RawAsync>,
    queue: Option<&QueueSettings>,
    at: &str,
    problems: &mut Problems,
) -> DeliveryMode {
    match mode {
        None | Some("sync") => {
            if raw.is_some() {
                problems.add(
                    format!("{at}.async"),
                    "async settings need `delivery: async` on the route; add it or remove `async:`",
                );
            }
            DeliveryMode::Sync
        }
        Some("async") => {
            if queue.is_none() {
                problems.add(
                    format!("{at}.delivery"),
                    "delivery: async needs a queue; add a top-level `queue: { dir: PATH }`",
                );
            }
            let settings = resolve_async(raw.unwrap_or_default(), &format!("{at}.async"), problems);
            let shared = queue.is_some_and(|q| matches!(q.backend, QueueBackend::Redis { .. }));
            if settings.ordered && shared {
                problems.add(
                    format!("{at}.async.ordered"),
                    "ordered delivery needs the local queue, because a Redis consumer group hands entries to several gateways at once; use `queue.dir` or remove `ordered`",
                );
            }
            DeliveryMode::Async(settings)
        }
        Some(other) => {
            problems.add(
                format!("{at}.delivery"),
                format!("unknown delivery {other:?}; use sync or async"),
            );
            DeliveryMode::Sync
        }
    }
}

fn resolve_async(raw: RawAsync, at: &str, problems: &mut Problems) -> AsyncDelivery {
    let ack_status = raw.ack_status.unwrap_or(DEFAULT_ACK_STATUS);
    if !(200..300).contains(&ack_status) {
        problems.add(
            format!("{at}.ack_status"),
            format!("ack_status {ack_status} is not a 2xx status; senders retry anything else, so use 200 to 299"),
        );
    }
    let ordered = raw.ordered.unwrap_or(false);
    let concurrency = match raw.concurrency {
        Some(0) => {
            problems.add(
                format!("{at}.concurrency"),
                "concurrency must be at least 1",
            );
            1
        }
        Some(n) if ordered && n > 1 => {
            problems.add(
                format!("{at}.concurrency"),
                "ordered delivery sends one request at a time; remove `concurrency` or set it to 1",
            );
            1
        }
        Some(n) => n,
        None if ordered => 1,
        None => DEFAULT_CONCURRENCY,
    };
    let max_attempts = raw.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if max_attempts == 0 {
        problems.add(
            format!("{at}.max_attempts"),
            "max_attempts must be at least 1",
        );
    }
    let max_age = duration(
        raw.max_age.as_deref(),
        &format!("{at}.max_age"),
        DEFAULT_MAX_AGE,
        problems,
    );
    let backoff = duration(
        raw.backoff.as_deref(),
        &format!("{at}.backoff"),
        DEFAULT_BACKOFF,
        problems,
    );
    let max_backoff = duration(
        raw.max_backoff.as_deref(),
        &format!("{at}.max_backoff"),
        DEFAULT_MAX_BACKOFF,
        problems,
    );
    if max_backoff < backoff {
        problems.add(
            format!("{at}.max_backoff"),
            "max_backoff is shorter than backoff; raise max_backoff or lower backoff",
        );
    }
    AsyncDelivery {
        ack_status,
        concurrency,
        ordered,
        max_attempts,
        max_age,
        backoff,
        max_backoff,
    }
}

fn duration(
    text: Option<&str>,
    path: &str,
    default: Duration,
    problems: &mut Problems,
) -> Duration {
    match text.map(units::parse_duration) {
        None => default,
        Some(Ok(value)) => value,
        Some(Err(message)) => {
            problems.add(path, message);
            default
        }
    }
}

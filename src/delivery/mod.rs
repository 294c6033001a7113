//! Asynchronous delivery, for routes with `delivery: async`. The pipeline stores a verified
//! request in the queue and acknowledges it only once it is stored durably. Delivery workers
//! then send it to the upstream with retries, and dead-letter what cannot be delivered.
//!
//! ```text
//! verified request ─▶ queue (redb file or Redis stream) ─▶ 202 to the sender
//!                        └─▶ worker ─▶ upstream ─ 2xx ─▶ removed
//!                               5xx, 429, connection error ─▶ backoff, retry
//!                               other 4xx, attempts or age spent ─▶ dead letter
//! ```
//!
//! Delivery is at least once: a gateway that dies after the upstream answered but before the
//! queue recorded it sends that request again after the restart.

pub mod admin;
pub mod cli;
mod local;
mod redis;
mod request;
mod service;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

pub use local::LocalQueue;
pub use redis::RedisQueue;
pub use request::{Entry, StoredRequest};
pub use service::{DeliveryHandle, DeliveryService};

use crate::config::{QueueBackend, QueueSettings};

/// Result of storing a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored now under this queue id.
    Accepted { id: String },
    /// A request with the same delivery id is already stored under this queue id.
    Duplicate { id: String },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is full; raise queue.max_entries or queue.max_bytes, or let the workers drain it")]
    Full,
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("the queue file {} is open in another process, most likely a running gateway; stop it, or run the command while the gateway's admin listener is reachable", .0.display())]
    Locked(PathBuf),
}

/// Entries an admin command acts on: every entry, a route's, or one.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub route: Option<String>,
    pub id: Option<String>,
}

impl Selection {
    pub fn matches(&self, route: &str, id: &str) -> bool {
        self.route.as_deref().is_none_or(|r| r == route)
            && self.id.as_deref().is_none_or(|i| i == id)
    }
}

/// Queue figures of one route, for the metrics.
#[derive(Debug, Clone)]
pub struct RouteStats {
    pub route: String,
    pub depth: usize,
    pub dead: usize,
    /// Acceptance time (Unix ms) of the oldest pending request.
    pub oldest_ms: Option<u64>,
}

/// The store behind `delivery: async` routes.
pub enum Queue {
    Local(LocalQueue),
    Redis(Box<RedisQueue>),
}

impl Queue {
    /// Opens the queue the config describes. The local file is opened and locked now; Redis
    /// connects on first use.
    pub fn open(settings: &QueueSettings) -> Result<Queue, QueueError> {
        match &settings.backend {
            QueueBackend::Local { max_bytes, .. } => {
                let file = settings.file().unwrap_or_default();
                LocalQueue::open(&file, settings.max_entries, *max_bytes).map(Queue::Local)
            }
            QueueBackend::Redis {
                url,
                prefix,
                consumer,
            } => RedisQueue::new(url, prefix, consumer, settings.max_entries)
                .map(|queue| Queue::Redis(Box::new(queue))),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Queue::Local(_) => "local",
            Queue::Redis(_) => "redis",
        }
    }

    /// Fails when the queue can no longer store requests; checked by `/readyz`.
    pub fn health(&self) -> Result<(), QueueError> {
        match self {
            Queue::Local(queue) => queue.health(),
            // A Redis outage shows in the requests that fail; it needs no restart.
            Queue::Redis(_) => Ok(()),
        }
    }

    /// Stores `request` for `route` once per `delivery_id` (empty for none) and returns once
    /// the store has it durably.
    pub async fn enqueue(
        &self,
        route: &str,
        delivery_id: &str,
        request: StoredRequest,
        keep_id: Duration,
    ) -> Result<Enqueued, QueueError> {
        match self {
            Queue::Local(queue) => queue.enqueue(route, delivery_id, request).await,
            Queue::Redis(queue) => queue.enqueue(route, delivery_id, request, keep_id).await,
        }
    }

    /// Takes the next request of `route` for delivery, waiting up to `wait` for one.
    pub async fn take(&self, route: &str, wait: Duration) -> Result<Option<Entry>, QueueError> {
        match self {
            Queue::Local(queue) => queue.take(route, wait).await,
            Queue::Redis(queue) => queue.take(route, wait).await,
        }
    }

    /// Hands a taken request back without settling it, so that another worker takes it.
    pub async fn release(&self, entry: &Entry) {
        match self {
            Queue::Local(queue) => queue.release(entry),
            // An unsettled stream entry stays pending and is claimed again once idle.
            Queue::Redis(_) => {}
        }
    }

    /// Marks a held request as still in work; only Redis needs it, to keep other gateways from
    /// claiming it.
    pub async fn keep(&self, entry: &Entry) {
        if let Queue::Redis(queue) = self {
            if let Err(error) = queue.touch(entry).await.map(drop) {
                tracing::warn!(route = %entry.route, id = %entry.id, error = %error, "cannot renew the claim on a queued request");
            }
        }
    }

    /// Removes a delivered request.
    pub async fn delivered(&self, entry: &Entry) -> Result<(), QueueError> {
        match self {
            Queue::Local(queue) => queue.delivered(entry).await,
            Queue::Redis(queue) => queue.delivered(entry).await,
        }
    }

    /// Records a failed attempt: the entry's `attempts` and `last_error`. Returns false when
    /// the entry has left the queue meanwhile, as after `hookgate queue purge`.
    pub async fn record_failure(&self, entry: &Entry) -> Result<bool, QueueError> {
        match self {
            Queue::Local(queue) => queue.record_failure(entry).await,
            Queue::Redis(queue) => queue.touch(entry).await,
        }
    }

    /// Moves a request to the dead-letter store.
    pub async fn dead_letter(&self, entry: &Entry) -> Result<(), QueueError> {
        match self {
            Queue::Local(queue) => queue.dead_letter(entry).await,
            Queue::Redis(queue) => queue.dead_letter(entry).await,
        }
    }

    /// Lists entries, oldest first; `routes` names the routes to look at on Redis, which has
    /// one stream per route.
    pub async fn list(
        &self,
        routes: &[String],
        selection: &Selection,
        dead: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, QueueError> {
        match self {
            Queue::Local(queue) => queue.list(selection, dead, limit),
            Queue::Redis(queue) => queue.list(routes, selection, dead, limit).await,
        }
    }

    /// Moves dead-lettered entries back to the pending queue, with their attempts and age reset.
    pub async fn retry(
        &self,
        routes: &[String],
        selection: Selection,
    ) -> Result<usize, QueueError> {
        match self {
            Queue::Local(queue) => queue.retry(selection).await,
            Queue::Redis(queue) => queue.retry(routes, &selection).await,
        }
    }

    /// Deletes pending entries, or dead-lettered ones with `dead`.
    pub async fn purge(
        &self,
        routes: &[String],
        selection: Selection,
        dead: bool,
    ) -> Result<usize, QueueError> {
        match self {
            Queue::Local(queue) => queue.purge(selection, dead).await,
            Queue::Redis(queue) => queue.purge(routes, &selection, dead).await,
        }
    }

    /// Queue figures of each of `routes`, and of other routes the local file still contains.
    pub async fn stats(&self, routes: &[String]) -> Vec<RouteStats> {
        match self {
            Queue::Local(queue) => queue.stats(),
            Queue::Redis(queue) => queue.stats(routes).await,
        }
    }
}

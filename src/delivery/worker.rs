//! Delivery workers: each takes one queued request at a time, sends it to the route's
//! upstream, and retries with backoff until a 2xx, a permanent failure, or the route's
//! `max_attempts` or `max_age` ends it in the dead-letter store.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::connectors::http::Connector;
use tokio::sync::watch;

use super::request::now_ms;
use super::service::{Target, Targets};
use super::{Entry, Queue};
use crate::metrics::METRICS;
use crate::proxy::forward;

/// How long a worker waits for a new request before it checks its settings again.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// Pause after the queue itself failed, so that a broken store is not polled in a loop.
const QUEUE_ERROR_PAUSE: Duration = Duration::from_secs(1);
/// Interval at which a held entry is touched; well under the Redis claim time.
const TOUCH_INTERVAL: Duration = Duration::from_secs(10);
/// Minimum time between two logs of a failing queue by one worker.
const QUEUE_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(30);
/// Minimum time between two warnings about failed attempts by one worker. Failures in
/// between are logged at debug level, so an upstream outage does not flood the log.
const RETRY_WARNING_INTERVAL: Duration = Duration::from_secs(30);
/// Idle time after which a pooled upstream connection is closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Result of one delivery attempt.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The upstream responded with a 2xx status.
    Delivered(u16),
    /// A connection error, a timeout, 408, 429 or 5xx: worth trying again.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Any other status, because sending the same bytes again would get the same response.
    Permanent(String),
}

/// One worker of one route. It stops when the route is removed, when its index reaches the
/// route's concurrency after a reload, or at shutdown.
pub struct Worker {
    pub route: String,
    pub index: usize,
    pub queue: Arc<Queue>,
    pub connector: Arc<Connector>,
    pub targets: watch::Receiver<Targets>,
    pub shutdown: watch::Receiver<bool>,
    pub alive: Arc<AtomicBool>,
    /// Time of the last warning about a failed attempt, in Unix milliseconds.
    pub retry_warned_ms: AtomicU64,
}

impl Worker {
    pub async fn run(mut self) {
        tracing::debug!(route = %self.route, worker = self.index, "delivery worker started");
        let mut last_logged: Option<Instant> = None;
        while let Some(target) = self.target() {
            let taken = tokio::select! {
                taken = self.queue.take(&self.route, IDLE_WAIT) => taken,
                _ = self.shutdown.changed() => break,
            };
            match taken {
                Ok(Some(entry)) => self.deliver(entry, target).await,
                Ok(None) => {}
                Err(error) => {
                    let due = last_logged.is_none_or(|at| at.elapsed() >= QUEUE_ERROR_LOG_INTERVAL);
                    if due {
                        last_logged = Some(Instant::now());
                        tracing::error!(route = %self.route, worker = self.index, error = %error, "failed to read the delivery queue; retrying every second");
                    }
                    tokio::time::sleep(QUEUE_ERROR_PAUSE).await;
                }
            }
        }
        self.alive.store(false, Ordering::Release);
        tracing::debug!(route = %self.route, worker = self.index, "delivery worker stopped");
    }

    /// The route's current settings, or `None` when this worker should stop.
    fn target(&self) -> Option<Arc<Target>> {
        if *self.shutdown.borrow() {
            return None;
        }
        let target = self.targets.borrow().get(&self.route).cloned()?;
        (self.index < target.settings.concurrency).then_some(target)
    }

    /// Attempts `entry` until it is settled; the queue keeps it across restarts until then.
    async fn deliver(&mut self, mut entry: Entry, mut target: Arc<Target>) {
        let route = self.route.clone();
        loop {
            let settings = &target.settings;
            let deadline_ms = entry.accepted_ms.saturating_add(millis(settings.max_age));
            if now_ms() >= deadline_ms {
                entry.last_error = format!(
                    "max_age {} spent; {}",
                    humantime::format_duration(settings.max_age),
                    entry.last_error
                );
                return self.bury(entry).await;
            }

            entry.attempts += 1;
            let started = Instant::now();
            let outcome = holding(
                &self.queue,
                &entry,
                attempt(&self.connector, &target, &entry),
            )
            .await;
            METRICS
                .delivery_duration
                .with_label_values(&[&route])
                .observe(started.elapsed().as_secs_f64());
            let (error, retry_after) = match outcome {
                Outcome::Delivered(status) => {
                    METRICS
                        .delivery_attempts
                        .with_label_values(&[&route, "delivered"])
                        .inc();
                    return self.settle(entry, status).await;
                }
                Outcome::Permanent(error) => {
                    METRICS
                        .delivery_attempts
                        .with_label_values(&[&route, "rejected"])
                        .inc();
                    entry.last_error = error;
                    return self.bury(entry).await;
                }
                Outcome::Retry { error, retry_after } => {
                    METRICS
                        .delivery_attempts
                        .with_label_values(&[&route, "retry"])
                        .inc();
                    (error, retry_after)
                }
            };
            entry.last_error = error;
            if entry.attempts >= settings.max_attempts {
                return self.bury(entry).await;
            }
            let wait = backoff(
                settings.backoff,
                settings.max_backoff,
                entry.attempts,
                retry_after,
            );
            if now_ms().saturating_add(millis(wait)) >= deadline_ms {
                entry.last_error = format!(
                    "max_age would pass before the next attempt; {}",
                    entry.last_error
                );
                return self.bury(entry).await;
            }
            if self.should_warn_retry() {
                tracing::warn!(
                    route = %route,
                    id = %entry.id,
                    attempt = entry.attempts,
                    error = %entry.last_error,
                    retry_in_ms = millis(wait),
                    "delivery attempt failed; retrying (further failures of this worker are logged at debug level for 30 s)"
                );
            } else {
                tracing::debug!(
                    route = %route,
                    id = %entry.id,
                    attempt = entry.attempts,
                    error = %entry.last_error,
                    retry_in_ms = millis(wait),
                    "delivery attempt failed; retrying"
                );
            }
            match self.queue.record_failure(&entry).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(route = %route, id = %entry.id, "the request is no longer in the queue, most likely purged; delivery stops");
                    return;
                }
                Err(error) => {
                    tracing::error!(route = %route, id = %entry.id, error = %error, "cannot record a failed delivery attempt");
                }
            }
            let stopped = holding(&self.queue, &entry, async {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => false,
                    _ = self.shutdown.changed() => true,
                }
            })
            .await;
            if stopped {
                self.queue.release(&entry).await;
                return;
            }
            let current = self.targets.borrow().get(&route).cloned();
            match current {
                Some(current) => target = current,
                None => {
                    self.queue.release(&entry).await;
                    return;
                }
            }
        }
    }

    /// Returns whether a failed attempt gets a warning, at most one per
    /// [`RETRY_WARNING_INTERVAL`].
    fn should_warn_retry(&self) -> bool {
        let now = now_ms();
        let last = self.retry_warned_ms.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < millis(RETRY_WARNING_INTERVAL) {
            return false;
        }
        self.retry_warned_ms.store(now, Ordering::Relaxed);
        true
    }

    async fn settle(&self, entry: Entry, status: u16) {
        METRICS
            .delivery_outcomes
            .with_label_values(&[&self.route, "delivered"])
            .inc();
        tracing::debug!(route = %self.route, id = %entry.id, status, attempts = entry.attempts, "delivered");
        if let Err(error) = self.queue.delivered(&entry).await {
            // The request stays queued and will be delivered again: at least once.
            tracing::error!(route = %self.route, id = %entry.id, error = %error, "delivered, but cannot remove the request from the queue; it will be sent again");
        }
    }

    async fn bury(&self, entry: Entry) {
        METRICS
            .delivery_outcomes
            .with_label_values(&[&self.route, "dead_letter"])
            .inc();
        tracing::error!(
            route = %self.route,
            id = %entry.id,
            attempts = entry.attempts,
            error = %entry.last_error,
            "delivery failed for good; moved to the dead-letter queue"
        );
        if let Err(error) = self.queue.dead_letter(&entry).await {
            tracing::error!(route = %self.route, id = %entry.id, error = %error, "cannot move the request to the dead-letter queue; it stays pending");
            self.queue.release(&entry).await;
        }
    }
}

/// Runs `work` while `entry` is held, touching it in the queue every [`TOUCH_INTERVAL`], so
/// that another gateway on the same Redis does not claim it as abandoned.
async fn holding<T>(queue: &Queue, entry: &Entry, work: impl std::future::Future<Output = T>) -> T {
    tokio::pin!(work);
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + TOUCH_INTERVAL, TOUCH_INTERVAL);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = ticker.tick() => queue.keep(entry).await,
        }
    }
}

/// Sends one stored request and reads the upstream's status, draining the response body so
/// that the connection can be reused.
async fn attempt(connector: &Connector, target: &Target, entry: &Entry) -> Outcome {
    let request = &entry.request;
    let header = match request.header() {
        Ok(header) => header,
        Err(error) => return Outcome::Permanent(format!("stored request is invalid: {error}")),
    };
    let sent = forward::send(
        connector,
        &target.peer,
        target.response_timeout,
        &header,
        &request.body,
    )
    .await;
    let mut upstream = match sent {
        Ok(upstream) => upstream,
        Err(error) => {
            return Outcome::Retry {
                error: format!("upstream request failed: {error}"),
                retry_after: None,
            }
        }
    };
    let Some(response) = upstream.response_header() else {
        return Outcome::Retry {
            error: "upstream sent no response header".to_string(),
            retry_after: None,
        };
    };
    let status = response.status.as_u16();
    let retry_after = response
        .headers
        .get(http::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_retry_after);
    let drained = tokio::time::timeout(target.response_timeout, async {
        while upstream.read_response_body().await?.is_some() {}
        Ok::<(), Box<pingora::Error>>(())
    })
    .await;
    if matches!(drained, Ok(Ok(()))) && upstream.response_done() {
        connector
            .release_http_session(upstream, &target.peer, Some(POOL_IDLE_TIMEOUT))
            .await;
    }
    classify(status, retry_after)
}

fn classify(status: u16, retry_after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered(status),
        408 | 429 | 500..=599 => Outcome::Retry {
            error: format!("upstream answered {status}"),
            retry_after,
        },
        _ => Outcome::Permanent(format!("upstream answered {status}")),
    }
}

/// Wait before the next attempt: `backoff` doubled per failed attempt, capped at
/// `max_backoff`, with half of it random (equal jitter) so that retries of many requests
/// spread out. A `Retry-After` from the upstream is waited out in full, up to `max_backoff`.
fn backoff(
    initial: Duration,
    max: Duration,
    attempts: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let doublings = attempts.saturating_sub(1).min(32);
    let base = initial.saturating_mul(1u32 << doublings.min(31)).min(max);
    let half = base / 2;
    let jitter = Duration::from_millis(fastrand::u64(0..=millis(half)));
    let wait = half + jitter;
    retry_after.map_or(wait, |after| after.max(wait)).min(max)
}

/// Parses `Retry-After` as delay seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses() {
        assert_eq!(classify(204, None), Outcome::Delivered(204));
        assert!(matches!(classify(503, None), Outcome::Retry { .. }));
        assert!(matches!(classify(429, None), Outcome::Retry { .. }));
        assert!(matches!(classify(408, None), Outcome::Retry { .. }));
        assert!(matches!(classify(400, None), Outcome::Permanent(_)));
        assert!(matches!(classify(301, None), Outcome::Permanent(_)));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for _ in 0..50 {
            let first = backoff(initial, max, 1, None);
            assert!(
                first >= Duration::from_millis(50) && first <= initial,
                "{first:?}"
            );
            let third = backoff(initial, max, 3, None);
            assert!(
                third >= Duration::from_millis(200) && third <= Duration::from_millis(400),
                "{third:?}"
            );
            assert!(backoff(initial, max, 30, None) <= max);
        }
    }

    #[test]
    fn backoff_honours_capped_retry_after() {
        let initial = Duration::from_millis(10);
        let max = Duration::from_secs(5);
        let after = Some(Duration::from_secs(2));
        assert_eq!(backoff(initial, max, 1, after), Duration::from_secs(2));
        assert_eq!(backoff(initial, max, 1, Some(Duration::from_secs(60))), max);
    }

    #[test]
    fn parses_retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}

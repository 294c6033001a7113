//! Shared state for the guards beside verification: delivery ids for replay protection and
//! rate-limit counters. It lives in process memory by default, or in Redis so that several
//! gateway processes enforce one set of limits and see each other's deliveries.

mod memory;
mod redis;

use std::time::Duration;

pub use memory::MemoryStore;
pub use redis::RedisStore;

/// State of a delivery id after [`Store::claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First sighting: the caller now owns the delivery and must [`Store::finish`] it.
    New,
    /// Another request with this id is being forwarded right now.
    InFlight,
    /// An earlier request with this id got a 2xx from the upstream.
    Delivered,
}

/// A token bucket, written `RATE/UNIT` with a burst: `50/s` with burst 100 admits 100 requests
/// at once, then one every 20 ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Time between two admitted requests at the sustained rate.
    pub interval: Duration,
    pub burst: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("shared store unavailable: {0}")]
pub struct StoreError(pub String);

/// Storage of the guard state.
pub enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl Store {
    /// Builds the store the config describes; Redis connects on first use.
    pub fn from_settings(settings: &crate::config::StoreSettings) -> Result<Store, String> {
        match settings {
            crate::config::StoreSettings::Memory { max_entries } => {
                Ok(Store::Memory(MemoryStore::new(*max_entries)))
            }
            crate::config::StoreSettings::Redis { url, prefix } => {
                RedisStore::new(url, prefix).map(Store::Redis)
            }
        }
    }

    /// Records `id` as in flight for `ttl` unless it is already known, and reports what was
    /// known.
    pub async fn claim(&self, id: &str, ttl: Duration) -> Result<Claim, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.claim(id, ttl)),
            Store::Redis(store) => store.claim(id, ttl).await,
        }
    }

    /// Ends a claim: a delivered id is remembered for `window`; any other is forgotten, so
    /// that the sender's retry is forwarded again.
    pub async fn finish(
        &self,
        id: &str,
        delivered: bool,
        window: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(store) => {
                store.finish(id, delivered, window);
                Ok(())
            }
            Store::Redis(store) => store.finish(id, delivered, window).await,
        }
    }

    /// Takes one token from the bucket `key`. Returns `None` when admitted, or how long to
    /// wait before a token is available. With `peek`, nothing is taken.
    pub async fn take(
        &self,
        key: &str,
        limit: Limit,
        peek: bool,
    ) -> Result<Option<Duration>, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.take(key, limit, peek)),
            Store::Redis(store) => store.take(key, limit, peek).await,
        }
    }

    /// Checks that the store responds; always true for memory.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(store) => store.ping().await,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }
}

/// Generic cell rate algorithm: from the bucket's theoretical arrival time `tat` (in ms),
/// returns the new `tat` when a request at `now` is admitted, or the wait in ms.
pub fn gcra(tat: u64, now: u64, limit: Limit) -> Result<u64, u64> {
    let interval = limit.interval.as_millis().max(1) as u64;
    let tolerance = interval.saturating_mul(u64::from(limit.burst.saturating_sub(1)));
    let tat = tat.max(now);
    let allow_at = tat.saturating_sub(tolerance);
    if allow_at > now {
        return Err(allow_at - now);
    }
    Ok(tat + interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit {
        interval: Duration::from_millis(100),
        burst: 3,
    };

    #[test]
    fn gcra_admits_burst_then_spaces_requests() {
        let mut tat = 0;
        for _ in 0..3 {
            tat = gcra(tat, 1_000, LIMIT).expect("within burst");
        }
        assert_eq!(gcra(tat, 1_000, LIMIT), Err(100));
        assert!(gcra(tat, 1_100, LIMIT).is_ok());
    }

    #[test]
    fn gcra_forgets_idle_time() {
        let tat = gcra(0, 1_000, LIMIT).expect("first");
        let later = gcra(tat, 100_000, LIMIT).expect("after idle");
        assert_eq!(later, 100_100);
    }
}

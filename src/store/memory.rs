//! In-process store. Entries expire, and each map is capped: past the cap, the oldest entries
//! are evicted first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{gcra, Claim, Limit};

pub struct MemoryStore {
    deliveries: Mutex<Bounded<Delivery>>,
    buckets: Mutex<Bounded<u64>>,
    epoch: Instant,
}

#[derive(Clone, Copy)]
struct Delivery {
    delivered: bool,
    expires: Instant,
}

impl MemoryStore {
    /// Creates a store that keeps at most `max_entries` delivery ids and as many rate-limit
    /// buckets.
    pub fn new(max_entries: usize) -> Self {
        MemoryStore {
            deliveries: Mutex::new(Bounded::new(max_entries)),
            buckets: Mutex::new(Bounded::new(max_entries)),
            epoch: Instant::now(),
        }
    }

    pub fn claim(&self, id: &str, window: Duration) -> Claim {
        let Ok(mut deliveries) = self.deliveries.lock() else {
            return Claim::New;
        };
        let now = Instant::now();
        match deliveries.get(id) {
            Some(entry) if entry.expires > now && entry.delivered => Claim::Delivered,
            Some(entry) if entry.expires > now => Claim::InFlight,
            _ => {
                let expires = now + window;
                deliveries.insert(
                    id,
                    Delivery {
                        delivered: false,
                        expires,
                    },
                );
                Claim::New
            }
        }
    }

    pub fn finish(&self, id: &str, delivered: bool, window: Duration) {
        let Ok(mut deliveries) = self.deliveries.lock() else {
            return;
        };
        if delivered {
            let expires = Instant::now() + window;
            deliveries.insert(
                id,
                Delivery {
                    delivered: true,
                    expires,
                },
            );
        } else {
            deliveries.remove(id);
        }
    }

    pub fn take(&self, key: &str, limit: Limit, peek: bool) -> Option<Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return None;
        };
        let now = self.epoch.elapsed().as_millis() as u64;
        let tat = buckets.get(key).copied().unwrap_or(0);
        match gcra(tat, now, limit) {
            Ok(next) => {
                if !peek {
                    buckets.insert(key, next);
                }
                None
            }
            Err(wait) => Some(Duration::from_millis(wait)),
        }
    }
}

/// A map that remembers insertion order and drops the oldest keys beyond `max`.
struct Bounded<V> {
    map: HashMap<String, (V, u64)>,
    order: VecDeque<(String, u64)>,
    next: u64,
    max: usize,
}

impl<V> Bounded<V> {
    fn new(max: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
            max: max.max(1),
        }
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key).map(|(value, _)| value)
    }

    fn insert(&mut self, key: &str, value: V) {
        self.next += 1;
        self.map.insert(key.to_string(), (value, self.next));
        self.order.push_back((key.to_string(), self.next));
        while self.map.len() > self.max {
            let Some((oldest, stamp)) = self.order.pop_front() else {
                break;
            };
            // Skip order entries left behind by later inserts of the same key.
            if self
                .map
                .get(&oldest)
                .is_some_and(|(_, current)| *current == stamp)
            {
                self.map.remove(&oldest);
            }
        }
        // Keep stale order entries from growing without bound.
        if self.order.len() > 2 * self.max {
            let map = &self.map;
            self.order
                .retain(|(key, stamp)| map.get(key).is_some_and(|(_, current)| current == stamp));
        }
    }

    fn remove(&mut self, key: &str) {
        self.map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    #[test]
    fn claim_tracks_delivery_states() {
        let store = MemoryStore::new(10);
        assert_eq!(store.claim("a", WINDOW), Claim::New);
        assert_eq!(store.claim("a", WINDOW), Claim::InFlight);
        store.finish("a", true, WINDOW);
        assert_eq!(store.claim("a", WINDOW), Claim::Delivered);
    }

    #[test]
    fn failed_delivery_is_forgotten() {
        let store = MemoryStore::new(10);
        assert_eq!(store.claim("a", WINDOW), Claim::New);
        store.finish("a", false, WINDOW);
        assert_eq!(store.claim("a", WINDOW), Claim::New);
    }

    #[test]
    fn expired_delivery_is_new_again() {
        let store = MemoryStore::new(10);
        assert_eq!(store.claim("a", Duration::ZERO), Claim::New);
        assert_eq!(store.claim("a", WINDOW), Claim::New);
    }

    #[test]
    fn oldest_entries_are_evicted_at_capacity() {
        let store = MemoryStore::new(2);
        for id in ["a", "b", "c"] {
            assert_eq!(store.claim(id, WINDOW), Claim::New);
        }
        assert_eq!(store.claim("a", WINDOW), Claim::New, "a was evicted");
        assert_eq!(store.claim("c", WINDOW), Claim::InFlight);
    }

    #[test]
    fn take_limits_and_peek_does_not_consume() {
        let store = MemoryStore::new(10);
        let limit = Limit {
            interval: Duration::from_secs(60),
            burst: 2,
        };
        assert_eq!(store.take("k", limit, true), None);
        assert_eq!(store.take("k", limit, false), None);
        assert_eq!(store.take("k", limit, false), None);
        assert!(store.take("k", limit, true).is_some());
        assert!(store.take("k", limit, false).is_some());
        assert_eq!(store.take("other", limit, false), None);
    }
}

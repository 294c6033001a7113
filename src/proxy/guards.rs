//! Guard stage: the checks beside verification. Before the body is read: the allowlist, the
//! header size, the route's rate limit and the client's failed-verification limit. After
//! verification: duplicate detection. Each needs the shared store except the first two, and a
//! store failure follows the route's `store_failure` policy.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::proxy::Session;

use crate::config::{Route, StoreFailure};
use crate::guard;
use crate::metrics::METRICS;
use crate::reject::Reject;
use crate::store::{Claim, Store, StoreError};

/// Time added to a route's upstream timeouts for a claim in flight: the relay of the
/// response and the store round trips.
const IN_FLIGHT_MARGIN: Duration = Duration::from_secs(10);

/// Minimum time between two warnings about the store being unavailable.
const STORE_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// A rejection with the `Retry-After` delay it carries, if any.
pub struct Refusal {
    pub reject: Reject,
    pub retry_after: Option<Duration>,
}

impl From<Reject> for Refusal {
    fn from(reject: Reject) -> Self {
        Refusal {
            reject,
            retry_after: None,
        }
    }
}

/// Decision of duplicate detection for a verified request.
pub enum Delivery {
    /// Forward it; the id, if any, must be finished with [`Guards::finish`].
    Forward(Option<String>),
    /// An earlier request with the same id was delivered, so respond without forwarding.
    Duplicate,
}

pub struct Guards {
    pub store: Arc<Store>,
    trusted_proxies: Vec<ipnet::IpNet>,
    started: Instant,
    last_store_warning: AtomicU64,
}

impl Guards {
    pub fn new(store: Arc<Store>, trusted_proxies: Vec<ipnet::IpNet>) -> Self {
        Guards {
            store,
            trusted_proxies,
            started: Instant::now(),
            last_store_warning: AtomicU64::new(0),
        }
    }

    pub fn client_ip(&self, session: &Session) -> Option<IpAddr> {
        let peer = session
            .client_addr()
            .and_then(|addr| addr.as_inet())
            .map(|addr| addr.ip());
        guard::client_ip(peer, &session.req_header().headers, &self.trusted_proxies)
    }

    /// Runs the checks that need no body.
    pub async fn admit(
        &self,
        route: &Route,
        session: &Session,
        client: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        let guards = &route.guards;
        if !guard::is_allowed(guards, client) {
            return Err(Reject::IpNotAllowed.into());
        }
        if header_bytes(session) > guards.max_header_bytes {
            return Err(Reject::HeadersTooLarge.into());
        }
        if let Some(limit) = &guards.rate_limit {
            let key = guard::rate_key(&route.name, limit, client, &session.req_header().headers);
            let wait =
                self.store_call(route, self.store.take(&key, limit.limit, false).await, None)?;
            if let Some(wait) = wait {
                return Err(Refusal {
                    reject: Reject::RateLimited,
                    retry_after: Some(wait),
                });
            }
        }
        // A scheme without secrets (`none`) accepts every request, so its requests skip the
        // lookup.
        let verifies = route.scheme.needs_keys();
        if let Some(limit) = guards.failed_verify_limit.filter(|_| verifies) {
            let key = guard::failure_key(client);
            let wait = self.store_call(route, self.store.take(&key, limit, true).await, None)?;
            if let Some(wait) = wait {
                return Err(Refusal {
                    reject: Reject::VerifyRateLimited,
                    retry_after: Some(wait),
                });
            }
        }
        Ok(())
    }

    /// Counts a failed verification against the client.
    pub async fn record_failure(&self, route: &Route, client: Option<IpAddr>) {
        if let Some(limit) = route.guards.failed_verify_limit {
            let result = self
                .store
                .take(&guard::failure_key(client), limit, false)
                .await;
            if let Err(error) = result {
                self.store_failed(route, &error);
            }
        }
    }

    /// Looks the verified request's delivery id up and claims it when it is new.
    pub async fn claim(
        &self,
        route: &Route,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Delivery, Refusal> {
        let Some(replay) = &route.guards.replay else {
            return Ok(Delivery::Forward(None));
        };
        let Some(id) = guard::delivery_id(&replay.id, &route.scheme, headers, body) else {
            return Ok(Delivery::Forward(None));
        };
        let key = format!("{}:{id}", route.name);
        // A claim in flight expires once the forward must have ended, so that a gateway that
        // dies mid-forward does not block the sender's retries for the whole window.
        let upstream = &route.upstream;
        let in_flight_ttl = upstream.connect_timeout + upstream.response_timeout + IN_FLIGHT_MARGIN;
        let claim = self.store.claim(&key, in_flight_ttl).await;
        match self.store_call(route, claim.map(Some), None)? {
            None => Ok(Delivery::Forward(None)),
            Some(Claim::New) => Ok(Delivery::Forward(Some(key))),
            Some(Claim::InFlight) => Err(Reject::ReplayInFlight.into()),
            Some(Claim::Delivered) => Ok(Delivery::Duplicate),
        }
    }

    /// Records how a claimed delivery ended: a 2xx is remembered, anything else forgotten.
    pub async fn finish(&self, route: &Route, key: Option<String>, delivered: bool) {
        let (Some(key), Some(replay)) = (key, &route.guards.replay) else {
            return;
        };
        if let Err(error) = self.store.finish(&key, delivered, replay.window).await {
            self.store_failed(route, &error);
        }
    }

    /// Applies the route's store failure policy: `fail_open` continues with `fallback`.
    fn store_call<T>(
        &self,
        route: &Route,
        result: Result<T, StoreError>,
        fallback: T,
    ) -> Result<T, Refusal> {
        let error = match result {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        self.store_failed(route, &error);
        match route.guards.store_failure {
            StoreFailure::Open => Ok(fallback),
            StoreFailure::Closed => Err(Refusal {
                reject: Reject::StoreUnavailable,
                retry_after: Some(Duration::from_secs(1)),
            }),
        }
    }

    fn store_failed(&self, route: &Route, error: &StoreError) {
        METRICS.store_errors.with_label_values(&[&route.name]).inc();
        let now = self.started.elapsed().as_secs() + 1;
        let last = self.last_store_warning.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= STORE_WARNING_INTERVAL.as_secs() || last == 0 {
            self.last_store_warning.store(now, Ordering::Relaxed);
            tracing::warn!(
                route = %route.name,
                store = self.store.kind(),
                policy = ?route.guards.store_failure,
                error = %error,
                "shared store unavailable"
            );
        }
    }
}

/// Size of the request line and header block as Pingora parsed them.
fn header_bytes(session: &Session) -> usize {
    let header = session.req_header();
    let line = header.method.as_str().len() + header.uri.to_string().len() + 12;
    header
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + line
}

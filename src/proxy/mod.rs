//! The Pingora `ProxyHttp` implementation. `request_filter` runs the whole pipeline for each
//! request (route, read, verify, forward) and always writes the response itself, so no
//! upstream connection exists before the signature is verified.

mod body;
mod forward;
mod guards;
mod log;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::connectors::http::Connector;
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};
use prometheus::{Histogram, IntGauge};

use crate::clock::Clock;
use crate::config::{Config, Route};
use crate::metrics::{self, METRICS};
use crate::provider::{self, Verified};
use crate::reject::{self, Reject};
use crate::route::{self, RouteTable};
use crate::store::Store;
use bytes::Bytes;
use guards::{Delivery, Guards, Refusal};
use log::{RejectAlarm, RequestLog};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Seconds an idle client connection stays open between requests.
const KEEPALIVE_IDLE_SECONDS: u64 = 60;

/// A route with what the proxy precomputes for it.
pub struct LiveRoute {
    pub route: Route,
    peer: HttpPeer,
    in_flight: IntGauge,
    request_duration: Histogram,
    verify_duration: Histogram,
    body_size: Histogram,
    /// Permits for requests in flight to this route's upstream, shared by routes that use it.
    slots: Arc<Semaphore>,
}

impl LiveRoute {
    fn new(route: Route, slots: Arc<Semaphore>) -> Self {
        let name = route.name.as_str();
        METRICS.init_route(name, &route.key_labels);
        LiveRoute {
            peer: forward::peer(&route.upstream),
            in_flight: METRICS.in_flight.with_label_values(&[name]),
            request_duration: METRICS.request_duration.with_label_values(&[name]),
            verify_duration: METRICS.verify_duration.with_label_values(&[name]),
            body_size: METRICS.body_size.with_label_values(&[name]),
            slots,
            route,
        }
    }
}

pub struct Gateway {
    routes: RouteTable<LiveRoute>,
    connector: Connector,
    clock: Arc<dyn Clock>,
    access_log: bool,
    alarm: RejectAlarm,
    guards: Guards,
    /// KiB of request bodies that may be held in memory at once.
    buffer_budget: Arc<Semaphore>,
    buffer_budget_kib: u32,
}

impl Gateway {
    pub fn new(config: Config, store: Arc<Store>, clock: Arc<dyn Clock>) -> Self {
        let server = config.server;
        let budget_kib = u32::try_from(server.max_buffered_bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .min(Semaphore::MAX_PERMITS as u32);
        // Routes that share an upstream share its cap, the smallest any of them sets.
        let mut caps: HashMap<String, usize> = HashMap::new();
        for route in &config.routes {
            let cap = caps.entry(route.upstream.url.clone()).or_insert(usize::MAX);
            *cap = (*cap).min(route.guards.max_in_flight);
        }
        let slots: HashMap<String, Arc<Semaphore>> = caps
            .into_iter()
            .map(|(url, cap)| (url, Arc::new(Semaphore::new(cap))))
            .collect();
        let routes = config.routes.into_iter().map(|route| {
            let matcher = route.path.clone();
            let host = route.host.clone();
            let route_slots = slots
                .get(&route.upstream.url)
                .cloned()
                .unwrap_or_else(|| Arc::new(Semaphore::new(route.guards.max_in_flight)));
            (host, matcher, Arc::new(LiveRoute::new(route, route_slots)))
        });
        Gateway {
            routes: RouteTable::new(routes),
            connector: Connector::new(None),
            clock,
            access_log: server.access_log,
            alarm: RejectAlarm::new(server.reject_warning_threshold),
            guards: Guards::new(store, server.trusted_proxies),
            buffer_budget: Arc::new(Semaphore::new(budget_kib as usize)),
            buffer_budget_kib: budget_kib,
        }
    }

    /// Runs the pipeline for one request routed to `live`.
    async fn handle(
        &self,
        session: &mut Session,
        live: &LiveRoute,
        log: &mut RequestLog,
    ) -> std::result::Result<(), Box<Error>> {
        let route = &live.route;
        let name = route.name.as_str();
        log.delivery_id = route
            .scheme
            .delivery_id_header()
            .and_then(|header| session.req_header().headers.get(header))
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);

        let client = self.guards.client_ip(session);
        let (body, _reserved) = match self.receive(session, live, client).await {
            Ok(received) => received,
            Err(refusal) => return self.refuse(session, name, refusal, log).await,
        };
        live.body_size.observe(body.len() as f64);
        log.body_bytes = Some(body.len());

        let verified = match self.verify(session, live, &body) {
            Ok(verified) => verified,
            Err(failure) => {
                self.guards.record_failure(route, client).await;
                let refusal = Reject::Verify(failure).into();
                return self.refuse(session, name, refusal, log).await;
            }
        };
        self.record_verified(route, &verified);

        let claim = self
            .guards
            .claim(route, &session.req_header().headers, &body)
            .await;
        let key = match claim {
            Ok(Delivery::Forward(key)) => key,
            Ok(Delivery::Duplicate) => return answer_duplicate(session, name, log).await,
            Err(refusal) => return self.refuse(session, name, refusal, log).await,
        };
        let Ok(_slot) = live.slots.clone().try_acquire_owned() else {
            self.guards.finish(route, key, false).await;
            let refusal = Refusal {
                reject: Reject::UpstreamBusy,
                retry_after: Some(Duration::from_secs(1)),
            };
            return self.refuse(session, name, refusal, log).await;
        };

        let timeout = route.upstream.response_timeout;
        let sent = forward::send_request(&self.connector, &live.peer, timeout, session, body).await;
        // The claim ends before the response reaches the client, so that a sender who
        // retries as soon as it reads the answer finds the delivery settled.
        let delivered =
            matches!(&sent, Ok(exchange) if (200..300).contains(&exchange.forwarded.status));
        self.guards.finish(route, key, delivered).await;
        let exchange = match sent {
            Ok(exchange) => exchange,
            Err((why, cause)) => {
                tracing::warn!(route = name, upstream = %route.upstream.url, error = %cause, reason = why.as_str(), "upstream request failed");
                METRICS
                    .upstream_errors
                    .with_label_values(&[name, why.as_str()])
                    .inc();
                return self.refuse(session, name, why.into(), log).await;
            }
        };
        log.status = Some(exchange.forwarded.status);
        match forward::relay(&self.connector, &live.peer, session, exchange).await {
            Ok(done) => {
                record_forward(name, &done);
                tracing::debug!(route = name, status = done.status, "forwarded");
                Ok(())
            }
            Err((done, cause)) => {
                record_forward(name, &done);
                Err(cause
                    .into_up()
                    .more_context(format!("route {name}: response relay broken")))
            }
        }
    }

    /// Runs the checks that need no body, then reads the body.
    async fn receive(
        &self,
        session: &mut Session,
        live: &LiveRoute,
        client: Option<IpAddr>,
    ) -> std::result::Result<(Bytes, OwnedSemaphorePermit), Refusal> {
        let route = &live.route;
        if !route.methods.contains(&session.req_header().method) {
            return Err(Reject::MethodNotAllowed.into());
        }
        self.guards.admit(route, session, client).await?;
        let declared = body::declared(session, route.max_body)?;
        let reserve = declared
            .content_length
            .unwrap_or(route.max_body)
            .div_ceil(1024);
        let kib = u32::try_from(reserve)
            .unwrap_or(u32::MAX)
            .clamp(1, self.buffer_budget_kib);
        let Ok(reserved) = self.buffer_budget.clone().try_acquire_many_owned(kib) else {
            return Err(Refusal {
                reject: Reject::Overloaded,
                retry_after: Some(Duration::from_secs(1)),
            });
        };
        if declared.expect_continue {
            body::send_continue(session).await?;
        }
        let deadline = tokio::time::Instant::now() + route.body_timeout;
        session.set_read_timeout(Some(route.body_timeout));
        let body = body::read(session, &declared, route.max_body, deadline).await?;
        Ok((body, reserved))
    }

    fn record_verified(&self, route: &Route, verified: &Verified) {
        let name = route.name.as_str();
        METRICS
            .secret_matches
            .with_label_values(&[name, &route.key_labels[verified.key_index]])
            .inc();
        if let Some(signed_at) = verified.timestamp {
            let skew = self.clock.now_unix().saturating_sub(signed_at);
            METRICS
                .clock_skew
                .with_label_values(&[name])
                .observe(skew as f64);
        }
    }

    /// Answers with a rejection and records it in the metrics, the alarm and the access log.
    async fn reject(
        &self,
        session: &mut Session,
        route: &str,
        why: Reject,
        log: &mut RequestLog,
    ) -> std::result::Result<(), Box<Error>> {
        self.refuse(session, route, why.into(), log).await
    }

    /// Like [`Gateway::reject`], with the refusal's `Retry-After` and, on a 405, `Allow`.
    async fn refuse(
        &self,
        session: &mut Session,
        route: &str,
        refusal: Refusal,
        log: &mut RequestLog,
    ) -> std::result::Result<(), Box<Error>> {
        let why = refusal.reject;
        METRICS.record_reject(route, why);
        self.alarm.record(route, why);
        if !why.is_upstream() {
            tracing::debug!(
                route,
                reason = why.as_str(),
                status = why.status(),
                "rejected"
            );
        }
        log.status = Some(why.status());
        log.reason = Some(why.as_str());
        let mut extra = Vec::new();
        if let Some(wait) = refusal.retry_after {
            let seconds = wait.as_millis().div_ceil(1000).max(1);
            extra.push(("retry-after", seconds.to_string()));
        }
        if why == Reject::MethodNotAllowed {
            let host = route::request_host(session.req_header());
            let path = session.req_header().uri.path();
            if let Some(live) = self.routes.find(host.as_deref(), path) {
                extra.push(("allow", allowed_methods(&live.route)));
            }
        }
        why.respond_with(session, &extra).await;
        Ok(())
    }

    fn verify(
        &self,
        session: &Session,
        live: &LiveRoute,
        body: &[u8],
    ) -> std::result::Result<Verified, provider::Failure> {
        let route = &live.route;
        let header = session.req_header();
        let path_and_query = header.uri.path_and_query().map_or("/", |p| p.as_str());
        let request = provider::Request {
            method: header.method.as_str(),
            url: route.public_url.as_deref().unwrap_or(path_and_query),
            headers: &header.headers,
            body,
        };
        let _timer = live.verify_duration.start_timer();
        route.scheme.verify(
            &request,
            &route.keys,
            self.clock.now_unix(),
            route.tolerance,
        )
    }
}

/// Answers a repeat of a delivered webhook with 200 and does not forward it, so that the
/// sender stops retrying.
async fn answer_duplicate(
    session: &mut Session,
    route: &str,
    log: &mut RequestLog,
) -> std::result::Result<(), Box<Error>> {
    METRICS
        .requests
        .with_label_values(&[route, "duplicate"])
        .inc();
    tracing::debug!(route, "duplicate delivery answered without forwarding");
    log.status = Some(200);
    log.reason = Some("duplicate");
    let body = "{\"duplicate\":true,\"message\":\"already delivered; not forwarded again\"}\n";
    let extra = [("x-hookgate-duplicate", "true".to_string())];
    reject::write_json(session, 200, body.to_string(), &extra).await;
    Ok(())
}

/// One request counted in `hookgate_requests_in_flight`, released when dropped, so that a
/// request that ends in a panic is not counted forever.
struct InFlight<'a>(&'a IntGauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a IntGauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Value of the `Allow` header for a 405 from `route`.
fn allowed_methods(route: &Route) -> String {
    let names: Vec<&str> = route.methods.iter().map(|m| m.as_str()).collect();
    names.join(", ")
}

fn record_forward(route: &str, done: &forward::Forwarded) {
    METRICS
        .requests
        .with_label_values(&[route, "forwarded"])
        .inc();
    METRICS
        .upstream_responses
        .with_label_values(&[route, metrics::status_class(done.status)])
        .inc();
    METRICS
        .upstream_duration
        .with_label_values(&[route])
        .observe(done.upstream_duration.as_secs_f64());
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestLog;

    fn new_ctx(&self) -> Self::CTX {
        RequestLog::default()
    }

    async fn request_filter(&self, session: &mut Session, log: &mut RequestLog) -> Result<bool> {
        log.started = Some(Instant::now());
        session.set_keepalive(Some(KEEPALIVE_IDLE_SECONDS));
        let path = session.req_header().uri.path();
        if route::is_ambiguous(path) {
            self.reject(session, metrics::NO_ROUTE, Reject::PathInvalid, log)
                .await?;
            return Ok(true);
        }
        let host = route::request_host(session.req_header());
        let Some(live) = self.routes.find(host.as_deref(), path).cloned() else {
            self.reject(session, metrics::NO_ROUTE, Reject::NoRoute, log)
                .await?;
            return Ok(true);
        };

        log.route = Some(live.route.name.clone());
        let started = Instant::now();
        let in_flight = InFlight::enter(&live.in_flight);
        let result = self.handle(session, &live, log).await;
        drop(in_flight);
        live.request_duration
            .observe(started.elapsed().as_secs_f64());
        result.map(|()| true)
    }

    /// Never called, because `request_filter` writes the response to every request itself.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _log: &mut RequestLog,
    ) -> Result<Box<HttpPeer>> {
        Error::e_explain(
            ErrorType::InternalError,
            "hookgate forwards from request_filter",
        )
    }

    async fn logging(&self, session: &mut Session, _error: Option<&Error>, log: &mut RequestLog) {
        if self.access_log {
            log.emit(session);
        }
    }
}

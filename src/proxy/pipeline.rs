//! The request pipeline under one set of rules: route, guards, body, verification, duplicate
//! detection and forwarding. A config reload builds new [`Rules`]; requests in flight finish
//! under the rules they started with.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, Result};
use prometheus::{Histogram, IntCounter, IntGauge};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::body;
use super::enqueue;
use super::forward;
use super::guards::{Delivery, Guards, Refusal};
use super::log::{RejectAlarm, RequestLog};
use crate::clock::Clock;
use crate::config::{Config, DeliveryMode, Route};
use crate::delivery::Queue;
use crate::metrics::{self, METRICS};
use crate::provider::{self, Verified};
use crate::reject::{self, Reject};
use crate::route::{self, RouteTable};
use crate::store::Store;

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
    upstream_duration: Histogram,
    clock_skew: Histogram,
    forwarded: IntCounter,
    report_only: IntCounter,
    /// Upstream responses by status class, `1xx` to `5xx`.
    responses: [IntCounter; 5],
    /// Verified requests by the index of the secret that matched; one `none` entry when the
    /// scheme has no secrets.
    secret_matches: Vec<IntCounter>,
    /// Permits for requests in flight to this route's upstream, shared by routes that use it.
    slots: Arc<Semaphore>,
}

impl LiveRoute {
    fn new(route: Route, slots: Arc<Semaphore>) -> Self {
        let name = route.name.as_str();
        METRICS.init_route(name, &route.key_labels);
        if matches!(route.delivery, DeliveryMode::Async(_)) {
            METRICS.init_async_route(name);
        }
        LiveRoute {
            peer: forward::peer(&route.upstream),
            in_flight: METRICS.in_flight.with_label_values(&[name]),
            request_duration: METRICS.request_duration.with_label_values(&[name]),
            verify_duration: METRICS.verify_duration.with_label_values(&[name]),
            body_size: METRICS.body_size.with_label_values(&[name]),
            upstream_duration: METRICS.upstream_duration.with_label_values(&[name]),
            clock_skew: METRICS.clock_skew.with_label_values(&[name]),
            forwarded: METRICS.requests.with_label_values(&[name, "forwarded"]),
            report_only: METRICS.requests.with_label_values(&[name, "report_only"]),
            responses: ["1xx", "2xx", "3xx", "4xx", "5xx"]
                .map(|class| METRICS.upstream_responses.with_label_values(&[name, class])),
            secret_matches: if route.key_labels.is_empty() {
                vec![METRICS.secret_matches.with_label_values(&[name, "none"])]
            } else {
                route
                    .key_labels
                    .iter()
                    .map(|label| METRICS.secret_matches.with_label_values(&[name, label]))
                    .collect()
            },
            slots,
            route,
        }
    }
}

/// Header that carries a report-mode route's verification outcome to the upstream.
pub const REPORT_HEADER: &str = "x-hookgate-report";

pub struct Rules {
    routes: RouteTable<LiveRoute>,
    connector: Arc<Connector>,
    clock: Arc<dyn Clock>,
    access_log: bool,
    verified_header: Option<http::HeaderName>,
    alarm: RejectAlarm,
    guards: Guards,
    /// KiB of request bodies that may be held in memory at once.
    buffer_budget: Arc<Semaphore>,
    buffer_budget_kib: u32,
    /// Store of `delivery: async` routes.
    queue: Option<Arc<Queue>>,
}

impl Rules {
    pub fn new(
        config: Config,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        connector: Arc<Connector>,
    ) -> Self {
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
        Rules {
            routes: RouteTable::new(routes),
            connector,
            clock,
            access_log: server.access_log,
            verified_header: server.verified_header,
            alarm: RejectAlarm::new(server.reject_warning_threshold),
            guards: Guards::new(store, server.trusted_proxies),
            buffer_budget: Arc::new(Semaphore::new(budget_kib as usize)),
            buffer_budget_kib: budget_kib,
            queue: None,
        }
    }

    /// Sets the queue that `delivery: async` routes store their requests in.
    pub fn with_queue(mut self, queue: Option<Arc<Queue>>) -> Self {
        self.queue = queue;
        self
    }

    /// Runs the whole pipeline for one request and writes its response.
    pub async fn serve(&self, session: &mut Session, log: &mut RequestLog) -> Result<bool> {
        log.access_log = self.access_log;
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
        let header = session.req_header();
        let challenge = provider::handshake::query_response(
            &route.scheme,
            header.method.as_str(),
            header.uri.query(),
            &route.keys,
        );
        if let Some(challenge) = challenge {
            if let Err(refusal) = self.guards.admit(route, session, client).await {
                return self.refuse(session, name, refusal, log).await;
            }
            return self
                .respond_to_handshake(session, name, challenge, log)
                .await;
        }
        let (body, _reserved) = match self.receive(session, live, client).await {
            Ok(received) => received,
            Err(refusal) => return self.refuse(session, name, refusal, log).await,
        };
        live.body_size.observe(body.len() as f64);
        log.body_bytes = Some(body.len());
        if let Some(challenge) =
            provider::handshake::body_response(&route.scheme, &body, &route.keys)
        {
            return self
                .respond_to_handshake(session, name, challenge, log)
                .await;
        }

        let verified = match self.verify(session, live, &body) {
            Ok(verified) => {
                self.record_verified(live, &verified);
                Ok(verified)
            }
            Err(failure) if route.report_only => {
                let reason = Reject::Verify(failure).as_str();
                METRICS.rejections.with_label_values(&[name, reason]).inc();
                tracing::debug!(
                    route = name,
                    reason,
                    "verification failed; forwarded in report mode"
                );
                log.reason = Some(reason);
                Err(failure)
            }
            Err(failure) => {
                self.guards.record_failure(route, client).await;
                let refusal = Reject::Verify(failure).into();
                return self.refuse(session, name, refusal, log).await;
            }
        };
        let marks = self.marks(route, &verified);

        let claim = self
            .guards
            .claim(route, &session.req_header().headers, &body)
            .await;
        let key = match claim {
            Ok(Delivery::Forward(key)) => key,
            Ok(Delivery::Duplicate) => {
                let queued = matches!(route.delivery, DeliveryMode::Async(_));
                return answer_duplicate(session, name, queued, log).await;
            }
            Err(refusal) => return self.refuse(session, name, refusal, log).await,
        };
        if let DeliveryMode::Async(settings) = &route.delivery {
            let queue = self.queue.as_deref();
            let stored = enqueue::store(queue, session, route, settings, body, &marks).await;
            self.guards.finish(route, key, stored.is_ok()).await;
            return match stored {
                Ok(enqueued) => {
                    enqueue::acknowledge(session, name, settings, &enqueued, log).await;
                    Ok(())
                }
                Err(refusal) => self.refuse(session, name, refusal, log).await,
            };
        }
        let Ok(_slot) = live.slots.clone().try_acquire_owned() else {
            self.guards.finish(route, key, false).await;
            let refusal = Refusal {
                reject: Reject::UpstreamBusy,
                retry_after: Some(Duration::from_secs(1)),
            };
            return self.refuse(session, name, refusal, log).await;
        };

        let timeout = route.upstream.response_timeout;
        let sent =
            forward::send_request(&self.connector, &live.peer, timeout, session, body, &marks)
                .await;
        // The claim ends before the response reaches the client, so that a sender who
        // retries as soon as it reads the response finds the delivery settled.
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
        let report_failure = verified.is_err();
        match forward::relay(&self.connector, &live.peer, session, exchange).await {
            Ok(done) => {
                record_forward(live, report_failure, &done);
                tracing::debug!(route = name, status = done.status, "forwarded");
                Ok(())
            }
            Err((done, cause)) => {
                record_forward(live, report_failure, &done);
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

    /// Headers that tell the upstream how verification went; each is removed from the
    /// client's request first, so that a client cannot forge it.
    fn marks(
        &self,
        route: &Route,
        verified: &std::result::Result<Verified, provider::Failure>,
    ) -> Vec<(http::HeaderName, Option<String>)> {
        let mut marks = Vec::new();
        if let Some(header) = &self.verified_header {
            let value = verified.as_ref().ok().map(|v| {
                format!(
                    "route={}; provider={}; secret={}",
                    route.name,
                    route.scheme.name(),
                    key_label(route, v)
                )
            });
            marks.push((header.clone(), value));
        }
        if route.report_only {
            let value = match verified {
                Ok(_) => "pass".to_string(),
                Err(failure) => format!("fail; reason={}", Reject::Verify(*failure).as_str()),
            };
            marks.push((http::HeaderName::from_static(REPORT_HEADER), Some(value)));
        }
        marks
    }

    fn record_verified(&self, live: &LiveRoute, verified: &Verified) {
        let matches = &live.secret_matches;
        if let Some(counter) = matches.get(verified.key_index).or(matches.first()) {
            counter.inc();
        }
        if let Some(signed_at) = verified.timestamp {
            let skew = self.clock.now_unix().saturating_sub(signed_at);
            live.clock_skew.observe(skew as f64);
        }
    }

    /// Writes a rejection response and records it in the metrics, the alarm and the access log.
    async fn reject(
        &self,
        session: &mut Session,
        route: &str,
        why: Reject,
        log: &mut RequestLog,
    ) -> std::result::Result<(), Box<Error>> {
        self.refuse(session, route, why.into(), log).await
    }

    /// Like [`Rules::reject`], with the refusal's `Retry-After` and, on a 405, `Allow`.
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
        // The URL the sender signed, built from the route's public URL.
        let url = match &route.public_url {
            Some(public_url) => public_url.signed_url(&route.scheme, path_and_query),
            None => path_and_query.to_string(),
        };
        let request = provider::Request {
            method: header.method.as_str(),
            url: &url,
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

impl Rules {
    /// Writes the gateway's own response to a sender's handshake, or rejects a handshake
    /// whose token is invalid. Neither reaches the upstream.
    async fn respond_to_handshake(
        &self,
        session: &mut Session,
        route: &str,
        challenge: std::result::Result<provider::handshake::Response, provider::Failure>,
        log: &mut RequestLog,
    ) -> std::result::Result<(), Box<Error>> {
        let response = match challenge {
            Ok(response) => response,
            Err(failure) => {
                return self
                    .reject(session, route, Reject::Verify(failure), log)
                    .await
            }
        };
        METRICS
            .requests
            .with_label_values(&[route, "handshake"])
            .inc();
        tracing::debug!(route, "responded to the sender's handshake");
        log.status = Some(200);
        log.reason = Some("handshake");
        reject::write_json(session, 200, response.body, &[]).await;
        Ok(())
    }
}

/// Responds 200 to a repeat of a delivered (or, on an async route, queued) webhook and does
/// not forward or store it again, so that the sender stops retrying.
async fn answer_duplicate(
    session: &mut Session,
    route: &str,
    queued: bool,
    log: &mut RequestLog,
) -> std::result::Result<(), Box<Error>> {
    METRICS
        .requests
        .with_label_values(&[route, "duplicate"])
        .inc();
    tracing::debug!(
        route,
        "duplicate delivery: responded 200 without forwarding"
    );
    log.status = Some(200);
    log.reason = Some("duplicate");
    let body = if queued {
        "{\"duplicate\":true,\"message\":\"already accepted; not stored again\"}\n"
    } else {
        "{\"duplicate\":true,\"message\":\"already delivered; not forwarded again\"}\n"
    };
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

/// Label of the secret that verified a request; `none` for a scheme that checks none.
fn key_label<'a>(route: &'a Route, verified: &Verified) -> &'a str {
    route
        .key_labels
        .get(verified.key_index)
        .map_or("none", String::as_str)
}

/// Value of the `Allow` header for a 405 from `route`.
fn allowed_methods(route: &Route) -> String {
    let names: Vec<&str> = route.methods.iter().map(|m| m.as_str()).collect();
    names.join(", ")
}

/// Counts a forwarded request; `report_failure` marks one that failed verification in
/// report mode.
fn record_forward(live: &LiveRoute, report_failure: bool, done: &forward::Forwarded) {
    if report_failure {
        live.report_only.inc();
    } else {
        live.forwarded.inc();
    }
    let class = usize::from(done.status / 100).clamp(1, 5) - 1;
    live.responses[class].inc();
    live.upstream_duration
        .observe(done.upstream_duration.as_secs_f64());
}

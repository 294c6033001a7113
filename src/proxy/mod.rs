//! The Pingora `ProxyHttp` implementation. `request_filter` runs the whole pipeline for each
//! request (route, read, verify, forward) and always writes the response itself, so no
//! upstream connection exists before the signature is verified.

mod body;
mod forward;
mod log;

use std::sync::Arc;
use std::time::Instant;

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
use crate::reject::Reject;
use crate::route::{self, RouteTable};
use forward::Outcome;
use log::{RejectAlarm, RequestLog};

/// A route with what the proxy precomputes for it.
pub struct LiveRoute {
    pub route: Route,
    peer: HttpPeer,
    in_flight: IntGauge,
    request_duration: Histogram,
    verify_duration: Histogram,
    body_size: Histogram,
}

impl LiveRoute {
    fn new(route: Route) -> Self {
        let name = route.name.as_str();
        METRICS.init_route(name, &route.key_labels);
        LiveRoute {
            peer: forward::peer(&route.upstream),
            in_flight: METRICS.in_flight.with_label_values(&[name]),
            request_duration: METRICS.request_duration.with_label_values(&[name]),
            verify_duration: METRICS.verify_duration.with_label_values(&[name]),
            body_size: METRICS.body_size.with_label_values(&[name]),
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
}

impl Gateway {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Self {
        let server = config.server;
        let routes = config.routes.into_iter().map(|route| {
            let matcher = route.path.clone();
            (matcher, Arc::new(LiveRoute::new(route)))
        });
        Gateway {
            routes: RouteTable::new(routes),
            connector: Connector::new(None),
            clock,
            access_log: server.access_log,
            alarm: RejectAlarm::new(server.reject_warning_threshold),
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

        if !route.methods.contains(&session.req_header().method) {
            return self
                .reject(session, name, Reject::MethodNotAllowed, log)
                .await;
        }
        let declared = match body::declared(session, route.max_body) {
            Ok(declared) => declared,
            Err(why) => return self.reject(session, name, why, log).await,
        };
        if declared.expect_continue {
            if let Err(why) = body::send_continue(session).await {
                return self.reject(session, name, why, log).await;
            }
        }

        let deadline = tokio::time::Instant::now() + route.body_timeout;
        session.set_read_timeout(Some(route.body_timeout));
        let body = match body::read(session, &declared, route.max_body, deadline).await {
            Ok(body) => body,
            Err(why) => return self.reject(session, name, why, log).await,
        };
        live.body_size.observe(body.len() as f64);
        log.body_bytes = Some(body.len());

        let verified = match self.verify(session, live, &body) {
            Ok(verified) => verified,
            Err(failure) => {
                return self
                    .reject(session, name, Reject::Verify(failure), log)
                    .await
            }
        };
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

        let timeout = route.upstream.response_timeout;
        match forward::forward(&self.connector, &live.peer, timeout, session, body).await {
            Outcome::Done(done) => {
                log.status = Some(done.status);
                record_forward(name, &done);
                tracing::debug!(route = name, status = done.status, "forwarded");
                Ok(())
            }
            Outcome::Failed(why, cause) => {
                tracing::warn!(route = name, upstream = %route.upstream.url, error = %cause, reason = why.as_str(), "upstream request failed");
                METRICS
                    .upstream_errors
                    .with_label_values(&[name, why.as_str()])
                    .inc();
                self.reject(session, name, why, log).await
            }
            Outcome::Broken(done, cause) => {
                log.status = Some(done.status);
                record_forward(name, &done);
                Err(cause
                    .into_up()
                    .more_context(format!("route {name}: response relay broken")))
            }
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
        let allow = match why {
            Reject::MethodNotAllowed => self
                .routes
                .find(session.req_header().uri.path())
                .map(|live| allowed_methods(&live.route)),
            _ => None,
        };
        why.respond_with(session, allow.map(|methods| ("allow", methods)))
            .await;
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
        let path = session.req_header().uri.path();
        if route::is_ambiguous(path) {
            self.reject(session, metrics::NO_ROUTE, Reject::PathInvalid, log)
                .await?;
            return Ok(true);
        }
        let Some(live) = self.routes.find(path).cloned() else {
            self.reject(session, metrics::NO_ROUTE, Reject::NoRoute, log)
                .await?;
            return Ok(true);
        };

        log.route = Some(live.route.name.clone());
        let started = Instant::now();
        live.in_flight.inc();
        let result = self.handle(session, &live, log).await;
        live.in_flight.dec();
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

//! The Pingora `ProxyHttp` implementation. `request_filter` runs the whole pipeline for each
//! request (route, read, verify, forward) and always answers the client itself, so no
//! upstream connection exists before the signature is verified.

mod body;
mod forward;

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
}

impl Gateway {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Self {
        let routes = config.routes.into_iter().map(|route| {
            let matcher = route.path.clone();
            (matcher, Arc::new(LiveRoute::new(route)))
        });
        Gateway {
            routes: RouteTable::new(routes),
            connector: Connector::new(None),
            clock,
        }
    }

    /// Runs the pipeline for one request routed to `live`.
    async fn handle(
        &self,
        session: &mut Session,
        live: &LiveRoute,
    ) -> std::result::Result<(), Box<Error>> {
        let route = &live.route;
        let name = route.name.as_str();

        if !route.methods.contains(&session.req_header().method) {
            return reject(session, name, Reject::MethodNotAllowed).await;
        }
        let declared = match body::declared(session, route.max_body) {
            Ok(declared) => declared,
            Err(why) => return reject(session, name, why).await,
        };
        if declared.expect_continue {
            if let Err(why) = body::send_continue(session).await {
                return reject(session, name, why).await;
            }
        }

        let deadline = tokio::time::Instant::now() + route.body_timeout;
        session.set_read_timeout(Some(route.body_timeout));
        let body = match body::read(session, &declared, route.max_body, deadline).await {
            Ok(body) => body,
            Err(why) => return reject(session, name, why).await,
        };
        live.body_size.observe(body.len() as f64);

        let verified = match self.verify(session, live, &body) {
            Ok(verified) => verified,
            Err(failure) => return reject(session, name, Reject::Verify(failure)).await,
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
                record_forward(name, &done);
                tracing::debug!(route = name, status = done.status, "forwarded");
                Ok(())
            }
            Outcome::Failed(why, cause) => {
                tracing::warn!(route = name, upstream = %route.upstream.url, error = %cause, reason = why.as_str(), "upstream request failed");
                reject(session, name, why).await
            }
            Outcome::Broken(done, cause) => {
                record_forward(name, &done);
                Err(cause
                    .into_up()
                    .more_context(format!("route {name}: response relay broken")))
            }
        }
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

async fn reject(
    session: &mut Session,
    route: &str,
    why: Reject,
) -> std::result::Result<(), Box<Error>> {
    METRICS.record_reject(route, why);
    if !why.is_upstream() {
        tracing::debug!(
            route,
            reason = why.as_str(),
            status = why.status(),
            "rejected"
        );
    }
    why.respond(session).await;
    Ok(())
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut Self::CTX) -> Result<bool> {
        let path = session.req_header().uri.path();
        if route::is_ambiguous(path) {
            reject(session, metrics::NO_ROUTE, Reject::PathInvalid).await?;
            return Ok(true);
        }
        let Some(live) = self.routes.find(path).cloned() else {
            reject(session, metrics::NO_ROUTE, Reject::NoRoute).await?;
            return Ok(true);
        };

        let started = Instant::now();
        live.in_flight.inc();
        let result = self.handle(session, &live).await;
        live.in_flight.dec();
        live.request_duration
            .observe(started.elapsed().as_secs_f64());
        result.map(|()| true)
    }

    /// Never reached: `request_filter` answers every request itself.
    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Error::e_explain(
            ErrorType::InternalError,
            "hookgate forwards from request_filter",
        )
    }
}

//! Every Prometheus metric the gateway exports, registered in the default registry so that the
//! `process_*` collector appears beside them. Labels come only from bounded sets: route
//! names, reason names, secret labels and status classes.

use std::sync::LazyLock;

use prometheus::{
    register_gauge_vec, register_histogram, register_histogram_vec, register_int_counter_vec,
    register_int_gauge, register_int_gauge_vec, GaugeVec, Histogram, HistogramVec, IntCounterVec,
    IntGauge, IntGaugeVec,
};

use crate::reject::Reject;

const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];
const SIZE_BUCKETS: &[f64] = &[
    256.0,
    1024.0,
    4096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
];
const SKEW_BUCKETS: &[f64] = &[
    -300.0, -60.0, -10.0, -1.0, 0.0, 1.0, 10.0, 60.0, 300.0, 900.0, 3600.0,
];

pub struct Metrics {
    pub requests: IntCounterVec,
    pub rejections: IntCounterVec,
    pub request_duration: HistogramVec,
    pub verify_duration: HistogramVec,
    pub upstream_duration: HistogramVec,
    pub body_size: HistogramVec,
    pub secret_matches: IntCounterVec,
    pub clock_skew: HistogramVec,
    pub upstream_responses: IntCounterVec,
    pub upstream_errors: IntCounterVec,
    pub store_errors: IntCounterVec,
    pub tls_expiry: prometheus::GaugeVec,
    pub tls_reloads: IntCounterVec,
    pub config_reloads: IntCounterVec,
    pub in_flight: IntGaugeVec,
    pub connections_open: IntGauge,
    pub connections_dropped: IntCounterVec,
    pub build_info: IntGaugeVec,
    pub queue_depth: IntGaugeVec,
    pub queue_dead_letters: IntGaugeVec,
    pub queue_oldest_age: GaugeVec,
    pub queue_bytes: IntGauge,
    pub queue_commit_duration: Histogram,
    pub delivery_attempts: IntCounterVec,
    pub delivery_outcomes: IntCounterVec,
    pub delivery_duration: HistogramVec,
}

/// Label used for requests that matched no route.
pub const NO_ROUTE: &str = "";

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::register);

impl Metrics {
    #[allow(clippy::expect_used)]
    fn register() -> Metrics {
        // Registration only fails on a duplicate or invalid name. Every integration test starts
        // the gateway, which registers them all, so a panic here cannot come from input.
        let metrics = Metrics {
            requests: register_int_counter_vec!(
                "hookgate_requests_total",
                "Webhook requests by route and outcome (forwarded, rejected, duplicate, report_only or handshake).",
                &["route", "outcome"]
            )
            .expect("register hookgate_requests_total"),
            rejections: register_int_counter_vec!(
                "hookgate_rejections_total",
                "Rejected requests by route and reason.",
                &["route", "reason"]
            )
            .expect("register hookgate_rejections_total"),
            request_duration: register_histogram_vec!(
                "hookgate_request_duration_seconds",
                "Time from the end of the request headers to the end of the response.",
                &["route"],
                LATENCY_BUCKETS.to_vec()
            )
            .expect("register hookgate_request_duration_seconds"),
            verify_duration: register_histogram_vec!(
                "hookgate_verify_duration_seconds",
                "Time spent checking the signature and timestamp of a fully read body.",
                &["route"],
                LATENCY_BUCKETS.to_vec()
            )
            .expect("register hookgate_verify_duration_seconds"),
            upstream_duration: register_histogram_vec!(
                "hookgate_upstream_duration_seconds",
                "Time from connecting to the upstream to the end of its response header.",
                &["route"],
                LATENCY_BUCKETS.to_vec()
            )
            .expect("register hookgate_upstream_duration_seconds"),
            body_size: register_histogram_vec!(
                "hookgate_request_body_bytes",
                "Size of fully read request bodies.",
                &["route"],
                SIZE_BUCKETS.to_vec()
            )
            .expect("register hookgate_request_body_bytes"),
            secret_matches: register_int_counter_vec!(
                "hookgate_secret_matches_total",
                "Verified requests by route and the secret that matched (its name or position).",
                &["route", "secret"]
            )
            .expect("register hookgate_secret_matches_total"),
            clock_skew: register_histogram_vec!(
                "hookgate_clock_skew_seconds",
                "Gateway clock minus the signed timestamp, for verified timestamped requests.",
                &["route"],
                SKEW_BUCKETS.to_vec()
            )
            .expect("register hookgate_clock_skew_seconds"),
            upstream_responses: register_int_counter_vec!(
                "hookgate_upstream_responses_total",
                "Upstream responses by route and status class (2xx, 3xx, 4xx, 5xx).",
                &["route", "class"]
            )
            .expect("register hookgate_upstream_responses_total"),
            upstream_errors: register_int_counter_vec!(
                "hookgate_upstream_errors_total",
                "Verified requests that got no upstream response, by route and kind.",
                &["route", "kind"]
            )
            .expect("register hookgate_upstream_errors_total"),
            store_errors: register_int_counter_vec!(
                "hookgate_store_errors_total",
                "Shared store operations that failed, by route; the route's store_failure policy decided the request.",
                &["route"]
            )
            .expect("register hookgate_store_errors_total"),
            tls_expiry: prometheus::register_gauge_vec!(
                "hookgate_tls_certificate_expiry_timestamp_seconds",
                "Expiry of each loaded listener certificate, in Unix seconds.",
                &["listener", "certificate"]
            )
            .expect("register hookgate_tls_certificate_expiry_timestamp_seconds"),
            tls_reloads: register_int_counter_vec!(
                "hookgate_tls_reloads_total",
                "Certificate reloads by result (success or failure).",
                &["result"]
            )
            .expect("register hookgate_tls_reloads_total"),
            config_reloads: register_int_counter_vec!(
                "hookgate_config_reloads_total",
                "Config reloads by result (success or failure).",
                &["result"]
            )
            .expect("register hookgate_config_reloads_total"),
            in_flight: register_int_gauge_vec!(
                "hookgate_requests_in_flight",
                "Requests being read, verified or forwarded.",
                &["route"]
            )
            .expect("register hookgate_requests_in_flight"),
            connections_open: register_int_gauge!(
                "hookgate_connections_open",
                "Client connections open on the webhook listeners."
            )
            .expect("register hookgate_connections_open"),
            connections_dropped: register_int_counter_vec!(
                "hookgate_connections_dropped_total",
                "Client connections closed by the gateway, by reason: max_connections (closed on accept while server.max_connections were open) or header_timeout (no request head within server.header_timeout).",
                &["reason"]
            )
            .expect("register hookgate_connections_dropped_total"),
            build_info: register_int_gauge_vec!(
                "hookgate_build_info",
                "Always 1; the labels carry the hookgate version.",
                &["version"]
            )
            .expect("register hookgate_build_info"),
            queue_depth: register_int_gauge_vec!(
                "hookgate_queue_depth",
                "Requests of an async route waiting for delivery, held by a worker included.",
                &["route"]
            )
            .expect("register hookgate_queue_depth"),
            queue_dead_letters: register_int_gauge_vec!(
                "hookgate_queue_dead_letters",
                "Requests of an async route in the dead-letter queue.",
                &["route"]
            )
            .expect("register hookgate_queue_dead_letters"),
            queue_oldest_age: register_gauge_vec!(
                "hookgate_queue_oldest_age_seconds",
                "Age of the oldest request waiting for delivery; 0 when none waits.",
                &["route"]
            )
            .expect("register hookgate_queue_oldest_age_seconds"),
            queue_bytes: register_int_gauge!(
                "hookgate_queue_bytes",
                "Bytes of requests in the local queue, pending and dead-lettered; counted against queue.max_bytes."
            )
            .expect("register hookgate_queue_bytes"),
            queue_commit_duration: register_histogram!(
                "hookgate_queue_commit_duration_seconds",
                "Time of one local queue commit, fsync included; several requests may share one.",
                LATENCY_BUCKETS.to_vec()
            )
            .expect("register hookgate_queue_commit_duration_seconds"),
            delivery_attempts: register_int_counter_vec!(
                "hookgate_delivery_attempts_total",
                "Delivery attempts of queued requests by route and result (delivered, retry or rejected).",
                &["route", "result"]
            )
            .expect("register hookgate_delivery_attempts_total"),
            delivery_outcomes: register_int_counter_vec!(
                "hookgate_delivery_outcomes_total",
                "Queued requests settled, by route and outcome (delivered or dead_letter).",
                &["route", "outcome"]
            )
            .expect("register hookgate_delivery_outcomes_total"),
            delivery_duration: register_histogram_vec!(
                "hookgate_delivery_duration_seconds",
                "Time of one delivery attempt, from asking for a connection to the end of the response.",
                &["route"],
                LATENCY_BUCKETS.to_vec()
            )
            .expect("register hookgate_delivery_duration_seconds"),
        };
        metrics
            .build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for reason in ["max_connections", "header_timeout"] {
            metrics.connections_dropped.with_label_values(&[reason]);
        }
        metrics
    }

    /// Creates the series of a route at zero, so dashboards show them before the first event.
    pub fn init_route(&self, route: &str, key_labels: &[String]) {
        self.store_errors.with_label_values(&[route]);
        for outcome in [
            "forwarded",
            "rejected",
            "duplicate",
            "report_only",
            "handshake",
            "queued",
        ] {
            self.requests.with_label_values(&[route, outcome]);
        }
        for reject in Reject::all() {
            self.rejections.with_label_values(&[route, reject.as_str()]);
        }
        for label in key_labels {
            self.secret_matches.with_label_values(&[route, label]);
        }
    }

    /// Creates the queue and delivery series of an async route at zero.
    pub fn init_async_route(&self, route: &str) {
        self.queue_depth.with_label_values(&[route]);
        self.queue_dead_letters.with_label_values(&[route]);
        self.queue_oldest_age.with_label_values(&[route]);
        for result in ["delivered", "retry", "rejected"] {
            self.delivery_attempts.with_label_values(&[route, result]);
        }
        for outcome in ["delivered", "dead_letter"] {
            self.delivery_outcomes.with_label_values(&[route, outcome]);
        }
    }

    pub fn record_reject(&self, route: &str, reject: Reject) {
        self.requests.with_label_values(&[route, "rejected"]).inc();
        self.rejections
            .with_label_values(&[route, reject.as_str()])
            .inc();
    }
}

/// Renders every registered metric in the Prometheus text format.
pub fn render() -> String {
    let families = prometheus::gather();
    prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_default()
}

/// `2xx`-style class of an HTTP status code.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

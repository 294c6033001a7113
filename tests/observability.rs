//! Metrics, health endpoints and logs of the running gateway: every series moves by exactly
//! the expected amount, the access log and the rejection warning appear only when they
//! should, and no secret reaches the logs.

mod common;

use std::time::Duration;

use common::client::{request, send, Connection};
use common::upstream::Upstream;
use common::{github_signature, now, route, stripe_signature, Gateway};

const GITHUB_SECRET: &str = "observability-github-secret";
const STRIPE_SECRET: &str = "whsec_observability_stripe_secret";

fn routes(upstream: &str) -> String {
    let github = route(&[
        "name: github",
        "path: /hooks/github",
        "provider: github",
        "secrets: [ { env: HG_OBS_GITHUB, name: current } ]",
        &format!("upstream: \"{upstream}\""),
    ]);
    let stripe = route(&[
        "name: stripe",
        "path: /hooks/stripe",
        "provider: stripe",
        "secrets: [ { env: HG_OBS_OLD_STRIPE }, { env: HG_OBS_STRIPE } ]",
        &format!("upstream: \"{upstream}\""),
    ]);
    format!("{github}{stripe}")
}

const ENV: &[(&str, &str)] = &[
    ("HG_OBS_GITHUB", GITHUB_SECRET),
    ("HG_OBS_STRIPE", STRIPE_SECRET),
    ("HG_OBS_OLD_STRIPE", "whsec_retired_secret_value"),
];

fn github_request(body: &[u8], delivery: &str) -> Vec<u8> {
    let signature = github_signature(GITHUB_SECRET, body);
    request(
        "POST",
        "/hooks/github",
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", delivery),
        ],
        body,
    )
}

/// Returns the value of every series in `names`, in order.
fn values(gateway: &Gateway, names: &[&str]) -> Vec<f64> {
    names.iter().map(|name| gateway.metric(name)).collect()
}

#[test]
fn forwarded_request_moves_each_series_once() {
    let upstream = Upstream::ok();
    let gateway = Gateway::start_env(&routes(&upstream.url()), ENV);
    let series = [
        r#"hookgate_requests_total{outcome="forwarded",route="stripe"}"#,
        r#"hookgate_secret_matches_total{route="stripe",secret="1"}"#,
        r#"hookgate_secret_matches_total{route="stripe",secret="0"}"#,
        r#"hookgate_upstream_responses_total{class="2xx",route="stripe"}"#,
        r#"hookgate_request_body_bytes_count{route="stripe"}"#,
        r#"hookgate_request_body_bytes_sum{route="stripe"}"#,
        r#"hookgate_verify_duration_seconds_count{route="stripe"}"#,
        r#"hookgate_upstream_duration_seconds_count{route="stripe"}"#,
        r#"hookgate_clock_skew_seconds_count{route="stripe"}"#,
        r#"hookgate_request_duration_seconds_count{route="stripe"}"#,
    ];
    let before = values(&gateway, &series);

    let body = br#"{"id":"evt_obs","object":"event"}"#;
    let signature = stripe_signature(STRIPE_SECRET, now(), body);
    let response = send(
        gateway.addr,
        &request(
            "POST",
            "/hooks/stripe",
            &[("Stripe-Signature", &signature)],
            body,
        ),
    );
    assert_eq!(response.status, 200, "{}", response.body_text());
    gateway.wait_for_metric(series[9], before[9] + 1.0, Duration::from_secs(5));

    let after = values(&gateway, &series);
    let expected_delta = [
        1.0,
        1.0,
        0.0,
        1.0,
        1.0,
        body.len() as f64,
        1.0,
        1.0,
        1.0,
        1.0,
    ];
    for ((name, (b, a)), delta) in series
        .iter()
        .zip(before.iter().zip(&after))
        .zip(expected_delta)
    {
        assert_eq!(a - b, delta, "{name} moved by {} instead of {delta}", a - b);
    }
}

#[test]
fn rejected_request_moves_only_rejection_series() {
    let upstream = Upstream::ok();
    let gateway = Gateway::start_env(&routes(&upstream.url()), ENV);
    let series = [
        r#"hookgate_requests_total{outcome="rejected",route="github"}"#,
        r#"hookgate_requests_total{outcome="forwarded",route="github"}"#,
        r#"hookgate_rejections_total{reason="signature_invalid",route="github"}"#,
        r#"hookgate_verify_duration_seconds_count{route="github"}"#,
        r#"hookgate_upstream_responses_total{class="2xx",route="github"}"#,
        r#"hookgate_request_duration_seconds_count{route="github"}"#,
    ];
    let before = values(&gateway, &series);

    let response = send(
        gateway.addr,
        &request(
            "POST",
            "/hooks/github",
            &[("X-Hub-Signature-256", &github_signature("wrong", b"{}"))],
            b"{}",
        ),
    );
    assert_eq!(response.status, 401);
    gateway.wait_for_metric(series[5], before[5] + 1.0, Duration::from_secs(5));

    let after = values(&gateway, &series);
    for ((name, (b, a)), delta) in series
        .iter()
        .zip(before.iter().zip(&after))
        .zip([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    {
        assert_eq!(a - b, delta, "{name} moved by {} instead of {delta}", a - b);
    }
    assert_eq!(upstream.accepts(), 0);
}

#[test]
fn upstream_error_counted_by_kind() {
    let port = common::closed_port();
    let gateway = Gateway::start_env(&routes(&format!("http://127.0.0.1:{port}")), ENV);
    let series = r#"hookgate_upstream_errors_total{kind="upstream_unreachable",route="github"}"#;
    let before = gateway.metric(series);

    let response = send(gateway.addr, &github_request(b"{}", "d-unreachable"));
    assert_eq!(response.status, 502);
    assert_eq!(gateway.metric(series) - before, 1.0);
}

#[test]
fn admin_endpoints_answer() {
    let upstream = Upstream::ok();
    let gateway = Gateway::start_env(&routes(&upstream.url()), ENV);
    let get = |path: &str| {
        send(
            gateway.admin,
            format!("GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n").as_bytes(),
        )
    };

    let health = get("/healthz");
    assert_eq!(health.status, 200);
    // The sockets are bound before the services start, so /readyz may return 503 for a
    // moment after the port accepts connections.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut ready = get("/readyz");
    while ready.status != 200 && std::time::Instant::now() < deadline {
        assert_eq!(ready.status, 503, "{}", ready.body_text());
        std::thread::sleep(Duration::from_millis(20));
        ready = get("/readyz");
    }
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body_text(), "ready\n");
    assert_eq!(get("/nothing").status, 404);

    let metrics = get("/metrics");
    assert_eq!(metrics.status, 200);
    let text = metrics.body_text();
    let version = format!(
        "hookgate_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&version), "no build info in:\n{text}");
    assert!(
        text.contains("process_resident_memory_bytes"),
        "no process metrics"
    );
    assert!(
        text.contains("# HELP hookgate_rejections_total"),
        "no help text"
    );
}

#[test]
fn access_log_off_by_default() {
    let upstream = Upstream::ok();
    let gateway = Gateway::start_env(&routes(&upstream.url()), ENV);
    let response = send(gateway.addr, &github_request(b"{}", "d-default"));
    assert_eq!(response.status, 200);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !gateway.logs().contains("hookgate::access"),
        "{}",
        gateway.logs()
    );
}

#[test]
fn access_log_line_per_request() {
    let upstream = Upstream::ok();
    let gateway = Gateway::start_server_env("  access_log: true\n", &routes(&upstream.url()), ENV);
    let mut connection = Connection::open(gateway.addr);
    assert_eq!(
        connection
            .send(&github_request(b"{\"n\":1}", "delivery-ok"))
            .status,
        200
    );
    let rejected = request(
        "POST",
        "/hooks/github",
        &[("X-GitHub-Delivery", "delivery-bad")],
        b"{}",
    );
    assert_eq!(send(gateway.addr, &rejected).status, 401);
    std::thread::sleep(Duration::from_millis(300));

    let lines: Vec<serde_json::Value> = gateway
        .logs()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["target"] == "hookgate::access")
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    // Each line is written when its request ends, so the two may come in either order.
    let by_delivery = |id: &str| {
        lines
            .iter()
            .find(|line| line["delivery_id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    let forwarded = &by_delivery("delivery-ok");
    assert_eq!(forwarded["route"], "github");
    assert_eq!(forwarded["status"], 200);
    assert_eq!(forwarded["delivery_id"], "delivery-ok");
    assert_eq!(forwarded["body_bytes"], 7);
    assert!(forwarded["reason"].is_null(), "{forwarded}");
    let rejected = &by_delivery("delivery-bad");
    assert_eq!(rejected["status"], 401);
    assert_eq!(rejected["reason"], "signature_missing");
    assert_eq!(rejected["delivery_id"], "delivery-bad");
}

#[test]
fn rising_rejections_warn_once() {
    let upstream = Upstream::ok();
    let gateway = Gateway::start_server_env(
        "  reject_warning_threshold: 3\n",
        &routes(&upstream.url()),
        ENV,
    );
    let unsigned = request("POST", "/hooks/github", &[], b"{}");
    for _ in 0..6 {
        assert_eq!(send(gateway.addr, &unsigned).status, 401);
    }
    let warnings = gateway.warnings(Duration::from_millis(300));
    let alarms: Vec<&String> = warnings
        .iter()
        .filter(|w| w.contains("many requests rejected"))
        .collect();
    assert_eq!(alarms.len(), 1, "{warnings:?}");
    assert!(alarms[0].contains("signature_missing"), "{}", alarms[0]);
}

#[test]
fn logs_contain_no_secret() {
    let upstream = Upstream::ok();
    let gateway = Gateway::start_server_env("  access_log: true\n", &routes(&upstream.url()), ENV);
    assert_eq!(
        send(gateway.addr, &github_request(b"{}", "d-secret")).status,
        200
    );
    let forged = request(
        "POST",
        "/hooks/github",
        &[("X-Hub-Signature-256", GITHUB_SECRET)],
        b"{}",
    );
    assert_eq!(send(gateway.addr, &forged).status, 400);
    std::thread::sleep(Duration::from_millis(200));
    let logs = gateway.logs();
    assert!(
        logs.contains("\"level\":\"DEBUG\""),
        "debug logs were not captured"
    );
    for (_, secret) in ENV {
        assert!(!logs.contains(secret), "a secret appears in the logs");
    }
}

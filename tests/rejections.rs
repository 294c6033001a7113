//! Every rejection reason through the real gateway: the status, the JSON `error` reason, the
//! `hookgate_rejections_total` series, and that nothing reached the upstream. Only the
//! upstream failures at the end contact the upstream, after the request was verified.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::client::{self, Connection};
use common::upstream::{Behavior, Upstream};
use common::{
    assert_rejects, closed_port, github_signature, now, route, slack_signature, stripe_signature,
    Gateway,
};

const GITHUB_SECRET: &str = "rejections-github-secret";
const STRIPE_SECRET: &str = "whsec_rejections_stripe";
const SLACK_SECRET: &str = "rejections-slack-secret";

/// `max_body` of the github route, written `1KiB` in its YAML.
const MAX_BODY: usize = 1024;

/// Routes for the client-side rejections: a GitHub route with a 1 KiB body limit and a 1 s
/// body timeout, a Stripe route and a Slack route, all in front of `upstream`.
fn routes(upstream: &str) -> String {
    let upstream = format!("upstream: \"{upstream}\"");
    [
        route(&[
            "name: github",
            "path: /hooks/github",
            "provider: github",
            "secrets: [{ env: HG_TEST_GITHUB }]",
            "max_body: 1KiB",
            "body_timeout: 1s",
            &upstream,
        ]),
        route(&[
            "name: stripe",
            "path: /hooks/stripe",
            "provider: stripe",
            "secrets: [{ env: HG_TEST_STRIPE }]",
            &upstream,
        ]),
        route(&[
            "name: slack",
            "path: /hooks/slack",
            "provider: slack",
            "secrets: [{ env: HG_TEST_SLACK }]",
            &upstream,
        ]),
    ]
    .concat()
}

fn start_gateway(routes: &str) -> Gateway {
    Gateway::start_env(
        routes,
        &[
            ("HG_TEST_GITHUB", GITHUB_SECRET),
            ("HG_TEST_STRIPE", STRIPE_SECRET),
            ("HG_TEST_SLACK", SLACK_SECRET),
        ],
    )
}

/// Starts a gateway with [`routes`] in front of a recording upstream that responds 200.
fn start() -> (Gateway, Upstream) {
    let upstream = Upstream::ok();
    let gateway = start_gateway(&routes(&upstream.url()));
    (gateway, upstream)
}

/// Builds a GitHub request signed with `secret` over `signed_body`, carrying `body`.
fn github_request(secret: &str, signed_body: &[u8], body: &[u8]) -> Vec<u8> {
    let signature = github_signature(secret, signed_body);
    client::request(
        "POST",
        "/hooks/github",
        &[("X-Hub-Signature-256", &signature)],
        body,
    )
}

/// Returns the request up to and including the blank line after the headers.
fn head_of(request: &[u8]) -> &[u8] {
    let end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("request has a header block");
    &request[..end + 4]
}

fn assert_upstream_untouched(upstream: &Upstream) {
    assert_eq!(upstream.accepts(), 0, "upstream accepted a connection");
    assert!(
        upstream.requests().is_empty(),
        "upstream recorded a request"
    );
}

/// Checks that neither hookgate nor Pingora logged a warning or error, as a client's bad
/// request is not a fault of the gateway.
fn assert_no_warnings(gateway: &Gateway) {
    let warnings = gateway.warnings(Duration::from_millis(200));
    assert!(
        warnings.is_empty(),
        "rejections logged warnings or errors:\n{}",
        warnings.join("\n")
    );
}

#[test]
fn unknown_path_rejected_as_no_route() {
    let (gateway, upstream) = start();
    let body = b"{}";

    assert_rejects(&gateway, "", 404, "no_route", || {
        let signature = github_signature(GITHUB_SECRET, body);
        let request = client::request(
            "POST",
            "/hooks/unknown",
            &[("X-Hub-Signature-256", &signature)],
            body,
        );
        client::send(gateway.addr, &request)
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn get_rejected_as_method_not_allowed() {
    let (gateway, upstream) = start();

    assert_rejects(&gateway, "github", 405, "method_not_allowed", || {
        let request = b"GET /hooks/github HTTP/1.1\r\nHost: gateway.test\r\n\r\n";
        client::send(gateway.addr, request)
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn dot_segments_rejected_as_path_invalid() {
    let (gateway, upstream) = start();
    let body = b"{}";
    let paths = [
        "/hooks/github/../admin",
        "/hooks/github/%2e%2e/admin",
        "/hooks/%2E%2E/github",
        "/hooks/./github",
        "/hooks%2fgithub",
    ];

    for path in paths {
        let response = assert_rejects(&gateway, "", 400, "path_invalid", || {
            let signature = github_signature(GITHUB_SECRET, body);
            let request =
                client::request("POST", path, &[("X-Hub-Signature-256", &signature)], body);
            client::send(gateway.addr, &request)
        });
        assert_eq!(response.reason(), "path_invalid", "path {path}");
    }

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn content_length_with_transfer_encoding_rejected() {
    let (gateway, upstream) = start();
    let body = b"{\"smuggled\":1}";
    let signature = github_signature(GITHUB_SECRET, body);
    let request = client::chunked_request(
        "/hooks/github",
        &[
            ("X-Hub-Signature-256", &signature),
            ("Content-Length", &body.len().to_string()),
        ],
        &[body],
    );

    assert_rejects(&gateway, "github", 400, "framing_invalid", || {
        client::send(gateway.addr, &request)
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

/// Builds a signed GitHub request with one `Content-Length` line per entry of `lengths`.
fn request_with_lengths(body: &[u8], lengths: &[usize]) -> Vec<u8> {
    let signature = github_signature(GITHUB_SECRET, body);
    let mut head = format!(
        "POST /hooks/github HTTP/1.1\r\nHost: gateway.test\r\nX-Hub-Signature-256: {signature}\r\n"
    );
    for length in lengths {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("\r\n");
    [head.as_bytes(), body].concat()
}

#[test]
fn repeated_content_length_rejected() {
    let (gateway, upstream) = start();
    let body = b"{\"length\":\"twice\"}";
    let request = request_with_lengths(body, &[body.len(), body.len()]);

    assert_rejects(&gateway, "github", 400, "framing_invalid", || {
        client::send(gateway.addr, &request)
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn differing_content_lengths_rejected() {
    let (gateway, upstream) = start();
    let body = b"{\"smuggled\":1}";
    let request = request_with_lengths(body, &[body.len(), 5]);
    let before = gateway.rejections("github", "framing_invalid");

    let response = client::send(gateway.addr, &request);

    // Pingora 0.9.1's parser rejects this itself with an empty 400 before hookgate runs. If
    // a later Pingora lets it through, hookgate's own check must reject it instead.
    assert_eq!(response.status, 400, "body: {}", response.body_text());
    if !response.body.is_empty() {
        assert_eq!(response.reason(), "framing_invalid");
        assert_eq!(
            gateway.rejections("github", "framing_invalid") - before,
            1.0
        );
    }
    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn declared_length_over_limit_rejected_before_body_sent() {
    let (gateway, upstream) = start();
    let body = vec![b'x'; MAX_BODY + 1];
    let request = github_request(GITHUB_SECRET, &body, &body);

    assert_rejects(&gateway, "github", 413, "body_too_large", || {
        let mut connection = Connection::open(gateway.addr);
        connection.set_read_timeout(Duration::from_secs(5));
        connection.write(head_of(&request));
        connection
            .read_response("POST")
            .expect("no response within 5 s while the body was still unsent")
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn expect_continue_over_limit_gets_413() {
    let (gateway, upstream) = start();
    let body = vec![b'x'; MAX_BODY + 1];
    let request = github_request(GITHUB_SECRET, &body, &body);
    let head = String::from_utf8_lossy(head_of(&request))
        .replacen("\r\n", "\r\nExpect: 100-continue\r\n", 1)
        .into_bytes();

    assert_rejects(&gateway, "github", 413, "body_too_large", || {
        let mut connection = Connection::open(gateway.addr);
        connection.set_read_timeout(Duration::from_secs(5));
        connection.write(&head);
        connection
            .read_response("POST")
            .expect("no response within 5 s while the body was still unsent")
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn chunked_body_growing_past_limit_rejected() {
    let (gateway, upstream) = start();
    let chunk = vec![b'x'; 400];
    let body = [&chunk[..], &chunk[..], &chunk[..]].concat();
    let signature = github_signature(GITHUB_SECRET, &body);
    let request = client::chunked_request(
        "/hooks/github",
        &[("X-Hub-Signature-256", &signature)],
        &[&chunk, &chunk, &chunk],
    );

    assert_rejects(&gateway, "github", 413, "body_too_large", || {
        client::send(gateway.addr, &request)
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn slow_body_rejected_with_408() {
    let (gateway, upstream) = start();
    let body = vec![b'x'; 100];
    let request = github_request(GITHUB_SECRET, &body, &body);
    let half = request.len() - body.len() / 2;

    let started = Instant::now();
    assert_rejects(&gateway, "github", 408, "body_timeout", || {
        let mut connection = Connection::open(gateway.addr);
        connection.set_read_timeout(Duration::from_secs(5));
        connection.write(&request[..half]);
        connection
            .read_response("POST")
            .expect("no response within 5 s of sending half the body")
    });
    let elapsed = started.elapsed();

    assert!(
        elapsed >= Duration::from_millis(900),
        "rejected after {elapsed:?}, before the 1 s body timeout"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "rejected after {elapsed:?}, long after the 1 s body timeout"
    );
    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn client_closing_mid_body_forwards_nothing() {
    let (gateway, upstream) = start();
    let body = vec![b'x'; 100];
    let request = github_request(GITHUB_SECRET, &body, &body);
    let series = "hookgate_rejections_total{reason=\"body_incomplete\",route=\"github\"}";
    let before = gateway.metric(series);

    let mut connection = Connection::open(gateway.addr);
    connection.write(&request[..request.len() - 50]);
    drop(connection);
    // The client is gone, so the metric is the only sign that the gateway saw the close.
    let after = gateway.wait_for_metric(series, before + 1.0, Duration::from_secs(5));

    assert_eq!(after - before, 1.0, "{series}");
    assert_upstream_untouched(&upstream);

    let body = b"{\"after\":\"close\"}";
    let response = client::send(gateway.addr, &github_request(GITHUB_SECRET, body, body));
    assert_eq!(
        response.status,
        200,
        "next request: {}",
        response.body_text()
    );
    assert_eq!(upstream.requests().len(), 1);
    assert_eq!(upstream.requests()[0].body, body);
    assert_no_warnings(&gateway);
}

#[test]
fn half_closed_body_rejected_as_incomplete() {
    let (gateway, upstream) = start();
    let body = vec![b'x'; 100];
    let request = github_request(GITHUB_SECRET, &body, &body);

    assert_rejects(&gateway, "github", 400, "body_incomplete", || {
        let mut connection = Connection::open(gateway.addr);
        connection.set_read_timeout(Duration::from_secs(5));
        connection.write(&request[..request.len() - 50]);
        connection.close_write();
        connection
            .read_response("POST")
            .expect("no response within 5 s of closing the sending half")
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn missing_signature_rejected() {
    let (gateway, upstream) = start();

    assert_rejects(&gateway, "github", 401, "signature_missing", || {
        let request = client::request("POST", "/hooks/github", &[], b"{}");
        client::send(gateway.addr, &request)
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn malformed_signature_rejected() {
    let (gateway, upstream) = start();

    assert_rejects(&gateway, "github", 400, "signature_malformed", || {
        let request = client::request(
            "POST",
            "/hooks/github",
            &[("X-Hub-Signature-256", "sha256=zz")],
            b"{}",
        );
        client::send(gateway.addr, &request)
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn signature_with_wrong_secret_rejected() {
    let (gateway, upstream) = start();
    let body = b"{\"forged\":true}";

    assert_rejects(&gateway, "github", 401, "signature_invalid", || {
        client::send(gateway.addr, &github_request("wrong-secret", body, body))
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn tampered_body_rejected() {
    let (gateway, upstream) = start();
    let original = b"{\"amount\":100}";
    let tampered = b"{\"amount\":900}";

    assert_rejects(&gateway, "github", 401, "signature_invalid", || {
        client::send(
            gateway.addr,
            &github_request(GITHUB_SECRET, original, tampered),
        )
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn duplicated_signature_header_rejected() {
    let (gateway, upstream) = start();
    let body = b"{}";
    let signature = github_signature(GITHUB_SECRET, body);

    assert_rejects(&gateway, "github", 400, "signature_malformed", || {
        let request = client::request(
            "POST",
            "/hooks/github",
            &[
                ("X-Hub-Signature-256", &signature),
                ("X-Hub-Signature-256", &signature),
            ],
            body,
        );
        client::send(gateway.addr, &request)
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

/// Builds a Stripe request correctly signed at `timestamp`.
fn stripe_request(timestamp: i64) -> Vec<u8> {
    let body = br#"{"id":"evt_1"}"#;
    let signature = stripe_signature(STRIPE_SECRET, timestamp, body);
    client::request(
        "POST",
        "/hooks/stripe",
        &[("Stripe-Signature", &signature)],
        body,
    )
}

#[test]
fn stripe_timestamp_ten_minutes_old_rejected() {
    let (gateway, upstream) = start();

    assert_rejects(&gateway, "stripe", 401, "timestamp_expired", || {
        client::send(gateway.addr, &stripe_request(now() - 600))
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn stripe_timestamp_ten_minutes_ahead_rejected() {
    let (gateway, upstream) = start();

    assert_rejects(&gateway, "stripe", 401, "timestamp_in_future", || {
        client::send(gateway.addr, &stripe_request(now() + 600))
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

#[test]
fn slack_without_timestamp_header_rejected() {
    let (gateway, upstream) = start();
    let body = b"token=x&command=%2Fdeploy";
    let signature = slack_signature(SLACK_SECRET, now(), body);

    assert_rejects(&gateway, "slack", 400, "timestamp_missing", || {
        let request = client::request(
            "POST",
            "/hooks/slack",
            &[("X-Slack-Signature", &signature)],
            body,
        );
        client::send(gateway.addr, &request)
    });

    assert_upstream_untouched(&upstream);
    assert_no_warnings(&gateway);
}

/// Starts a gateway whose only route, `app`, forwards to `upstream` with `extra` route keys.
fn start_single(upstream: &str, extra: &[&str]) -> Gateway {
    let upstream = format!("upstream: \"{upstream}\"");
    let mut lines = vec![
        "name: app",
        "path: /hooks/app",
        "provider: github",
        "secrets: [{ env: HG_TEST_GITHUB }]",
        &upstream,
    ];
    lines.extend_from_slice(extra);
    start_gateway(&route(&lines))
}

fn app_request() -> Vec<u8> {
    let body = b"{\"verified\":true}";
    let signature = github_signature(GITHUB_SECRET, body);
    client::request(
        "POST",
        "/hooks/app",
        &[("X-Hub-Signature-256", &signature)],
        body,
    )
}

/// Checks that an upstream failure was logged as exactly one hookgate warning, the
/// operator's signal of degraded service, and at no higher level.
fn assert_one_upstream_warning(gateway: &Gateway) {
    let warnings = gateway.warnings(Duration::from_millis(200));
    assert_eq!(warnings.len(), 1, "warnings:\n{}", warnings.join("\n"));
    assert!(
        warnings[0].contains("\"message\":\"upstream request failed\""),
        "unexpected warning: {}",
        warnings[0]
    );
    assert!(
        warnings[0].contains("\"level\":\"WARN\""),
        "{}",
        warnings[0]
    );
}

#[test]
fn unreachable_upstream_rejected_with_502() {
    let address = SocketAddr::from(([127, 0, 0, 1], closed_port()));
    let gateway = start_single(&format!("http://{address}"), &[]);

    assert_rejects(&gateway, "app", 502, "upstream_unreachable", || {
        client::send(gateway.addr, &app_request())
    });

    assert_one_upstream_warning(&gateway);
}

#[test]
fn silent_upstream_rejected_with_504() {
    let upstream = Upstream::start(Behavior::Hang);
    let gateway = start_single(&upstream.url(), &["upstream_timeout: 1s"]);

    let started = Instant::now();
    assert_rejects(&gateway, "app", 504, "upstream_timeout", || {
        client::send(gateway.addr, &app_request())
    });
    let elapsed = started.elapsed();

    assert!(
        elapsed >= Duration::from_millis(900),
        "timed out after {elapsed:?}, before the 1 s upstream timeout"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "timed out after {elapsed:?}, long after the 1 s upstream timeout"
    );
    // Verification passed, so the upstream was contacted exactly once, and not retried.
    assert_eq!(upstream.accepts(), 1);
    assert_eq!(upstream.requests().len(), 1);
    assert_one_upstream_warning(&gateway);
}

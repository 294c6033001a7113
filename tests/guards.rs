//! The guards beside verification through the real gateway, with the in-memory store:
//! duplicate detection, rate limits, the failed-verification limit, trusted proxies,
//! allowlists, the in-flight cap and the header size limit. Each test checks the status, the
//! JSON `error` reason, the rejection counter and what the upstream received.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use common::client::{self, Connection, Response};
use common::upstream::{Behavior, Gate, Upstream};
use common::{
    assert_rejects, github_signature, head_of, now, route, send_head_only, slack_signature,
    stripe_signature, Gateway,
};

const GITHUB_SECRET: &str = "guards-github-secret";
const STRIPE_SECRET: &str = "whsec_guards_stripe";
const SLACK_SECRET: &str = "guards-slack-secret";

const ENV: &[(&str, &str)] = &[
    ("HG_TEST_GITHUB", GITHUB_SECRET),
    ("HG_TEST_STRIPE", STRIPE_SECRET),
    ("HG_TEST_SLACK", SLACK_SECRET),
];

/// Maximum time a test waits for the upstream to record a request it expects.
const UPSTREAM_WAIT: Duration = Duration::from_secs(10);

/// Formats a GitHub route `name` on `/hooks/NAME` in front of `upstream`, with the `extra`
/// route keys, as a YAML list item.
fn github_route(name: &str, upstream: &str, extra: &[&str]) -> String {
    let name_line = format!("name: {name}");
    let path = format!("path: /hooks/{name}");
    let upstream = format!("upstream: \"{upstream}\"");
    let mut lines = vec![
        name_line.as_str(),
        &path,
        "provider: github",
        "secrets: [{ env: HG_TEST_GITHUB }]",
        &upstream,
    ];
    lines.extend_from_slice(extra);
    route(&lines)
}

/// Starts a gateway on 127.0.0.1 with `routes` (YAML list items).
fn start(routes: &str) -> Gateway {
    Gateway::start_env(routes, ENV)
}

/// Starts a gateway on 127.0.0.1 with `routes` and the top-level `blocks` after them, such as
/// a `server:` or `defaults:` block.
fn start_with_blocks(routes: &str, blocks: &str) -> Gateway {
    Gateway::start_listening(&["127.0.0.1:0"], &format!("routes:\n{routes}{blocks}"), ENV)
}

/// Starts a gateway with one webhook listener on 127.0.0.1 and one on ::1; returns it with
/// the IPv4 and the IPv6 listener addresses.
fn start_dual_stack(routes: &str) -> (Gateway, SocketAddr, SocketAddr) {
    assert!(
        std::net::TcpListener::bind("[::1]:0").is_ok(),
        "this test needs the IPv6 loopback address ::1, which this machine does not have; \
         enable IPv6 on the loopback interface to run it"
    );
    let gateway = Gateway::start_listening(
        &["127.0.0.1:0", "[::1]:0"],
        &format!("routes:\n{routes}"),
        ENV,
    );
    assert_eq!(
        gateway.listeners.len(),
        2,
        "listeners: {:?}",
        gateway.listeners
    );
    let (v4, v6) = (gateway.listeners[0], gateway.listeners[1]);
    assert!(v4.is_ipv4(), "first listener {v4} is not IPv4");
    assert!(v6.is_ipv6(), "second listener {v6} is not IPv6");
    (gateway, v4, v6)
}

/// Returns a delivery id that no other request in this test binary uses.
fn fresh_delivery() -> String {
    static DELIVERIES: AtomicU64 = AtomicU64::new(0);
    format!("guards-{}", DELIVERIES.fetch_add(1, Ordering::Relaxed))
}

/// Builds a GitHub request to `/hooks/ROUTE` with delivery id `delivery`, a body naming that
/// id, a signature made with `secret`, and the `extra` headers.
fn github_request_signed(
    route: &str,
    delivery: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let body = format!("{{\"delivery\":\"{delivery}\"}}");
    let signature = github_signature(secret, body.as_bytes());
    let mut headers = vec![
        ("X-Hub-Signature-256", signature.as_str()),
        ("X-GitHub-Delivery", delivery),
    ];
    headers.extend_from_slice(extra);
    client::request(
        "POST",
        &format!("/hooks/{route}"),
        &headers,
        body.as_bytes(),
    )
}

/// Builds a correctly signed GitHub request to `/hooks/ROUTE` with a fresh delivery id.
fn github_request(route: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    github_request_signed(route, &fresh_delivery(), GITHUB_SECRET, extra)
}

/// Sends `request` on a new connection to `addr` and checks that it was forwarded: status
/// 200 without the duplicate header.
fn assert_forwarded(addr: SocketAddr, request: &[u8]) -> Response {
    let response = client::send(addr, request);
    assert_eq!(response.status, 200, "body: {}", response.body_text());
    assert_eq!(response.header("x-hookgate-duplicate"), None);
    response
}

/// Checks that `response` is the gateway's reply to a duplicate: 200,
/// `X-Hookgate-Duplicate: true` and a JSON body with `"duplicate": true`.
fn assert_duplicate(response: &Response) {
    assert_eq!(response.status, 200, "body: {}", response.body_text());
    assert_eq!(
        response.header("x-hookgate-duplicate").as_deref(),
        Some("true")
    );
    let body: serde_json::Value =
        serde_json::from_slice(&response.body).expect("duplicate response is JSON");
    assert_eq!(body["duplicate"], true, "body: {}", response.body_text());
}

fn duplicates(gateway: &Gateway, route: &str) -> f64 {
    gateway.metric(&format!(
        "hookgate_requests_total{{outcome=\"duplicate\",route=\"{route}\"}}"
    ))
}

fn assert_upstream_untouched(upstream: &Upstream) {
    assert_eq!(upstream.accepts(), 0, "upstream accepted a connection");
    assert!(
        upstream.requests().is_empty(),
        "upstream recorded a request"
    );
}

/// Parses the `Retry-After` header in seconds, failing when it is missing or not a number.
fn retry_after(response: &Response) -> u64 {
    let value = response
        .header("retry-after")
        .expect("rejection carries Retry-After");
    value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {value:?} is not a number of seconds"))
}

// Duplicate detection.

#[test]
fn repeat_after_delivery_is_duplicate() {
    let upstream = Upstream::ok();
    let gateway = start(&github_route("github", &upstream.url(), &[]));
    let request = github_request("github", &[]);
    assert_forwarded(gateway.addr, &request);
    let before = duplicates(&gateway, "github");

    let repeat = client::send(gateway.addr, &request);

    assert_duplicate(&repeat);
    assert_eq!(duplicates(&gateway, "github") - before, 1.0);
    assert_eq!(
        upstream.requests().len(),
        1,
        "the repeat reached the upstream"
    );
    let forwarded = "hookgate_requests_total{outcome=\"forwarded\",route=\"github\"}";
    assert_eq!(gateway.wait_for_metric(forwarded, 1.0, UPSTREAM_WAIT), 1.0);
}

#[test]
fn duplicate_response_keeps_connection_usable() {
    let upstream = Upstream::ok();
    let gateway = start(&github_route("github", &upstream.url(), &[]));
    let request = github_request("github", &[]);
    let mut connection = Connection::open(gateway.addr);
    assert_eq!(connection.send(&request).status, 200);

    assert_duplicate(&connection.send(&request));
    let next = connection.send(&github_request("github", &[]));

    assert_eq!(next.status, 200, "next: {}", next.body_text());
    assert_eq!(next.header("x-hookgate-duplicate"), None);
    assert_eq!(upstream.requests().len(), 2);
}

#[test]
fn delivery_finished_after_client_disconnects() {
    let gate = Gate::new();
    let upstream = Upstream::start(Behavior::Hold {
        gate: gate.clone(),
        status: 200,
    });
    let gateway = start(&github_route("github", &upstream.url(), &[]));
    let request = github_request("github", &[]);
    let forwarded = "hookgate_requests_total{outcome=\"forwarded\",route=\"github\"}";
    let mut connection = Connection::open(gateway.addr);
    connection.write(&request);
    assert_eq!(upstream.wait_for_requests(1, UPSTREAM_WAIT), 1);

    // The sender gives up while the upstream still works on the delivery, which it then
    // accepts: the gateway must record it as delivered, not leave it in flight.
    drop(connection);
    gate.open();
    let counted = gateway.wait_for_metric(forwarded, 1.0, UPSTREAM_WAIT);
    assert_eq!(counted, 1.0, "{forwarded}");
    let retry = client::send(gateway.addr, &request);

    assert_duplicate(&retry);
    assert_eq!(gateway.rejections("github", "replay_in_flight"), 0.0);
    assert_eq!(
        upstream.requests().len(),
        1,
        "the retry reached the upstream"
    );
}

#[test]
fn repeat_while_in_flight_rejected_with_409() {
    let gate = Gate::new();
    let upstream = Upstream::start(Behavior::Hold {
        gate: gate.clone(),
        status: 200,
    });
    let gateway = start(&github_route("github", &upstream.url(), &[]));
    let request = github_request("github", &[]);
    let addr = gateway.addr;
    let first_request = request.clone();
    let first = std::thread::spawn(move || client::send(addr, &first_request));
    assert_eq!(
        upstream.wait_for_requests(1, UPSTREAM_WAIT),
        1,
        "the first request never reached the upstream"
    );

    assert_rejects(&gateway, "github", 409, "replay_in_flight", || {
        client::send(gateway.addr, &request)
    });
    gate.open();
    let first = first.join().expect("first request thread");

    assert_eq!(first.status, 200, "first: {}", first.body_text());
    assert_eq!(first.header("x-hookgate-duplicate"), None);
    assert_eq!(
        upstream.requests().len(),
        1,
        "the repeat reached the upstream"
    );
    // Once the first delivery succeeded, a later repeat is a plain duplicate.
    assert_duplicate(&client::send(gateway.addr, &request));
    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn repeat_after_upstream_500_forwarded_again() {
    let upstream = Upstream::start(Behavior::Respond {
        status: 500,
        body: b"upstream broke\n".to_vec(),
    });
    let gateway = start(&github_route("github", &upstream.url(), &[]));
    let request = github_request("github", &[]);

    let first = client::send(gateway.addr, &request);
    let repeat = client::send(gateway.addr, &request);

    assert_eq!(first.status, 500, "first: {}", first.body_text());
    assert_eq!(repeat.status, 500, "repeat: {}", repeat.body_text());
    assert_eq!(repeat.header("x-hookgate-duplicate"), None);
    assert_eq!(duplicates(&gateway, "github"), 0.0);
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2, "the repeat was not forwarded again");
    assert_eq!(requests[0].body, requests[1].body);
}

#[test]
fn repeat_after_upstream_timeout_forwarded_again() {
    let upstream = Upstream::start(Behavior::Hang);
    let gateway = start(&github_route(
        "github",
        &upstream.url(),
        &["upstream_timeout: 1s"],
    ));
    let request = github_request("github", &[]);

    assert_rejects(&gateway, "github", 504, "upstream_timeout", || {
        client::send(gateway.addr, &request)
    });
    assert_rejects(&gateway, "github", 504, "upstream_timeout", || {
        client::send(gateway.addr, &request)
    });

    assert_eq!(
        upstream.requests().len(),
        2,
        "the repeat was not forwarded again"
    );
    assert_eq!(gateway.rejections("github", "replay_in_flight"), 0.0);
}

/// Builds a Stripe request for event `event_id`, signed at `timestamp`.
fn stripe_request(event_id: &str, timestamp: i64) -> Vec<u8> {
    let body =
        format!("{{\"id\":\"{event_id}\",\"object\":\"event\",\"type\":\"charge.succeeded\"}}");
    let signature = stripe_signature(STRIPE_SECRET, timestamp, body.as_bytes());
    client::request(
        "POST",
        "/hooks/stripe",
        &[("Stripe-Signature", &signature)],
        body.as_bytes(),
    )
}

#[test]
fn stripe_duplicate_detected_by_event_id() {
    let upstream = Upstream::ok();
    let upstream_line = format!("upstream: \"{}\"", upstream.url());
    let gateway = start(&route(&[
        "name: stripe",
        "path: /hooks/stripe",
        "provider: stripe",
        "secrets: [{ env: HG_TEST_STRIPE }]",
        &upstream_line,
    ]));
    let signed_at = now();
    assert_forwarded(gateway.addr, &stripe_request("evt_guards_1", signed_at - 5));
    let before = duplicates(&gateway, "stripe");

    // Stripe signs each retry again, so the retry differs in timestamp and signature.
    let retry = client::send(gateway.addr, &stripe_request("evt_guards_1", signed_at));
    assert_duplicate(&retry);
    assert_eq!(duplicates(&gateway, "stripe") - before, 1.0);
    assert_eq!(
        upstream.requests().len(),
        1,
        "the retry reached the upstream"
    );

    assert_forwarded(gateway.addr, &stripe_request("evt_guards_2", signed_at));
    assert_eq!(
        upstream.requests().len(),
        2,
        "another event was not forwarded"
    );
}

#[test]
fn disabled_replay_forwards_repeats() {
    let upstream = Upstream::ok();
    let gateway = start(&github_route(
        "github",
        &upstream.url(),
        &["replay: { enabled: false }"],
    ));
    let request = github_request("github", &[]);

    assert_forwarded(gateway.addr, &request);
    assert_forwarded(gateway.addr, &request);

    assert_eq!(upstream.requests().len(), 2);
    assert_eq!(duplicates(&gateway, "github"), 0.0);
}

/// Builds a Slack request carrying `body`, signed at `timestamp`.
fn slack_request(body: &[u8], timestamp: i64) -> Vec<u8> {
    let signature = slack_signature(SLACK_SECRET, timestamp, body);
    client::request(
        "POST",
        "/hooks/slack",
        &[
            ("X-Slack-Signature", &signature),
            ("X-Slack-Request-Timestamp", &timestamp.to_string()),
        ],
        body,
    )
}

#[test]
fn slack_duplicate_detected_by_signature() {
    let upstream = Upstream::ok();
    let upstream_line = format!("upstream: \"{}\"", upstream.url());
    let gateway = start(&route(&[
        "name: slack",
        "path: /hooks/slack",
        "provider: slack",
        "secrets: [{ env: HG_TEST_SLACK }]",
        &upstream_line,
    ]));
    let body = b"token=x&command=%2Fdeploy&text=guards";
    let signed_at = now();
    let request = slack_request(body, signed_at - 5);
    assert_forwarded(gateway.addr, &request);
    let before = duplicates(&gateway, "slack");

    assert_duplicate(&client::send(gateway.addr, &request));
    assert_eq!(duplicates(&gateway, "slack") - before, 1.0);
    assert_eq!(
        upstream.requests().len(),
        1,
        "the repeat reached the upstream"
    );

    // Slack sends no delivery id, so the same body signed at another time is a new delivery.
    assert_forwarded(gateway.addr, &slack_request(body, signed_at));
    assert_eq!(upstream.requests().len(), 2);
}

// Rate limits.

#[test]
fn client_ip_limit_rejects_third_request() {
    let upstream = Upstream::ok();
    let routes = [
        github_route(
            "limited",
            &upstream.url(),
            &["rate_limit: { key: client_ip, rate: 1/m, burst: 2 }"],
        ),
        github_route("open", &upstream.url(), &[]),
    ]
    .concat();
    let gateway = start(&routes);
    assert_forwarded(gateway.addr, &github_request("limited", &[]));
    assert_forwarded(gateway.addr, &github_request("limited", &[]));

    let third = assert_rejects(&gateway, "limited", 429, "rate_limited", || {
        client::send(gateway.addr, &github_request("limited", &[]))
    });

    let wait = retry_after(&third);
    assert!(
        (1..=60).contains(&wait),
        "Retry-After {wait} outside 1..=60"
    );
    assert_eq!(
        upstream.requests().len(),
        2,
        "the third request was forwarded"
    );
    assert_forwarded(gateway.addr, &github_request("open", &[]));
    assert_eq!(upstream.requests().len(), 3);
}

#[test]
fn ipv6_client_gets_own_bucket() {
    let upstream = Upstream::ok();
    let (gateway, v4, v6) = start_dual_stack(&github_route(
        "limited",
        &upstream.url(),
        &["rate_limit: { key: client_ip, rate: 1/m, burst: 2 }"],
    ));
    assert_forwarded(v4, &github_request("limited", &[]));
    assert_forwarded(v4, &github_request("limited", &[]));
    assert_rejects(&gateway, "limited", 429, "rate_limited", || {
        client::send(v4, &github_request("limited", &[]))
    });

    assert_forwarded(v6, &github_request("limited", &[]));
    assert_forwarded(v6, &github_request("limited", &[]));
    assert_rejects(&gateway, "limited", 429, "rate_limited", || {
        client::send(v6, &github_request("limited", &[]))
    });

    assert_eq!(upstream.requests().len(), 4);
}

#[test]
fn header_rate_key_separates_senders() {
    let upstream = Upstream::ok();
    let gateway = start(&github_route(
        "limited",
        &upstream.url(),
        &["rate_limit: { key: header:X-Source, rate: 1/m, burst: 1 }"],
    ));
    let from = |source: &str| github_request("limited", &[("X-Source", source)]);

    assert_forwarded(gateway.addr, &from("sender-a"));
    assert_rejects(&gateway, "limited", 429, "rate_limited", || {
        client::send(gateway.addr, &from("sender-a"))
    });
    assert_forwarded(gateway.addr, &from("sender-b"));
    assert_rejects(&gateway, "limited", 429, "rate_limited", || {
        client::send(gateway.addr, &from("sender-b"))
    });

    assert_eq!(upstream.requests().len(), 2);
}

#[test]
fn route_rate_key_shares_one_bucket() {
    let upstream = Upstream::ok();
    let limit = "rate_limit: { key: route, rate: 1/m, burst: 2 }";
    let routes = [
        github_route("shared", &upstream.url(), &[limit]),
        github_route("other", &upstream.url(), &[limit]),
    ]
    .concat();
    // Trusting the test's own address lets X-Forwarded-For stand in for distinct clients.
    let gateway = start_with_blocks(&routes, "server:\n  trusted_proxies: [\"127.0.0.1/32\"]\n");
    let from = |client: &str| github_request("shared", &[("X-Forwarded-For", client)]);

    assert_forwarded(gateway.addr, &from("203.0.113.1"));
    assert_forwarded(gateway.addr, &from("203.0.113.2"));
    assert_rejects(&gateway, "shared", 429, "rate_limited", || {
        client::send(gateway.addr, &from("203.0.113.3"))
    });

    assert_eq!(upstream.requests().len(), 2);
    assert_forwarded(
        gateway.addr,
        &github_request("other", &[("X-Forwarded-For", "203.0.113.1")]),
    );
    assert_eq!(
        upstream.requests().len(),
        3,
        "another route's bucket was used up"
    );
}

// The failed-verification limit.

#[test]
fn failed_verifications_block_before_body() {
    let upstream = Upstream::ok();
    let routes = [
        github_route("first", &upstream.url(), &[]),
        github_route("second", &upstream.url(), &[]),
    ]
    .concat();
    let gateway = start_with_blocks(
        &routes,
        "defaults:\n  failed_verify_limit: { rate: 1/m, burst: 3 }\n",
    );
    for _ in 0..3 {
        assert_rejects(&gateway, "first", 401, "signature_invalid", || {
            let forged = github_request_signed("first", &fresh_delivery(), "wrong-secret", &[]);
            client::send(gateway.addr, &forged)
        });
    }

    for route in ["first", "second"] {
        let response = assert_rejects(&gateway, route, 429, "verify_rate_limited", || {
            send_head_only(gateway.addr, &github_request(route, &[]))
        });
        let wait = retry_after(&response);
        assert!(
            (1..=60).contains(&wait),
            "Retry-After {wait} outside 1..=60"
        );
    }

    assert_upstream_untouched(&upstream);
}

#[test]
fn disabled_failed_verify_limit_never_blocks() {
    let upstream = Upstream::ok();
    let routes = [
        github_route("strict", &upstream.url(), &[]),
        github_route(
            "relaxed",
            &upstream.url(),
            &["failed_verify_limit: { enabled: false }"],
        ),
    ]
    .concat();
    let gateway = start_with_blocks(
        &routes,
        "defaults:\n  failed_verify_limit: { rate: 1/m, burst: 2 }\n",
    );
    for route in ["relaxed", "relaxed", "relaxed", "strict", "strict"] {
        assert_rejects(&gateway, route, 401, "signature_invalid", || {
            let forged = github_request_signed(route, &fresh_delivery(), "wrong-secret", &[]);
            client::send(gateway.addr, &forged)
        });
    }

    assert_rejects(&gateway, "strict", 429, "verify_rate_limited", || {
        client::send(gateway.addr, &github_request("strict", &[]))
    });
    assert_forwarded(gateway.addr, &github_request("relaxed", &[]));

    assert_eq!(upstream.requests().len(), 1);
}

// Trusted proxies.

const TRUSTED_LOOPBACK: &str = "server:\n  trusted_proxies: [\"127.0.0.1/32\"]\n";

#[test]
fn allowlist_checks_address_from_trusted_proxy() {
    let upstream = Upstream::ok();
    let gateway = start_with_blocks(
        &github_route(
            "github",
            &upstream.url(),
            &["allow_ips: [\"203.0.113.0/24\"]"],
        ),
        TRUSTED_LOOPBACK,
    );

    assert_forwarded(
        gateway.addr,
        &github_request("github", &[("X-Forwarded-For", "203.0.113.5")]),
    );
    assert_rejects(&gateway, "github", 403, "ip_not_allowed", || {
        let request = github_request("github", &[("X-Forwarded-For", "198.51.100.1")]);
        client::send(gateway.addr, &request)
    });
    // A client can write any address left of its own, so only the rightmost entry counts.
    assert_rejects(&gateway, "github", 403, "ip_not_allowed", || {
        let spoofed = "203.0.113.5, 198.51.100.1";
        let request = github_request("github", &[("X-Forwarded-For", spoofed)]);
        client::send(gateway.addr, &request)
    });

    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn untrusted_peer_forwarded_address_ignored() {
    let upstream = Upstream::ok();
    let gateway = start(&github_route(
        "github",
        &upstream.url(),
        &["allow_ips: [\"203.0.113.0/24\"]"],
    ));

    for forwarded in ["203.0.113.5", "198.51.100.1"] {
        assert_rejects(&gateway, "github", 403, "ip_not_allowed", || {
            let request = github_request("github", &[("X-Forwarded-For", forwarded)]);
            client::send(gateway.addr, &request)
        });
    }

    assert_upstream_untouched(&upstream);
}

#[test]
fn rate_limit_buckets_follow_forwarded_address() {
    let upstream = Upstream::ok();
    let gateway = start_with_blocks(
        &github_route(
            "limited",
            &upstream.url(),
            &["rate_limit: { key: client_ip, rate: 1/m, burst: 1 }"],
        ),
        TRUSTED_LOOPBACK,
    );
    let from = |client: &str| github_request("limited", &[("X-Forwarded-For", client)]);

    assert_forwarded(gateway.addr, &from("203.0.113.7"));
    assert_rejects(&gateway, "limited", 429, "rate_limited", || {
        client::send(gateway.addr, &from("203.0.113.7"))
    });
    assert_forwarded(gateway.addr, &from("203.0.113.8"));
    // Without the header the trusted peer itself is the client, with a bucket of its own.
    assert_forwarded(gateway.addr, &github_request("limited", &[]));

    assert_eq!(upstream.requests().len(), 3);
}

// Allowlists.

#[test]
fn allowlist_admits_ipv4_loopback() {
    let upstream = Upstream::ok();
    let gateway = start(&github_route(
        "github",
        &upstream.url(),
        &["allow_ips: [\"127.0.0.1/32\"]"],
    ));

    assert_forwarded(gateway.addr, &github_request("github", &[]));

    assert_eq!(upstream.requests().len(), 1);
    assert_eq!(gateway.rejections("github", "ip_not_allowed"), 0.0);
}

#[test]
fn allowlist_rejects_ipv4_before_body_sent() {
    let upstream = Upstream::ok();
    let gateway = start(&github_route(
        "github",
        &upstream.url(),
        &["allow_ips: [\"10.0.0.0/8\"]"],
    ));

    assert_rejects(&gateway, "github", 403, "ip_not_allowed", || {
        send_head_only(gateway.addr, &github_request("github", &[]))
    });

    assert_upstream_untouched(&upstream);
}

#[test]
fn allowlist_matches_ipv6_loopback() {
    let upstream = Upstream::ok();
    let routes = [
        github_route("v6only", &upstream.url(), &["allow_ips: [\"::1/128\"]"]),
        github_route(
            "v4only",
            &upstream.url(),
            &["allow_ips: [\"127.0.0.1/32\"]"],
        ),
    ]
    .concat();
    let (gateway, v4, v6) = start_dual_stack(&routes);

    assert_forwarded(v6, &github_request("v6only", &[]));
    assert_forwarded(v4, &github_request("v4only", &[]));
    assert_rejects(&gateway, "v4only", 403, "ip_not_allowed", || {
        send_head_only(v6, &github_request("v4only", &[]))
    });
    assert_rejects(&gateway, "v6only", 403, "ip_not_allowed", || {
        send_head_only(v4, &github_request("v6only", &[]))
    });

    assert_eq!(upstream.requests().len(), 2);
}

#[test]
fn route_allowlist_overrides_defaults() {
    let upstream = Upstream::ok();
    let routes = [
        github_route("inherits", &upstream.url(), &[]),
        github_route(
            "overrides",
            &upstream.url(),
            &["allow_ips: [\"127.0.0.1/32\"]"],
        ),
    ]
    .concat();
    let gateway = start_with_blocks(&routes, "defaults:\n  allow_ips: [\"10.0.0.0/8\"]\n");

    assert_rejects(&gateway, "inherits", 403, "ip_not_allowed", || {
        send_head_only(gateway.addr, &github_request("inherits", &[]))
    });
    assert_forwarded(gateway.addr, &github_request("overrides", &[]));

    assert_eq!(upstream.requests().len(), 1);
}

// Resource limits.

/// Sends each of `requests` from its own thread, all released at once. Returns a channel
/// that receives each response, paired with its request's index, as it arrives.
fn send_concurrently(
    addr: SocketAddr,
    requests: Vec<Vec<u8>>,
) -> mpsc::Receiver<(usize, Response)> {
    let (sender, receiver) = mpsc::channel();
    let start = Arc::new(Barrier::new(requests.len()));
    for (index, request) in requests.into_iter().enumerate() {
        let (sender, start) = (sender.clone(), Arc::clone(&start));
        std::thread::spawn(move || {
            start.wait();
            let _ = sender.send((index, client::send(addr, &request)));
        });
    }
    receiver
}

#[test]
fn in_flight_cap_rejects_excess() {
    let gate = Gate::new();
    let upstream = Upstream::start(Behavior::Hold {
        gate: gate.clone(),
        status: 200,
    });
    let gateway = start(&github_route(
        "github",
        &upstream.url(),
        &["max_in_flight: 2"],
    ));
    let before = gateway.rejections("github", "upstream_busy");
    let requests: Vec<Vec<u8>> = (0..6).map(|_| github_request("github", &[])).collect();

    let responses = send_concurrently(gateway.addr, requests.clone());
    // The two admitted requests stay at the upstream until the gate opens, so the four
    // others must be turned away meanwhile.
    let mut rejected = Vec::new();
    for _ in 0..4 {
        let (index, response) = responses
            .recv_timeout(UPSTREAM_WAIT)
            .expect("four requests should be rejected while two are held");
        rejected.push(index);
        assert_eq!(response.status, 503, "body: {}", response.body_text());
        assert_eq!(response.reason(), "upstream_busy");
        assert_eq!(response.header("retry-after").as_deref(), Some("1"));
    }
    assert_eq!(upstream.wait_for_requests(2, UPSTREAM_WAIT), 2);
    gate.open();
    let mut forwarded = Vec::new();
    for _ in 0..2 {
        let (index, response) = responses
            .recv_timeout(UPSTREAM_WAIT)
            .expect("held requests get a response once released");
        forwarded.push(index);
        assert_eq!(response.status, 200, "body: {}", response.body_text());
    }

    assert_eq!(gateway.rejections("github", "upstream_busy") - before, 4.0);
    let recorded = upstream.requests();
    assert_eq!(recorded.len(), 2, "upstream requests");
    for index in &forwarded {
        let body = &requests[*index][head_of(&requests[*index]).len()..];
        let copies = recorded.iter().filter(|r| r.body == body).count();
        assert_eq!(
            copies, 1,
            "request {index} reached the upstream {copies} times"
        );
    }
    assert!(
        rejected.iter().all(|index| !forwarded.contains(index)),
        "a request was both rejected and forwarded"
    );
}

#[test]
fn shared_upstream_shares_in_flight_cap() {
    let gate = Gate::new();
    let upstream = Upstream::start(Behavior::Hold {
        gate: gate.clone(),
        status: 200,
    });
    let routes = [
        github_route("first", &upstream.url(), &["max_in_flight: 1"]),
        github_route("second", &upstream.url(), &["max_in_flight: 1"]),
    ]
    .concat();
    let gateway = start(&routes);
    let addr = gateway.addr;
    let held = std::thread::spawn(move || client::send(addr, &github_request("first", &[])));
    assert_eq!(upstream.wait_for_requests(1, UPSTREAM_WAIT), 1);

    let busy = assert_rejects(&gateway, "second", 503, "upstream_busy", || {
        client::send(gateway.addr, &github_request("second", &[]))
    });
    gate.open();

    assert_eq!(busy.header("retry-after").as_deref(), Some("1"));
    assert_eq!(held.join().expect("held request thread").status, 200);
    assert_eq!(upstream.requests().len(), 1);
    assert_forwarded(gateway.addr, &github_request("second", &[]));
}

#[test]
fn oversized_headers_rejected_with_431() {
    let upstream = Upstream::ok();
    let gateway = start(&github_route(
        "github",
        &upstream.url(),
        &["max_header_bytes: 1KiB"],
    ));
    let small = "s".repeat(256);
    let large = "l".repeat(2048);

    assert_forwarded(
        gateway.addr,
        &github_request("github", &[("X-Padding", &small)]),
    );
    assert_rejects(&gateway, "github", 431, "headers_too_large", || {
        send_head_only(
            gateway.addr,
            &github_request("github", &[("X-Padding", &large)]),
        )
    });

    assert_eq!(upstream.requests().len(), 1);
}

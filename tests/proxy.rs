//! A verified request passes through the real gateway unchanged: the recording upstream
//! receives the client's bytes, and the client receives the upstream's response.

mod common;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use common::client::{self, Connection};
use common::upstream::{Behavior, Upstream};
use common::{
    assert_same_bytes, github_signature, hmac_sha256, now, pattern, route, slack_signature,
    stripe_signature, Gateway,
};

const SECRET: &str = "proxy-test-github-secret";
const SECRET_ENV: &str = "HG_TEST_GITHUB_SECRET";

/// Starts a gateway with one GitHub route on `/hooks/github`, its secret in `SECRET_ENV`,
/// plus the `extra` route keys.
fn start_github(upstream: &Upstream, extra: &[&str]) -> Gateway {
    let secrets = format!("secrets: [{{ env: {SECRET_ENV} }}]");
    let upstream = format!("upstream: \"{}\"", upstream.url());
    let mut lines = vec![
        "name: github",
        "path: /hooks/github",
        "provider: github",
        &secrets,
        &upstream,
    ];
    lines.extend_from_slice(extra);
    Gateway::start_env(&route(&lines), &[(SECRET_ENV, SECRET)])
}

/// Builds a signed GitHub request with `Content-Length` framing.
/// A signed GitHub request with a fresh `X-GitHub-Delivery`, as GitHub sends each delivery.
fn github_request(body: &[u8]) -> Vec<u8> {
    static DELIVERIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let delivery = DELIVERIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let signature = github_signature(SECRET, body);
    client::request(
        "POST",
        "/hooks/github",
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", &format!("delivery-{delivery}")),
        ],
        body,
    )
}

/// Returns the only request the upstream recorded, failing when there is not exactly one.
fn only_request(upstream: &Upstream) -> common::upstream::Recorded {
    let mut requests = upstream.requests();
    assert_eq!(
        requests.len(),
        1,
        "upstream should record exactly one request"
    );
    requests.remove(0)
}

#[test]
fn github_request_reaches_upstream_unchanged() {
    let upstream = Upstream::start(Behavior::Respond {
        status: 202,
        body: b"accepted by the app\n".to_vec(),
    });
    let gateway = start_github(&upstream, &[]);
    let body = "{\"action\":\"opened\",\"number\":7,\"title\":\"café\"}".as_bytes();
    let signature = github_signature(SECRET, body);
    // Mixed header case, a repeated header and a query string: all must arrive as sent.
    let head = format!(
        "POST /hooks/github?attempt=1 HTTP/1.1\r\n\
         Host: gateway.test\r\n\
         User-Agent: GitHub-Hookshot/044aadd\r\n\
         content-type: application/json\r\n\
         X-GitHub-Event: pull_request\r\n\
         X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\n\
         x-hub-signature-256: {signature}\r\n\
         X-Repeated: first\r\n\
         x-REPEATED: second\r\n\
         Content-Length: {}\r\n\
         \r\n",
        body.len()
    );
    let mut request = head.clone().into_bytes();
    request.extend_from_slice(body);

    let response = client::send(gateway.addr, &request);

    assert_eq!(response.status, 202, "client gets the upstream's status");
    assert_eq!(response.body_text(), "accepted by the app\n");
    assert_eq!(response.header("X-Upstream").as_deref(), Some("recorder"));
    let recorded = only_request(&upstream);
    assert_eq!(recorded.head_text(), head, "upstream header block");
    assert_same_bytes(&recorded.body, body);
}

#[test]
fn chunked_body_arrives_with_content_length() {
    let upstream = Upstream::ok();
    let gateway = start_github(&upstream, &[]);
    let sizes = [1, 7, 333, 4095, 10_001, 3];
    let body = pattern(sizes.iter().sum());
    let mut chunks = Vec::new();
    let mut start = 0;
    for size in sizes {
        chunks.push(&body[start..start + size]);
        start += size;
    }
    let signature = github_signature(SECRET, &body);
    let request = client::chunked_request(
        "/hooks/github",
        &[("X-Hub-Signature-256", &signature)],
        &chunks,
    );

    let response = client::send(gateway.addr, &request);

    assert_eq!(response.status, 200, "body: {}", response.body_text());
    let recorded = only_request(&upstream);
    assert_eq!(recorded.header("content-length"), [body.len().to_string()]);
    assert!(
        recorded.header("transfer-encoding").is_empty(),
        "upstream head still has Transfer-Encoding:\n{}",
        recorded.head_text()
    );
    assert_same_bytes(&recorded.body, &body);
}

#[test]
fn utf8_character_split_across_chunks_arrives_intact() {
    let upstream = Upstream::ok();
    let gateway = start_github(&upstream, &[]);
    let body = "{\"text\":\"price 5 €, naïve 😀\"}".as_bytes();
    // Split inside the three bytes of the euro sign.
    let split = body
        .windows(3)
        .position(|w| w == "€".as_bytes())
        .expect("body contains €")
        + 1;
    let signature = github_signature(SECRET, body);
    let head = format!(
        "POST /hooks/github HTTP/1.1\r\nHost: gateway.test\r\nX-Hub-Signature-256: {signature}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let first = [
        format!("{:x}\r\n", split).as_bytes(),
        &body[..split],
        b"\r\n",
    ]
    .concat();
    let second = [
        format!("{:x}\r\n", body.len() - split).as_bytes(),
        &body[split..],
        b"\r\n0\r\n\r\n",
    ]
    .concat();

    let mut connection = Connection::open(gateway.addr);
    connection.write(head.as_bytes());
    connection.write(&first);
    // A pause so that the two halves reach the gateway in separate reads.
    std::thread::sleep(Duration::from_millis(100));
    connection.write(&second);
    let response = connection.read_response("POST").expect("gateway answered");

    assert_eq!(response.status, 200, "body: {}", response.body_text());
    assert_same_bytes(&only_request(&upstream).body, body);
}

#[test]
fn empty_signed_body_forwarded_with_zero_length() {
    let upstream = Upstream::ok();
    let gateway = start_github(&upstream, &[]);
    let signature = github_signature(SECRET, b"");
    let requests = [
        ("Content-Length: 0", github_request(b"")),
        (
            "an empty chunked body",
            client::chunked_request("/hooks/github", &[("X-Hub-Signature-256", &signature)], &[]),
        ),
    ];

    for (framing, request) in requests {
        let response = client::send(gateway.addr, &request);

        assert_eq!(response.status, 200, "{framing}: {}", response.body_text());
        let recorded = upstream.requests().pop().expect("upstream got the request");
        assert_eq!(recorded.header("content-length"), ["0"], "{framing}");
        assert!(recorded.header("transfer-encoding").is_empty(), "{framing}");
        assert!(recorded.body.is_empty(), "{framing}");
    }
    assert_eq!(upstream.requests().len(), 2);
}

#[test]
fn body_of_exactly_max_body_arrives_intact() {
    let upstream = Upstream::ok();
    let gateway = start_github(&upstream, &["max_body: 1MiB"]);
    let body = pattern(1 << 20);

    let response = client::send(gateway.addr, &github_request(&body));

    assert_eq!(response.status, 200, "body: {}", response.body_text());
    assert_same_bytes(&only_request(&upstream).body, &body);
}

#[test]
fn body_over_retry_buffer_arrives_intact() {
    // Pingora 0.9.1 replays at most 64 KiB of a body read in a filter (its retry buffer
    // limit), so a 200 KiB body passes only because hookgate forwards it itself.
    let upstream = Upstream::ok();
    let gateway = start_github(&upstream, &[]);
    let body = pattern(200 * 1024);

    let response = client::send(gateway.addr, &github_request(&body));

    assert_eq!(response.status, 200, "body: {}", response.body_text());
    assert_same_bytes(&only_request(&upstream).body, &body);
}

#[test]
fn body_one_byte_over_max_body_rejected() {
    let upstream = Upstream::ok();
    let gateway = start_github(&upstream, &["max_body: 1MiB"]);
    let body = pattern((1 << 20) + 1);
    let request = github_request(&body);
    let head_end = request.len() - body.len();

    // The declared length alone is enough: the gateway responds before the body is sent.
    let mut connection = Connection::open(gateway.addr);
    connection.write(&request[..head_end]);
    let response = connection.read_response("POST").expect("gateway answered");

    assert_eq!(response.status, 413);
    assert_eq!(response.reason(), "body_too_large");
    assert_eq!(upstream.accepts(), 0, "upstream was contacted");
}

#[test]
fn expect_continue_answered_before_body() {
    let upstream = Upstream::ok();
    let gateway = start_github(&upstream, &[]);
    let body = pattern(3000);
    let request = github_request(&body);
    let head_end = request.len() - body.len();
    let head = String::from_utf8_lossy(&request[..head_end])
        .replacen("\r\n", "\r\nExpect: 100-continue\r\n", 1)
        .into_bytes();

    let mut connection = Connection::open(gateway.addr);
    connection.set_read_timeout(Duration::from_secs(5));
    connection.write(&head);
    let interim = connection
        .read_head()
        .expect("no interim response within 5 s of sending only the header");

    assert!(
        interim.starts_with("HTTP/1.1 100 Continue\r\n"),
        "first response is not 100 Continue:\n{interim}"
    );

    connection.write(&body);
    let response = connection.read_response("POST").expect("final response");

    assert_eq!(response.status, 200, "body: {}", response.body_text());
    let recorded = only_request(&upstream);
    assert!(
        recorded.header("expect").is_empty(),
        "upstream received Expect:\n{}",
        recorded.head_text()
    );
    assert_same_bytes(&recorded.body, &body);

    // The early 100 must not cost the connection its keep-alive.
    let response = connection.send(&github_request(b"{\"second\":true}"));
    assert_eq!(
        response.status, 200,
        "second request on the same connection"
    );
}

#[test]
fn expect_continue_works_with_curl() {
    let upstream = Upstream::ok();
    let gateway = start_github(&upstream, &[]);
    let body = pattern(4096);
    let signature = github_signature(SECRET, &body);
    let dir = tempfile::tempdir().expect("create temp dir");
    let body_path = dir.path().join("body.bin");
    std::fs::File::create(&body_path)
        .and_then(|mut file| file.write_all(&body))
        .expect("write body file");

    // `-q` skips any .curlrc and `--noproxy` keeps curl on 127.0.0.1 whatever proxy the
    // environment sets. A gateway that never sends 100 would make curl wait the full 10 s
    // expect timeout, and the verbose output would lack the 100 line.
    let started = Instant::now();
    let output = Command::new("curl")
        .args(["-q", "-sS", "-v", "--noproxy", "*", "--max-time", "20"])
        .args(["--expect100-timeout", "10"])
        .args(["-H", "Expect: 100-continue"])
        .args(["-H", &format!("X-Hub-Signature-256: {signature}")])
        .arg("--data-binary")
        .arg(format!("@{}", body_path.display()))
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(gateway.url("/hooks/github"))
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("curl is not on PATH; install curl to run this test")
        }
        Err(e) => panic!("cannot run curl: {e}"),
    };
    let elapsed = started.elapsed();
    let verbose = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "curl failed:\n{verbose}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "200");
    assert!(
        verbose.contains("< HTTP/1.1 100 Continue"),
        "curl saw no 100 Continue:\n{verbose}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "curl took {elapsed:?}, as if it waited for 100 Continue"
    );
    let recorded = only_request(&upstream);
    assert!(
        recorded.header("expect").is_empty(),
        "upstream received Expect"
    );
    assert_same_bytes(&recorded.body, &body);
}

#[test]
fn keep_alive_connection_serves_several_requests() {
    let upstream = Upstream::ok();
    let gateway = start_github(&upstream, &[]);
    let count = 5;

    let mut connection = Connection::open(gateway.addr);
    for i in 0..count {
        let body = format!("{{\"delivery\":{i}}}");
        let response = connection.send(&github_request(body.as_bytes()));

        assert_eq!(
            response.status,
            200,
            "request {i}: {}",
            response.body_text()
        );
        assert_ne!(
            response.header("connection").as_deref(),
            Some("close"),
            "request {i} closed the client connection"
        );
    }

    let bodies: Vec<String> = upstream
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    let expected: Vec<String> = (0..count)
        .map(|i| format!("{{\"delivery\":{i}}}"))
        .collect();
    assert_eq!(bodies, expected);
    assert!(
        upstream.accepts() < count,
        "upstream accepted {} connections for {count} requests, so pooled connections were not reused",
        upstream.accepts()
    );
}

#[test]
fn chunked_upstream_response_reaches_client_complete() {
    let chunks = vec![b"first chunk, ".to_vec(), pattern(70_000), b"last".to_vec()];
    let upstream = Upstream::start(Behavior::RespondChunked {
        status: 201,
        chunks: chunks.clone(),
    });
    let gateway = start_github(&upstream, &[]);

    let response = client::send(gateway.addr, &github_request(b"{}"));

    assert_eq!(response.status, 201);
    assert_same_bytes(&response.body, &chunks.concat());
}

#[test]
fn rotated_secret_accepted_and_counted_by_label() {
    let upstream = Upstream::ok();
    let upstream_line = format!("upstream: \"{}\"", upstream.url());
    let routes = [
        route(&[
            "name: rotated",
            "path: /hooks/rotated",
            "provider: github",
            "secrets: [{ env: HG_TEST_OLD }, { env: HG_TEST_NEW }]",
            &upstream_line,
        ]),
        route(&[
            "name: named",
            "path: /hooks/named",
            "provider: github",
            "secrets: [{ env: HG_TEST_NEW, name: current }, { env: HG_TEST_OLD, name: old }]",
            &upstream_line,
        ]),
    ]
    .concat();
    let gateway = Gateway::start_env(
        &routes,
        &[("HG_TEST_OLD", "old-secret"), ("HG_TEST_NEW", "new-secret")],
    );
    let series = |route: &str, secret: &str| {
        format!("hookgate_secret_matches_total{{route=\"{route}\",secret=\"{secret}\"}}")
    };
    let before: Vec<f64> = [
        series("rotated", "0"),
        series("rotated", "1"),
        series("named", "current"),
        series("named", "old"),
    ]
    .iter()
    .map(|s| gateway.metric(s))
    .collect();

    let body = b"{\"rotation\":true}";
    let signed_with = |secret: &str, path: &str| {
        let signature = github_signature(secret, body);
        client::request("POST", path, &[("X-Hub-Signature-256", &signature)], body)
    };
    let second = client::send(gateway.addr, &signed_with("new-secret", "/hooks/rotated"));
    let named = client::send(gateway.addr, &signed_with("old-secret", "/hooks/named"));

    assert_eq!(second.status, 200, "second secret: {}", second.body_text());
    assert_eq!(named.status, 200, "secret named old: {}", named.body_text());
    let moved = |index: usize, s: String| gateway.metric(&s) - before[index];
    assert_eq!(moved(0, series("rotated", "0")), 0.0);
    assert_eq!(moved(1, series("rotated", "1")), 1.0);
    assert_eq!(moved(2, series("named", "current")), 0.0);
    assert_eq!(moved(3, series("named", "old")), 1.0);
    assert_eq!(upstream.requests().len(), 2);
}

#[test]
fn stripe_request_forwarded() {
    let upstream = Upstream::ok();
    let secret = "whsec_proxy_test";
    let routes = route(&[
        "name: stripe",
        "path: /hooks/stripe",
        "provider: stripe",
        "secrets: [{ env: HG_TEST_STRIPE }]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let gateway = Gateway::start_env(&routes, &[("HG_TEST_STRIPE", secret)]);
    let body = br#"{"id":"evt_1","type":"charge.succeeded"}"#;
    let signature = stripe_signature(secret, now(), body);
    let request = client::request(
        "POST",
        "/hooks/stripe",
        &[("Stripe-Signature", &signature)],
        body,
    );

    let response = client::send(gateway.addr, &request);

    assert_eq!(response.status, 200, "body: {}", response.body_text());
    assert_same_bytes(&only_request(&upstream).body, body);
}

#[test]
fn slack_request_forwarded() {
    let upstream = Upstream::ok();
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let routes = route(&[
        "name: slack",
        "path: /hooks/slack",
        "provider: slack",
        "secrets: [{ env: HG_TEST_SLACK }]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let gateway = Gateway::start_env(&routes, &[("HG_TEST_SLACK", secret)]);
    let body = b"token=x&team_id=T1&command=%2Fdeploy&text=now";
    let timestamp = now();
    let signature = slack_signature(secret, timestamp, body);
    let request = client::request(
        "POST",
        "/hooks/slack",
        &[
            ("X-Slack-Request-Timestamp", &timestamp.to_string()),
            ("X-Slack-Signature", &signature),
        ],
        body,
    );

    let response = client::send(gateway.addr, &request);

    assert_eq!(response.status, 200, "body: {}", response.body_text());
    assert_same_bytes(&only_request(&upstream).body, body);
}

#[test]
fn generic_hmac_route_with_timestamp_forwarded() {
    let upstream = Upstream::ok();
    let secret = "generic-proxy-secret";
    let routes = route(&[
        "name: acme",
        "path: /hooks/acme",
        "hmac:",
        "  algorithm: sha256",
        "  header: X-Acme-Signature",
        "  prefix: \"sha256=\"",
        "  encoding: base64",
        "  signed: \"{timestamp}.{body}\"",
        "  timestamp_header: X-Acme-Timestamp",
        "secrets: [{ env: HG_TEST_ACME }]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let gateway = Gateway::start_env(&routes, &[("HG_TEST_ACME", secret)]);
    let body = br#"{"event":"invoice.paid"}"#;
    let timestamp = now().to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]);
    let signature = format!("sha256={}", STANDARD.encode(mac));
    let request = client::request(
        "POST",
        "/hooks/acme",
        &[
            ("X-Acme-Timestamp", &timestamp),
            ("X-Acme-Signature", &signature),
        ],
        body,
    );

    let response = client::send(gateway.addr, &request);

    assert_eq!(response.status, 200, "body: {}", response.body_text());
    assert_same_bytes(&only_request(&upstream).body, body);
}

#[test]
fn metrics_count_one_forwarded_and_one_rejected() {
    let upstream = Upstream::ok();
    let gateway = start_github(&upstream, &[]);
    let forwarded = "hookgate_requests_total{outcome=\"forwarded\",route=\"github\"}";
    let rejected = "hookgate_requests_total{outcome=\"rejected\",route=\"github\"}";
    let durations = "hookgate_request_duration_seconds_count{route=\"github\"}";
    let before = [forwarded, rejected, durations].map(|s| gateway.metric(s));

    let body = b"{\"counted\":true}";
    let valid = client::send(gateway.addr, &github_request(body));
    let forged_signature = github_signature("not-the-secret", body);
    let forged = client::request(
        "POST",
        "/hooks/github",
        &[("X-Hub-Signature-256", &forged_signature)],
        body,
    );
    let invalid = client::send(gateway.addr, &forged);

    assert_eq!(valid.status, 200);
    assert_eq!(invalid.status, 401);
    // The gateway counts a forward and observes every request duration after the response
    // is written, so a scrape right after the response can come too early. Each check waits
    // (bounded) for the expected value and then requires it exactly.
    let settled = |series: &str, expected: f64| {
        gateway.wait_for_metric(series, expected, Duration::from_secs(5))
    };
    assert_eq!(
        settled(forwarded, before[0] + 1.0) - before[0],
        1.0,
        "{forwarded}"
    );
    assert_eq!(
        settled(rejected, before[1] + 1.0) - before[1],
        1.0,
        "{rejected}"
    );
    assert_eq!(
        settled(durations, before[2] + 2.0) - before[2],
        2.0,
        "{durations}"
    );
}

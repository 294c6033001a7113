//! Overload through the real gateway: a flood of forged requests from one client address
//! while another address keeps sending valid ones, and connections that send their headers or
//! body too slowly. Client addresses other than 127.0.0.1 come from binding the client socket
//! to another 127.0.0.0/8 address, which Linux routes to the loopback interface.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::client::{self, Connection};
use common::upstream::Upstream;
use common::{github_signature, route, Gateway};

const SECRET: &str = "overload-secret";
const ENV: &[(&str, &str)] = &[("HG_OVERLOAD_SECRET", SECRET)];

const VALID_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const FLOOD_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Failed verifications the flooding address may make before it is blocked.
const FAILED_VERIFY_BURST: usize = 20;
/// Threads sending the flood at once.
const FLOOD_THREADS: usize = 4;
/// Maximum requests one flood thread sends, so the flood ends even if the test stalls.
const MAX_FLOOD_PER_THREAD: usize = 2_000;
/// Valid requests sent while the flood runs.
const VALID_REQUESTS: usize = 40;
/// Maximum time the flood runs.
const FLOOD_DEADLINE: Duration = Duration::from_secs(120);

fn github_route(upstream: &str, extra: &[&str]) -> String {
    let upstream = format!("upstream: \"{upstream}\"");
    let mut lines = vec![
        "name: gh",
        "path: /hooks/gh",
        "provider: github",
        "secrets: [ { env: HG_OVERLOAD_SECRET } ]",
        &upstream,
    ];
    lines.extend_from_slice(extra);
    route(&lines)
}

/// Builds a GitHub request with delivery id `delivery`, signed with `secret`.
fn github_request(delivery: &str, secret: &str) -> Vec<u8> {
    let body = format!("{{\"delivery\":\"{delivery}\"}}");
    let signature = github_signature(secret, body.as_bytes());
    client::request(
        "POST",
        "/hooks/gh",
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", delivery),
        ],
        body.as_bytes(),
    )
}

/// Status counts of the flood's responses.
#[derive(Default)]
struct FloodTally {
    unauthorized: AtomicUsize,
    limited: AtomicUsize,
    /// Statuses other than 401 and 429, or a connection closed without a response.
    other: Mutex<Vec<Option<u16>>>,
}

impl FloodTally {
    fn answered(&self) -> usize {
        self.unauthorized.load(Ordering::SeqCst)
            + self.limited.load(Ordering::SeqCst)
            + self.other.lock().expect("tally lock").len()
    }
}

/// Sends forged requests from [`FLOOD_CLIENT`], one per connection, until `stop` is set, the
/// thread has sent [`MAX_FLOOD_PER_THREAD`] or [`FLOOD_DEADLINE`] passes.
fn flood(gateway: std::net::SocketAddr, thread: usize, stop: &AtomicBool, tally: &FloodTally) {
    let deadline = Instant::now() + FLOOD_DEADLINE;
    for n in 0..MAX_FLOOD_PER_THREAD {
        if stop.load(Ordering::SeqCst) || Instant::now() >= deadline {
            return;
        }
        let forged = github_request(&format!("flood-{thread}-{n}"), "not-the-secret");
        let mut connection = Connection::open_from(FLOOD_CLIENT, gateway);
        connection.write(&forged);
        match connection.read_response("POST").map(|r| r.status) {
            Some(401) => tally.unauthorized.fetch_add(1, Ordering::SeqCst),
            Some(429) => tally.limited.fetch_add(1, Ordering::SeqCst),
            other => {
                tally.other.lock().expect("tally lock").push(other);
                0
            }
        };
    }
}

#[test]
fn flood_from_one_address_spares_others() {
    let upstream = Upstream::ok();
    let limit = format!("failed_verify_limit: {{ rate: 1/h, burst: {FAILED_VERIFY_BURST} }}");
    let gateway = Gateway::start_env(&github_route(&upstream.url(), &[&limit]), ENV);
    let addr = gateway.addr;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(FloodTally::default());
    let flooders: Vec<_> = (0..FLOOD_THREADS)
        .map(|thread| {
            let (stop, tally) = (Arc::clone(&stop), Arc::clone(&tally));
            std::thread::spawn(move || flood(addr, thread, &stop, &tally))
        })
        .collect();

    // The valid requests start once the flood has spent the failed-verification budget, so
    // they run while the flooding address is blocked.
    let deadline = Instant::now() + FLOOD_DEADLINE;
    while tally.limited.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let flood_before = tally.answered();
    let mut valid_statuses = Vec::new();
    let mut valid_bodies = Vec::new();
    for n in 0..VALID_REQUESTS {
        let request = github_request(&format!("valid-{n}"), SECRET);
        valid_bodies.push(format!("{{\"delivery\":\"valid-{n}\"}}"));
        let mut connection = Connection::open_from(VALID_CLIENT, addr);
        connection.write(&request);
        valid_statuses.push(connection.read_response("POST").map(|r| r.status));
    }
    let flood_during = tally.answered() - flood_before;

    // A valid request from the flooding address is blocked too: the limit is per address
    // and applies before the body is read.
    let mut blocked = Connection::open_from(FLOOD_CLIENT, addr);
    blocked.write(&github_request("valid-from-flooder", SECRET));
    let blocked = blocked.read_response("POST").map(|r| r.status);

    stop.store(true, Ordering::SeqCst);
    for flooder in flooders {
        flooder.join().expect("flood thread");
    }

    assert!(
        valid_statuses.iter().all(|status| *status == Some(200)),
        "valid requests from 127.0.0.1 were not all forwarded: {valid_statuses:?}"
    );
    assert!(
        flood_during > 0,
        "the flood sent nothing while the valid requests ran, so they did not overlap"
    );
    assert_eq!(
        blocked,
        Some(429),
        "valid request from the flooding address"
    );
    let other = tally.other.lock().expect("tally lock").clone();
    assert!(
        other.is_empty(),
        "flood statuses besides 401 and 429: {other:?}"
    );

    // Requests that passed the limit check at once may all fail verification, so the number
    // of 401s may pass the burst by up to one request per flood thread.
    let unauthorized = tally.unauthorized.load(Ordering::SeqCst);
    let limited = tally.limited.load(Ordering::SeqCst);
    assert!(
        (FAILED_VERIFY_BURST..=FAILED_VERIFY_BURST + FLOOD_THREADS).contains(&unauthorized),
        "{unauthorized} forged requests got 401 with a burst of {FAILED_VERIFY_BURST}"
    );
    assert!(limited > 0, "the failed-verification limit never applied");
    assert_eq!(
        gateway.rejections("gh", "signature_invalid"),
        unauthorized as f64
    );
    assert_eq!(
        gateway.rejections("gh", "verify_rate_limited"),
        (limited + 1) as f64,
        "429s of the flood plus the blocked valid request"
    );

    let recorded = upstream.requests();
    let mut forwarded: Vec<String> = recorded
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    forwarded.sort();
    valid_bodies.sort();
    assert_eq!(
        forwarded, valid_bodies,
        "upstream got exactly the valid requests"
    );
}

// --- Slow clients ---------------------------------------------------------------------------

/// Connections that send their request slowly in each slow-client test.
const SLOW_CLIENTS: usize = 300;
/// Interval between the bytes a slow client sends.
const TRICKLE_INTERVAL: Duration = Duration::from_millis(200);
/// Maximum time a test waits for the gateway to close the slow connections after their
/// deadline.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// Sends one byte of `bytes` (cycling) on every connection not yet closed, every
/// [`TRICKLE_INTERVAL`], until the gateway has closed them all or `wait` passes. Returns how
/// many stayed open.
fn trickle_until_closed(connections: &mut Vec<Connection>, bytes: &[u8], wait: Duration) -> usize {
    let deadline = Instant::now() + wait;
    let mut sent = 0;
    while !connections.is_empty() && Instant::now() < deadline {
        let byte = [bytes[sent % bytes.len()]];
        sent += 1;
        // A write may succeed after the gateway closed, so a read decides.
        connections.retain_mut(|connection| {
            let _ = connection.try_write(&byte);
            !connection.closed_within(Duration::from_millis(1))
        });
        std::thread::sleep(TRICKLE_INTERVAL);
    }
    connections.len()
}

/// Polls `series` until it equals `value` or 10 s pass, and returns whether it did.
fn metric_reaches(gateway: &Gateway, series: &str, value: f64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if gateway.metric(series) == value {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn slow_headers_closed_after_header_timeout() {
    let upstream = Upstream::ok();
    let header_timeout = Duration::from_secs(3);
    let server = "  header_timeout: 3s\n  max_connections: 1000\n";
    let gateway = Gateway::start_server_env(server, &github_route(&upstream.url(), &[]), ENV);

    // Each slow client sends a valid start of a head, then one more header byte at a time,
    // so every read arrives well within Pingora's own 60 s wait for each read.
    let start_of_head = b"POST /hooks/gh HTTP/1.1\r\nHost: gateway.test\r\n";
    let opened = Instant::now();
    let mut slow: Vec<Connection> = (0..SLOW_CLIENTS)
        .map(|_| {
            let mut connection = Connection::open(gateway.addr);
            connection.write(start_of_head);
            connection
        })
        .collect();

    let response = client::send(gateway.addr, &github_request("beside-slow", SECRET));
    let open_after = gateway.metric("hookgate_connections_open");

    assert_eq!(response.status, 200, "{}", response.body_text());
    assert!(
        open_after >= SLOW_CLIENTS as f64,
        "only {open_after} connections open after the valid request, so the slow ones did not overlap it"
    );
    let still_open = trickle_until_closed(&mut slow, b"X-Slow: 1\r\n", CLOSE_WAIT);
    assert_eq!(
        still_open, 0,
        "slow-header connections still open {CLOSE_WAIT:?} after the header timeout"
    );
    assert!(
        opened.elapsed() >= header_timeout,
        "slow connections closed before the header timeout"
    );
    assert_eq!(
        gateway.metric(r#"hookgate_connections_dropped_total{reason="header_timeout"}"#),
        SLOW_CLIENTS as f64
    );
    assert!(metric_reaches(&gateway, "hookgate_connections_open", 0.0));
    assert_eq!(upstream.requests().len(), 1, "only the valid request");
}

#[test]
fn idle_keep_alive_closed_after_header_timeout() {
    let upstream = Upstream::ok();
    let header_timeout = Duration::from_secs(2);
    let server = "  header_timeout: 2s\n";
    let gateway = Gateway::start_server_env(server, &github_route(&upstream.url(), &[]), ENV);
    let timeouts = r#"hookgate_connections_dropped_total{reason="header_timeout"}"#;

    let mut connection = Connection::open(gateway.addr);
    let first = connection.send(&github_request("keep-alive-first", SECRET));
    let answered = Instant::now();

    assert_eq!(first.status, 200, "{}", first.body_text());
    assert_eq!(
        first.header("connection").as_deref(),
        Some("keep-alive"),
        "the gateway keeps the connection open"
    );
    // The deadline for the next head runs from the end of the first response, so the idle
    // connection is closed although the first request was served.
    assert!(
        connection.closed_within(CLOSE_WAIT),
        "idle keep-alive connection still open"
    );
    assert!(answered.elapsed() >= header_timeout);
    assert_eq!(gateway.metric(timeouts), 1.0);
    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn connections_beyond_cap_closed_on_accept() {
    let upstream = Upstream::ok();
    let server = "  header_timeout: 60s\n  max_connections: 20\n";
    let gateway = Gateway::start_server_env(server, &github_route(&upstream.url(), &[]), ENV);
    let open = "hookgate_connections_open";
    let dropped_on_accept = r#"hookgate_connections_dropped_total{reason="max_connections"}"#;

    let mut idle: Vec<Connection> = (0..20).map(|_| Connection::open(gateway.addr)).collect();
    assert!(metric_reaches(&gateway, open, 20.0), "20 idle connections");

    let mut extra = Connection::open(gateway.addr);
    assert!(
        extra.closed_within(Duration::from_secs(10)),
        "the 21st connection stayed open"
    );
    assert_eq!(gateway.metric(dropped_on_accept), 1.0);

    idle.pop();
    assert!(metric_reaches(&gateway, open, 19.0), "a slot was freed");
    let response = client::send(gateway.addr, &github_request("after-cap", SECRET));
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(gateway.metric(dropped_on_accept), 1.0);
    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn slow_bodies_time_out_while_others_served() {
    let upstream = Upstream::ok();
    let body_timeout = Duration::from_secs(2);
    let gateway = Gateway::start_env(&github_route(&upstream.url(), &["body_timeout: 2s"]), ENV);

    // A complete head promising 1000 body bytes, of which the client sends one at a time.
    let mut slow: Vec<Connection> = (0..SLOW_CLIENTS)
        .map(|n| {
            let body = vec![b'x'; 1000];
            let request = github_request_with_body(&format!("slow-body-{n}"), &body);
            let mut connection = Connection::open(gateway.addr);
            connection.write(common::head_of(&request));
            connection
        })
        .collect();
    let started = Instant::now();

    let response = client::send(gateway.addr, &github_request("beside-slow-bodies", SECRET));
    let in_flight = gateway.metric(r#"hookgate_requests_in_flight{route="gh"}"#);

    assert_eq!(response.status, 200, "{}", response.body_text());
    assert!(
        in_flight >= SLOW_CLIENTS as f64,
        "only {in_flight} requests in flight after the valid one, so the slow bodies did not overlap it"
    );

    // Each slow client gets 408 and the connection closes, although bytes keep arriving.
    let still_open = trickle_until_closed(&mut slow, b"x", CLOSE_WAIT);
    assert_eq!(still_open, 0, "slow-body connections still open");
    assert!(started.elapsed() >= body_timeout);
    assert_eq!(
        gateway.rejections("gh", "body_timeout"),
        SLOW_CLIENTS as f64
    );
    assert_eq!(upstream.requests().len(), 1, "only the valid request");
}

/// Builds a GitHub request with delivery id `delivery` and `body`, signed with the secret.
fn github_request_with_body(delivery: &str, body: &[u8]) -> Vec<u8> {
    let signature = github_signature(SECRET, body);
    client::request(
        "POST",
        "/hooks/gh",
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", delivery),
        ],
        body,
    )
}

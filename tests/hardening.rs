//! Hostile or unusual peers: an upstream that sends informational responses or drops a
//! request, path tricks aimed at prefix routes, and more buffered bodies than the budget.

mod common;

use std::collections::VecDeque;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::client::{request, send, Connection};
use common::upstream::Upstream;
use common::{github_signature, route, Gateway};

const SECRET: &str = "hardening-secret";
const ENV: &[(&str, &str)] = &[("HG_HARDEN_SECRET", SECRET)];

fn github_route(path: &str, upstream: &str, extra: &[&str]) -> String {
    let path = format!("{path}: /hooks/gh/");
    let upstream = format!("upstream: \"{upstream}\"");
    let mut lines = vec![
        "name: gh",
        &path,
        "provider: github",
        "secrets: [ { env: HG_HARDEN_SECRET } ]",
        &upstream,
    ];
    lines.extend_from_slice(extra);
    route(&lines)
}

fn signed(path: &str, body: &[u8], delivery: &str) -> Vec<u8> {
    let signature = github_signature(SECRET, body);
    request(
        "POST",
        path,
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", delivery),
        ],
        body,
    )
}

/// Starts an upstream that responds to the requests it reads, on any connection, with `replies` in
/// turn. A `None` reply, or running out of replies, closes the connection after the read.
/// Counts every request read.
fn scripted_upstream(replies: Vec<Option<&'static str>>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let count = Arc::new(AtomicUsize::new(0));
    let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (seen, replies) = (Arc::clone(&seen), Arc::clone(&replies));
            std::thread::spawn(move || serve_scripted(stream, &seen, &replies));
        }
    });
    (url, count)
}

fn serve_scripted(
    mut stream: TcpStream,
    seen: &AtomicUsize,
    replies: &Mutex<VecDeque<Option<&str>>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut pending = Vec::new();
    loop {
        let Some((_, framing)) = common::client::read_head(&mut stream, &mut pending) else {
            return;
        };
        if common::client::read_body(&mut stream, &mut pending, framing).is_none() {
            return;
        }
        seen.fetch_add(1, Ordering::SeqCst);
        let reply = replies.lock().expect("reply lock").pop_front().flatten();
        let Some(bytes) = reply else { return };
        if stream.write_all(bytes.as_bytes()).is_err() {
            return;
        }
    }
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";

#[test]
fn early_hints_are_skipped() {
    let reply = "HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfinal\n";
    let (url, seen) = scripted_upstream(vec![Some(reply)]);
    let gateway = Gateway::start_env(&github_route("path_prefix", &url, &[]), ENV);

    let response = send(gateway.addr, &signed("/hooks/gh/a", b"{}", "d-103"));
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.body_text(), "final\n");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    gateway.wait_for_metric(
        r#"hookgate_requests_in_flight{route="gh"}"#,
        0.0,
        Duration::from_secs(5),
    );
}

#[test]
fn dropped_request_is_not_sent_twice() {
    let (url, seen) = scripted_upstream(vec![Some(OK), None]);
    let gateway = Gateway::start_env(&github_route("path_prefix", &url, &[]), ENV);

    assert_eq!(
        send(gateway.addr, &signed("/hooks/gh/a", b"{\"n\":1}", "d-1")).status,
        200
    );
    // The second request goes out on the pooled connection, which the upstream closes after
    // reading it: the upstream may have acted on it, so it must not get a second copy.
    let response = send(gateway.addr, &signed("/hooks/gh/a", b"{\"n\":2}", "d-2"));
    assert_eq!(response.status, 502, "{}", response.body_text());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[test]
fn path_tricks_on_prefix_route_rejected() {
    let upstream = Upstream::ok();
    let gateway = Gateway::start_env(&github_route("path_prefix", &upstream.url(), &[]), ENV);
    let tricks = [
        "/hooks/gh/..;/..;/admin",
        "/hooks/gh/%252e%252e/admin",
        "/hooks/gh/%c0%ae%c0%ae/admin",
        "/hooks/gh/%2e%2e/admin",
        "/hooks/gh/./a",
    ];
    for path in tricks {
        let response = send(gateway.addr, &signed(path, b"{}", path));
        assert_eq!(response.status, 400, "{path}");
        assert_eq!(response.reason(), "path_invalid", "{path}");
    }
    assert_eq!(upstream.accepts(), 0);
}

#[test]
fn buffered_bodies_beyond_budget_get_503() {
    let upstream = Upstream::ok();
    let routes = github_route("path_prefix", &upstream.url(), &[]);
    let gateway = Gateway::start_server_env("  max_buffered_bytes: 4KiB\n", &routes, ENV);

    // The first request reserves the whole budget and stalls halfway through its body.
    let mut holder = Connection::open(gateway.addr);
    let head = "POST /hooks/gh/a HTTP/1.1\r\nHost: t\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 4096\r\n\r\n";
    holder.write(head.as_bytes());
    holder.write(&[b'x'; 100]);
    std::thread::sleep(Duration::from_millis(200));

    let response = send(gateway.addr, &signed("/hooks/gh/b", b"{}", "d-budget"));
    assert_eq!(response.status, 503, "{}", response.body_text());
    assert_eq!(response.reason(), "gateway_overloaded");
    assert_eq!(response.header("retry-after").as_deref(), Some("1"));
    assert_eq!(upstream.accepts(), 0);

    drop(holder);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let response = send(
            gateway.addr,
            &signed("/hooks/gh/b", b"{}", "d-budget-later"),
        );
        if response.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "budget never released: {}",
            response.status
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn no_secret_or_expected_signature_leaks() {
    let upstream = Upstream::ok();
    let mut routes = github_route(
        "path",
        &upstream.url(),
        &["rate_limit: { rate: 1/m, burst: 8 }", "max_body: 1KiB"],
    );
    routes.push_str(&route(&[
        "name: stripe",
        "path: /hooks/stripe",
        "provider: stripe",
        "secrets: [ { env: HG_HARDEN_STRIPE } ]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]));
    let stripe_secret = "whsec_hardening_stripe_secret";
    let env = [ENV[0], ("HG_HARDEN_STRIPE", stripe_secret)];
    let gateway = Gateway::start_server_env("  access_log: true\n", &routes, &env);

    let body = br#"{"probe":1}"#;
    // What a valid signature over this body would be: it must never be echoed either.
    let expected = github_signature(SECRET, body);
    let stripe_expected = common::stripe_signature(stripe_secret, common::now(), body);
    let stripe_v1 = stripe_expected
        .split("v1=")
        .nth(1)
        .expect("v1 part")
        .to_string();
    let probes: Vec<Vec<u8>> = vec![
        request("POST", "/nowhere", &[], body),
        request("GET", "/hooks/gh/", &[], b""),
        request("POST", "/hooks/gh/../x", &[], body),
        request("POST", "/hooks/gh/", &[], body),
        request(
            "POST",
            "/hooks/gh/",
            &[("X-Hub-Signature-256", "sha256=zz")],
            body,
        ),
        request(
            "POST",
            "/hooks/gh/",
            &[("X-Hub-Signature-256", &github_signature("wrong", body))],
            body,
        ),
        request(
            "POST",
            "/hooks/gh/",
            &[("X-Hub-Signature-256", SECRET)],
            body,
        ),
        request(
            "POST",
            "/hooks/gh/",
            &[("X-Hub-Signature-256", &expected)],
            &[b'x'; 2048],
        ),
        request(
            "POST",
            "/hooks/stripe",
            &[("Stripe-Signature", "t=1,v1=00")],
            body,
        ),
        request(
            "POST",
            "/hooks/stripe",
            &[(
                "Stripe-Signature",
                &common::stripe_signature(stripe_secret, 1, body),
            )],
            body,
        ),
        request(
            "POST",
            "/hooks/stripe",
            &[("Stripe-Signature", stripe_secret)],
            body,
        ),
    ];
    let mut seen = String::new();
    for probe in &probes {
        let response = send(gateway.addr, probe);
        assert!(
            response.status >= 400,
            "probe was accepted: {}",
            String::from_utf8_lossy(probe)
        );
        seen.push_str(&response.head);
        seen.push_str(&response.body_text());
    }
    std::thread::sleep(Duration::from_millis(300));
    seen.push_str(&gateway.metrics());
    seen.push_str(&gateway.logs());

    assert!(
        gateway.logs().contains("hookgate::access"),
        "access log was on"
    );
    for (name, value) in [
        ("github secret", SECRET),
        ("stripe secret", stripe_secret),
        (
            "expected github signature",
            expected.trim_start_matches("sha256="),
        ),
        ("expected stripe signature", stripe_v1.as_str()),
    ] {
        assert!(
            !seen.contains(value),
            "the {name} appears in a response, a metric or a log"
        );
    }
    assert_eq!(upstream.accepts(), 0);
}

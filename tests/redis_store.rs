//! The guards with the Redis store. Gateway processes that use one `redis-server` share
//! duplicate detection and rate limits. A Redis outage follows each route's `store_failure`
//! policy and shows in `/readyz`, in the store error counter and in one warning. Each test
//! starts its own `redis-server` on a free 127.0.0.1 port.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::client::{self, Response};
use common::upstream::{Behavior, Gate, Upstream};
use common::{assert_rejects, closed_port, github_signature, route, Gateway};

const GITHUB_SECRET: &str = "redis-store-github-secret";
const ENV: &[(&str, &str)] = &[("HG_TEST_GITHUB", GITHUB_SECRET)];

/// Maximum time a test waits for `redis-server` to reply, or for the gateway to notice that
/// it is back.
const REDIS_WAIT: Duration = Duration::from_secs(15);

/// A `redis-server` child process on 127.0.0.1 without persistence, killed on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts `redis-server` on a free port, trying another port when the chosen one was
    /// taken before Redis could bind it.
    fn start() -> Redis {
        let dir = tempfile::tempdir().expect("create Redis dir");
        for _ in 0..5 {
            let port = closed_port();
            if let Some(child) = spawn_redis(port, &dir) {
                return Redis {
                    child: Some(child),
                    port,
                    dir,
                };
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server and waits until its port refuses connections.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + REDIS_WAIT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "port {} still accepts after Redis stopped",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server with SIGSTOP, so that it keeps its connections open but replies
    /// to nothing, as a Redis that hangs does.
    fn pause(&self) {
        self.signal("-STOP");
    }

    fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("Redis is running");
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", child.id());
    }

    /// Starts the server again on the same port.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "Redis is still running");
        self.child = Some(
            spawn_redis(self.port, &self.dir)
                .unwrap_or_else(|| panic!("redis-server did not restart on port {}", self.port)),
        );
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `redis-server` on `port` and waits until it replies to `PING`; `None` when it exits
/// first, as it does when the port is taken.
fn spawn_redis(port: u16, dir: &tempfile::TempDir) -> Option<Child> {
    let spawned = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("redis-server not found; install redis-server (.ci/run does)")
        }
        Err(e) => panic!("cannot start redis-server: {e}"),
    };
    let deadline = Instant::now() + REDIS_WAIT;
    loop {
        if replies_to_ping(port) {
            return Some(child);
        }
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("redis-server on port {port} did not reply to PING within {REDIS_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends one command to the Redis server on 127.0.0.1:`port` and returns its raw reply in
/// the Redis protocol (RESP), such as `:3599000` for `PTTL`, for failure messages.
fn redis_reply(port: u16, command: &[&str]) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return "(Redis refused the connection)".to_string();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut request = format!("*{}\r\n", command.len());
    for part in command {
        request.push_str(&format!("${}\r\n{part}\r\n", part.len()));
    }
    let mut reply = [0u8; 512];
    let read = stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.read(&mut reply));
    match read {
        Ok(n) => String::from_utf8_lossy(&reply[..n])
            .trim()
            .replace("\r\n", " "),
        Err(e) => format!("(no reply: {e})"),
    }
}

/// Returns whether a Redis server on 127.0.0.1:`port` replies `+PONG` to `PING`.
fn replies_to_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

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

/// Starts a gateway on 127.0.0.1 with `routes` and its guard state in `redis`.
fn start(routes: &str, redis: &Redis) -> Gateway {
    let rest = format!(
        "routes:\n{routes}store:\n  redis: \"{}\"\n  prefix: \"hookgate-test:\"\n",
        redis.url()
    );
    Gateway::start_listening(&["127.0.0.1:0"], &rest, ENV)
}

/// Returns a delivery id that no other request in this test binary uses.
fn fresh_delivery() -> String {
    static DELIVERIES: AtomicU64 = AtomicU64::new(0);
    format!("redis-{}", DELIVERIES.fetch_add(1, Ordering::Relaxed))
}

/// Builds a correctly signed GitHub request to `/hooks/ROUTE` with a fresh delivery id.
fn github_request(route: &str) -> Vec<u8> {
    github_request_with_id(route, &fresh_delivery())
}

/// Builds a correctly signed GitHub request to `/hooks/ROUTE` with delivery id `delivery`.
fn github_request_with_id(route: &str, delivery: &str) -> Vec<u8> {
    let body = format!("{{\"delivery\":\"{delivery}\"}}");
    let signature = github_signature(GITHUB_SECRET, body.as_bytes());
    client::request(
        "POST",
        &format!("/hooks/{route}"),
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", delivery),
        ],
        body.as_bytes(),
    )
}

/// Sends `request` to `gateway` and checks that it was forwarded: 200 without the
/// duplicate header.
fn assert_forwarded(gateway: &Gateway, request: &[u8]) -> Response {
    let response = client::send(gateway.addr, request);
    assert_eq!(response.status, 200, "body: {}", response.body_text());
    assert_eq!(response.header("x-hookgate-duplicate"), None);
    response
}

fn store_errors(gateway: &Gateway, route: &str) -> f64 {
    gateway.metric(&format!("hookgate_store_errors_total{{route=\"{route}\"}}"))
}

/// Polls `/readyz` until it returns `status` or [`REDIS_WAIT`] passes; returns the last
/// response.
fn wait_for_readiness(gateway: &Gateway, status: u16) -> Response {
    let deadline = Instant::now() + REDIS_WAIT;
    loop {
        let response = gateway.admin_get("/readyz");
        if response.status == status || Instant::now() >= deadline {
            return response;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `/readyz` until it stops returning `starting`, which it returns until the webhook
/// service has started, a moment after the listeners accept connections.
fn wait_until_started(gateway: &Gateway) {
    let deadline = Instant::now() + REDIS_WAIT;
    while gateway.admin_get("/readyz").body_text() == "starting\n" {
        assert!(
            Instant::now() < deadline,
            "/readyz still returns starting after {REDIS_WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks that `response` is `/readyz` reporting the store as unavailable.
fn assert_store_not_ready(response: &Response, when: &str) {
    assert_eq!(response.status, 503, "{when}: {}", response.body_text());
    assert!(
        response
            .body_text()
            .starts_with("not ready: shared store unavailable"),
        "{when}: {}",
        response.body_text()
    );
}

#[test]
fn duplicate_detected_across_gateways() {
    let redis = Redis::start();
    let upstream = Upstream::ok();
    let routes = github_route("github", &upstream.url(), &[]);
    let (first, second) = (start(&routes, &redis), start(&routes, &redis));
    let request = github_request("github");
    let duplicates = "hookgate_requests_total{outcome=\"duplicate\",route=\"github\"}";
    assert_forwarded(&first, &request);

    let repeat = client::send(second.addr, &request);

    assert_eq!(repeat.status, 200, "repeat: {}", repeat.body_text());
    assert_eq!(
        repeat.header("x-hookgate-duplicate").as_deref(),
        Some("true")
    );
    assert_eq!(second.metric(duplicates), 1.0, "{duplicates} at the second");
    assert_eq!(
        upstream.requests().len(),
        1,
        "the repeat reached the upstream"
    );
    assert_forwarded(&second, &github_request("github"));
    assert_eq!(upstream.requests().len(), 2);
}

#[test]
fn route_rate_limit_shared_across_gateways() {
    let redis = Redis::start();
    let upstream = Upstream::ok();
    let routes = github_route(
        "limited",
        &upstream.url(),
        &["rate_limit: { key: route, rate: 1/m, burst: 2 }"],
    );
    let (first, second) = (start(&routes, &redis), start(&routes, &redis));
    assert_forwarded(&first, &github_request("limited"));
    assert_forwarded(&second, &github_request("limited"));

    for gateway in [&first, &second] {
        let response = assert_rejects(gateway, "limited", 429, "rate_limited", || {
            client::send(gateway.addr, &github_request("limited"))
        });
        let wait: u64 = response
            .header("retry-after")
            .and_then(|value| value.parse().ok())
            .expect("429 carries Retry-After in seconds");
        assert!(
            (1..=60).contains(&wait),
            "Retry-After {wait} outside 1..=60"
        );
    }

    assert_eq!(upstream.requests().len(), 2);
}

/// Routes for the outage tests: `closed` rejects while the store is down, `open` skips the
/// guards that need it.
fn outage_routes(upstream: &Upstream) -> String {
    [
        github_route("closed", &upstream.url(), &["store_failure: fail_closed"]),
        github_route("open", &upstream.url(), &["store_failure: fail_open"]),
    ]
    .concat()
}

#[test]
fn redis_outage_follows_store_failure_policy() {
    let mut redis = Redis::start();
    let upstream = Upstream::ok();
    let gateway = start(&outage_routes(&upstream), &redis);
    assert_forwarded(&gateway, &github_request("closed"));
    assert_forwarded(&gateway, &github_request("open"));
    let errors_before = [
        store_errors(&gateway, "closed"),
        store_errors(&gateway, "open"),
    ];

    redis.stop();
    let rejected = assert_rejects(&gateway, "closed", 503, "store_unavailable", || {
        client::send(gateway.addr, &github_request("closed"))
    });
    assert_eq!(rejected.header("retry-after").as_deref(), Some("1"));
    assert_eq!(
        upstream.requests().len(),
        2,
        "fail_closed forwarded a request"
    );
    assert_forwarded(&gateway, &github_request("open"));
    assert_eq!(upstream.requests().len(), 3, "fail_open did not forward");

    let errors_after = [
        store_errors(&gateway, "closed"),
        store_errors(&gateway, "open"),
    ];
    assert!(
        errors_after[0] > errors_before[0],
        "hookgate_store_errors_total for closed stayed at {}",
        errors_after[0]
    );
    assert!(
        errors_after[1] > errors_before[1],
        "hookgate_store_errors_total for open stayed at {}",
        errors_after[1]
    );
    let store_warnings: Vec<String> = gateway
        .warnings(Duration::from_millis(200))
        .into_iter()
        .filter(|line| line.contains("shared store unavailable"))
        .collect();
    assert_eq!(
        store_warnings.len(),
        1,
        "one warning expected within 10 s:\n{}",
        store_warnings.join("\n")
    );
}

#[test]
fn readyz_follows_redis_outage_and_recovery() {
    let mut redis = Redis::start();
    let upstream = Upstream::ok();
    let gateway = start(&outage_routes(&upstream), &redis);
    wait_until_started(&gateway);
    let ready = gateway.admin_get("/readyz");
    assert_eq!(
        ready.status,
        200,
        "before the outage: {}",
        ready.body_text()
    );

    redis.stop();
    let down = wait_for_readiness(&gateway, 503);
    assert_store_not_ready(&down, "while Redis is down");
    redis.restart();
    let back = wait_for_readiness(&gateway, 200);

    assert_eq!(back.status, 200, "after the restart: {}", back.body_text());
    assert_eq!(back.body_text(), "ready\n");
    assert_forwarded(&gateway, &github_request("closed"));
    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn concurrent_repeat_across_gateways_rejected() {
    let redis = Redis::start();
    let gate = Gate::new();
    let upstream = Upstream::start(Behavior::Hold {
        gate: gate.clone(),
        status: 200,
    });
    let routes = github_route("github", &upstream.url(), &[]);
    let (first, second) = (start(&routes, &redis), start(&routes, &redis));
    let request = github_request("github");
    let first_addr = first.addr;
    let first_request = request.clone();
    let held = std::thread::spawn(move || client::send(first_addr, &first_request));
    assert_eq!(
        upstream.wait_for_requests(1, REDIS_WAIT),
        1,
        "the first request never reached the upstream"
    );

    assert_rejects(&second, "github", 409, "replay_in_flight", || {
        client::send(second.addr, &request)
    });
    gate.open();

    assert_eq!(held.join().expect("held request thread").status, 200);
    let repeat = client::send(second.addr, &request);
    assert_eq!(
        repeat.header("x-hookgate-duplicate").as_deref(),
        Some("true"),
        "repeat after delivery: {} {}",
        repeat.status,
        repeat.body_text()
    );
    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn retry_forwarded_after_forwarding_gateway_dies() {
    let redis = Redis::start();
    let gate = Gate::new();
    let upstream = Upstream::start(Behavior::Hold {
        gate: gate.clone(),
        status: 200,
    });
    let timeouts = [
        "body_timeout: 1s",
        "connect_timeout: 1s",
        "upstream_timeout: 2s",
    ];
    let routes = github_route("github", &upstream.url(), &timeouts);
    let (first, second) = (start(&routes, &redis), start(&routes, &redis));
    let delivery = fresh_delivery();
    let request = github_request_with_id("github", &delivery);
    let mut connection = client::Connection::open(first.addr);
    connection.write(&request);
    assert_eq!(upstream.wait_for_requests(1, REDIS_WAIT), 1);

    // The first gateway is killed mid-forward, so it never finishes its claim.
    drop(first);
    drop(connection);
    gate.open();

    // Nothing is in flight any more. Once the dead gateway's own timeouts (4 s in all) have
    // passed, the sender's retry must reach the upstream instead of getting 409.
    let deadline = Instant::now() + Duration::from_secs(15);
    let retry = loop {
        let retry = client::send(second.addr, &request);
        if retry.status != 409 || Instant::now() >= deadline {
            break retry;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let key = format!("hookgate-test:delivery:github:{delivery}");
    assert_eq!(
        retry.status,
        200,
        "retry 15 s after the forwarding gateway died: {}; Redis key {key}: GET {}, PTTL {}",
        retry.body_text(),
        redis_reply(redis.port, &["GET", &key]),
        redis_reply(redis.port, &["PTTL", &key]),
    );
    assert_eq!(upstream.requests().len(), 2);
}

#[test]
fn gateway_started_without_redis_recovers() {
    let mut redis = Redis::start();
    redis.stop();
    let upstream = Upstream::ok();
    let gateway = start(&outage_routes(&upstream), &redis);
    wait_until_started(&gateway);

    assert_store_not_ready(&gateway.admin_get("/readyz"), "without Redis");
    assert_rejects(&gateway, "closed", 503, "store_unavailable", || {
        client::send(gateway.addr, &github_request("closed"))
    });
    redis.restart();
    let back = wait_for_readiness(&gateway, 200);

    assert_eq!(
        back.status,
        200,
        "after Redis started: {}",
        back.body_text()
    );
    assert_forwarded(&gateway, &github_request("closed"));
    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn paused_redis_follows_store_failure_policy() {
    let redis = Redis::start();
    let upstream = Upstream::ok();
    let gateway = start(&outage_routes(&upstream), &redis);
    wait_until_started(&gateway);
    assert_forwarded(&gateway, &github_request("closed"));

    redis.pause();
    let started = Instant::now();
    let rejected = assert_rejects(&gateway, "closed", 503, "store_unavailable", || {
        client::send(gateway.addr, &github_request("closed"))
    });
    let elapsed = started.elapsed();
    let open_started = Instant::now();
    assert_forwarded(&gateway, &github_request("open"));
    let open_elapsed = open_started.elapsed();
    let ready = gateway.admin_get("/readyz");
    redis.resume();

    assert_eq!(rejected.header("retry-after").as_deref(), Some("1"));
    assert!(
        elapsed < Duration::from_secs(3),
        "fail_closed responded after {elapsed:?} while Redis hung"
    );
    assert!(
        open_elapsed < Duration::from_secs(5),
        "fail_open responded after {open_elapsed:?} while Redis hung"
    );
    assert_store_not_ready(&ready, "while Redis hung");
    assert_eq!(upstream.requests().len(), 2);
    let back = wait_for_readiness(&gateway, 200);
    assert_eq!(
        back.status,
        200,
        "after Redis resumed: {}",
        back.body_text()
    );
    assert_forwarded(&gateway, &github_request("closed"));
}

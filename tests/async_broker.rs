//! `delivery: async` on the shared Redis broker: two gateway processes store webhooks in one
//! Redis stream per route and deliver them through a consumer group, so that each webhook
//! reaches the upstream once, whichever gateway accepted it. The test starts its own
//! `redis-server` on a free 127.0.0.1 port.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::upstream::{Behavior, Gate, Upstream};
use common::{client, closed_port, github_signature, Gateway};

const SECRET: &str = "async-broker-secret";
const ENV: &[(&str, &str)] = &[("HG_TEST_GITHUB", SECRET)];
const DELIVERED: &str = "hookgate_delivery_outcomes_total{outcome=\"delivered\",route=\"github\"}";
/// Maximum time the test waits for Redis to start or for deliveries to arrive.
const WAIT: Duration = Duration::from_secs(20);

/// A `redis-server` without persistence, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().expect("Redis dir");
        for _ in 0..5 {
            let port = closed_port();
            if let Some(child) = spawn_redis(port, &dir) {
                return Redis { child, port, dir };
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server and starts an empty one on the same port, as a Redis without
    /// persistence comes back after a crash.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "port {} still accepts after Redis stopped",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = spawn_redis(self.port, &self.dir)
            .unwrap_or_else(|| panic!("redis-server did not restart on port {}", self.port));
    }
}

/// Starts `redis-server` on `port` and waits for its `PONG`; `None` when it exits first, as
/// it does when the port is taken.
fn spawn_redis(port: u16, dir: &tempfile::TempDir) -> Option<Child> {
    let mut child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server (.ci/run installs it)");
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if pong(port) {
            return Some(child);
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    matches!(stream.read(&mut reply), Ok(n) if reply[..n].starts_with(b"+PONG"))
}

fn config(redis: &str, consumer: &str, upstream: &str) -> String {
    format!(
        "listeners:
  - address: \"127.0.0.1:0\"
admin:
  address: \"127.0.0.1:0\"
queue:
  redis: \"{redis}\"
  consumer: {consumer}
routes:
  - name: github
    path: /hooks/github
    provider: github
    secrets: [ {{ env: HG_TEST_GITHUB }} ]
    upstream: \"{upstream}\"
    delivery: async
    async:
      concurrency: 2
      backoff: 20ms
      max_backoff: 100ms
"
    )
}

fn webhook(id: &str, body: &[u8]) -> Vec<u8> {
    let signature = github_signature(SECRET, body);
    client::request(
        "POST",
        "/hooks/github",
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", id),
        ],
        body,
    )
}

fn body_for(id: &str) -> Vec<u8> {
    format!(
        "{{\"delivery\":\"{id}\",\"padding\":\"{}\"}}",
        "x".repeat(100)
    )
    .into_bytes()
}

#[test]
fn two_gateways_deliver_each_webhook_once() {
    let redis = Redis::start();
    let upstream = Upstream::ok();
    let a = Gateway::start_config_env(&config(&redis.url(), "gw-a", &upstream.url()), ENV);
    let b = Gateway::start_config_env(&config(&redis.url(), "gw-b", &upstream.url()), ENV);

    let count = 40;
    for index in 0..count {
        let id = format!("hook-{index}");
        let gateway = if index % 2 == 0 { &a } else { &b };
        let response = client::send(gateway.addr, &webhook(&id, &body_for(&id)));
        assert_eq!(response.status, 202, "{id}: {}", response.body_text());
    }
    // The same delivery id at the other gateway: its own duplicate memory does not know the
    // id, so only the broker can tell that it is stored already.
    let first = client::send(a.addr, &webhook("shared", &body_for("shared")));
    assert_eq!(first.status, 202, "{}", first.body_text());
    let repeat = client::send(b.addr, &webhook("shared", &body_for("shared")));
    assert_eq!(repeat.status, 202, "{}", repeat.body_text());
    assert_eq!(
        repeat.header("x-hookgate-duplicate").as_deref(),
        Some("true")
    );

    let expected = count + 1;
    assert_eq!(upstream.wait_for_requests(expected, WAIT), expected);
    let deadline = Instant::now() + WAIT;
    let delivered = loop {
        let total = a.metric(DELIVERED) + b.metric(DELIVERED);
        if total >= expected as f64 || Instant::now() >= deadline {
            break total;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        delivered, expected as f64,
        "deliveries counted by both gateways"
    );

    let requests = upstream.requests();
    assert_eq!(requests.len(), expected, "requests at the upstream");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for request in &requests {
        let id = request.header("x-github-delivery").join(",");
        common::assert_same_bytes(&request.body, &body_for(&id));
        *seen.entry(id).or_default() += 1;
    }
    for index in 0..count {
        let id = format!("hook-{index}");
        assert_eq!(seen.get(&id), Some(&1), "{id}");
    }
    assert_eq!(seen.get("shared"), Some(&1), "shared");
}

#[test]
fn broker_down_answers_503() {
    let mut redis = Redis::start();
    let upstream = Upstream::ok();
    let gateway = Gateway::start_config_env(&config(&redis.url(), "gw-a", &upstream.url()), ENV);
    let _ = redis.child.kill();
    let _ = redis.child.wait();

    let rejected = common::assert_rejects(&gateway, "github", 503, "queue_unavailable", || {
        client::send(gateway.addr, &webhook("down-0", &body_for("down-0")))
    });

    assert!(rejected.header("retry-after").is_some());
    assert_eq!(upstream.requests().len(), 0, "nothing was delivered");
}

#[test]
fn broker_restart_resumes_delivery() {
    let mut redis = Redis::start();
    let upstream = Upstream::ok();
    let gateway = Gateway::start_config_env(&config(&redis.url(), "gw-a", &upstream.url()), ENV);
    let before = client::send(gateway.addr, &webhook("before-0", &body_for("before-0")));
    assert_eq!(before.status, 202, "{}", before.body_text());
    assert_eq!(upstream.wait_for_requests(1, WAIT), 1);

    redis.restart();
    // The gateway's connections to the old server break on their next command, so the
    // first request after the restart may still get 503.
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let response = client::send(gateway.addr, &webhook("after-0", &body_for("after-0")));
        if response.status != 503 || Instant::now() >= deadline {
            break response;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(after.status, 202, "{}", after.body_text());

    assert_eq!(
        upstream.wait_for_requests(2, WAIT),
        2,
        "the webhook stored after the restart was not delivered; logs: {}",
        gateway.logs()
    );
    let requests = upstream.requests();
    assert_eq!(requests[1].header("x-github-delivery"), ["after-0"]);
    common::assert_same_bytes(&requests[1].body, &body_for("after-0"));
}

#[test]
fn broker_dead_letters_and_purges() {
    let redis = Redis::start();
    let upstream = Upstream::start(Behavior::Respond {
        status: 400,
        body: b"bad request\n".to_vec(),
    });
    let text = config(&redis.url(), "gw-a", &upstream.url());
    let gateway = Gateway::start_config_env(&text, ENV);
    let response = client::send(gateway.addr, &webhook("dead-0", &body_for("dead-0")));
    assert_eq!(response.status, 202, "{}", response.body_text());
    let dead = "hookgate_delivery_outcomes_total{outcome=\"dead_letter\",route=\"github\"}";
    assert_eq!(gateway.wait_for_metric(dead, 1.0, WAIT), 1.0);
    assert_eq!(upstream.requests().len(), 1, "a 400 is not retried");

    // The config names admin port 0, so the command reaches Redis directly while the
    // gateway runs.
    let listed = queue_command(&gateway.config_path, &["list", "--dead", "--json"]);
    let entries = listed["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["delivery_id"], "dead-0");
    assert_eq!(entries[0]["last_error"], "upstream answered 400");
    let pending = queue_command(&gateway.config_path, &["list", "--json"]);
    assert_eq!(
        pending["entries"].as_array().map(Vec::len),
        Some(0),
        "{pending}"
    );

    // A retried entry goes through delivery again, and this upstream rejects it again.
    queue_command(&gateway.config_path, &["retry", "--all"]);
    assert_eq!(gateway.wait_for_metric(dead, 2.0, WAIT), 2.0);
    assert_eq!(upstream.requests().len(), 2);
    common::assert_same_bytes(&upstream.requests()[1].body, &body_for("dead-0"));

    queue_command(&gateway.config_path, &["purge", "--all", "--dead"]);
    let after = queue_command(&gateway.config_path, &["list", "--dead", "--json"]);
    assert_eq!(
        after["entries"].as_array().map(Vec::len),
        Some(0),
        "{after}"
    );
}

#[test]
fn queue_command_reaches_removed_route() {
    let redis = Redis::start();
    let port = closed_port();
    let upstream = format!("http://127.0.0.1:{port}");
    let gateway = Gateway::start_config_env(&config(&redis.url(), "gw-a", &upstream), ENV);
    for index in 0..3 {
        let id = format!("orphan-{index}");
        let response = client::send(gateway.addr, &webhook(&id, &body_for(&id)));
        assert_eq!(response.status, 202, "{id}: {}", response.body_text());
    }
    drop(gateway);

    // The route is renamed in the config, so its old stream belongs to no async route.
    let dir = tempfile::tempdir().expect("config dir");
    let renamed = dir.path().join("gateway.yaml");
    let text = config(&redis.url(), "gw-a", &upstream).replace("name: github", "name: gh");
    std::fs::write(&renamed, text).expect("write config");
    let listed = queue_command(&renamed, &["list", "--route", "github", "--json"]);
    let entries = listed["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 3, "{listed}");
    assert_eq!(entries[0]["route"], "github");
    assert_eq!(entries[0]["delivery_id"], "orphan-0");

    // An id that is not a stream id names no entry; Redis itself rejects it in XRANGE.
    for args in [["show", "github/abc"], ["purge", "github/1-x"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .arg("queue")
            .arg("-c")
            .arg(&renamed)
            .args(args)
            .env("HG_TEST_GITHUB", SECRET)
            .output()
            .expect("run hookgate queue");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.status.success(), "{args:?} succeeded: {printed}");
        assert!(printed.contains("no such entry"), "{args:?}: {printed}");
    }

    queue_command(&renamed, &["purge", "--all", "--route", "github"]);
    let after = queue_command(&renamed, &["list", "--route", "github", "--json"]);
    assert_eq!(
        after["entries"].as_array().map(Vec::len),
        Some(0),
        "{after}"
    );
}

#[test]
fn broker_purge_stops_retries() {
    let redis = Redis::start();
    let upstream = Upstream::start(Behavior::Respond {
        status: 503,
        body: b"unavailable\n".to_vec(),
    });
    let text = config(&redis.url(), "gw-a", &upstream.url())
        .replace("max_backoff: 100ms", "max_backoff: 300ms");
    let gateway = Gateway::start_config_env(&text, ENV);
    let response = client::send(gateway.addr, &webhook("purged-0", &body_for("purged-0")));
    assert_eq!(response.status, 202, "{}", response.body_text());
    assert!(
        upstream.wait_for_requests(1, WAIT) >= 1,
        "no delivery attempt arrived"
    );

    queue_command(&gateway.config_path, &["purge", "--all"]);

    // The worker notices the purge when it records the next failed attempt.
    let deadline = Instant::now() + WAIT;
    while !gateway.logs().contains("no longer in the queue") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs = gateway.logs();
    assert!(logs.contains("no longer in the queue"), "{logs}");
    let dead = queue_command(&gateway.config_path, &["list", "--dead", "--json"]);
    assert_eq!(dead["entries"].as_array().map(Vec::len), Some(0), "{dead}");
}

#[test]
fn broker_purged_in_flight_not_dead_lettered() {
    let redis = Redis::start();
    let gate = Gate::new();
    let upstream = Upstream::start(Behavior::Hold {
        gate: gate.clone(),
        status: 400,
    });
    // One worker settles one entry after the other, so once the second entry has been
    // dead-lettered, the first one's dead-letter step has finished.
    let text =
        config(&redis.url(), "gw-a", &upstream.url()).replace("concurrency: 2", "concurrency: 1");
    let gateway = Gateway::start_config_env(&text, ENV);
    let response = client::send(gateway.addr, &webhook("held-0", &body_for("held-0")));
    assert_eq!(response.status, 202, "{}", response.body_text());
    assert_eq!(upstream.wait_for_requests(1, WAIT), 1);

    // The attempt is in flight when the entry is purged; its 400 then ends it for good.
    queue_command(&gateway.config_path, &["purge", "--all"]);
    let response = client::send(gateway.addr, &webhook("held-1", &body_for("held-1")));
    assert_eq!(response.status, 202, "{}", response.body_text());
    gate.open();
    let dead = "hookgate_delivery_outcomes_total{outcome=\"dead_letter\",route=\"github\"}";
    assert_eq!(gateway.wait_for_metric(dead, 2.0, WAIT), 2.0);

    let listed = queue_command(&gateway.config_path, &["list", "--dead", "--json"]);
    let entries = listed["entries"].as_array().cloned().unwrap_or_default();
    assert!(
        entries.iter().all(|entry| entry["delivery_id"] != "held-0"),
        "the purged entry came back as a dead letter: {listed}"
    );
}

#[test]
fn idle_workers_block_on_own_connections() {
    let redis = Redis::start();
    let upstream = Upstream::ok();
    let text =
        config(&redis.url(), "gw-a", &upstream.url()).replace("concurrency: 2", "concurrency: 4");
    let gateway = Gateway::start_config_env(&text, ENV);

    // Redis runs the commands of one connection in turn, so four workers can be blocked in
    // XREADGROUP at the same moment only when each has a connection of its own. Sharing one,
    // the fourth waited more than its reply timeout and logged a failed read.
    let deadline = Instant::now() + WAIT;
    let blocked = loop {
        let blocked = blocked_readers(redis.port);
        if blocked >= 4 || Instant::now() >= deadline {
            break blocked;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(blocked, 4, "workers blocked in XREADGROUP at once");
    let logs = gateway.logs();
    assert!(
        !logs.contains("failed to read the delivery queue"),
        "{logs}"
    );

    let response = client::send(gateway.addr, &webhook("idle-0", &body_for("idle-0")));
    assert_eq!(response.status, 202, "{}", response.body_text());
    assert_eq!(upstream.wait_for_requests(1, WAIT), 1);
}

/// Counts the clients of the Redis on `port` that are blocked in XREADGROUP, from CLIENT LIST.
fn blocked_readers(port: u16) -> usize {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"CLIENT LIST\r\n").is_err() {
        return 0;
    }
    // The reply is one bulk string, `$LENGTH\r\n` and then LENGTH bytes.
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let complete = reply.iter().position(|b| *b == b'\n').is_some_and(|end| {
            let length = String::from_utf8_lossy(&reply[1..end])
                .trim()
                .parse::<usize>();
            length.is_ok_and(|length| reply.len() >= end + 1 + length)
        });
        if complete {
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&reply)
        .lines()
        .filter(|line| line.contains("cmd=xreadgroup") && line.contains("flags=b"))
        .count()
}

/// Runs `hookgate queue ARGS -c CONFIG`; returns its JSON output, or null for text output.
fn queue_command(config: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .arg("queue")
        .arg("-c")
        .arg(config)
        .args(args)
        .env("HG_TEST_GITHUB", SECRET)
        .output()
        .expect("run hookgate queue");
    assert!(
        output.status.success(),
        "hookgate queue {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

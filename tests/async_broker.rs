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

use common::upstream::Upstream;
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
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().expect("Redis dir");
        for _ in 0..5 {
            let port = closed_port();
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
                    return Redis {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
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

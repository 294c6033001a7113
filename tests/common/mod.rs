//! Test harness: the real `hookgate` binary, a recording upstream on 127.0.0.1 and a raw
//! HTTP/1.1 client, so tests see exactly the bytes that cross each socket.

#![allow(dead_code)]

pub mod client;
pub mod upstream;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a test waits for the gateway to start before failing.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running gateway process, killed on drop.
pub struct Gateway {
    child: Child,
    /// The last webhook listener in the config, the only one unless a test configures more.
    pub addr: SocketAddr,
    /// Every webhook listener, in config order.
    pub listeners: Vec<SocketAddr>,
    pub admin: SocketAddr,
    logs: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl Gateway {
    /// Starts the gateway with `routes` (YAML list items, indented by two spaces) on
    /// 127.0.0.1 port 0, with an admin listener.
    pub fn start(routes: &str) -> Gateway {
        Gateway::start_with(routes, &[])
    }

    /// Like [`Gateway::start`], with extra command-line arguments.
    pub fn start_with(routes: &str, args: &[&str]) -> Gateway {
        Gateway::start_configured(routes, args, &[])
    }

    /// Like [`Gateway::start`], with extra environment variables for the gateway process
    /// only, such as the secrets that `env:` entries name.
    pub fn start_env(routes: &str, env: &[(&str, &str)]) -> Gateway {
        Gateway::start_configured(routes, &[], env)
    }

    /// Starts the gateway with a complete config text and extra environment variables.
    pub fn start_config_env(config: &str, env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().expect("create temp dir");
        let config_path = dir.path().join("gateway.yaml");
        std::fs::write(&config_path, config).expect("write config");
        Gateway::spawn(dir, config_path, &[], env)
    }

    /// Like [`Gateway::start_env`], with a `server:` block (its keys indented by two spaces).
    pub fn start_server_env(server: &str, routes: &str, env: &[(&str, &str)]) -> Gateway {
        Gateway::start_configured(&format!("{routes}server:\n{server}"), &[], env)
    }

    /// Starts the gateway with a webhook listener on each of `listeners` (such as
    /// `"[::1]:0"`), an admin listener on 127.0.0.1 port 0, and `rest`: the `routes:` block
    /// and any other top-level blocks (`server:`, `store:`, `defaults:`) as YAML.
    pub fn start_listening(listeners: &[&str], rest: &str, env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().expect("create temp dir");
        let config_path = dir.path().join("gateway.yaml");
        let mut config = String::from("listeners:\n");
        for address in listeners {
            config.push_str(&format!("  - address: \"{address}\"\n"));
        }
        config.push_str("admin:\n  address: \"127.0.0.1:0\"\n");
        config.push_str(rest);
        std::fs::write(&config_path, config).expect("write config");
        Gateway::spawn(dir, config_path, &[], env)
    }

    fn start_configured(routes: &str, args: &[&str], env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().expect("create temp dir");
        let config_path = dir.path().join("gateway.yaml");
        let config = format!(
            "listeners:\n  - address: \"127.0.0.1:0\"\nadmin:\n  address: \"127.0.0.1:0\"\nroutes:\n{routes}"
        );
        std::fs::write(&config_path, config).expect("write config");
        Gateway::spawn(dir, config_path, args, env)
    }

    /// Writes a secret file into the gateway's config directory; returns its path.
    pub fn secret_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).expect("write secret file");
        path
    }

    fn spawn(
        dir: tempfile::TempDir,
        config_path: PathBuf,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .arg("run")
            .arg("-c")
            .arg(&config_path)
            .args(["--log-format", "json", "--log-level", "debug"])
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hookgate");
        let stderr = child.stderr.take().expect("stderr piped");
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("log lock").push_str(&line);
                sink.lock().expect("log lock").push('\n');
                let _ = tx.send(line);
            }
        });

        let deadline = Instant::now() + START_TIMEOUT;
        let (mut addr, mut admin, mut started) = (None, None, false);
        let mut listeners = Vec::new();
        while !(started && addr.is_some() && admin.is_some()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                panic!(
                    "gateway did not start; logs:\n{}",
                    logs.lock().expect("log lock")
                );
            };
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let address = event["address"].as_str().and_then(|a| a.parse().ok());
            match event["message"].as_str() {
                Some("listening for webhooks") => {
                    listeners.extend(address);
                    addr = address;
                }
                Some(m) if m.starts_with("admin listener") => admin = address,
                Some("Starting service: hookgate") => started = true,
                _ => {}
            }
        }
        let gateway = Gateway {
            child,
            addr: addr.expect("webhook address"),
            listeners,
            admin: admin.expect("admin address"),
            logs,
            _dir: dir,
            config_path,
        };
        gateway.wait_until_accepting();
        gateway
    }

    fn wait_until_accepting(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        // Listeners beside `addr` exist only for gateways started by `start_listening`.
        let others_refused = || {
            self.listeners
                .iter()
                .filter(|addr| **addr != self.addr)
                .any(|addr| TcpStream::connect(addr).is_err())
        };
        while TcpStream::connect(self.admin).is_err()
            || TcpStream::connect(self.addr).is_err()
            || others_refused()
        {
            assert!(
                Instant::now() < deadline,
                "gateway never accepted connections"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().expect("log lock").clone()
    }

    /// Waits up to `timeout` for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Process id of the gateway, for reading its `/proc/<pid>` entries.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fetches `/metrics` from the admin listener.
    pub fn metrics(&self) -> String {
        let mut stream = TcpStream::connect(self.admin).expect("connect admin");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
            .expect("write metrics request");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read metrics");
        text
    }

    /// Value of one series, such as `hookgate_requests_total{outcome="forwarded",route="github"}`;
    /// 0 when absent. Labels must be written in alphabetical order, as Prometheus prints them.
    pub fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Counter of rejections of `route` for `reason`.
    pub fn rejections(&self, route: &str, reason: &str) -> f64 {
        self.metric(&format!(
            "hookgate_rejections_total{{reason=\"{reason}\",route=\"{route}\"}}"
        ))
    }

    /// Polls `series` until it reaches `value` or `timeout` passes, and returns the last value
    /// read. It serves events that the gateway counts after the client has its response.
    pub fn wait_for_metric(&self, series: &str, value: f64, timeout: Duration) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            let current = self.metric(series);
            if current >= value || Instant::now() >= deadline {
                return current;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Returns the log lines at WARN or ERROR level once the log has stopped growing for
    /// `quiet`, waiting at most 5 s. The gateway can still log about a request after the
    /// client has read the response, so a check made at once could miss a line.
    pub fn warnings(&self, quiet: Duration) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = self.logs().len();
        loop {
            std::thread::sleep(quiet);
            let now = self.logs().len();
            if now == seen || Instant::now() >= deadline {
                break;
            }
            seen = now;
        }
        self.logs()
            .lines()
            .filter(|line| {
                line.contains("\"level\":\"WARN\"") || line.contains("\"level\":\"ERROR\"")
            })
            .map(str::to_string)
            .collect()
    }

    /// Sends `GET path` to the admin listener, such as `/readyz`.
    pub fn admin_get(&self, path: &str) -> client::Response {
        let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        client::send(self.admin, request.as_bytes())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GitHub's `X-Hub-Signature-256` value for `body`.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &[body]))
    )
}

/// Stripe's `Stripe-Signature` value for `body` signed at `timestamp`.
pub fn stripe_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", body]);
    format!("t={t},v1={}", hex::encode(mac))
}

/// Computes Slack's `X-Slack-Signature` value for `body` sent with `X-Slack-Request-Timestamp: timestamp`.
pub fn slack_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[b"v0:", t.as_bytes(), b":", body]);
    format!("v0={}", hex::encode(mac))
}

pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length works");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Formats one route as a YAML list item for [`Gateway::start`]. Each entry of `lines` is one
/// line of the route's mapping, such as `"path: /hooks/github"`, and nested keys start with
/// two more spaces.
pub fn route(lines: &[&str]) -> String {
    let mut yaml = String::new();
    for (i, line) in lines.iter().enumerate() {
        yaml.push_str(if i == 0 { "  - " } else { "    " });
        yaml.push_str(line);
        yaml.push('\n');
    }
    yaml
}

/// Returns a port on 127.0.0.1 with nothing listening. The port is bound once to pick it and
/// then released, so another process could take it in between, which is unlikely.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    listener.local_addr().expect("probe address").port()
}

/// Returns `len` deterministic pseudo-random bytes (xorshift), a body that is not text.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Asserts that `actual` equals `expected` and, when not, names the first differing offset
/// instead of printing both bodies.
pub fn assert_same_bytes(actual: &[u8], expected: &[u8]) {
    let first_difference = actual.iter().zip(expected).position(|(a, b)| a != b);
    assert!(
        first_difference.is_none(),
        "bodies differ first at byte {first_difference:?} (lengths {} and {})",
        actual.len(),
        expected.len()
    );
    assert_eq!(actual.len(), expected.len(), "body lengths differ");
}

/// Runs `send` and checks the rejection it provokes: `status`, the JSON `error` field, the
/// JSON content type and `hookgate_rejections_total` for `route` and `reason` moving by
/// exactly one. Returns the response for further checks.
pub fn assert_rejects(
    gateway: &Gateway,
    route: &str,
    status: u16,
    reason: &str,
    send: impl FnOnce() -> client::Response,
) -> client::Response {
    let before = gateway.rejections(route, reason);

    let response = send();

    assert_eq!(
        response.status,
        status,
        "status for {reason}; body: {}",
        response.body_text()
    );
    assert_eq!(response.reason(), reason, "JSON error field");
    assert_eq!(
        response.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        gateway.rejections(route, reason) - before,
        1.0,
        "hookgate_rejections_total{{reason=\"{reason}\",route=\"{route}\"}} did not move by 1"
    );
    response
}

/// Returns the request up to and including the blank line after the headers.
pub fn head_of(request: &[u8]) -> &[u8] {
    let end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("request has a header block");
    &request[..end + 4]
}

/// Sends only the header block of `request`, whose `Content-Length` promises a body, and
/// reads the response. Fails when none arrives within 5 s, which means the gateway waited
/// for the body instead of responding to the headers alone.
pub fn send_head_only(addr: SocketAddr, request: &[u8]) -> client::Response {
    let mut connection = client::Connection::open(addr);
    connection.set_read_timeout(Duration::from_secs(5));
    connection.write(head_of(request));
    connection
        .read_response("POST")
        .expect("no response within 5 s while the body was still unsent")
}

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
    pub addr: SocketAddr,
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
        let dir = tempfile::tempdir().expect("create temp dir");
        let config_path = dir.path().join("gateway.yaml");
        let config = format!(
            "listeners:\n  - address: \"127.0.0.1:0\"\nadmin:\n  address: \"127.0.0.1:0\"\nroutes:\n{routes}"
        );
        std::fs::write(&config_path, config).expect("write config");
        Gateway::spawn(dir, config_path, args)
    }

    /// Writes a secret file into the gateway's config directory; returns its path.
    pub fn secret_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).expect("write secret file");
        path
    }

    fn spawn(dir: tempfile::TempDir, config_path: PathBuf, args: &[&str]) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .arg("run")
            .arg("-c")
            .arg(&config_path)
            .args(["--log-format", "json", "--log-level", "debug"])
            .args(args)
            .env_remove("RUST_LOG")
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
        while !(started && addr.is_some() && admin.is_some()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                panic!("gateway did not start; logs:\n{}", logs.lock().expect("log lock"));
            };
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let address = event["address"].as_str().and_then(|a| a.parse().ok());
            match event["message"].as_str() {
                Some("listening for webhooks") => addr = address,
                Some(m) if m.starts_with("admin listener") => admin = address,
                Some("Starting service: hookgate") => started = true,
                _ => {}
            }
        }
        let gateway = Gateway {
            child,
            addr: addr.expect("webhook address"),
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
        while TcpStream::connect(self.admin).is_err() || TcpStream::connect(self.addr).is_err() {
            assert!(Instant::now() < deadline, "gateway never accepted connections");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().expect("log lock").clone()
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
    format!("sha256={}", hex::encode(hmac_sha256(secret.as_bytes(), &[body])))
}

/// Stripe's `Stripe-Signature` value for `body` signed at `timestamp`.
pub fn stripe_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", body]);
    format!("t={t},v1={}", hex::encode(mac))
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

//! HTTPS listeners with certificates generated in the test: forwarding to a plain upstream
//! over HTTP/1.1 and HTTP/2, SNI selection, TLS upstreams with a test CA, and certificate
//! reload while an existing connection keeps working.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use common::upstream::Upstream;
use common::{github_signature, Gateway};

const SECRET: &str = "tls-test-secret";

/// A test CA that signs leaf certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca { cert, key }
    }

    /// Writes the CA certificate and a leaf for `names` (cert and key PEM) into `dir`.
    fn issue(&self, dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
        self.issue_with(dir, stem, names, |_| {})
    }

    /// Writes the same files as [`Ca::issue`], applying `adjust` to the leaf's parameters first.
    fn issue_with(
        &self,
        dir: &Path,
        stem: &str,
        names: &[&str],
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> (PathBuf, PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        adjust(&mut params);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf certificate");
        let ca_path = dir.join(format!("{stem}-ca.pem"));
        let cert_path = dir.join(format!("{stem}-cert.pem"));
        let key_path = dir.join(format!("{stem}-key.pem"));
        std::fs::write(&ca_path, self.cert.pem()).expect("write CA");
        std::fs::write(&cert_path, cert.pem()).expect("write certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (ca_path, cert_path, key_path)
    }
}

fn route(upstream: &str, extra: &str) -> String {
    format!(
        "  - name: github\n    path: /hooks/github\n    provider: github\n    secrets: [ {{ env: HG_TLS_SECRET }} ]\n    upstream: \"{upstream}\"\n{extra}"
    )
}

/// Starts a gateway whose only webhook listener serves TLS with `tls` (a YAML flow mapping).
fn start_tls(tls: &str, routes: &str) -> Gateway {
    let config = format!(
        "listeners:\n  - address: \"127.0.0.1:0\"\n    tls: {tls}\nadmin:\n  address: \"127.0.0.1:0\"\nroutes:\n{routes}"
    );
    Gateway::start_config_env(&config, &[("HG_TLS_SECRET", SECRET)])
}

/// Sends a signed request with curl, a fresh delivery each time. Returns the exit code,
/// `"<HTTP version> <status>"` and curl's whole output.
fn curl(gateway: &Gateway, host: &str, ca: &Path, extra: &[&str]) -> (i32, String, String) {
    static SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let body = format!("{{\"host\":\"{host}\",\"n\":{n}}}");
    let signature = github_signature(SECRET, body.as_bytes());
    let port = gateway.addr.port();
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        .args(["-w", "\n%{http_version} %{http_code}", "-X", "POST"])
        .args(["-H", &format!("X-Hub-Signature-256: {signature}")])
        .args(["-H", &format!("X-GitHub-Delivery: {host}-{n}")])
        .args(["--data-binary", &body])
        .args(extra)
        .arg(format!("https://{host}:{port}/hooks/github"))
        .output()
        .expect("run curl; install it, or run .ci/run");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or_default().to_string();
    (output.status.code().unwrap_or(-1), last, stdout)
}

#[test]
fn https_request_forwarded_over_http1_and_http2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::new("hookgate test CA");
    let (ca_path, cert, key) = ca.issue(dir.path(), "a", &["a.test"]);
    let upstream = Upstream::ok();
    let tls = format!(
        "{{ cert: \"{}\", key: \"{}\" }}",
        cert.display(),
        key.display()
    );
    let gateway = start_tls(&tls, &route(&upstream.url(), ""));

    let (code, status, output) = curl(&gateway, "a.test", &ca_path, &["--http1.1"]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(status, "1.1 200", "{output}");
    let (code, status, output) = curl(&gateway, "a.test", &ca_path, &["--http2"]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(status, "2 200", "{output}");

    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].body.starts_with(b"{\"host\":\"a.test\""));
    assert_eq!(
        requests[1].header("content-length").len(),
        1,
        "HTTP/2 body sent with a length"
    );
}

#[test]
fn sni_selects_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca_a, ca_b) = (Ca::new("CA for a"), Ca::new("CA for b"));
    let (a_ca, a_cert, a_key) = ca_a.issue(dir.path(), "a", &["a.test"]);
    let (b_ca, b_cert, b_key) = ca_b.issue(dir.path(), "b", &["b.test"]);
    let upstream = Upstream::ok();
    let tls = format!(
        "{{ certs: [ {{ cert: \"{}\", key: \"{}\" }}, {{ cert: \"{}\", key: \"{}\", default: true }} ] }}",
        a_cert.display(),
        a_key.display(),
        b_cert.display(),
        b_key.display()
    );
    let gateway = start_tls(&tls, &route(&upstream.url(), ""));

    assert_eq!(curl(&gateway, "a.test", &a_ca, &[]).1, "2 200");
    assert_eq!(curl(&gateway, "b.test", &b_ca, &[]).1, "2 200");
    // a.test is served a's certificate, which b's CA did not sign.
    assert_eq!(
        curl(&gateway, "a.test", &b_ca, &[]).0,
        60,
        "curl error 60: certificate not trusted"
    );
    // An unknown name gets the default certificate, b's.
    let (code, _, output) = curl(&gateway, "c.test", &b_ca, &["-k"]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(upstream.requests().len(), 3);
}

/// An HTTPS upstream in Python with the given certificate, responding 200 to every request.
struct TlsUpstream {
    child: Child,
    port: u16,
}

impl TlsUpstream {
    fn start(cert: &Path, key: &Path) -> TlsUpstream {
        let port = common::closed_port();
        let script = r#"
import http.server, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"tls upstream\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;
        let child = Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .arg(cert)
            .arg(key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 TLS upstream");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "TLS upstream did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsUpstream { child, port }
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signed_plain_request(gateway: &Gateway, delivery: &str) -> common::client::Response {
    let body = format!("{{\"delivery\":\"{delivery}\"}}");
    let signature = github_signature(SECRET, body.as_bytes());
    let request = common::client::request(
        "POST",
        "/hooks/github",
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", delivery),
        ],
        body.as_bytes(),
    );
    common::client::send(gateway.addr, &request)
}

#[test]
fn tls_upstream_verified_with_configured_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (good, other) = (Ca::new("upstream CA"), Ca::new("unrelated CA"));
    let (good_ca, cert, key) = good.issue(dir.path(), "upstream", &["localhost"]);
    let (other_ca, _, _) = other.issue(dir.path(), "other", &["localhost"]);
    let upstream = TlsUpstream::start(&cert, &key);
    let url = format!("https://localhost:{}", upstream.port);

    let trusted = route(
        &url,
        &format!(
            "    upstream_tls: {{ ca_file: \"{}\" }}\n",
            good_ca.display()
        ),
    );
    let gateway = Gateway::start_env(&trusted, &[("HG_TLS_SECRET", SECRET)]);
    let response = signed_plain_request(&gateway, "tls-upstream-ok");
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.body_text(), "tls upstream\n");
    drop(gateway);

    let untrusted = route(
        &url,
        &format!(
            "    upstream_tls: {{ ca_file: \"{}\" }}\n",
            other_ca.display()
        ),
    );
    let gateway = Gateway::start_env(&untrusted, &[("HG_TLS_SECRET", SECRET)]);
    let response = signed_plain_request(&gateway, "tls-upstream-wrong-ca");
    assert_eq!(response.status, 502, "{}", response.body_text());
    assert_eq!(response.reason(), "upstream_unreachable");
}

/// Opens a rustls client connection that stays open across requests.
fn open_tls(
    gateway: &Gateway,
    host: &str,
    ca: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).expect("read CA");
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).expect("server name");
    let connection = rustls::ClientConnection::new(Arc::new(config), name).expect("TLS client");
    let socket = TcpStream::connect(gateway.addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    rustls::StreamOwned::new(connection, socket)
}

/// Sends one signed keep-alive request on `stream` and returns the status code.
fn exchange(
    stream: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    delivery: &str,
) -> u16 {
    let body = format!("{{\"delivery\":\"{delivery}\"}}");
    let signature = github_signature(SECRET, body.as_bytes());
    let request = common::client::request(
        "POST",
        "/hooks/github",
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", delivery),
        ],
        body.as_bytes(),
    );
    stream.write_all(&request).expect("write request");
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buffer).expect("read response");
        assert!(n > 0, "connection closed");
        response.extend_from_slice(&buffer[..n]);
    }
    let text = String::from_utf8_lossy(&response).to_string();
    let length: usize = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(0)
        + 4;
    while response.len() < head_end + length {
        let n = stream.read(&mut buffer).expect("read body");
        assert!(n > 0, "connection closed mid-body");
        response.extend_from_slice(&buffer[..n]);
    }
    text[9..12].parse().expect("status code")
}

#[test]
fn reload_serves_new_certificate_and_keeps_old_connection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (old, new) = (Ca::new("old CA"), Ca::new("new CA"));
    let (old_ca, cert, key) = old.issue(dir.path(), "old", &["a.test"]);
    let live_cert = dir.path().join("live-cert.pem");
    let live_key = dir.path().join("live-key.pem");
    std::fs::copy(&cert, &live_cert).expect("copy certificate");
    std::fs::copy(&key, &live_key).expect("copy key");
    let upstream = Upstream::ok();
    let tls = format!(
        "{{ cert: \"{}\", key: \"{}\" }}",
        live_cert.display(),
        live_key.display()
    );
    let gateway = start_tls(&tls, &route(&upstream.url(), ""));

    let mut old_connection = open_tls(&gateway, "a.test", &old_ca);
    assert_eq!(exchange(&mut old_connection, "before-reload"), 200);

    // A broken key keeps the old certificate serving.
    std::fs::write(&live_key, "not a key").expect("break key");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(curl(&gateway, "a.test", &old_ca, &[]).1, "2 200");

    let (new_ca, new_cert, new_key) = new.issue(dir.path(), "new", &["a.test"]);
    std::fs::copy(&new_cert, &live_cert).expect("replace certificate");
    std::fs::copy(&new_key, &live_key).expect("replace key");
    let deadline = Instant::now() + Duration::from_secs(15);
    while curl(&gateway, "a.test", &new_ca, &[]).1 != "2 200" {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(exchange(&mut old_connection, "after-reload"), 200);
    assert_eq!(
        curl(&gateway, "a.test", &old_ca, &[]).0,
        60,
        "old certificate still served"
    );

    let metrics = gateway.metrics();
    assert!(
        metrics.contains("hookgate_tls_reloads_total{result=\"failure\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hookgate_tls_certificate_expiry_timestamp_seconds"),
        "{metrics}"
    );
}

#[test]
fn check_reports_certificate_problems() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::new("check CA");
    let (_, a_cert, _) = ca.issue(dir.path(), "a", &["a.test"]);
    let (_, _, b_key) = ca.issue(dir.path(), "b", &["b.test"]);
    let config = dir.path().join("gateway.yaml");
    let yaml = format!(
        "listeners:\n  - address: \"127.0.0.1:0\"\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n  - address: \"127.0.0.1:0\"\n    tls: {{ cert: missing.pem, key: missing-key.pem }}\nroutes:\n{}",
        a_cert.display(),
        b_key.display(),
        route("http://127.0.0.1:1", "")
    );
    std::fs::write(&config, yaml).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["check", "-c"])
        .arg(&config)
        .env("HG_TLS_SECRET", SECRET)
        .output()
        .expect("run hookgate check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(":3:12: listeners[0].tls.cert: the private key in"),
        "{stderr}"
    );
    assert!(
        stderr.contains("does not match the certificate in"),
        "{stderr}"
    );
    assert!(
        stderr.contains(":5:12: listeners[1].tls.cert: cannot read certificate file"),
        "{stderr}"
    );
}

#[test]
fn check_warns_on_expired_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::new("expiry CA");
    let (_, old_cert, old_key) = ca.issue_with(dir.path(), "old", &["old.test"], |params| {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let (_, new_cert, new_key) = ca.issue(dir.path(), "new", &["new.test"]);
    let config = dir.path().join("gateway.yaml");
    let yaml = format!(
        "listeners:\n  - address: \"127.0.0.1:0\"\n    tls: {{ cert: \"{}\", key: \"{}\" }}\n  - address: \"127.0.0.1:0\"\n    tls: {{ cert: \"{}\", key: \"{}\" }}\nroutes:\n{}",
        old_cert.display(),
        old_key.display(),
        new_cert.display(),
        new_key.display(),
        route("http://127.0.0.1:1", "")
    );
    std::fs::write(&config, yaml).expect("write config");

    let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["check", "-c"])
        .arg(&config)
        .env("HG_TLS_SECRET", SECRET)
        .output()
        .expect("run hookgate check");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "an expired certificate is a warning: {stderr}"
    );
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("old-cert.pem expired at 2021-01-01"),
        "{stderr}"
    );
    assert!(!stderr.contains("new-cert.pem"), "{stderr}");
}

#[test]
fn host_routes_select_by_sni_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::new("host CA");
    let (ca_path, cert, key) = ca.issue(dir.path(), "multi", &["a.test", "b.test"]);
    let (upstream_a, upstream_b) = (Upstream::ok(), Upstream::ok());
    let routes = format!(
        "{}    host: a.test\n  - name: github-b\n    host: B.TEST\n    path: /hooks/github\n    provider: github\n    secrets: [ {{ env: HG_TLS_SECRET }} ]\n    upstream: \"{}\"\n",
        route(&upstream_a.url(), ""),
        upstream_b.url()
    );
    let tls = format!(
        "{{ cert: \"{}\", key: \"{}\" }}",
        cert.display(),
        key.display()
    );
    let gateway = start_tls(&tls, &routes);

    assert_eq!(curl(&gateway, "a.test", &ca_path, &[]).1, "2 200");
    assert_eq!(
        curl(&gateway, "b.test", &ca_path, &["--http1.1"]).1,
        "1.1 200"
    );
    assert_eq!(
        upstream_a.requests().len(),
        1,
        "a.test reached its own route"
    );
    assert_eq!(
        upstream_b.requests().len(),
        1,
        "b.test reached its own route"
    );
}

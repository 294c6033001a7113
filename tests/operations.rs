//! Running hookgate in production: config reload under load, a rejected reload, report
//! mode, the verified header, and graceful shutdown with requests in flight.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::client::{request, Connection};
use common::upstream::{Behavior, Gate, Upstream};
use common::{github_signature, Gateway};

const OLD: &str = "operations-old-secret";
const NEW: &str = "operations-new-secret";

fn signed(path: &str, secret: &str, delivery: &str) -> Vec<u8> {
    let body = format!("{{\"delivery\":\"{delivery}\"}}");
    let signature = github_signature(secret, body.as_bytes());
    request(
        "POST",
        path,
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", delivery),
        ],
        body.as_bytes(),
    )
}

/// Builds a config with the github route accepting `secrets` (file paths), plus a route `extra` on
/// `/hooks/extra` when `with_extra` is set.
fn config(upstream: &str, secrets: &[&std::path::Path], with_extra: bool, report: bool) -> String {
    let secrets: Vec<String> = secrets
        .iter()
        .map(|p| format!("{{ file: \"{}\" }}", p.display()))
        .collect();
    let mode = if report { "    mode: report\n" } else { "" };
    let mut yaml = format!(
        "listeners:\n  - address: \"127.0.0.1:0\"\nadmin:\n  address: \"127.0.0.1:0\"\nserver:\n  verified_header: X-Hookgate-Verified\nroutes:\n  - name: github\n    path: /hooks/github\n    provider: github\n    secrets: [ {} ]\n    upstream: \"{upstream}\"\n{mode}",
        secrets.join(", ")
    );
    if with_extra {
        yaml.push_str(&format!(
            "  - name: extra\n    path: /hooks/extra\n    provider: github\n    secrets: [ {} ]\n    upstream: \"{upstream}\"\n",
            secrets.join(", ")
        ));
    }
    yaml
}

fn hangup(gateway: &Gateway) {
    let status = Command::new("kill")
        .args(["-HUP", &gateway.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Sends SIGHUP and waits until `hookgate_config_reloads_total{result}` reaches `count`.
fn reload(gateway: &Gateway, result: &str, count: f64) {
    hangup(gateway);
    let series = format!("hookgate_config_reloads_total{{result=\"{result}\"}}");
    let seen = gateway.wait_for_metric(&series, count, Duration::from_secs(10));
    assert_eq!(seen, count, "{series}");
}

fn secret_files(dir: &tempfile::TempDir) -> (std::path::PathBuf, std::path::PathBuf) {
    let old = dir.path().join("old");
    let new = dir.path().join("new");
    std::fs::write(&old, OLD).expect("write secret");
    std::fs::write(&new, NEW).expect("write secret");
    (old, new)
}

#[test]
fn reload_under_load_fails_no_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (old, new) = secret_files(&dir);
    let upstream = Upstream::ok();
    let gateway = Gateway::start_config_env(&config(&upstream.url(), &[&old], false, false), &[]);
    let config_path = gateway.config_path.clone();

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let secret_in_use = Arc::new(std::sync::Mutex::new(OLD));
    let load = {
        let (stop, failures, sent, secret) = (
            stop.clone(),
            failures.clone(),
            sent.clone(),
            secret_in_use.clone(),
        );
        let addr = gateway.addr;
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut connection = Connection::open(addr);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let n = sent.fetch_add(1, Ordering::SeqCst);
                let key = *secret.lock().expect("secret lock");
                connection.write(&signed("/hooks/github", key, &format!("load-{n}")));
                match connection.read_response("POST") {
                    Some(response) if response.status == 200 => {}
                    Some(response) => failures.lock().expect("lock").push(format!(
                        "{n}: {} {}",
                        response.status,
                        response.body_text()
                    )),
                    None => {
                        connection = Connection::open(addr);
                        failures
                            .lock()
                            .expect("lock")
                            .push(format!("{n}: connection closed"));
                    }
                }
            }
        })
    };

    // Rotate: add the new secret, switch the sender to it, drop the old one; and add and
    // remove a route each round.
    let mut successes = 0.0;
    for round in 0..5 {
        std::fs::write(
            &config_path,
            config(&upstream.url(), &[&old, &new], true, false),
        )
        .expect("write config");
        successes += 1.0;
        reload(&gateway, "success", successes);
        *secret_in_use.lock().expect("lock") = if round % 2 == 0 { NEW } else { OLD };
        let extra = Connection::open(gateway.addr).send(&signed(
            "/hooks/extra",
            NEW,
            &format!("extra-{round}"),
        ));
        assert_eq!(
            extra.status,
            200,
            "added route answers: {}",
            extra.body_text()
        );

        std::thread::sleep(Duration::from_millis(200));
        std::fs::write(
            &config_path,
            config(&upstream.url(), &[&old, &new], false, false),
        )
        .expect("write config");
        successes += 1.0;
        reload(&gateway, "success", successes);
        let removed = Connection::open(gateway.addr).send(&signed(
            "/hooks/extra",
            NEW,
            &format!("gone-{round}"),
        ));
        assert_eq!(removed.status, 404, "removed route is gone");
    }
    stop.store(true, Ordering::SeqCst);
    load.join().expect("load thread");

    let failures = failures.lock().expect("lock");
    assert!(
        sent.load(Ordering::SeqCst) > 20,
        "the load sent too few requests"
    );
    assert!(
        failures.is_empty(),
        "requests failed during reloads: {failures:?}"
    );
}

#[test]
fn invalid_reload_keeps_old_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (old, _) = secret_files(&dir);
    let upstream = Upstream::ok();
    let gateway = Gateway::start_config_env(&config(&upstream.url(), &[&old], false, false), &[]);

    std::fs::write(&gateway.config_path, "listeners: [\nroutes: oops\n")
        .expect("write broken config");
    reload(&gateway, "failure", 1.0);
    let response =
        Connection::open(gateway.addr).send(&signed("/hooks/github", OLD, "after-bad-reload"));
    assert_eq!(response.status, 200, "{}", response.body_text());
    let logs = gateway.logs();
    assert!(
        logs.contains("config reload failed; the previous config stays in use"),
        "{logs}"
    );
    assert!(
        logs.contains("invalid YAML"),
        "the error names the problem: {logs}"
    );
}

#[test]
fn report_mode_forwards_tampered_request_marked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (old, _) = secret_files(&dir);
    let upstream = Upstream::ok();
    let gateway = Gateway::start_config_env(&config(&upstream.url(), &[&old], false, true), &[]);

    let good = Connection::open(gateway.addr).send(&signed("/hooks/github", OLD, "report-good"));
    assert_eq!(good.status, 200);
    let tampered = signed("/hooks/github", "wrong-secret", "report-bad");
    let bad = Connection::open(gateway.addr).send(&tampered);
    assert_eq!(bad.status, 200, "report mode forwards: {}", bad.body_text());

    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("x-hookgate-report"), ["pass"]);
    assert_eq!(
        requests[1].header("x-hookgate-report"),
        ["fail; reason=signature_invalid"]
    );
    assert!(
        requests[1].header("x-hookgate-verified").is_empty(),
        "an unverified request is not marked verified"
    );
    assert_eq!(gateway.rejections("github", "signature_invalid"), 1.0);
    // The counter moves once the response has been relayed, so a scrape can run just ahead.
    let reported = gateway.wait_for_metric(
        r#"hookgate_requests_total{outcome="report_only",route="github"}"#,
        1.0,
        Duration::from_secs(5),
    );
    assert_eq!(reported, 1.0);
}

#[test]
fn verified_header_set_and_client_copy_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (old, _) = secret_files(&dir);
    let upstream = Upstream::ok();
    let gateway = Gateway::start_config_env(&config(&upstream.url(), &[&old], false, false), &[]);

    let body = br#"{"forged":true}"#;
    let signature = github_signature(OLD, body);
    let forged = request(
        "POST",
        "/hooks/github",
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", "forged-header"),
            (
                "X-Hookgate-Verified",
                "route=admin; provider=none; secret=0",
            ),
        ],
        body,
    );
    assert_eq!(Connection::open(gateway.addr).send(&forged).status, 200);
    let requests = upstream.requests();
    assert_eq!(
        requests[0].header("x-hookgate-verified"),
        ["route=github; provider=github; secret=0"]
    );
}

#[test]
fn sigterm_finishes_requests_in_flight() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (old, _) = secret_files(&dir);
    let gate = Gate::new();
    let upstream = Upstream::start(Behavior::Hold {
        gate: gate.clone(),
        status: 200,
    });
    let yaml = config(&upstream.url(), &[&old], false, false)
        .replace("server:\n", "server:\n  grace_period: 3s\n");
    let gateway = Gateway::start_config_env(&yaml, &[]);

    let addr = gateway.addr;
    let in_flight = std::thread::spawn(move || {
        Connection::open(addr).send(&signed("/hooks/github", OLD, "in-flight"))
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while upstream.requests().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the request never reached the upstream"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &gateway.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        std::net::TcpStream::connect(gateway.addr).is_err(),
        "new connections are refused"
    );
    gate.open();
    let response = in_flight.join().expect("client thread");
    assert_eq!(response.status, 200, "the request in flight completed");

    let mut gateway = gateway;
    let exit = gateway.wait_exit(Duration::from_secs(10));
    assert_eq!(exit, Some(0), "exit status");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "exited within the grace period: {:?}",
        started.elapsed()
    );
}

#[test]
fn busy_listener_port_fails_start_with_fix() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port to occupy");
    let address = taken.local_addr().expect("occupied address");
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("gateway.yaml");
    let config = format!(
        "listeners: [ {{ address: \"{address}\" }} ]
routes:
  - name: open
    path: /hooks/open
    provider: none
    upstream: \"http://127.0.0.1:9\"
"
    );
    std::fs::write(&config_path, config).expect("write config");

    let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .arg("run")
        .arg("-c")
        .arg(&config_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start hookgate");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll hookgate") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("collect hookgate output");
    let stderr = String::from_utf8_lossy(&output.stderr);

    let status = status.unwrap_or_else(|| panic!("hookgate kept running: {stderr}"));
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert!(stderr.contains("another process listens there"), "{stderr}");
    drop(taken);
}

//! `delivery: async` with the local queue: the gateway stores each verified webhook in its
//! redb file, responds 202, and delivers it to the upstream with retries. Each test runs the
//! real gateway, a scripted upstream on 127.0.0.1 and a raw HTTP client, with backoff
//! settings in milliseconds so that retries finish quickly.

mod common;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::client::{self, read_body, read_head, Response};
use common::{closed_port, github_signature, pattern, Gateway};

const SECRET: &str = "async-delivery-secret";
const ENV: &[(&str, &str)] = &[("HG_TEST_GITHUB", SECRET)];
const QUEUED: &str = "hookgate_requests_total{outcome=\"queued\",route=\"github\"}";
const DELIVERED: &str = "hookgate_delivery_outcomes_total{outcome=\"delivered\",route=\"github\"}";
const DEAD: &str = "hookgate_delivery_outcomes_total{outcome=\"dead_letter\",route=\"github\"}";
const DEPTH: &str = "hookgate_queue_depth{route=\"github\"}";
/// Maximum time a test waits for deliveries to arrive.
const DELIVERY_WAIT: Duration = Duration::from_secs(20);

/// One scripted response: status and extra headers.
type Reply = (u16, Vec<(String, String)>);

/// A request as the scripted upstream read it, with when it arrived.
#[derive(Clone)]
struct Arrival {
    at: Instant,
    head: String,
    body: Vec<u8>,
}

impl Arrival {
    fn header(&self, name: &str) -> Option<String> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    }
}

/// An upstream that sends the replies of its script in order, then 200 to every request.
struct Scripted {
    addr: SocketAddr,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
}

impl Scripted {
    fn start(port: u16, script: Vec<Reply>) -> Scripted {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind scripted upstream");
        let addr = listener.local_addr().expect("upstream address");
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let log = Arc::clone(&arrivals);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (log, script) = (Arc::clone(&log), Arc::clone(&script));
                std::thread::spawn(move || serve(stream, &log, &script));
            }
        });
        Scripted { addr, arrivals }
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().expect("arrivals lock").clone()
    }

    /// Polls until `count` requests arrived or [`DELIVERY_WAIT`] passes; returns the count.
    fn wait_for(&self, count: usize) -> usize {
        let deadline = Instant::now() + DELIVERY_WAIT;
        loop {
            let arrived = self.arrivals().len();
            if arrived >= count || Instant::now() >= deadline {
                return arrived;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve(mut stream: TcpStream, log: &Mutex<Vec<Arrival>>, script: &Mutex<VecDeque<Reply>>) {
    let mut pending = Vec::new();
    loop {
        let Some((head, framing)) = read_head(&mut stream, &mut pending) else {
            return;
        };
        let Some(body) = read_body(&mut stream, &mut pending, framing) else {
            return;
        };
        let arrival = Arrival {
            at: Instant::now(),
            head: String::from_utf8_lossy(&head).into_owned(),
            body,
        };
        log.lock().expect("arrivals lock").push(arrival);
        let (status, headers) = script
            .lock()
            .expect("script lock")
            .pop_front()
            .unwrap_or((200, Vec::new()));
        let mut reply = format!("HTTP/1.1 {status} Scripted\r\nContent-Length: 3\r\n");
        for (name, value) in headers {
            reply.push_str(&format!("{name}: {value}\r\n"));
        }
        reply.push_str("\r\nok\n");
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// Returns a complete config with the local queue in `queue_dir` and one async GitHub route.
fn config(queue_dir: &Path, queue_extra: &str, upstream_port: u16, async_extra: &str) -> String {
    format!(
        "listeners:
  - address: \"127.0.0.1:0\"
admin:
  address: \"127.0.0.1:0\"
queue:
  dir: \"{}\"
{queue_extra}routes:
  - name: github
    path: /hooks/github
    provider: github
    secrets: [ {{ env: HG_TEST_GITHUB }} ]
    upstream: \"http://127.0.0.1:{upstream_port}\"
    connect_timeout: 200ms
    upstream_timeout: 2s
    max_body: 2MiB
    delivery: async
    async:
      backoff: 20ms
      max_backoff: 100ms
      max_attempts: 1000
{async_extra}",
        queue_dir.display()
    )
}

/// Builds a signed GitHub webhook with delivery id `id`, a query string and a custom header.
fn webhook(id: &str, body: &[u8]) -> Vec<u8> {
    let signature = github_signature(SECRET, body);
    client::request(
        "POST",
        "/hooks/github?source=test&n=1",
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", id),
            ("X-Custom-Header", "Kept As Sent"),
        ],
        body,
    )
}

fn body_for(index: usize) -> Vec<u8> {
    let mut body = format!("{{\"n\":{index},\"bytes\":\"").into_bytes();
    body.extend(pattern(64 + index));
    body.extend_from_slice(b"\"}");
    body
}

fn assert_queued(response: &Response) {
    assert_eq!(response.status, 202, "{}", response.body_text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON ack");
    assert_eq!(json["queued"], true);
    assert!(response.header("x-hookgate-queue-id").is_some());
}

/// Checks that each of `count` webhooks arrived exactly once, byte for byte.
fn assert_each_once(upstream: &Scripted, count: usize) {
    let arrivals = upstream.arrivals();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for arrival in &arrivals {
        let id = arrival
            .header("x-github-delivery")
            .expect("delivery id header");
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(arrivals.len(), count, "requests at the upstream");
    for index in 0..count {
        let id = format!("burst-{index}");
        assert_eq!(
            seen.get(&id),
            Some(&1),
            "{id} arrived {:?} times",
            seen.get(&id)
        );
        let arrival = arrivals
            .iter()
            .find(|a| a.header("x-github-delivery").as_deref() == Some(id.as_str()))
            .expect("arrival");
        common::assert_same_bytes(&arrival.body, &body_for(index));
        assert!(
            arrival
                .head
                .starts_with("POST /hooks/github?source=test&n=1 HTTP/1.1\r\n"),
            "{}",
            arrival.head
        );
        assert_eq!(
            arrival.header("x-custom-header").as_deref(),
            Some("Kept As Sent")
        );
        let signature = github_signature(SECRET, &body_for(index));
        assert_eq!(arrival.header("x-hub-signature-256"), Some(signature));
    }
}

fn send_burst(gateway: &Gateway, range: std::ops::Range<usize>) {
    for index in range {
        let response = client::send(
            gateway.addr,
            &webhook(&format!("burst-{index}"), &body_for(index)),
        );
        assert_queued(&response);
    }
}

#[test]
fn burst_while_upstream_down_arrives_once_each() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let port = closed_port();
    let gateway = Gateway::start_config_env(&config(queue_dir.path(), "", port, ""), ENV);

    send_burst(&gateway, 0..30);
    assert_eq!(gateway.metric(QUEUED), 30.0);
    assert_eq!(
        gateway.wait_for_metric(DEPTH, 30.0, Duration::from_secs(5)),
        30.0
    );

    let upstream = Scripted::start(port, Vec::new());
    assert_eq!(upstream.wait_for(30), 30);
    assert_eq!(
        gateway.wait_for_metric(DELIVERED, 30.0, DELIVERY_WAIT),
        30.0
    );
    assert_each_once(&upstream, 30);
    let drained = wait_for_zero(&gateway, DEPTH);
    assert_eq!(drained, 0.0, "queue depth after delivery");
}

#[test]
fn startup_log_names_route_delivery() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let gateway = Gateway::start_config_env(&config(queue_dir.path(), "", closed_port(), ""), ENV);

    let logs = gateway.logs();
    let line = logs
        .lines()
        .find(|line| line.contains("route loaded"))
        .unwrap_or_else(|| panic!("no route loaded line in:\n{logs}"));
    assert!(line.contains(r#""delivery":"async""#), "{line}");
}

#[test]
fn repeat_of_queued_webhook_is_stored_once() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let port = closed_port();
    let gateway = Gateway::start_config_env(&config(queue_dir.path(), "", port, ""), ENV);

    let first = client::send(gateway.addr, &webhook("burst-0", &body_for(0)));
    assert_queued(&first);
    let repeat = client::send(gateway.addr, &webhook("burst-0", &body_for(0)));
    assert_eq!(repeat.status, 200, "{}", repeat.body_text());
    assert_eq!(
        repeat.header("x-hookgate-duplicate").as_deref(),
        Some("true")
    );
    assert!(
        repeat.body_text().contains("already accepted"),
        "{}",
        repeat.body_text()
    );

    let upstream = Scripted::start(port, Vec::new());
    assert_eq!(gateway.wait_for_metric(DELIVERED, 1.0, DELIVERY_WAIT), 1.0);
    assert_each_once(&upstream, 1);
}

#[test]
fn kill_between_ack_and_delivery_loses_nothing() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let port = closed_port();
    let text = config(queue_dir.path(), "", port, "");
    let gateway = Gateway::start_config_env(&text, ENV);
    send_burst(&gateway, 0..12);
    // Dropping the gateway sends SIGKILL: no shutdown code runs.
    drop(gateway);

    let restarted = Gateway::start_config_env(&text, ENV);
    assert_eq!(
        restarted.wait_for_metric(DEPTH, 12.0, Duration::from_secs(5)),
        12.0
    );
    // The in-memory duplicate store starts empty, so only the queue itself can tell that
    // this delivery id is already stored.
    let repeat = client::send(restarted.addr, &webhook("burst-3", &body_for(3)));
    assert_eq!(repeat.status, 202, "{}", repeat.body_text());
    assert_eq!(
        repeat.header("x-hookgate-duplicate").as_deref(),
        Some("true")
    );

    let upstream = Scripted::start(port, Vec::new());
    assert_eq!(upstream.wait_for(12), 12);
    assert_eq!(
        restarted.wait_for_metric(DELIVERED, 12.0, DELIVERY_WAIT),
        12.0
    );
    assert_each_once(&upstream, 12);
}

#[test]
fn server_errors_are_retried_until_delivered() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let upstream = Scripted::start(0, vec![(500, Vec::new()), (503, Vec::new())]);
    let text = config(queue_dir.path(), "", upstream.addr.port(), "");
    let gateway = Gateway::start_config_env(&text, ENV);

    assert_queued(&client::send(
        gateway.addr,
        &webhook("burst-0", &body_for(0)),
    ));

    assert_eq!(gateway.wait_for_metric(DELIVERED, 1.0, DELIVERY_WAIT), 1.0);
    let arrivals = upstream.arrivals();
    assert_eq!(arrivals.len(), 3, "two failed attempts and one success");
    for arrival in &arrivals {
        common::assert_same_bytes(&arrival.body, &body_for(0));
    }
    let retries = "hookgate_delivery_attempts_total{result=\"retry\",route=\"github\"}";
    assert_eq!(gateway.metric(retries), 2.0);
    assert_eq!(gateway.metric(DEAD), 0.0);
    let logs = gateway.logs();
    let warnings = logs
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("delivery attempt failed"))
        .count();
    assert_eq!(warnings, 1, "one warning for two failed attempts: {logs}");
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let retry_after = vec![("Retry-After".to_string(), "1".to_string())];
    let upstream = Scripted::start(0, vec![(429, retry_after)]);
    let text = config(queue_dir.path(), "", upstream.addr.port(), "")
        .replace("max_backoff: 100ms", "max_backoff: 5s");
    let gateway = Gateway::start_config_env(&text, ENV);

    assert_queued(&client::send(
        gateway.addr,
        &webhook("burst-0", &body_for(0)),
    ));

    assert_eq!(gateway.wait_for_metric(DELIVERED, 1.0, DELIVERY_WAIT), 1.0);
    let arrivals = upstream.arrivals();
    assert_eq!(arrivals.len(), 2);
    let waited = arrivals[1].at - arrivals[0].at;
    // The configured backoff is 20 ms, so only the upstream's Retry-After explains a wait
    // of a second.
    assert!(
        waited >= Duration::from_millis(950),
        "second attempt after {waited:?}"
    );
}

#[test]
fn attempts_exhausted_go_to_dead_letter() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let failures = vec![(503, Vec::new()); 3];
    let upstream = Scripted::start(0, failures);
    let text = config(queue_dir.path(), "", upstream.addr.port(), "")
        .replace("max_attempts: 1000", "max_attempts: 3");
    let gateway = Gateway::start_config_env(&text, ENV);

    assert_queued(&client::send(
        gateway.addr,
        &webhook("burst-0", &body_for(0)),
    ));

    assert_eq!(gateway.wait_for_metric(DEAD, 1.0, DELIVERY_WAIT), 1.0);
    assert_eq!(
        upstream.arrivals().len(),
        3,
        "exactly max_attempts attempts"
    );
    assert_eq!(gateway.metric(DELIVERED), 0.0);
    let dead = "hookgate_queue_dead_letters{route=\"github\"}";
    assert_eq!(
        gateway.wait_for_metric(dead, 1.0, Duration::from_secs(5)),
        1.0
    );
}

#[test]
fn permanent_rejection_is_dead_lettered_then_retried() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let upstream = Scripted::start(0, vec![(400, Vec::new())]);
    let text = config(queue_dir.path(), "", upstream.addr.port(), "");
    let gateway = Gateway::start_config_env(&text, ENV);

    assert_queued(&client::send(
        gateway.addr,
        &webhook("burst-0", &body_for(0)),
    ));
    assert_eq!(gateway.wait_for_metric(DEAD, 1.0, DELIVERY_WAIT), 1.0);
    assert_eq!(upstream.arrivals().len(), 1, "a 400 is not retried");

    // The gateway has the queue file open, so the command goes through its admin listener,
    // which the command finds in the config.
    let config_dir = tempfile::tempdir().expect("config dir");
    let config_path = config_dir.path().join("gateway.yaml");
    let admin = format!("admin:\n  address: \"{}\"", gateway.admin);
    let with_admin = text.replace("admin:\n  address: \"127.0.0.1:0\"", &admin);
    std::fs::write(&config_path, with_admin).expect("write config");
    let listed = queue_command(&config_path, &["list", "--dead", "--json"]);
    let entries = listed["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["last_error"], "upstream answered 400");
    assert_eq!(entries[0]["attempts"], 1);
    let entry = format!("github/{}", entries[0]["id"].as_str().expect("id"));
    let shown = queue_command(&config_path, &["show", &entry, "--dead", "--json"]);
    assert_eq!(shown["entry"]["delivery_id"], "burst-0");

    let retried = queue_command(&config_path, &["retry", "--all"]);
    assert!(retried.is_null(), "retry prints text");
    assert_eq!(gateway.wait_for_metric(DELIVERED, 1.0, DELIVERY_WAIT), 1.0);
    assert_eq!(upstream.arrivals().len(), 2);
    common::assert_same_bytes(&upstream.arrivals()[1].body, &body_for(0));
}

#[test]
fn queue_command_opens_file_of_stopped_gateway() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let port = closed_port();
    let text = config(queue_dir.path(), "", port, "");
    let gateway = Gateway::start_config_env(&text, ENV);
    send_burst(&gateway, 0..3);
    let config_dir = tempfile::tempdir().expect("config dir");
    let config_path = config_dir.path().join("gateway.yaml");
    std::fs::write(&config_path, &text).expect("write config");
    drop(gateway);

    let listed = queue_command(&config_path, &["list", "--json"]);
    let entries = listed["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 3, "{listed}");
    let first = format!("github/{}", entries[0]["id"].as_str().expect("id"));
    queue_command(&config_path, &["purge", &first]);
    let after = queue_command(&config_path, &["list", "--json"]);
    assert_eq!(
        after["entries"].as_array().map(Vec::len),
        Some(2),
        "{after}"
    );

    let restarted = Gateway::start_config_env(&text, ENV);
    let upstream = Scripted::start(port, Vec::new());
    assert_eq!(
        restarted.wait_for_metric(DELIVERED, 2.0, DELIVERY_WAIT),
        2.0
    );
    let mut ids: Vec<String> = upstream
        .arrivals()
        .iter()
        .filter_map(|a| a.header("x-github-delivery"))
        .collect();
    // Two workers deliver at once, so the arrival order is not fixed.
    ids.sort();
    assert_eq!(
        ids,
        ["burst-1", "burst-2"],
        "the purged entry is not delivered"
    );
}

#[test]
fn queue_command_runs_without_route_secrets() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let text = config(queue_dir.path(), "", closed_port(), "");
    let gateway = Gateway::start_config_env(&text, ENV);
    send_burst(&gateway, 0..1);
    let config_dir = tempfile::tempdir().expect("config dir");
    let config_path = config_dir.path().join("gateway.yaml");
    std::fs::write(&config_path, &text).expect("write config");
    drop(gateway);

    // An operator's shell lacks the service's secrets, and `-c` follows the subcommand here.
    let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["queue", "list", "--json", "-c"])
        .arg(&config_path)
        .env_remove("HG_TEST_GITHUB")
        .output()
        .expect("run hookgate queue");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "hookgate queue failed: {stderr}");
    assert!(!stderr.contains("HG_TEST_GITHUB"), "{stderr}");
    let listed: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("JSON entry list");
    assert_eq!(
        listed["entries"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

#[test]
fn queue_command_names_missing_entry() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let text = config(queue_dir.path(), "", closed_port(), "");
    let gateway = Gateway::start_config_env(&text, ENV);
    send_burst(&gateway, 0..1);
    let config_dir = tempfile::tempdir().expect("config dir");
    let config_path = config_dir.path().join("gateway.yaml");
    std::fs::write(&config_path, &text).expect("write config");
    drop(gateway);
    let listed = queue_command(&config_path, &["list", "--json"]);
    let id = listed["entries"][0]["id"].as_str().expect("id").to_string();
    let pending = format!("github/{id}");

    let cases: [(&[&str], &str); 3] = [
        (&["retry", &pending], "in the dead-letter queue"),
        (&["show", &pending, "--dead"], "in the dead-letter queue"),
        (&["purge", "github/no-such-id"], "in the pending queue"),
    ];
    for (args, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .arg("queue")
            .arg("-c")
            .arg(&config_path)
            .args(args)
            .output()
            .expect("run hookgate queue");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let after = queue_command(&config_path, &["list", "--json"]);
    assert_eq!(after["entries"][0]["id"], id.as_str(), "{after}");
}

#[test]
fn ordered_route_delivers_in_acceptance_order() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let port = closed_port();
    let text = config(queue_dir.path(), "", port, "      ordered: true\n");
    let gateway = Gateway::start_config_env(&text, ENV);
    send_burst(&gateway, 0..8);

    // The first request fails twice; nothing behind it may overtake it.
    let upstream = Scripted::start(port, vec![(503, Vec::new()), (500, Vec::new())]);
    assert_eq!(gateway.wait_for_metric(DELIVERED, 8.0, DELIVERY_WAIT), 8.0);
    let ids: Vec<String> = upstream
        .arrivals()
        .iter()
        .filter_map(|a| a.header("x-github-delivery"))
        .collect();
    let mut expected = vec!["burst-0".to_string(), "burst-0".to_string()];
    expected.extend((0..8).map(|i| format!("burst-{i}")));
    assert_eq!(ids, expected);
}

#[test]
fn full_queue_answers_503_and_stores_nothing() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let port = closed_port();
    let text = config(queue_dir.path(), "  max_entries: 3\n", port, "");
    let gateway = Gateway::start_config_env(&text, ENV);
    send_burst(&gateway, 0..3);

    let rejected = common::assert_rejects(&gateway, "github", 503, "queue_full", || {
        client::send(gateway.addr, &webhook("burst-3", &body_for(3)))
    });
    assert!(rejected.header("retry-after").is_some());

    let upstream = Scripted::start(port, Vec::new());
    assert_eq!(gateway.wait_for_metric(DELIVERED, 3.0, DELIVERY_WAIT), 3.0);
    assert_each_once(&upstream, 3);
}

#[test]
fn queue_dir_file_fails_check() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").expect("write file");
    let config_path = dir.path().join("gateway.yaml");
    std::fs::write(&config_path, config(&file, "", closed_port(), "")).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["check", "-c"])
        .arg(&config_path)
        .env("HG_TEST_GITHUB", SECRET)
        .output()
        .expect("run check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("queue.dir:"), "{stderr}");
    assert!(stderr.contains("exists and is not a directory"), "{stderr}");
}

/// A disk that fills up is simulated with a file size limit (`ulimit -f`), which binds root
/// too: once the queue file would grow past it, the write fails with EFBIG, as it would with
/// ENOSPC on a full disk.
#[test]
fn failed_write_answers_503_and_acks_nothing_lost() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let port = closed_port();
    let text = config(queue_dir.path(), "", port, "");
    let limited = Limited::start(&text, 8 * 1024 * 2);

    let mut acked = Vec::new();
    let mut rejected = None;
    for index in 0..128 {
        let mut body = body_for(index);
        body.extend(pattern(256 * 1024));
        let response = client::send(limited.addr, &webhook(&format!("big-{index}"), &body));
        if response.status == 503 {
            rejected = Some((index, response));
            break;
        }
        assert_queued(&response);
        acked.push((index, body));
    }
    let (rejected_index, response) = rejected.expect("the size limit was never reached");
    assert_eq!(
        response.reason(),
        "queue_unavailable",
        "{}",
        response.body_text()
    );
    assert!(response.header("retry-after").is_some());
    assert!(!acked.is_empty(), "nothing was stored before the limit");
    let ready = client::send(
        limited.admin,
        b"GET /readyz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(ready.status, 503, "{}", ready.body_text());
    assert!(
        ready.body_text().contains("restart the gateway"),
        "{}",
        ready.body_text()
    );

    // A restart recovers the file: every acknowledged request is delivered.
    drop(limited);
    let restarted = Gateway::start_config_env(&text, ENV);
    let upstream = Scripted::start(port, Vec::new());
    assert_eq!(upstream.wait_for(acked.len()), acked.len());
    let arrivals = upstream.arrivals();
    for (index, body) in &acked {
        let id = format!("big-{index}");
        let arrival = arrivals
            .iter()
            .find(|a| a.header("x-github-delivery").as_deref() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("{id} was acknowledged but not delivered"));
        common::assert_same_bytes(&arrival.body, body);
    }
    let rejected_id = format!("big-{rejected_index}");
    assert!(
        arrivals
            .iter()
            .all(|a| a.header("x-github-delivery").as_deref() != Some(rejected_id.as_str())),
        "the rejected request was delivered"
    );
    let delivered = restarted.wait_for_metric(DELIVERED, acked.len() as f64, DELIVERY_WAIT);
    assert_eq!(delivered, acked.len() as f64);
    assert_eq!(
        upstream.arrivals().len(),
        acked.len(),
        "a request arrived twice"
    );
}

/// The gateway under a file size limit of `blocks` 512-byte blocks, with SIGXFSZ ignored so
/// that an oversized write fails instead of killing the process.
struct Limited {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Limited {
    fn start(config: &str, blocks: u64) -> Limited {
        let dir = tempfile::tempdir().expect("config dir");
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, config).expect("write config");
        let script = format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\"");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_hookgate"))
            .args(["run", "-c"])
            .arg(&path)
            .args(["--log-format", "json"])
            .env("HG_TEST_GITHUB", SECRET)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hookgate under sh");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut addr, mut admin) = (None, None);
        while Instant::now() < deadline {
            let Some(Ok(line)) = lines.next() else { break };
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let address = event["address"].as_str().and_then(|a| a.parse().ok());
            let message = event["message"].as_str().unwrap_or_default();
            if message == "listening for webhooks" {
                addr = address;
            } else if message.starts_with("admin listener") {
                admin = address;
            }
            if message == "Starting service: hookgate" && addr.is_some() && admin.is_some() {
                break;
            }
        }
        // The log is printed, and so shown by the test harness when the test fails.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("{line}");
            }
        });
        let (Some(addr), Some(admin)) = (addr, admin) else {
            let _ = child.kill();
            panic!("gateway under a size limit did not start")
        };
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "gateway never accepted connections"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Limited {
            child,
            addr,
            admin,
            _dir: dir,
        }
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn queue_command_fails_for_missing_entry() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let text = config(queue_dir.path(), "", closed_port(), "");
    let gateway = Gateway::start_config_env(&text, ENV);
    send_burst(&gateway, 0..1);
    let config_dir = tempfile::tempdir().expect("config dir");
    let config_path = config_dir.path().join("gateway.yaml");
    std::fs::write(&config_path, &text).expect("write config");
    drop(gateway);

    let cases: &[&[&str]] = &[
        &["retry", "github/999"],
        &["purge", "github/999"],
        &["purge", "github/999", "--dead"],
        &["purge", "github/not-a-number"],
        &["show", "github/999"],
    ];
    for args in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .arg("queue")
            .arg("-c")
            .arg(&config_path)
            .args(*args)
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
    let listed = queue_command(&config_path, &["list", "--json"]);
    assert_eq!(
        listed["entries"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

#[test]
fn purge_stops_retries_of_held_request() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let upstream = Scripted::start(0, vec![(503, Vec::new()); 500]);
    let text = config(queue_dir.path(), "", upstream.addr.port(), "");
    let gateway = Gateway::start_config_env(&text, ENV);
    send_burst(&gateway, 0..1);
    assert!(upstream.wait_for(1) >= 1, "no delivery attempt arrived");

    let config_dir = tempfile::tempdir().expect("config dir");
    let config_path = config_dir.path().join("gateway.yaml");
    let admin = format!("admin:\n  address: \"{}\"", gateway.admin);
    let with_admin = text.replace("admin:\n  address: \"127.0.0.1:0\"", &admin);
    std::fs::write(&config_path, with_admin).expect("write config");
    let listed = queue_command(&config_path, &["list", "--json"]);
    let id = listed["entries"][0]["id"]
        .as_str()
        .expect("pending entry")
        .to_string();
    queue_command(&config_path, &["purge", &format!("github/{id}")]);

    // The worker keeps the request between attempts and notices the purge when it records
    // the next failed attempt.
    let deadline = Instant::now() + DELIVERY_WAIT;
    while !gateway.logs().contains("no longer in the queue") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs = gateway.logs();
    assert!(logs.contains("no longer in the queue"), "{logs}");
    assert_eq!(
        gateway.metric(DELIVERED),
        0.0,
        "a purged request was delivered"
    );
    assert_eq!(
        gateway.metric(DEAD),
        0.0,
        "a purged request was dead-lettered"
    );
    let dead = queue_command(&config_path, &["list", "--dead", "--json"]);
    assert_eq!(dead["entries"].as_array().map(Vec::len), Some(0), "{dead}");
}

#[test]
fn dual_stack_admin_serves_ipv4_loopback() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let text = config(queue_dir.path(), "", closed_port(), "").replace(
        "admin:\n  address: \"127.0.0.1:0\"",
        "admin:\n  address: \"[::]:0\"",
    );
    let gateway = Gateway::start_config_env(&text, ENV);
    send_burst(&gateway, 0..1);

    // An IPv4 client of a `[::]` listener has an IPv4-mapped IPv6 address.
    let ipv4 = SocketAddr::from(([127, 0, 0, 1], gateway.admin.port()));
    let request = b"GET /queue/list HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
    let listed = client::send(ipv4, request);

    assert_eq!(listed.status, 200, "{}", listed.body_text());
    let json: serde_json::Value = serde_json::from_slice(&listed.body).expect("JSON list");
    assert_eq!(json["entries"].as_array().map(Vec::len), Some(1), "{json}");
}

/// Runs `hookgate queue ARGS -c CONFIG`; returns its JSON output, or null for text output.
fn queue_command(config: &Path, args: &[&str]) -> serde_json::Value {
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

/// Polls `series` until it reads 0 or five seconds pass; returns the last value.
fn wait_for_zero(gateway: &Gateway, series: &str) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let value = gateway.metric(series);
        if value == 0.0 || Instant::now() >= deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn check_reports_async_mistakes_with_location() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("gateway.yaml");
    let yaml = "listeners:
  - address: \"127.0.0.1:8080\"
routes:
  - name: a
    path: /a
    provider: github
    secrets: [ { env: PATH } ]
    upstream: \"http://127.0.0.1:3000\"
    delivery: async
    async:
      ordered: true
      concurrency: 2
      ack_status: 500
  - name: b
    path: /b
    provider: github
    secrets: [ { env: PATH } ]
    upstream: \"http://127.0.0.1:3000\"
    delivery: later
  - name: c
    path: /c
    provider: github
    secrets: [ { env: PATH } ]
    upstream: \"http://127.0.0.1:3000\"
    async:
      concurrency: 2
";
    std::fs::write(&path, yaml).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("run check");
    let stderr =
        String::from_utf8_lossy(&output.stderr).replace(&path.display().to_string(), "FILE");
    assert!(!output.status.success());
    let expected = [
        "FILE:9:5: routes[0].delivery: delivery: async needs a queue; add a top-level `queue: { dir: PATH }`",
        "FILE:12:7: routes[0].async.concurrency: ordered delivery sends one request at a time",
        "FILE:13:7: routes[0].async.ack_status: ack_status 500 is not a 2xx status",
        "FILE:19:5: routes[1].delivery: unknown delivery \"later\"; use sync or async",
        "FILE:25:5: routes[2].async: async settings need `delivery: async` on the route",
    ];
    for line in expected {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
}

#[test]
fn check_rejects_report_mode_on_async_route() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("gateway.yaml");
    let yaml = "listeners:
  - address: \"127.0.0.1:8080\"
queue:
  dir: queue
routes:
  - name: a
    path: /a
    provider: github
    secrets: [ { env: PATH } ]
    upstream: \"http://127.0.0.1:3000\"
    mode: report
    delivery: async
";
    std::fs::write(&path, yaml).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("run check");
    let stderr =
        String::from_utf8_lossy(&output.stderr).replace(&path.display().to_string(), "FILE");

    assert!(!output.status.success(), "check passed:\n{stderr}");
    let expected = "FILE:11:5: routes[0].mode: mode: report forwards requests that fail verification, and `delivery: async` would store and acknowledge them";
    assert!(
        stderr.contains(expected),
        "missing {expected:?} in:\n{stderr}"
    );
}

#[test]
fn check_reports_queue_block_mistakes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("gateway.yaml");
    let yaml = "listeners:
  - address: \"127.0.0.1:8080\"
queue:
  dir: /tmp/hookgate-queue
  redis: \"redis://127.0.0.1:6379\"
  max_entries: 0
routes:
  - name: a
    path: /a
    provider: github
    secrets: [ { env: PATH } ]
    upstream: \"http://127.0.0.1:3000\"
";
    let other = "listeners:
  - address: \"127.0.0.1:8080\"
queue:
  redis: \"http://127.0.0.1:6379\"
  max_bytes: 1GiB
  flush: always
routes:
  - name: a
    path: /a
    provider: github
    secrets: [ { env: PATH } ]
    upstream: \"http://127.0.0.1:3000\"
    delivery: async
    async:
      ordered: true
";
    let cases: [(&str, &[&str]); 2] = [
        (
            yaml,
            &[
                "FILE:6:3: queue.max_entries: max_entries must be at least 1",
                "FILE:3:1: queue: give either `dir:` (local queue) or `redis:` (shared broker), not both",
            ],
        ),
        (
            other,
            &[
                "FILE:6:3: queue.flush: unknown key `flush`",
                "FILE:5:3: queue.max_bytes: max_bytes only applies to a local queue",
                "FILE:4:3: queue.redis: invalid Redis URL; write it as redis://HOST:PORT",
                "FILE:15:7: routes[0].async.ordered: ordered delivery needs the local queue",
            ],
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&path, text).expect("write config");
        let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .args(["check", "-c"])
            .arg(&path)
            .output()
            .expect("run check");
        let stderr =
            String::from_utf8_lossy(&output.stderr).replace(&path.display().to_string(), "FILE");
        assert!(!output.status.success(), "{stderr}");
        for line in expected {
            assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
        }
    }
}

#[test]
fn reload_switches_route_to_async() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let upstream = Scripted::start(0, Vec::new());
    let text = config(queue_dir.path(), "", upstream.addr.port(), "");
    let sync = text
        .replace("    delivery: async\n", "    delivery: sync\n")
        .replace(
            "    async:\n      backoff: 20ms\n      max_backoff: 100ms\n      max_attempts: 1000\n",
            "",
        );
    let gateway = Gateway::start_config_env(&sync, ENV);
    let forwarded = client::send(gateway.addr, &webhook("burst-0", &body_for(0)));
    assert_eq!(forwarded.status, 200, "{}", forwarded.body_text());

    std::fs::write(&gateway.config_path, &text).expect("rewrite config");
    let status = Command::new("kill")
        .args(["-HUP", &gateway.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let reloads = "hookgate_config_reloads_total{result=\"success\"}";
    assert_eq!(
        gateway.wait_for_metric(reloads, 1.0, Duration::from_secs(10)),
        1.0
    );

    assert_queued(&client::send(
        gateway.addr,
        &webhook("burst-1", &body_for(1)),
    ));
    assert_eq!(gateway.wait_for_metric(DELIVERED, 1.0, DELIVERY_WAIT), 1.0);
    assert_eq!(upstream.wait_for(2), 2);
    common::assert_same_bytes(&upstream.arrivals()[1].body, &body_for(1));
}

#[test]
fn byte_limit_answers_503_queue_full() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let port = closed_port();
    // Each stored request takes its body of about 1 KiB plus its header block.
    let text = config(queue_dir.path(), "  max_bytes: 3KiB\n", port, "");
    let gateway = Gateway::start_config_env(&text, ENV);
    let big = |index: usize| {
        let mut body = body_for(index);
        body.extend(pattern(1024));
        body
    };
    for index in 0..2 {
        let response = client::send(
            gateway.addr,
            &webhook(&format!("burst-{index}"), &big(index)),
        );
        assert_queued(&response);
    }

    let rejected = common::assert_rejects(&gateway, "github", 503, "queue_full", || {
        client::send(gateway.addr, &webhook("burst-2", &big(2)))
    });
    assert!(rejected.header("retry-after").is_some());
    let bytes = gateway.wait_for_metric("hookgate_queue_bytes", 2048.0, Duration::from_secs(5));
    assert!(
        bytes > 2048.0 && bytes <= 3072.0,
        "hookgate_queue_bytes {bytes}"
    );
}

#[test]
fn retry_gives_expired_request_fresh_age() {
    let queue_dir = tempfile::tempdir().expect("queue dir");
    let port = closed_port();
    let text = config(queue_dir.path(), "", port, "      max_age: 300ms\n");
    let gateway = Gateway::start_config_env(&text, ENV);
    assert_queued(&client::send(
        gateway.addr,
        &webhook("burst-0", &body_for(0)),
    ));
    assert_eq!(gateway.wait_for_metric(DEAD, 1.0, DELIVERY_WAIT), 1.0);

    let upstream = Scripted::start(port, Vec::new());
    let config_dir = tempfile::tempdir().expect("config dir");
    let config_path = config_dir.path().join("gateway.yaml");
    let admin = format!("admin:\n  address: \"{}\"", gateway.admin);
    let with_admin = text.replace("admin:\n  address: \"127.0.0.1:0\"", &admin);
    std::fs::write(&config_path, with_admin).expect("write config");
    queue_command(&config_path, &["retry", "--all"]);

    assert_eq!(gateway.wait_for_metric(DELIVERED, 1.0, DELIVERY_WAIT), 1.0);
    assert_each_once(&upstream, 1);
}

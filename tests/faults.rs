//! Fault injection against the running gateway: upstreams that refuse connections, reset
//! them, stall or respond with garbage, and clients that leave mid-body or mid-response.
//! Where a response is still possible the client gets a 502 or 504. Where the status was
//! already sent, the truncation stays visible. Afterwards the gateway still forwards valid
//! requests, and a thousand such faults leave its descriptor count and memory flat.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::client::request;
use common::upstream::Upstream;
use common::{closed_port, github_signature, pattern, route, Gateway};

const SECRET: &str = "faults-secret";
const ENV: &[(&str, &str)] = &[("HG_FAULTS_SECRET", SECRET)];

/// Request body of every fault request. It is larger than the fault upstream's first read,
/// so that closing after that read leaves request bytes unread and the kernel sends a reset.
const BODY_LEN: usize = 64 * 1024;

/// Maximum time a test waits for one response.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Status lines and headers that are not valid HTTP/1.1.
const MALFORMED: &[&[u8]] = &[
    b"HTTP/1.1 abc Bad\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon in this line\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
    b"\r\n\r\n",
];

/// Body length of the `big` reply, for clients that leave mid-response.
const BIG_REPLY: usize = 4 << 20;

/// What the fault upstream does with one request, chosen by its `X-Fault` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Responds 200 with the body `tag=<X-Tag>` and keeps the connection.
    Echo,
    /// Waits this long, then responds like `Echo`.
    Slow(Duration),
    /// Reads only the head, then closes with the body unread: a reset, no response.
    Reset,
    /// Reads the whole request, then closes without a response.
    Eof,
    /// Sends a 200 head with `Content-Length: 1000` and 500 body bytes, then resets.
    ResetMidBody,
    /// Like `ResetMidBody`, but reads the request first and closes normally.
    CloseMidBody,
    /// Sends a chunked 200 head and one chunk, then resets.
    ResetMidChunks,
    /// Sends one of [`MALFORMED`].
    Malformed(usize),
    /// Sends 4 KiB of binary noise, then closes.
    Garbage,
    /// Sends a status line that never ends, 256 KiB long.
    EndlessHead,
    /// Responds 200 with a [`BIG_REPLY`]-byte body.
    Big,
}

impl Fault {
    fn header(self) -> String {
        match self {
            Fault::Echo => "echo".into(),
            Fault::Slow(wait) => format!("slow-{}", wait.as_millis()),
            Fault::Reset => "reset".into(),
            Fault::Eof => "eof".into(),
            Fault::ResetMidBody => "reset-mid-body".into(),
            Fault::CloseMidBody => "close-mid-body".into(),
            Fault::ResetMidChunks => "reset-mid-chunks".into(),
            Fault::Malformed(index) => format!("malformed-{index}"),
            Fault::Garbage => "garbage".into(),
            Fault::EndlessHead => "endless-head".into(),
            Fault::Big => "big".into(),
        }
    }

    fn parse(text: &str) -> Option<Fault> {
        let fault = match text {
            "echo" => Fault::Echo,
            "reset" => Fault::Reset,
            "eof" => Fault::Eof,
            "reset-mid-body" => Fault::ResetMidBody,
            "close-mid-body" => Fault::CloseMidBody,
            "reset-mid-chunks" => Fault::ResetMidChunks,
            "garbage" => Fault::Garbage,
            "endless-head" => Fault::EndlessHead,
            "big" => Fault::Big,
            _ => {
                if let Some(ms) = text.strip_prefix("slow-") {
                    Fault::Slow(Duration::from_millis(ms.parse().ok()?))
                } else {
                    Fault::Malformed(text.strip_prefix("malformed-")?.parse().ok()?)
                }
            }
        };
        Some(fault)
    }
}

/// A raw upstream on 127.0.0.1 that misbehaves as each request's `X-Fault` header selects.
struct FaultUpstream {
    addr: SocketAddr,
    /// Request heads whose `X-Tag` starts with `unsent-`, which must never arrive.
    unsent: Arc<AtomicUsize>,
}

impl FaultUpstream {
    fn start() -> FaultUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault upstream");
        let addr = listener.local_addr().expect("fault upstream address");
        let unsent = Arc::new(AtomicUsize::new(0));
        let leaked = Arc::clone(&unsent);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let leaked = Arc::clone(&leaked);
                thread::spawn(move || serve_faults(stream, &leaked));
            }
        });
        FaultUpstream { addr, unsent }
    }
}

/// Serves requests on one connection until a fault ends it or the gateway closes it.
fn serve_faults(mut stream: TcpStream, unsent: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut pending = Vec::new();
    loop {
        let Some(head) = read_until_blank_line(&mut stream, &mut pending) else {
            return;
        };
        let tag = header_value(&head, "x-tag").unwrap_or_default();
        if tag.starts_with("unsent-") {
            unsent.fetch_add(1, Ordering::SeqCst);
        }
        let length: usize = header_value(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let fault = header_value(&head, "x-fault")
            .and_then(|v| Fault::parse(&v))
            .unwrap_or(Fault::Echo);

        // Faults that end in a reset leave the body unread; the others read it first.
        let resets = matches!(
            fault,
            Fault::Reset | Fault::ResetMidBody | Fault::ResetMidChunks
        );
        if !resets && !read_exactly(&mut stream, &mut pending, length) {
            return;
        }
        if !act(&mut stream, fault, &tag) {
            return;
        }
    }
}

/// Carries out `fault`; returns whether the connection can serve another request.
fn act(stream: &mut TcpStream, fault: Fault, tag: &str) -> bool {
    let echo = |stream: &mut TcpStream| {
        let body = format!("tag={tag}");
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(reply.as_bytes()).is_ok()
    };
    // The pause lets the bytes written so far reach the gateway before the reset, which
    // would otherwise discard them.
    let reset_after = |stream: &mut TcpStream, bytes: &[u8]| {
        let _ = stream.write_all(bytes);
        let _ = stream.flush();
        thread::sleep(Duration::from_millis(10));
        false
    };
    match fault {
        Fault::Echo => echo(stream),
        Fault::Slow(wait) => {
            thread::sleep(wait);
            echo(stream)
        }
        Fault::Reset | Fault::Eof => false,
        Fault::ResetMidBody => {
            let mut reply = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
            reply.extend_from_slice(&[b'r'; 500]);
            reset_after(stream, &reply)
        }
        Fault::CloseMidBody => {
            let mut reply = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
            reply.extend_from_slice(&[b'c'; 500]);
            let _ = stream.write_all(&reply);
            let _ = stream.shutdown(Shutdown::Both);
            false
        }
        Fault::ResetMidChunks => {
            let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
            reset_after(stream, reply)
        }
        Fault::Malformed(index) => {
            let _ = stream.write_all(MALFORMED[index % MALFORMED.len()]);
            false
        }
        Fault::Garbage => {
            let _ = stream.write_all(&pattern(4096));
            false
        }
        Fault::EndlessHead => {
            let mut line = b"HTTP/1.1 200 ".to_vec();
            line.extend(std::iter::repeat_n(b'A', 256 * 1024));
            let _ = stream.write_all(&line);
            false
        }
        Fault::Big => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG_REPLY}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&vec![b'b'; BIG_REPLY]);
            false
        }
    }
}

/// Reads up to and including the blank line after the headers; `None` on end of file.
fn read_until_blank_line(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<String> {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = pending.drain(..end + 4).collect();
            return Some(String::from_utf8_lossy(&head).into_owned());
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Reads and discards `length` body bytes; false when the connection ends first.
fn read_exactly(stream: &mut TcpStream, pending: &mut Vec<u8>, length: usize) -> bool {
    let mut buffer = [0u8; 16 * 1024];
    while pending.len() < length {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return false,
            Ok(n) => pending.extend_from_slice(&buffer[..n]),
        }
    }
    pending.drain(..length);
    true
}

fn header_value(head: &str, name: &str) -> Option<String> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
}

/// The gateway and its upstreams: `faulty` behind `/hooks/faulty` with a 1 s upstream
/// timeout, a closed port behind `/hooks/refused`, and a recording upstream behind
/// `/hooks/ok`.
struct Setup {
    gateway: Gateway,
    faulty: FaultUpstream,
    ok: Upstream,
}

fn start() -> Setup {
    let faulty = FaultUpstream::start();
    let ok = Upstream::ok();
    let refused = format!("http://127.0.0.1:{}", closed_port());
    let secrets = "secrets: [{ env: HG_FAULTS_SECRET }]";
    let routes = [
        route(&[
            "name: faulty",
            "path: /hooks/faulty",
            "provider: github",
            secrets,
            "upstream_timeout: 1s",
            &format!("upstream: \"http://{}\"", faulty.addr),
        ]),
        route(&[
            "name: refused",
            "path: /hooks/refused",
            "provider: github",
            secrets,
            "connect_timeout: 1s",
            &format!("upstream: \"{refused}\""),
        ]),
        route(&[
            "name: ok",
            "path: /hooks/ok",
            "provider: github",
            secrets,
            &format!("upstream: \"{}\"", ok.url()),
        ]),
        "defaults:\n  failed_verify_limit: { enabled: false }\n  replay: { enabled: false }\n"
            .to_string(),
    ]
    .concat();
    let gateway = Gateway::start_env(&routes, ENV);
    Setup {
        gateway,
        faulty,
        ok,
    }
}

/// Builds a signed request for `path` that selects `fault` at the fault upstream, tagged
/// `tag`.
/// `Connection: close` makes the gateway end the connection after its response, so that
/// the client can read to the end of the stream.
fn signed(path: &str, fault: Fault, tag: &str) -> Vec<u8> {
    let body = pattern(BODY_LEN);
    let signature = github_signature(SECRET, &body);
    request(
        "POST",
        path,
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-Fault", &fault.header()),
            ("X-Tag", tag),
            ("Connection", "close"),
        ],
        &body,
    )
}

/// What a client read before the gateway closed the connection or the read failed.
#[derive(Debug)]
struct Exchange {
    status: Option<u16>,
    /// Whether the body was complete by its own framing (`Content-Length` or the last
    /// chunk), so that a client could not mistake a truncated body for a whole one.
    complete: bool,
    body: Vec<u8>,
}

/// Sends `bytes` on a new connection and reads until the gateway closes it.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Exchange {
    let mut stream = TcpStream::connect(addr).expect("connect to gateway");
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("set read timeout");
    let _ = stream.write_all(bytes);
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..n]);
    }
    parse_exchange(&received)
}

fn parse_exchange(received: &[u8]) -> Exchange {
    let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Exchange {
            status: None,
            complete: false,
            body: Vec::new(),
        };
    };
    let head = String::from_utf8_lossy(&received[..end + 4]);
    let body = received[end + 4..].to_vec();
    let status = head.get(9..12).and_then(|s| s.parse().ok());
    let chunked = header_value(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let complete = match header_value(&head, "content-length") {
        _ if chunked => body.ends_with(b"0\r\n\r\n"),
        Some(length) => length.parse::<usize>().is_ok_and(|n| body.len() == n),
        None => false,
    };
    Exchange {
        status,
        complete,
        body,
    }
}

/// Checks that the gateway still verifies and forwards: `/hooks/ok` and an echo from the
/// fault upstream both respond 200, the echo with this request's own tag.
fn assert_still_serving(setup: &Setup, tag: &str) {
    let before = setup.ok.requests().len();
    let ok = exchange(setup.gateway.addr, &signed("/hooks/ok", Fault::Echo, tag));
    assert_eq!(ok.status, Some(200), "valid request to /hooks/ok: {ok:?}");
    assert_eq!(setup.ok.requests().len(), before + 1);

    let echo = exchange(
        setup.gateway.addr,
        &signed("/hooks/faulty", Fault::Echo, tag),
    );
    assert_eq!(echo.status, Some(200), "echo after faults");
    assert_eq!(echo.body, format!("tag={tag}").into_bytes(), "echo body");
}

#[test]
fn refused_upstream_gets_502() {
    let setup = start();

    let response = exchange(
        setup.gateway.addr,
        &signed("/hooks/refused", Fault::Echo, "refused"),
    );

    assert_eq!(response.status, Some(502), "{response:?}");
    assert_still_serving(&setup, "after-refused");
}

#[test]
fn upstream_failing_before_response_gets_502() {
    let setup = start();
    let mut faults = vec![Fault::Reset, Fault::Eof, Fault::Garbage, Fault::EndlessHead];
    faults.extend((0..MALFORMED.len()).map(Fault::Malformed));

    for fault in faults {
        let response = exchange(
            setup.gateway.addr,
            &signed("/hooks/faulty", fault, "before-response"),
        );

        assert_eq!(response.status, Some(502), "{fault:?}: {response:?}");
        assert!(response.complete, "{fault:?}: 502 body incomplete");
    }
    assert_still_serving(&setup, "after-before-response");
}

#[test]
fn upstream_failing_mid_body_truncates_visibly() {
    let setup = start();

    for fault in [
        Fault::ResetMidBody,
        Fault::CloseMidBody,
        Fault::ResetMidChunks,
    ] {
        let response = exchange(setup.gateway.addr, &signed("/hooks/faulty", fault, "mid"));

        // A reset can overtake the response head; then a 502 is still possible.
        match response.status {
            Some(200) => assert!(
                !response.complete,
                "{fault:?}: truncated upstream body relayed as complete: {response:?}"
            ),
            Some(502) => {}
            other => panic!("{fault:?}: expected a truncated 200 or a 502, got {other:?}"),
        }
    }
    assert_still_serving(&setup, "after-mid-body");
}

#[test]
fn slow_upstream_gets_504() {
    let setup = start();
    let started = Instant::now();

    let slow = exchange(
        setup.gateway.addr,
        &signed(
            "/hooks/faulty",
            Fault::Slow(Duration::from_millis(1500)),
            "late",
        ),
    );
    let waited = started.elapsed();
    // The late reply reaches the connection the gateway gave up on; it must not be taken
    // as the response to the next request.
    thread::sleep(Duration::from_millis(700));

    assert_eq!(slow.status, Some(504), "{slow:?}");
    assert!(
        waited < Duration::from_millis(1400),
        "504 after {waited:?}, later than the 1 s upstream timeout allows"
    );
    assert_still_serving(&setup, "after-slow");
}

#[test]
fn client_leaving_mid_body_forwards_nothing() {
    let setup = start();
    let full = signed("/hooks/faulty", Fault::Echo, "unsent-mid-body");
    let cut = full.len() - BODY_LEN / 2;

    for _ in 0..20 {
        let mut stream = TcpStream::connect(setup.gateway.addr).expect("connect");
        stream
            .write_all(&full[..cut])
            .expect("write half the request");
    }
    thread::sleep(Duration::from_millis(200));

    assert_eq!(setup.faulty.unsent.load(Ordering::SeqCst), 0);
    assert_still_serving(&setup, "after-mid-body-client");
}

#[test]
fn client_leaving_mid_response_keeps_gateway_serving() {
    let setup = start();

    for _ in 0..20 {
        leave_mid_response(setup.gateway.addr);
    }

    assert_still_serving(&setup, "after-mid-response-client");
}

/// Requests the big reply, reads its first bytes and closes with the rest unread, so that
/// the gateway's next write meets a reset.
fn leave_mid_response(addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("set read timeout");
    let _ = stream.write_all(&signed("/hooks/faulty", Fault::Big, "big"));
    let mut first = [0u8; 1024];
    let _ = stream.read(&mut first);
}

/// Open descriptors and resident memory of a process.
#[derive(Debug, Clone, Copy)]
struct Usage {
    fds: usize,
    rss_kib: u64,
}

fn usage(pid: u32) -> Usage {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/<pid>/fd")
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    Usage { fds, rss_kib }
}

/// Waits until the descriptor count stays the same for 300 ms, at most 5 s, because the
/// gateway closes connections a little after the client has its response.
fn settled_usage(pid: u32) -> Usage {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = usage(pid);
    loop {
        thread::sleep(Duration::from_millis(300));
        let now = usage(pid);
        if now.fds == last.fds || Instant::now() >= deadline {
            return now;
        }
        last = now;
    }
}

/// Faults sent [`PER_KIND`] times each per round.
const ROUND_FAULTS: &[Fault] = &[
    Fault::Reset,
    Fault::Eof,
    Fault::ResetMidBody,
    Fault::CloseMidBody,
    Fault::ResetMidChunks,
    Fault::Malformed(0),
    Fault::Garbage,
];
const PER_KIND: usize = 20;

/// Stalled requests per round, sent in parallel because each takes the 1 s timeout.
const SLOW_PER_ROUND: usize = 4;

/// Rounds after the warm-up round.
const ROUNDS: usize = 4;

/// Allowed descriptor growth between the warm-up round and the last round. The rounds after
/// the warm-up send over 800 faulty requests, so a leak of one descriptor per request trips it.
const FD_MARGIN: usize = 24;

/// Allowed VmRSS growth over the same rounds: a leak of 20 KiB or more per faulty request,
/// such as a kept 64 KiB request body, trips it. Growth measured without a leak is under
/// 1 MiB on a 2-core machine.
const RSS_MARGIN_KIB: u64 = 16 * 1024;

/// Sends one round: every fault in [`ROUND_FAULTS`], refused connections, clients that
/// leave mid-body and mid-response, and stalled requests. Returns the number of requests
/// and a description of each unexpected response.
fn round(setup: &Setup, number: usize) -> (usize, Vec<String>) {
    let addr = setup.gateway.addr;
    let slow: Vec<_> = (0..SLOW_PER_ROUND)
        .map(|_| {
            thread::spawn(move || {
                let wait = Fault::Slow(Duration::from_millis(1200));
                exchange(addr, &signed("/hooks/faulty", wait, "slow")).status
            })
        })
        .collect();

    let mut sent = 0;
    let mut wrong = Vec::new();
    for i in 0..PER_KIND {
        for &fault in ROUND_FAULTS {
            let fault = match fault {
                Fault::Malformed(_) => Fault::Malformed(i),
                other => other,
            };
            let response = exchange(addr, &signed("/hooks/faulty", fault, "round"));
            let acceptable = match response.status {
                Some(502) => true,
                Some(200) => !response.complete,
                _ => false,
            };
            if !acceptable {
                wrong.push(format!("round {number}: {fault:?}: {response:?}"));
            }

            sent += 1;
        }
        let refused = exchange(addr, &signed("/hooks/refused", Fault::Echo, "round"));
        if refused.status != Some(502) {
            wrong.push(format!("round {number}: refused: {refused:?}"));
        }
        let full = signed("/hooks/faulty", Fault::Echo, "unsent-round");
        let mut stream = TcpStream::connect(addr).expect("connect");
        let _ = stream.write_all(&full[..full.len() - BODY_LEN / 2]);
        drop(stream);
        leave_mid_response(addr);
        sent += 3;
    }
    for handle in slow {
        let status = handle.join().expect("slow request thread");
        if status != Some(504) {
            wrong.push(format!("round {number}: slow request got {status:?}"));
        }
        sent += 1;
    }
    (sent, wrong)
}

#[test]
fn thousand_faults_leak_no_descriptors_or_memory() {
    let setup = start();
    let pid = setup.gateway.pid();
    let started = Instant::now();
    let at_start = settled_usage(pid);

    let (mut sent, mut wrong) = round(&setup, 0);
    let warm = settled_usage(pid);
    for number in 1..=ROUNDS {
        let (count, problems) = round(&setup, number);
        sent += count;
        wrong.extend(problems);
    }
    let last = settled_usage(pid);

    println!(
        "faults: {sent} faulty requests in {:.1} s; fds {} at start, {} after warm-up, {} \
         after the last round; VmRSS {} KiB, {} KiB, {} KiB",
        started.elapsed().as_secs_f64(),
        at_start.fds,
        warm.fds,
        last.fds,
        at_start.rss_kib,
        warm.rss_kib,
        last.rss_kib
    );
    assert!(sent >= 1000, "only {sent} faulty requests sent");
    assert!(
        wrong.is_empty(),
        "unexpected responses:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        setup.faulty.unsent.load(Ordering::SeqCst),
        0,
        "a request whose client left mid-body reached the upstream"
    );
    assert!(
        last.fds <= warm.fds + FD_MARGIN,
        "descriptors grew from {} to {}",
        warm.fds,
        last.fds
    );
    assert!(
        last.rss_kib <= warm.rss_kib + RSS_MARGIN_KIB,
        "VmRSS grew from {} KiB to {} KiB",
        warm.rss_kib,
        last.rss_kib
    );
    assert_still_serving(&setup, "after-rounds");
}

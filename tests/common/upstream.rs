//! A recording upstream on 127.0.0.1: counts every accepted connection and stores the raw
//! header block and body of every request it reads.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::client::{read_body, read_head};

#[derive(Clone)]
pub enum Behavior {
    /// Respond with this status and body, keeping the connection open.
    Respond { status: u16, body: Vec<u8> },
    /// Respond with a chunked body made of these chunks.
    RespondChunked { status: u16, chunks: Vec<Vec<u8>> },
    /// Read the request, then never respond.
    Hang,
    /// Read the request, wait until `gate` opens, then respond with this status, so a test
    /// decides how long each request stays in flight.
    Hold { gate: Gate, status: u16 },
}

/// Maximum time a [`Behavior::Hold`] upstream waits for its gate, so that a test that fails
/// before opening it does not leave requests held for ever.
const MAX_HOLD: Duration = Duration::from_secs(20);

/// A gate that [`Behavior::Hold`] requests wait at. Once opened it stays open, so it releases
/// the requests held now and lets later ones through at once.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    pub fn open(&self) {
        let (opened, changed) = &*self.0;
        *opened.lock().expect("gate lock") = true;
        changed.notify_all();
    }

    /// Blocks until the gate opens or `timeout` passes.
    fn wait(&self, timeout: Duration) {
        let (opened, changed) = &*self.0;
        let deadline = Instant::now() + timeout;
        let mut is_open = opened.lock().expect("gate lock");
        while !*is_open {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            is_open = changed.wait_timeout(is_open, left).expect("gate lock").0;
        }
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    /// The request line and headers exactly as received, up to and including the blank line.
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn head_text(&self) -> String {
        String::from_utf8_lossy(&self.head).into_owned()
    }

    /// Values of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Vec<String> {
        self.head_text()
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

pub struct Upstream {
    pub addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Upstream {
    pub fn ok() -> Upstream {
        Upstream::start(Behavior::Respond {
            status: 200,
            body: b"ok from upstream\n".to_vec(),
        })
    }

    pub fn start(behavior: Behavior) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().expect("upstream address");
        let accepts = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (Arc::clone(&accepts), Arc::clone(&requests));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                count.fetch_add(1, Ordering::SeqCst);
                let (log, behavior) = (Arc::clone(&log), behavior.clone());
                std::thread::spawn(move || serve(stream, &log, &behavior));
            }
        });
        Upstream {
            addr,
            accepts,
            requests,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("request log lock").clone()
    }

    /// Polls until `count` requests are recorded or `timeout` passes, and returns the number
    /// recorded then.
    pub fn wait_for_requests(&self, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let recorded = self.requests.lock().expect("request log lock").len();
            if recorded >= count || Instant::now() >= deadline {
                return recorded;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn serve(mut stream: TcpStream, log: &Mutex<Vec<Recorded>>, behavior: &Behavior) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut pending = Vec::new();
    loop {
        let Some((head, framing)) = read_head(&mut stream, &mut pending) else {
            return;
        };
        let Some(body) = read_body(&mut stream, &mut pending, framing) else {
            return;
        };
        log.lock()
            .expect("request log lock")
            .push(Recorded { head, body });
        let reply = match behavior {
            Behavior::Respond { status, body } => plain_reply(*status, body),
            Behavior::RespondChunked { status, chunks } => {
                let mut reply =
                    format!("HTTP/1.1 {status} Upstream\r\nTransfer-Encoding: chunked\r\n\r\n")
                        .into_bytes();
                for chunk in chunks {
                    reply.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    reply.extend_from_slice(chunk);
                    reply.extend_from_slice(b"\r\n");
                }
                reply.extend_from_slice(b"0\r\n\r\n");
                reply
            }
            Behavior::Hang => {
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                return;
            }
            Behavior::Hold { gate, status } => {
                gate.wait(MAX_HOLD);
                plain_reply(*status, b"released by the test\n")
            }
        };
        if stream.write_all(&reply).is_err() {
            return;
        }
    }
}

/// Builds a response with a `Content-Length` body, as [`Behavior::Respond`] sends it.
fn plain_reply(status: u16, body: &[u8]) -> Vec<u8> {
    let mut reply = format!(
        "HTTP/1.1 {status} Upstream\r\nContent-Type: text/plain\r\nX-Upstream: recorder\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(body);
    reply
}

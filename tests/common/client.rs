//! A raw HTTP/1.1 client that writes exactly the bytes a test gives it, and the message
//! parsing shared with the recording upstream.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// Maximum time a test waits for one response.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub enum Framing {
    Length(usize),
    Chunked,
    None,
    UntilClose,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Returns the `error` field of a JSON rejection body.
    pub fn reason(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// One client connection, reusable for keep-alive requests.
pub struct Connection {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr).expect("connect to gateway");
        stream
            .set_read_timeout(Some(RESPONSE_TIMEOUT))
            .expect("set read timeout");
        Connection {
            stream,
            pending: Vec::new(),
        }
    }

    /// Opens a connection from `source`, such as 127.0.0.2, so that the gateway records a client address
    /// other than 127.0.0.1. Linux routes all of 127.0.0.0/8 to the loopback interface.
    pub fn open_from(source: IpAddr, addr: SocketAddr) -> Connection {
        let domain = socket2::Domain::for_address(addr);
        let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)
            .expect("create client socket");
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .expect("bind client socket to its source address");
        socket.connect(&addr.into()).expect("connect to gateway");
        let stream = TcpStream::from(socket);
        stream
            .set_read_timeout(Some(RESPONSE_TIMEOUT))
            .expect("set read timeout");
        Connection {
            stream,
            pending: Vec::new(),
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write request bytes");
    }

    /// Reads one response; `None` when the gateway closed the connection first.
    pub fn read_response(&mut self, request_method: &str) -> Option<Response> {
        let (head, framing) = read_head(&mut self.stream, &mut self.pending)?;
        let head = String::from_utf8_lossy(&head).into_owned();
        let status = head.get(9..12)?.parse().ok()?;
        let framing = match framing {
            _ if request_method == "HEAD" || status == 204 || status == 304 => Framing::None,
            Framing::None => Framing::UntilClose,
            other => other,
        };
        let body = read_body(&mut self.stream, &mut self.pending, framing)?;
        Some(Response { status, head, body })
    }

    pub fn send(&mut self, request: &[u8]) -> Response {
        self.write(request);
        let method = request.split(|b| *b == b' ').next().unwrap_or_default();
        self.read_response(&String::from_utf8_lossy(method))
            .expect("gateway answered")
    }

    /// Writes `bytes`, returning the error instead of failing the test, for writes the gateway
    /// may cut short by closing the connection.
    pub fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one header block and nothing after it, such as a `100 Continue` interim
    /// response; `None` when the connection closed or the read timed out first.
    pub fn read_head(&mut self) -> Option<String> {
        let (head, _) = read_head(&mut self.stream, &mut self.pending)?;
        Some(String::from_utf8_lossy(&head).into_owned())
    }

    /// Closes the sending half, so the gateway reads end of file while the client can still
    /// read the response.
    pub fn close_write(&self) {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shut down the sending half");
    }

    /// Whether the peer has closed the connection (a read returns end of file).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }

    /// Whether the peer closes the connection within `wait`: a read returns end of file or
    /// an error other than a timeout. Bytes that arrive instead are kept for the next read.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.set_read_timeout(wait);
        let mut buffer = [0u8; 1024];
        match self.stream.read(&mut buffer) {
            Ok(0) => true,
            Ok(n) => {
                self.pending.extend_from_slice(&buffer[..n]);
                false
            }
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set read timeout");
    }
}

/// Sends one request on a new connection and reads the response.
pub fn send(addr: SocketAddr, request: &[u8]) -> Response {
    Connection::open(addr).send(request)
}

/// Builds a request with `Content-Length` framing and the given extra headers.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{method} {path} HTTP/1.1\r\nHost: gateway.test\r\n").into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// Builds a request whose body is sent in the given chunks with
/// `Transfer-Encoding: chunked`.
pub fn chunked_request(path: &str, headers: &[(&str, &str)], chunks: &[&[u8]]) -> Vec<u8> {
    let mut bytes = format!("POST {path} HTTP/1.1\r\nHost: gateway.test\r\n").into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    bytes.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    for chunk in chunks {
        bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend_from_slice(chunk);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    bytes
}

/// Reads a header block from `stream`, starting with any bytes already in `pending`.
/// Returns the raw block (through the blank line) and how the body is framed.
pub fn read_head(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<(Vec<u8>, Framing)> {
    let end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, pending)?;
    };
    let head: Vec<u8> = pending.drain(..end).collect();
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let mut framing = Framing::None;
    for line in text.split("\r\n").skip(1) {
        if let Some(value) = line.strip_prefix("content-length:") {
            framing = Framing::Length(value.trim().parse().ok()?);
        } else if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            framing = Framing::Chunked;
        }
    }
    Some((head, framing))
}

/// Reads a body framed as `framing`; chunked bodies are decoded.
pub fn read_body(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    framing: Framing,
) -> Option<Vec<u8>> {
    match framing {
        Framing::None => Some(Vec::new()),
        Framing::Length(n) => take(stream, pending, n),
        Framing::UntilClose => {
            while fill(stream, pending).is_some() {}
            Some(std::mem::take(pending))
        }
        Framing::Chunked => {
            let mut body = Vec::new();
            loop {
                let line = take_line(stream, pending)?;
                let size_text = line.split(';').next()?.trim().to_string();
                let size = usize::from_str_radix(&size_text, 16).ok()?;
                if size == 0 {
                    while !take_line(stream, pending)?.is_empty() {}
                    return Some(body);
                }
                body.extend(take(stream, pending, size)?);
                take_line(stream, pending)?;
            }
        }
    }
}

fn take(stream: &mut TcpStream, pending: &mut Vec<u8>, n: usize) -> Option<Vec<u8>> {
    while pending.len() < n {
        fill(stream, pending)?;
    }
    Some(pending.drain(..n).collect())
}

fn take_line(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(i) = pending.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = pending.drain(..i + 2).collect();
            return Some(String::from_utf8_lossy(&line[..i]).into_owned());
        }
        fill(stream, pending)?;
    }
}

fn fill(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<()> {
    let mut buffer = [0u8; 16 * 1024];
    match stream.read(&mut buffer) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            pending.extend_from_slice(&buffer[..n]);
            Some(())
        }
    }
}

//! `hookgate queue list|show|retry|purge`: the operations, their JSON results, and the way
//! the command reaches the queue. The local queue file is locked by the gateway that has it
//! open, so the command first sends the operation to the running gateway's admin listener and
//! opens the store itself only when nothing listens there.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use serde_json::{json, Value};

use super::{Entry, Queue, QueueError, Selection};
use crate::config::{Config, DeliveryMode};

/// Time allowed for the admin listener to respond to a queue command.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Entries `list` prints unless `--limit` sets another number.
pub const DEFAULT_LIMIT: usize = 100;

/// One queue operation.
#[derive(Debug, Clone)]
pub enum Operation {
    List {
        selection: Selection,
        dead: bool,
        limit: usize,
    },
    Show {
        selection: Selection,
        dead: bool,
    },
    Retry {
        selection: Selection,
    },
    Purge {
        selection: Selection,
        dead: bool,
    },
}

impl Operation {
    fn name(&self) -> &'static str {
        match self {
            Operation::List { .. } => "list",
            Operation::Show { .. } => "show",
            Operation::Retry { .. } => "retry",
            Operation::Purge { .. } => "purge",
        }
    }

    fn selection(&self) -> &Selection {
        match self {
            Operation::List { selection, .. }
            | Operation::Show { selection, .. }
            | Operation::Retry { selection }
            | Operation::Purge { selection, .. } => selection,
        }
    }

    fn dead(&self) -> bool {
        match self {
            Operation::List { dead, .. }
            | Operation::Show { dead, .. }
            | Operation::Purge { dead, .. } => *dead,
            Operation::Retry { .. } => true,
        }
    }

    /// Path and query of the admin request that runs this operation.
    pub fn admin_path(&self) -> String {
        let selection = self.selection();
        let mut query = Vec::new();
        if let Some(route) = &selection.route {
            query.push(format!("route={}", encode(route)));
        }
        if let Some(id) = &selection.id {
            query.push(format!("id={}", encode(id)));
        }
        if self.dead() {
            query.push("dead=true".to_string());
        }
        if let Operation::List { limit, .. } = self {
            query.push(format!("limit={limit}"));
        }
        format!("/queue/{}?{}", self.name(), query.join("&"))
    }

    /// Parses an admin request; `None` for an unknown path or a mutating operation sent
    /// with a method other than POST.
    pub fn from_admin(method: &http::Method, path: &str, query: Option<&str>) -> Option<Operation> {
        let mut selection = Selection::default();
        let (mut dead, mut limit) = (false, DEFAULT_LIMIT);
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value);
            match key {
                "route" => selection.route = Some(value),
                "id" => selection.id = Some(value),
                "dead" => dead = value == "true",
                "limit" => limit = value.parse().ok()?,
                _ => return None,
            }
        }
        let reading = method == http::Method::GET;
        let writing = method == http::Method::POST;
        match path {
            "/queue/list" if reading => Some(Operation::List {
                selection,
                dead,
                limit,
            }),
            "/queue/show" if reading => Some(Operation::Show { selection, dead }),
            "/queue/retry" if writing => Some(Operation::Retry { selection }),
            "/queue/purge" if writing => Some(Operation::Purge { selection, dead }),
            _ => None,
        }
    }

    /// Runs the operation on `queue`; `routes` are the async routes, which Redis needs.
    pub async fn run(self, queue: &Queue, routes: &[String]) -> Result<Value, QueueError> {
        match self {
            Operation::List {
                selection,
                dead,
                limit,
            } => {
                let entries = queue.list(routes, &selection, dead, limit).await?;
                let summaries: Vec<Value> = entries.iter().map(|e| summary(e, dead)).collect();
                Ok(json!({ "entries": summaries }))
            }
            Operation::Show { selection, dead } => {
                let entries = queue.list(routes, &selection, dead, 1).await?;
                Ok(json!({ "entry": entries.first().map(|e| detail(e, dead)) }))
            }
            Operation::Retry { selection } => {
                let count = queue.retry(routes, selection).await?;
                Ok(json!({ "count": count }))
            }
            Operation::Purge { selection, dead } => {
                let count = queue.purge(routes, selection, dead).await?;
                Ok(json!({ "count": count }))
            }
        }
    }
}

/// Names of the routes with `delivery: async`.
pub fn async_routes(config: &Config) -> Vec<String> {
    config
        .routes
        .iter()
        .filter(|route| matches!(route.delivery, DeliveryMode::Async(_)))
        .map(|route| route.name.clone())
        .collect()
}

fn summary(entry: &Entry, dead: bool) -> Value {
    json!({
        "route": entry.route,
        "id": entry.id,
        "state": if dead { "dead" } else { "pending" },
        "delivery_id": entry.delivery_id,
        "accepted_ms": entry.accepted_ms,
        "attempts": entry.attempts,
        "last_error": entry.last_error,
        "method": entry.request.method,
        "target": String::from_utf8_lossy(&entry.request.target),
        "body_bytes": entry.request.body.len(),
    })
}

fn detail(entry: &Entry, dead: bool) -> Value {
    let mut value = summary(entry, dead);
    let headers: Vec<Value> = entry
        .request
        .headers
        .iter()
        .map(|(name, value)| {
            json!([
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(value)
            ])
        })
        .collect();
    value["headers"] = Value::Array(headers);
    value["body_base64"] =
        Value::String(base64::engine::general_purpose::STANDARD.encode(&entry.request.body));
    value
}

/// Runs `operation` for the CLI: through the running gateway's admin listener when one
/// accepts the connection, else on the store directly. Returns the JSON result.
pub fn execute(config: &Config, operation: Operation) -> anyhow::Result<Value> {
    let Some(settings) = &config.queue else {
        anyhow::bail!(
            "{} has no `queue:` block, so there is no queue to inspect; pass the config of \
             the gateway with `delivery: async` routes with -c, or see docs/async.md to set one up",
            config.file.display()
        );
    };
    if let Some(admin) = config.admin {
        match ask_gateway(admin, &operation) {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => return Err(error),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let routes = async_routes(config);
    runtime.block_on(async {
        let queue = Queue::open(settings)?;
        Ok(operation.run(&queue, &routes).await?)
    })
}

/// Sends the operation to the admin listener; `None` when nothing listens there.
fn ask_gateway(admin: SocketAddr, operation: &Operation) -> anyhow::Result<Option<Value>> {
    let target = reachable(admin);
    let mut stream = match TcpStream::connect_timeout(&target, Duration::from_secs(2)) {
        Ok(stream) => stream,
        Err(_) => return Ok(None),
    };
    stream.set_read_timeout(Some(ADMIN_TIMEOUT))?;
    let method = match operation {
        Operation::List { .. } | Operation::Show { .. } => "GET",
        Operation::Retry { .. } | Operation::Purge { .. } => "POST",
    };
    let request = format!(
        "{method} {} HTTP/1.1\r\nHost: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        operation.admin_path()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n");
    let Some(split) = split else {
        anyhow::bail!("the admin listener at {target} sent an incomplete response");
    };
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let status = head.get(9..12).unwrap_or_default();
    if status != "200" {
        anyhow::bail!(
            "queue command failed at the admin listener {target} with status {status}: {}",
            String::from_utf8_lossy(body).trim()
        );
    }
    Ok(Some(serde_json::from_slice(body)?))
}

/// Returns the admin address as a client connects to it: an unspecified address means
/// this host.
fn reachable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), address.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), address.port())
        }
        _ => address,
    }
}

/// Prints a JSON result of `operation` for a person.
pub fn print(operation: &Operation, result: &Value) {
    match operation {
        Operation::List { .. } => {
            let entries = result["entries"].as_array().cloned().unwrap_or_default();
            for entry in &entries {
                println!("{}", summary_line(entry));
            }
            eprintln!("{}", entries_text(entries.len() as u64));
        }
        Operation::Show { .. } => print_detail(&result["entry"]),
        Operation::Retry { .. } => {
            let count = entries_text(result["count"].as_u64().unwrap_or(0));
            println!("{count} moved back to the pending queue");
        }
        Operation::Purge { .. } => {
            let count = entries_text(result["count"].as_u64().unwrap_or(0));
            println!("{count} deleted");
        }
    }
}

fn entries_text(count: u64) -> String {
    if count == 1 {
        "1 entry".to_string()
    } else {
        format!("{count} entries")
    }
}

fn summary_line(entry: &Value) -> String {
    let accepted = entry["accepted_ms"].as_u64().unwrap_or(0);
    let when = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(accepted));
    format!(
        "{}/{}\t{}\t{}\tattempts={}\t{} {}\t{} bytes\t{}",
        text(&entry["route"]),
        text(&entry["id"]),
        text(&entry["state"]),
        when,
        entry["attempts"],
        text(&entry["method"]),
        text(&entry["target"]),
        entry["body_bytes"],
        text(&entry["last_error"]),
    )
}

fn print_detail(entry: &Value) {
    // The caller reports a missing entry on stderr.
    if entry.is_null() {
        return;
    }
    println!("{}", summary_line(entry));
    println!("delivery id: {}", text(&entry["delivery_id"]));
    println!();
    println!("{} {}", text(&entry["method"]), text(&entry["target"]));
    for header in entry["headers"].as_array().into_iter().flatten() {
        println!("{}: {}", text(&header[0]), text(&header[1]));
    }
    println!();
    let body = base64::engine::general_purpose::STANDARD
        .decode(text(&entry["body_base64"]))
        .unwrap_or_default();
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(&body);
    let _ = stdout.write_all(b"\n");
}

fn text(value: &Value) -> String {
    value.as_str().map(str::to_string).unwrap_or_default()
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_path_round_trips() {
        let operation = Operation::Purge {
            selection: Selection {
                route: Some("git hub".to_string()),
                id: Some("17-0".to_string()),
            },
            dead: true,
        };
        let path = operation.admin_path();
        let (path, query) = path.split_once('?').expect("query");
        let parsed = Operation::from_admin(&http::Method::POST, path, Some(query)).expect("parsed");
        let Operation::Purge { selection, dead } = parsed else {
            panic!("not a purge: {parsed:?}");
        };
        assert_eq!(selection.route.as_deref(), Some("git hub"));
        assert_eq!(selection.id.as_deref(), Some("17-0"));
        assert!(dead);
    }

    #[test]
    fn mutating_operations_need_post() {
        assert!(Operation::from_admin(&http::Method::GET, "/queue/purge", None).is_none());
        assert!(Operation::from_admin(&http::Method::GET, "/queue/retry", None).is_none());
        assert!(Operation::from_admin(&http::Method::GET, "/queue/list", None).is_some());
        assert!(Operation::from_admin(&http::Method::GET, "/queue/list", Some("x=1")).is_none());
    }
}

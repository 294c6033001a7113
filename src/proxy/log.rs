//! Per-request record for the optional access log, and the warning raised when one
//! rejection reason suddenly rises. Single rejections are only logged at debug level.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pingora::proxy::Session;

use crate::reject::Reject;

/// Access log record of one request, filled in as the pipeline runs.
#[derive(Default)]
pub struct RequestLog {
    /// Whether the rules the request ran under ask for an access log line.
    pub access_log: bool,
    pub route: Option<String>,
    pub status: Option<u16>,
    pub reason: Option<&'static str>,
    pub body_bytes: Option<usize>,
    pub delivery_id: Option<String>,
    pub started: Option<Instant>,
}

impl RequestLog {
    /// Writes the access log line at info level, under the `hookgate::access` target.
    pub fn emit(&self, session: &Session) {
        let header = session.req_header();
        let client = session
            .client_addr()
            .map(|addr| addr.to_string())
            .unwrap_or_default();
        let duration_ms = self
            .started
            .map(|started| started.elapsed().as_secs_f64() * 1000.0);
        // The path and the delivery id come from requests that may be unverified, so they are
        // cut to a bounded length.
        let path = truncate(header.uri.path(), MAX_LOGGED_LENGTH);
        let delivery_id = self
            .delivery_id
            .as_deref()
            .map(|id| truncate(id, MAX_LOGGED_LENGTH));
        tracing::info!(
            target: "hookgate::access",
            client = %client,
            method = %header.method,
            path,
            route = self.route.as_deref().unwrap_or(""),
            status = self.status,
            reason = self.reason,
            duration_ms,
            body_bytes = self.body_bytes,
            delivery_id,
            "request"
        );
    }
}

/// Longest path or delivery id written to the access log, in bytes.
const MAX_LOGGED_LENGTH: usize = 256;

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Length of the window in which rejections are counted.
const ALARM_WINDOW: Duration = Duration::from_secs(60);

/// Raises one warning per minute at most for each route and reason whose rejections reach
/// `threshold` within a minute.
pub struct RejectAlarm {
    threshold: u64,
    windows: Mutex<HashMap<(String, &'static str), Window>>,
}

struct Window {
    started: Instant,
    count: u64,
    warned: bool,
}

impl RejectAlarm {
    pub fn new(threshold: u64) -> Self {
        RejectAlarm {
            threshold,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one rejection and warns when this minute's count reaches the threshold.
    pub fn record(&self, route: &str, reject: Reject) {
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        let now = Instant::now();
        let window = windows
            .entry((route.to_string(), reject.as_str()))
            .or_insert(Window {
                started: now,
                count: 0,
                warned: false,
            });
        if now.duration_since(window.started) >= ALARM_WINDOW {
            *window = Window {
                started: now,
                count: 0,
                warned: false,
            };
        }
        window.count += 1;
        if window.count >= self.threshold && !window.warned {
            window.warned = true;
            tracing::warn!(
                route,
                reason = reject.as_str(),
                count = window.count,
                "many requests rejected for the same reason in the last minute; see hookgate_rejections_total"
            );
        }
    }
}

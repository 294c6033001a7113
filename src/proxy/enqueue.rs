//! Enqueue stage of `delivery: async` routes: stores a verified request in the delivery queue
//! and acknowledges it once the queue has it durably. A request the queue cannot take gets
//! 503 with `Retry-After`, so the sender keeps it and retries.

use std::time::Duration;

use bytes::Bytes;
use pingora::proxy::Session;

use super::forward;
use super::guards::Refusal;
use super::log::RequestLog;
use crate::config::{AsyncDelivery, Route};
use crate::delivery::{Enqueued, Queue, QueueError, StoredRequest};
use crate::guard;
use crate::metrics::METRICS;
use crate::reject::{self, Reject};

/// `Retry-After` sent with a 503 from the queue.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Stores the request as the upstream will receive it, once per delivery id.
pub async fn store(
    queue: Option<&Queue>,
    session: &Session,
    route: &Route,
    settings: &AsyncDelivery,
    body: Bytes,
    marks: &[(http::HeaderName, Option<String>)],
) -> Result<Enqueued, Refusal> {
    let Some(queue) = queue else {
        tracing::error!(route = %route.name, "delivery: async route without an open queue");
        return Err(unavailable(Reject::QueueUnavailable));
    };
    let headers = &session.req_header().headers;
    let delivery_id = match &route.guards.replay {
        Some(replay) => guard::delivery_id(&replay.id, &route.scheme, headers, &body),
        None => route
            .scheme
            .delivery_id_header()
            .and_then(|name| headers.get(name))
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
    }
    .unwrap_or_default();
    let header = forward::outgoing_request(session, body.len(), marks);
    let request = StoredRequest::capture(&header, body);
    let window = route
        .guards
        .replay
        .as_ref()
        .map_or(Duration::ZERO, |r| r.window);
    match queue
        .enqueue(
            &route.name,
            &delivery_id,
            request,
            settings.max_age + window,
        )
        .await
    {
        Ok(enqueued) => Ok(enqueued),
        Err(QueueError::Full) => {
            tracing::warn!(route = %route.name, "delivery queue full; request rejected with 503");
            Err(unavailable(Reject::QueueFull))
        }
        Err(error) => {
            tracing::error!(route = %route.name, error = %error, "failed to store a request in the delivery queue; rejected with 503");
            Err(unavailable(Reject::QueueUnavailable))
        }
    }
}

/// Responds to the sender of a stored request with the route's `ack_status`.
pub async fn acknowledge(
    session: &mut Session,
    route: &str,
    settings: &AsyncDelivery,
    enqueued: &Enqueued,
    log: &mut RequestLog,
) {
    let (id, duplicate) = match enqueued {
        Enqueued::Accepted { id } => (id, false),
        Enqueued::Duplicate { id } => (id, true),
    };
    let outcome = if duplicate { "duplicate" } else { "queued" };
    METRICS.requests.with_label_values(&[route, outcome]).inc();
    tracing::debug!(route, id = %id, duplicate, "stored for delivery");
    log.status = Some(settings.ack_status);
    log.reason = Some(outcome);
    let body = format!(
        "{{\"queued\":true,\"id\":\"{}\",\"duplicate\":{duplicate}}}\n",
        json_escape(id)
    );
    let mut extra = vec![("x-hookgate-queue-id", id.clone())];
    if duplicate {
        extra.push(("x-hookgate-duplicate", "true".to_string()));
    }
    reject::write_json(session, settings.ack_status, body, &extra).await;
}

fn unavailable(reject: Reject) -> Refusal {
    Refusal {
        reject,
        retry_after: Some(RETRY_AFTER),
    }
}

/// Queue ids are digits or Redis stream ids, but escaping keeps the body valid JSON whatever
/// a backend returns.
fn json_escape(text: &str) -> String {
    serde_json::to_string(text)
        .map(|quoted| quoted.trim_matches('"').to_string())
        .unwrap_or_default()
}

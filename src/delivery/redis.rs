//! The shared broker: one Redis stream per route, read through a consumer group, so that
//! each entry goes to one gateway at a time. An entry leaves the stream once delivered or
//! dead-lettered (`XACK` and `XDEL` together). An entry whose gateway died stays pending, and
//! another gateway claims it once it has been idle for the claim time.
//!
//! Keys, under the configured prefix: `queue:ROUTE` (stream), `dead:ROUTE` (stream of
//! dead-lettered entries) and `queued:ROUTE:ID` (the stream id of a stored delivery id).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::{Client, Script, Value};
use tokio::sync::{Mutex, OnceCell};

use super::request::{Entry, StoredRequest};
use super::{Enqueued, QueueError, RouteStats, Selection};

/// Consumer group that every gateway joins.
const GROUP: &str = "hookgate";
/// Time allowed for one command that does not block.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle time after which a pending entry of another consumer is claimed. A worker touches
/// the entry it works on every 10 seconds, so that only entries of a stopped gateway stay idle
/// this long.
pub const CLAIM_IDLE: Duration = Duration::from_secs(30);

/// Stores an entry unless its delivery id is known; refuses when the stream is full.
/// KEYS: stream, id key (empty for none). ARGV: max entries, id ttl ms, delivery id,
/// accepted ms, method, target, headers, body. Returns {0, id} for a duplicate, {1, id} when
/// stored, {2, ''} when full.
const ENQUEUE_SCRIPT: &str = r"
if KEYS[2] ~= '' then
  local known = redis.call('GET', KEYS[2])
  if known then return {0, known} end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return {2, ''} end
local id = redis.call('XADD', KEYS[1], '*', 'delivery_id', ARGV[3], 'accepted_ms', ARGV[4],
  'method', ARGV[5], 'target', ARGV[6], 'headers', ARGV[7], 'body', ARGV[8])
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], id, 'PX', ARGV[2]) end
return {1, id}
";

/// Moves an entry to the dead-letter stream, unless it is no longer pending in the group
/// because it was purged, or delivered by another gateway. KEYS: stream, dead-letter stream.
/// ARGV: group, entry id, then the fields of the dead-letter entry. Returns 1 when moved.
const BURY_SCRIPT: &str = r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
";

pub struct RedisQueue {
    client: Client,
    prefix: String,
    consumer: String,
    max_entries: usize,
    shared: OnceCell<ConnectionManager>,
    enqueue: Script,
    bury: Script,
    /// Idle connections for blocking reads. Each read takes one for itself, because Redis runs
    /// the commands of one connection in turn, so blocking reads that share a connection wait
    /// for each other and time out.
    readers: Mutex<Vec<MultiplexedConnection>>,
    /// Routes whose consumer group exists.
    groups: Mutex<Vec<String>>,
}

impl RedisQueue {
    pub fn new(
        url: &str,
        prefix: &str,
        consumer: &str,
        max_entries: usize,
    ) -> Result<Self, QueueError> {
        let client = Client::open(url).map_err(|e| {
            QueueError::Unavailable(format!("invalid Redis URL in queue.redis: {e}"))
        })?;
        Ok(RedisQueue {
            client,
            prefix: prefix.to_string(),
            consumer: consumer.to_string(),
            max_entries,
            shared: OnceCell::new(),
            enqueue: Script::new(ENQUEUE_SCRIPT),
            bury: Script::new(BURY_SCRIPT),
            readers: Mutex::new(Vec::new()),
            groups: Mutex::new(Vec::new()),
        })
    }

    fn stream(&self, route: &str) -> String {
        format!("{}queue:{route}", self.prefix)
    }

    fn dead_stream(&self, route: &str) -> String {
        format!("{}dead:{route}", self.prefix)
    }

    async fn connection(&self) -> Result<ConnectionManager, QueueError> {
        self.manager().await.map_err(failed)
    }

    async fn manager(&self) -> redis::RedisResult<ConnectionManager> {
        let manager = self
            .shared
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(COMMAND_TIMEOUT))
                    .set_response_timeout(Some(COMMAND_TIMEOUT))
                    .set_number_of_retries(1);
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }

    pub async fn enqueue(
        &self,
        route: &str,
        delivery_id: &str,
        request: StoredRequest,
        keep_id: Duration,
    ) -> Result<Enqueued, QueueError> {
        let mut connection = self.connection().await?;
        let id_key = if delivery_id.is_empty() {
            String::new()
        } else {
            format!("{}queued:{route}:{delivery_id}", self.prefix)
        };
        let (code, id): (u8, String) = self
            .enqueue
            .key(self.stream(route))
            .key(id_key)
            .arg(self.max_entries)
            .arg(
                u64::try_from(keep_id.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            )
            .arg(delivery_id)
            .arg(super::request::now_ms())
            .arg(&request.method)
            .arg(&request.target)
            .arg(request.encode_headers())
            .arg(request.body.as_ref())
            .invoke_async(&mut connection)
            .await
            .map_err(failed)?;
        match code {
            0 => Ok(Enqueued::Duplicate { id }),
            1 => Ok(Enqueued::Accepted { id }),
            _ => Err(QueueError::Full),
        }
    }

    async fn ensure_group(&self, route: &str) -> redis::RedisResult<()> {
        let mut groups = self.groups.lock().await;
        if groups.iter().any(|known| known == route) {
            return Ok(());
        }
        let mut connection = self.manager().await?;
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.stream(route))
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut connection)
            .await;
        match created {
            Ok(()) => {}
            Err(error) if error.code() == Some("BUSYGROUP") => {}
            Err(error) => return Err(error),
        }
        groups.push(route.to_string());
        Ok(())
    }

    /// Takes an entry of `route`: first one that another consumer left idle for
    /// [`CLAIM_IDLE`], else a new one, blocking up to `wait`.
    pub async fn take(&self, route: &str, wait: Duration) -> Result<Option<Entry>, QueueError> {
        let taken = self.read_one(route, wait).await;
        if let Err(error) = &taken {
            self.forget(route, error).await;
        }
        taken.map_err(failed)
    }

    async fn read_one(&self, route: &str, wait: Duration) -> redis::RedisResult<Option<Entry>> {
        self.ensure_group(route).await?;
        let stream = self.stream(route);
        let mut connection = self.manager().await?;
        let claimed: Value = redis::cmd("XAUTOCLAIM")
            .arg(&stream)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(millis(CLAIM_IDLE))
            .arg("0-0")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut connection)
            .await?;
        if let Some(entry) = entries(route, &claimed).into_iter().next() {
            return Ok(Some(entry));
        }

        let mut reader = self.reader(wait).await?;
        let read: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(millis(wait))
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut reader)
            .await?;
        // Only a connection that replied goes back to the pool. A `MultiplexedConnection`
        // (redis 1.x) never reconnects, so one that failed, as after a Redis restart, is dropped.
        self.readers.lock().await.push(reader);
        Ok(entries(route, &read).into_iter().next())
    }

    /// Forgets the consumer group of `route` after a failed read, so that the next `take`
    /// creates it again. A Redis that restarted without persistence has lost it.
    async fn forget(&self, route: &str, error: &redis::RedisError) {
        tracing::debug!(route, error = %error, "a Redis read failed; the consumer group will be created again");
        self.groups.lock().await.retain(|known| known != route);
    }

    /// Takes an idle reader connection from the pool, or opens one whose replies may take
    /// `wait` plus the command timeout.
    async fn reader(&self, wait: Duration) -> redis::RedisResult<MultiplexedConnection> {
        if let Some(connection) = self.readers.lock().await.pop() {
            return Ok(connection);
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(wait + COMMAND_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Resets the idle time of a held entry, so that no other gateway claims it. Returns false
    /// when the entry is no longer pending in the group, as after a purge.
    pub async fn touch(&self, entry: &Entry) -> Result<bool, QueueError> {
        let mut connection = self.connection().await?;
        let claimed: Value = redis::cmd("XCLAIM")
            .arg(self.stream(&entry.route))
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(0)
            .arg(&entry.id)
            .arg("JUSTID")
            .query_async(&mut connection)
            .await
            .map_err(failed)?;
        Ok(matches!(claimed, Value::Array(ids) if !ids.is_empty()))
    }

    pub async fn delivered(&self, entry: &Entry) -> Result<(), QueueError> {
        let mut connection = self.connection().await?;
        let stream = self.stream(&entry.route);
        redis::pipe()
            .atomic()
            .cmd("XACK")
            .arg(&stream)
            .arg(GROUP)
            .arg(&entry.id)
            .cmd("XDEL")
            .arg(&stream)
            .arg(&entry.id)
            .query_async::<Value>(&mut connection)
            .await
            .map(drop)
            .map_err(failed)
    }

    pub async fn dead_letter(&self, entry: &Entry) -> Result<(), QueueError> {
        let mut connection = self.connection().await?;
        let stream = self.stream(&entry.route);
        let request = &entry.request;
        self.bury
            .key(&stream)
            .key(self.dead_stream(&entry.route))
            .arg(GROUP)
            .arg(&entry.id)
            .arg("delivery_id")
            .arg(&entry.delivery_id)
            .arg("accepted_ms")
            .arg(entry.accepted_ms)
            .arg("attempts")
            .arg(entry.attempts)
            .arg("last_error")
            .arg(&entry.last_error)
            .arg("method")
            .arg(&request.method)
            .arg("target")
            .arg(&request.target)
            .arg("headers")
            .arg(request.encode_headers())
            .arg("body")
            .arg(request.body.as_ref())
            .invoke_async::<Value>(&mut connection)
            .await
            .map(drop)
            .map_err(failed)
    }

    pub async fn list(
        &self,
        routes: &[String],
        selection: &Selection,
        dead: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, QueueError> {
        // XRANGE fails on an id that is not a stream id, which would read as an outage.
        if selection.id.as_deref().is_some_and(|id| !is_stream_id(id)) {
            return Ok(Vec::new());
        }
        let mut connection = self.connection().await?;
        // A named route is read even when no async route has that name any more, so that the
        // entries of a removed or renamed route can still be listed, retried and purged.
        let routes = match &selection.route {
            Some(route) => std::slice::from_ref(route),
            None => routes,
        };
        let mut found = Vec::new();
        for route in routes {
            let stream = if dead {
                self.dead_stream(route)
            } else {
                self.stream(route)
            };
            let (start, end) = match &selection.id {
                Some(id) => (id.clone(), id.clone()),
                None => ("-".to_string(), "+".to_string()),
            };
            let range: Value = redis::cmd("XRANGE")
                .arg(&stream)
                .arg(start)
                .arg(end)
                .arg("COUNT")
                .arg(count_arg(limit.saturating_sub(found.len())))
                .query_async(&mut connection)
                .await
                .map_err(failed)?;
            found.extend(entries(route, &range));
            if found.len() >= limit {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    pub async fn retry(
        &self,
        routes: &[String],
        selection: &Selection,
    ) -> Result<usize, QueueError> {
        let chosen = self.list(routes, selection, true, usize::MAX).await?;
        let mut connection = self.connection().await?;
        for entry in &chosen {
            let request = &entry.request;
            redis::pipe()
                .atomic()
                .cmd("XADD")
                .arg(self.stream(&entry.route))
                .arg("*")
                .arg("delivery_id")
                .arg(&entry.delivery_id)
                .arg("accepted_ms")
                .arg(super::request::now_ms())
                .arg("method")
                .arg(&request.method)
                .arg("target")
                .arg(&request.target)
                .arg("headers")
                .arg(request.encode_headers())
                .arg("body")
                .arg(request.body.as_ref())
                .cmd("XDEL")
                .arg(self.dead_stream(&entry.route))
                .arg(&entry.id)
                .query_async::<Value>(&mut connection)
                .await
                .map_err(failed)?;
        }
        Ok(chosen.len())
    }

    pub async fn purge(
        &self,
        routes: &[String],
        selection: &Selection,
        dead: bool,
    ) -> Result<usize, QueueError> {
        let chosen = self.list(routes, selection, dead, usize::MAX).await?;
        let mut connection = self.connection().await?;
        for entry in &chosen {
            let mut pipe = redis::pipe();
            pipe.atomic();
            if dead {
                pipe.cmd("XDEL")
                    .arg(self.dead_stream(&entry.route))
                    .arg(&entry.id);
            } else {
                let stream = self.stream(&entry.route);
                pipe.cmd("XACK").arg(&stream).arg(GROUP).arg(&entry.id);
                pipe.cmd("XDEL").arg(&stream).arg(&entry.id);
            }
            pipe.query_async::<Value>(&mut connection)
                .await
                .map_err(failed)?;
        }
        Ok(chosen.len())
    }

    /// Reads the stream lengths and the oldest entry's time of `routes`. A route whose
    /// commands fail is left out, so its gauges keep their last value.
    pub async fn stats(&self, routes: &[String]) -> Vec<RouteStats> {
        let Ok(mut connection) = self.connection().await else {
            return Vec::new();
        };
        let mut stats = Vec::new();
        for route in routes {
            let reply: Result<(usize, usize, Value), _> = redis::pipe()
                .cmd("XLEN")
                .arg(self.stream(route))
                .cmd("XLEN")
                .arg(self.dead_stream(route))
                .cmd("XRANGE")
                .arg(self.stream(route))
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut connection)
                .await;
            let Ok((depth, dead, first)) = reply else {
                continue;
            };
            let oldest_ms = entries(route, &first)
                .first()
                .map(|entry| entry.accepted_ms);
            stats.push(RouteStats {
                route: route.clone(),
                depth,
                dead,
                oldest_ms,
            });
        }
        stats
    }
}

/// Finds the stream entries in a reply of XRANGE, XREADGROUP or XAUTOCLAIM: arrays of
/// `[id, [field, value, …]]`, at whatever depth the command nests them.
fn entries(route: &str, reply: &Value) -> Vec<Entry> {
    let mut found = Vec::new();
    collect(route, reply, &mut found);
    found
}

fn collect(route: &str, value: &Value, found: &mut Vec<Entry>) {
    let items = match value {
        Value::Array(items) => items,
        Value::Map(pairs) => {
            for (_, value) in pairs {
                collect(route, value, found);
            }
            return;
        }
        _ => return,
    };
    if let [Value::BulkString(id), Value::Array(fields)] = items.as_slice() {
        if fields.len() % 2 == 0 && !fields.is_empty() {
            found.extend(entry(route, id, fields));
            return;
        }
    }
    for item in items {
        collect(route, item, found);
    }
}

fn entry(route: &str, id: &[u8], fields: &[Value]) -> Option<Entry> {
    let mut map: HashMap<&[u8], &[u8]> = HashMap::new();
    for pair in fields.chunks(2) {
        if let [Value::BulkString(name), Value::BulkString(value)] = pair {
            map.insert(name.as_slice(), value.as_slice());
        }
    }
    let text = |name: &str| {
        String::from_utf8_lossy(map.get(name.as_bytes()).copied().unwrap_or_default()).into_owned()
    };
    let number = |name: &str| text(name).parse::<u64>().unwrap_or(0);
    Some(Entry {
        route: route.to_string(),
        id: String::from_utf8_lossy(id).into_owned(),
        delivery_id: text("delivery_id"),
        accepted_ms: number("accepted_ms"),
        attempts: u32::try_from(number("attempts")).unwrap_or(u32::MAX),
        last_error: text("last_error"),
        request: StoredRequest {
            method: text("method"),
            target: map.get(b"target".as_slice())?.to_vec(),
            headers: StoredRequest::decode_headers(
                map.get(b"headers".as_slice()).copied().unwrap_or_default(),
            ),
            body: Bytes::copy_from_slice(map.get(b"body".as_slice()).copied().unwrap_or_default()),
        },
    })
}

/// Returns true when `id` has the form of a stream entry id: `MS` or `MS-SEQ`, each a 64-bit
/// unsigned decimal number.
fn is_stream_id(id: &str) -> bool {
    let digits =
        |part: &str| part.bytes().all(|b| b.is_ascii_digit()) && part.parse::<u64>().is_ok();
    match id.split_once('-') {
        Some((ms, seq)) => digits(ms) && digits(seq),
        None => digits(id),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn failed(error: redis::RedisError) -> QueueError {
    QueueError::Unavailable(format!("Redis: {error}"))
}

/// Converts `count` to a `COUNT` argument, because Redis takes a signed 64-bit count of at
/// least 1.
fn count_arg(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX).max(1)
}

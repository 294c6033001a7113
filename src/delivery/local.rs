//! The local queue: one redb file in `queue.dir`, written by a single thread that commits
//! waiting writes together and fsyncs each commit before any of them is acknowledged.
//!
//! redb commits are atomic and durable once `commit` returns (with the default `Immediate`
//! durability), so a request acknowledged with 202 survives `kill -9` and power loss. redb
//! also takes an exclusive lock on the file, so one process at a time opens it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::{oneshot, Notify};

use super::request::{Entry, StoredRequest};
use super::{Enqueued, QueueError, RouteStats, Selection};

mod writer;

use writer::{Change, Write, Writer};

/// Delivery id, accepted at (Unix ms), attempts, last error, method, target, headers, body.
type Record = (
    &'static str,
    u64,
    u32,
    &'static str,
    &'static str,
    &'static [u8],
    &'static [u8],
    &'static [u8],
);

/// Requests waiting for delivery, by route and sequence number.
const PENDING: TableDefinition<(&str, u64), Record> = TableDefinition::new("pending");
/// Requests that will not be tried again, by route and sequence number.
const DEAD: TableDefinition<(&str, u64), Record> = TableDefinition::new("dead");
/// Sequence number of each stored delivery id, by route and id.
const IDS: TableDefinition<(&str, &str), u64> = TableDefinition::new("ids");
/// Counters: `next_seq`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Most writes committed together in one fsync.
const MAX_BATCH: usize = 256;
/// Memory redb may use for its page cache.
const CACHE_BYTES: usize = 16 << 20;

pub struct LocalQueue {
    db: Arc<Database>,
    writer: mpsc::Sender<Write>,
    index: Arc<Mutex<Index>>,
    file: PathBuf,
    /// Cleared by the first failed commit. redb then fails every later read and write of
    /// this process, so the gateway needs a restart, which recovers the file.
    healthy: Arc<AtomicBool>,
}

/// In-memory view of the file: what waits per route and the totals the limits apply to.
#[derive(Default)]
struct Index {
    routes: HashMap<String, RouteIndex>,
    entries: usize,
    bytes: usize,
}

#[derive(Default)]
struct RouteIndex {
    /// Accepted-at time (Unix ms) of every pending request, by sequence number.
    pending: BTreeMap<u64, u64>,
    /// Pending requests that no worker holds.
    waiting: BTreeSet<u64>,
    dead: usize,
    notify: Arc<Notify>,
}

impl LocalQueue {
    /// Opens or creates the queue `file`, and its directory; fails when another process has
    /// it open.
    pub fn open(
        file: &Path,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<LocalQueue, QueueError> {
        let file = file.to_path_buf();
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                QueueError::Unavailable(format!(
                    "cannot create queue directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&file)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => QueueError::Locked(file.clone()),
                other => {
                    QueueError::Unavailable(format!("cannot open {}: {other}", file.display()))
                }
            })?;
        let db = Arc::new(db);
        let (index, next_seq) = load_index(&db)?;
        let index = Arc::new(Mutex::new(index));
        let (writer, requests) = mpsc::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let thread = Writer {
            db: Arc::clone(&db),
            index: Arc::clone(&index),
            healthy: Arc::clone(&healthy),
            next_seq,
            max_entries,
            max_bytes,
        };
        std::thread::Builder::new()
            .name("hookgate-queue".to_string())
            .spawn(move || thread.run(requests))
            .map_err(|e| QueueError::Unavailable(format!("cannot start the queue writer: {e}")))?;
        Ok(LocalQueue {
            db,
            writer,
            index,
            file,
            healthy,
        })
    }

    /// Fails once a commit has failed; see `healthy`.
    pub fn health(&self) -> Result<(), QueueError> {
        if self.healthy.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(QueueError::Unavailable(format!(
            "a write to {} failed; restart the gateway to recover the queue file",
            self.file.display()
        )))
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub async fn enqueue(
        &self,
        route: &str,
        delivery_id: &str,
        request: StoredRequest,
    ) -> Result<Enqueued, QueueError> {
        let (reply, answer) = oneshot::channel();
        let write = Write::Enqueue {
            route: route.to_string(),
            delivery_id: delivery_id.to_string(),
            request,
            reply,
        };
        self.writer.send(write).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    async fn change(&self, change: Change) -> Result<usize, QueueError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Write::Change { change, reply })
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Takes the oldest waiting request of `route`, waiting up to `wait` for one.
    pub async fn take(&self, route: &str, wait: Duration) -> Result<Option<Entry>, QueueError> {
        let notify = {
            let mut index = lock(&self.index);
            let route_index = index.routes.entry(route.to_string()).or_default();
            Arc::clone(&route_index.notify)
        };
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(entry) = self.pop(route)? {
            return Ok(Some(entry));
        }
        let _ = tokio::time::timeout(wait, notified).await;
        self.pop(route)
    }

    fn pop(&self, route: &str) -> Result<Option<Entry>, QueueError> {
        loop {
            let seq = {
                let mut index = lock(&self.index);
                let Some(route_index) = index.routes.get_mut(route) else {
                    return Ok(None);
                };
                let Some(seq) = route_index.waiting.pop_first() else {
                    return Ok(None);
                };
                seq
            };
            // An entry purged after it was indexed is skipped.
            match self.read(PENDING, route, seq) {
                Ok(Some(entry)) => return Ok(Some(entry)),
                Ok(None) => {}
                Err(error) => {
                    let mut index = lock(&self.index);
                    if let Some(route_index) = index.routes.get_mut(route) {
                        route_index.waiting.insert(seq);
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Puts a taken request back, for a worker that stops before it is settled.
    pub fn release(&self, entry: &Entry) {
        let Ok(seq) = entry.id.parse::<u64>() else {
            return;
        };
        let mut index = lock(&self.index);
        if let Some(route_index) = index.routes.get_mut(&entry.route) {
            if route_index.pending.contains_key(&seq) {
                route_index.waiting.insert(seq);
                route_index.notify.notify_one();
            }
        }
    }

    pub async fn delivered(&self, entry: &Entry) -> Result<(), QueueError> {
        self.change(Change::Delivered(entry.clone()))
            .await
            .map(drop)
    }

    /// Records a failed attempt; returns false when the entry is no longer pending.
    pub async fn record_failure(&self, entry: &Entry) -> Result<bool, QueueError> {
        let changed = self.change(Change::Failed(entry.clone())).await?;
        Ok(changed > 0)
    }

    pub async fn dead_letter(&self, entry: &Entry) -> Result<(), QueueError> {
        self.change(Change::DeadLetter(entry.clone()))
            .await
            .map(drop)
    }

    pub async fn retry(&self, selection: Selection) -> Result<usize, QueueError> {
        self.change(Change::Retry(selection)).await
    }

    pub async fn purge(&self, selection: Selection, dead: bool) -> Result<usize, QueueError> {
        self.change(Change::Purge(selection, dead)).await
    }

    /// Lists the entries of `selection`, pending or dead-lettered, oldest first.
    pub fn list(
        &self,
        selection: &Selection,
        dead: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, QueueError> {
        let table = if dead { DEAD } else { PENDING };
        let read = self.db.begin_read().map_err(storage)?;
        let table = match read.open_table(table) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(storage(e)),
        };
        let mut entries = Vec::new();
        for item in table.iter().map_err(storage)? {
            let (key, value) = item.map_err(storage)?;
            let (route, seq) = key.value();
            if !selection.matches(route, &seq.to_string()) {
                continue;
            }
            entries.push(entry_from(route, seq, value.value()));
            if entries.len() >= limit {
                break;
            }
        }
        Ok(entries)
    }

    fn read(
        &self,
        table: TableDefinition<(&str, u64), Record>,
        route: &str,
        seq: u64,
    ) -> Result<Option<Entry>, QueueError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = match read.open_table(table) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        let found = table.get(&(route, seq)).map_err(storage)?;
        Ok(found.map(|value| entry_from(route, seq, value.value())))
    }

    /// Depth, dead-letter count and oldest pending acceptance time of every known route.
    pub fn stats(&self) -> Vec<RouteStats> {
        let index = lock(&self.index);
        index
            .routes
            .iter()
            .map(|(route, route_index)| RouteStats {
                route: route.clone(),
                depth: route_index.pending.len(),
                dead: route_index.dead,
                oldest_ms: route_index
                    .pending
                    .first_key_value()
                    .map(|(_, accepted)| *accepted),
            })
            .collect()
    }

    /// Bytes of stored requests, pending and dead-lettered.
    pub fn bytes(&self) -> usize {
        lock(&self.index).bytes
    }
}

fn lock(index: &Mutex<Index>) -> MutexGuard<'_, Index> {
    index
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn writer_gone() -> QueueError {
    QueueError::Unavailable("the queue writer thread has stopped".to_string())
}

fn storage(error: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(error.to_string())
}

fn entry_from(route: &str, seq: u64, record: <Record as redb::Value>::SelfType<'_>) -> Entry {
    let (delivery_id, accepted_ms, attempts, last_error, method, target, headers, body) = record;
    Entry {
        route: route.to_string(),
        id: seq.to_string(),
        delivery_id: delivery_id.to_string(),
        accepted_ms,
        attempts,
        last_error: last_error.to_string(),
        request: StoredRequest {
            method: method.to_string(),
            target: target.to_vec(),
            headers: StoredRequest::decode_headers(headers),
            body: Bytes::copy_from_slice(body),
        },
    }
}

/// Reads every entry's route, sequence number and size, and the next sequence number.
fn load_index(db: &Database) -> Result<(Index, u64), QueueError> {
    let write = db.begin_write().map_err(storage)?;
    let mut index = Index::default();
    let mut next_seq = 1;
    {
        let meta = write.open_table(META).map_err(storage)?;
        if let Some(value) = meta.get("next_seq").map_err(storage)? {
            next_seq = value.value();
        }
        for (table, dead) in [(PENDING, false), (DEAD, true)] {
            let table = write.open_table(table).map_err(storage)?;
            for item in table.iter().map_err(storage)? {
                let (key, value) = item.map_err(storage)?;
                let (route, seq) = key.value();
                let entry = entry_from(route, seq, value.value());
                let size = entry.request.size();
                index.entries += 1;
                index.bytes += size;
                next_seq = next_seq.max(seq + 1);
                let route_index = index.routes.entry(route.to_string()).or_default();
                if dead {
                    route_index.dead += 1;
                } else {
                    route_index.pending.insert(seq, entry.accepted_ms);
                    route_index.waiting.insert(seq);
                }
            }
        }
        let _ = write.open_table(IDS).map_err(storage)?;
    }
    write.commit().map_err(storage)?;
    Ok((index, next_seq))
}

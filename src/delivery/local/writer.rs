//! The writer thread of the local queue: it owns every write transaction, applies the
//! writes that wait together in one commit, and updates the in-memory index only after the
//! commit succeeded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};
use tokio::sync::oneshot;

use super::{entry_from, lock, storage, Index, Record, DEAD, IDS, MAX_BATCH, META, PENDING};
use crate::delivery::request::{now_ms, Entry, StoredRequest};
use crate::delivery::{Enqueued, QueueError, Selection};

/// A write for the writer thread, replied to once its batch is committed.
pub(super) enum Write {
    Enqueue {
        route: String,
        delivery_id: String,
        request: StoredRequest,
        reply: oneshot::Sender<Result<Enqueued, QueueError>>,
    },
    /// Any other change to one or more entries.
    Change {
        change: Change,
        reply: oneshot::Sender<Result<usize, QueueError>>,
    },
}

pub(super) enum Change {
    Delivered(Entry),
    Failed(Entry),
    DeadLetter(Entry),
    Retry(Selection),
    Purge(Selection, bool),
}

/// Effect of a committed write on the index.
enum Effect {
    Added {
        route: String,
        seq: u64,
        accepted: u64,
        size: usize,
    },
    Removed {
        route: String,
        seq: u64,
        size: usize,
    },
    Buried {
        route: String,
        seq: u64,
    },
    Revived {
        route: String,
        seq: u64,
        accepted: u64,
    },
    DeadRemoved {
        route: String,
        size: usize,
    },
}

/// The thread that owns every write transaction.
pub(super) struct Writer {
    pub(super) db: Arc<Database>,
    pub(super) index: Arc<Mutex<Index>>,
    pub(super) healthy: Arc<AtomicBool>,
    pub(super) next_seq: u64,
    pub(super) max_entries: usize,
    pub(super) max_bytes: usize,
}

/// Reply of one write, sent once the batch is committed.
enum Reply {
    Enqueue(
        oneshot::Sender<Result<Enqueued, QueueError>>,
        Result<Enqueued, QueueError>,
    ),
    Change(
        oneshot::Sender<Result<usize, QueueError>>,
        Result<usize, QueueError>,
    ),
}

impl Writer {
    pub(super) fn run(mut self, requests: mpsc::Receiver<Write>) {
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match requests.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
    }

    /// Applies a batch in one transaction. When the commit fails, every write in it fails.
    fn commit(&mut self, batch: Vec<Write>) {
        let started = std::time::Instant::now();
        let mut replies = Vec::with_capacity(batch.len());
        let mut effects = Vec::new();
        let (entries, bytes) = {
            let index = lock(&self.index);
            (index.entries, index.bytes)
        };
        let mut totals = (entries, bytes);
        let next_seq = self.next_seq;
        let outcome = self.db.begin_write().map_err(storage).and_then(|txn| {
            for write in batch {
                match write {
                    Write::Enqueue {
                        route,
                        delivery_id,
                        request,
                        reply,
                    } => {
                        let result = self.enqueue(
                            &txn,
                            &route,
                            &delivery_id,
                            &request,
                            &mut totals,
                            &mut effects,
                        );
                        replies.push(Reply::Enqueue(reply, result));
                    }
                    Write::Change { change, reply } => {
                        let result = apply(&txn, change, &mut effects);
                        replies.push(Reply::Change(reply, result));
                    }
                }
            }
            if self.next_seq != next_seq {
                let mut meta = txn.open_table(META).map_err(storage)?;
                meta.insert("next_seq", self.next_seq).map_err(storage)?;
            }
            txn.commit().map_err(storage)
        });
        crate::metrics::METRICS
            .queue_commit_duration
            .observe(started.elapsed().as_secs_f64());
        if let Err(error) = outcome {
            tracing::error!(error = %error, writes = replies.len(), "queue commit failed; its writes are not stored, and the queue rejects every request until the gateway restarts");
            self.healthy.store(false, Ordering::Release);
            self.next_seq = next_seq;
            for reply in replies {
                match reply {
                    Reply::Enqueue(tx, _) => drop(tx.send(Err(error.clone()))),
                    Reply::Change(tx, _) => drop(tx.send(Err(error.clone()))),
                }
            }
            return;
        }
        self.apply_effects(effects);
        for reply in replies {
            match reply {
                Reply::Enqueue(tx, result) => drop(tx.send(result)),
                Reply::Change(tx, result) => drop(tx.send(result)),
            }
        }
    }

    fn enqueue(
        &mut self,
        txn: &WriteTransaction,
        route: &str,
        delivery_id: &str,
        request: &StoredRequest,
        totals: &mut (usize, usize),
        effects: &mut Vec<Effect>,
    ) -> Result<Enqueued, QueueError> {
        let mut ids = txn.open_table(IDS).map_err(storage)?;
        if !delivery_id.is_empty() {
            if let Some(seq) = ids.get(&(route, delivery_id)).map_err(storage)? {
                return Ok(Enqueued::Duplicate {
                    id: seq.value().to_string(),
                });
            }
        }
        let size = request.size();
        if totals.0 >= self.max_entries || totals.1 + size > self.max_bytes {
            return Err(QueueError::Full);
        }
        let seq = self.next_seq;
        let accepted = now_ms();
        let headers = request.encode_headers();
        let mut pending = txn.open_table(PENDING).map_err(storage)?;
        let record = (
            delivery_id,
            accepted,
            0u32,
            "",
            request.method.as_str(),
            request.target.as_slice(),
            headers.as_slice(),
            request.body.as_ref(),
        );
        pending.insert(&(route, seq), &record).map_err(storage)?;
        if !delivery_id.is_empty() {
            ids.insert(&(route, delivery_id), seq).map_err(storage)?;
        }
        self.next_seq += 1;
        *totals = (totals.0 + 1, totals.1 + size);
        effects.push(Effect::Added {
            route: route.to_string(),
            seq,
            accepted,
            size,
        });
        Ok(Enqueued::Accepted {
            id: seq.to_string(),
        })
    }

    fn apply_effects(&self, effects: Vec<Effect>) {
        let mut index = lock(&self.index);
        for effect in effects {
            match effect {
                Effect::Added {
                    route,
                    seq,
                    accepted,
                    size,
                } => {
                    index.entries += 1;
                    index.bytes += size;
                    let route_index = index.routes.entry(route).or_default();
                    route_index.pending.insert(seq, accepted);
                    route_index.waiting.insert(seq);
                    route_index.notify.notify_one();
                }
                Effect::Removed { route, seq, size } => {
                    index.entries = index.entries.saturating_sub(1);
                    index.bytes = index.bytes.saturating_sub(size);
                    let route_index = index.routes.entry(route).or_default();
                    route_index.pending.remove(&seq);
                    route_index.waiting.remove(&seq);
                }
                Effect::Buried { route, seq } => {
                    let route_index = index.routes.entry(route).or_default();
                    route_index.pending.remove(&seq);
                    route_index.waiting.remove(&seq);
                    route_index.dead += 1;
                }
                Effect::Revived {
                    route,
                    seq,
                    accepted,
                } => {
                    let route_index = index.routes.entry(route).or_default();
                    route_index.dead = route_index.dead.saturating_sub(1);
                    route_index.pending.insert(seq, accepted);
                    route_index.waiting.insert(seq);
                    route_index.notify.notify_one();
                }
                Effect::DeadRemoved { route, size } => {
                    index.entries = index.entries.saturating_sub(1);
                    index.bytes = index.bytes.saturating_sub(size);
                    let route_index = index.routes.entry(route).or_default();
                    route_index.dead = route_index.dead.saturating_sub(1);
                }
            }
        }
    }
}

/// Applies one change inside the batch's transaction; returns the entries it touched.
fn apply(
    txn: &WriteTransaction,
    change: Change,
    effects: &mut Vec<Effect>,
) -> Result<usize, QueueError> {
    match change {
        Change::Delivered(entry) => {
            let Some(seq) = entry_seq(&entry) else {
                return Ok(0);
            };
            let removed = remove_entry(txn, PENDING, &entry.route, seq)?;
            if let Some(size) = removed {
                effects.push(Effect::Removed {
                    route: entry.route,
                    seq,
                    size,
                });
            }
            Ok(usize::from(removed.is_some()))
        }
        Change::Failed(entry) => {
            let Some(seq) = entry_seq(&entry) else {
                return Ok(0);
            };
            let mut pending = txn.open_table(PENDING).map_err(storage)?;
            let exists = pending
                .get(&(entry.route.as_str(), seq))
                .map_err(storage)?
                .is_some();
            if exists {
                write_record(&mut pending, &entry, seq)?;
            }
            Ok(usize::from(exists))
        }
        Change::DeadLetter(entry) => {
            let Some(seq) = entry_seq(&entry) else {
                return Ok(0);
            };
            let mut pending = txn.open_table(PENDING).map_err(storage)?;
            let exists = pending
                .remove(&(entry.route.as_str(), seq))
                .map_err(storage)?
                .is_some();
            drop(pending);
            if exists {
                let mut dead = txn.open_table(DEAD).map_err(storage)?;
                write_record(&mut dead, &entry, seq)?;
                effects.push(Effect::Buried {
                    route: entry.route,
                    seq,
                });
            }
            Ok(usize::from(exists))
        }
        Change::Retry(selection) => {
            let chosen = select(txn, DEAD, &selection)?;
            let mut dead = txn.open_table(DEAD).map_err(storage)?;
            let mut pending = txn.open_table(PENDING).map_err(storage)?;
            for (route, seq) in &chosen {
                let Some(value) = dead.remove(&(route.as_str(), *seq)).map_err(storage)? else {
                    continue;
                };
                let mut entry = entry_from(route, *seq, value.value());
                drop(value);
                // A retried request gets a fresh `max_age`, or one dead-lettered for its age
                // would come straight back.
                entry.attempts = 0;
                entry.accepted_ms = now_ms();
                entry.last_error.clear();
                write_record(&mut pending, &entry, *seq)?;
                effects.push(Effect::Revived {
                    route: route.clone(),
                    seq: *seq,
                    accepted: entry.accepted_ms,
                });
            }
            Ok(chosen.len())
        }
        Change::Purge(selection, from_dead) => {
            let table = if from_dead { DEAD } else { PENDING };
            let chosen = select(txn, table, &selection)?;
            for (route, seq) in &chosen {
                let Some(size) = remove_entry(txn, table, route, *seq)? else {
                    continue;
                };
                effects.push(if from_dead {
                    Effect::DeadRemoved {
                        route: route.clone(),
                        size,
                    }
                } else {
                    Effect::Removed {
                        route: route.clone(),
                        seq: *seq,
                        size,
                    }
                });
            }
            Ok(chosen.len())
        }
    }
}

fn entry_seq(entry: &Entry) -> Option<u64> {
    entry.id.parse().ok()
}

/// Removes an entry and its delivery id; returns its size when it existed.
fn remove_entry(
    txn: &WriteTransaction,
    table: TableDefinition<(&str, u64), Record>,
    route: &str,
    seq: u64,
) -> Result<Option<usize>, QueueError> {
    let mut table = txn.open_table(table).map_err(storage)?;
    let Some(value) = table.remove(&(route, seq)).map_err(storage)? else {
        return Ok(None);
    };
    let entry = entry_from(route, seq, value.value());
    drop(value);
    if !entry.delivery_id.is_empty() {
        let mut ids = txn.open_table(IDS).map_err(storage)?;
        ids.remove(&(route, entry.delivery_id.as_str()))
            .map_err(storage)?;
    }
    Ok(Some(entry.request.size()))
}

fn write_record(
    table: &mut redb::Table<(&str, u64), Record>,
    entry: &Entry,
    seq: u64,
) -> Result<(), QueueError> {
    let request = &entry.request;
    let headers = request.encode_headers();
    let record = (
        entry.delivery_id.as_str(),
        entry.accepted_ms,
        entry.attempts,
        entry.last_error.as_str(),
        request.method.as_str(),
        request.target.as_slice(),
        headers.as_slice(),
        request.body.as_ref(),
    );
    table
        .insert(&(entry.route.as_str(), seq), &record)
        .map_err(storage)?;
    Ok(())
}

/// Keys of the entries in `table` that `selection` names.
fn select(
    txn: &WriteTransaction,
    table: TableDefinition<(&str, u64), Record>,
    selection: &Selection,
) -> Result<Vec<(String, u64)>, QueueError> {
    let table = txn.open_table(table).map_err(storage)?;
    let mut keys = Vec::new();
    for item in table.iter().map_err(storage)? {
        let (key, _) = item.map_err(storage)?;
        let (route, seq) = key.value();
        if selection.matches(route, &seq.to_string()) {
            keys.push((route.to_string(), seq));
        }
    }
    Ok(keys)
}

//! The group-commit writer of [`crate::RedbLogStore`]: one thread owns every write
//! transaction. It takes all operations queued since its last commit, applies them in order in
//! one transaction, commits (an fsync), then reports: openraft's flush callbacks for appended
//! entries, and a reply for callers that wait (votes, truncation, purges).

use crate::log_redb::{encode, io_err, KEY_PURGED, LOGS, META};
use crate::TypeConfig;
use openraft::storage::LogFlushed;
use openraft::{AnyError, Entry, LogId, StorageError, StorageIOError};
use redb::Database;
use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

/// Entries appended but not yet committed, by index.
pub(crate) type Pending = Arc<Mutex<BTreeMap<u64, Entry<TypeConfig>>>>;

/// Most operations folded into one commit.
const MAX_BATCH: usize = 4096;

/// One queued write.
pub(crate) enum Op {
    /// Make these appended entries durable (they are in `pending`), then call back.
    Append {
        ids: Vec<LogId<u64>>,
        callback: LogFlushed<TypeConfig>,
    },
    /// Delete entries from this index on.
    Truncate(u64),
    /// Delete entries up to this index and record the purge point (encoded log id).
    Purge(u64, Vec<u8>),
    /// Set a metadata key.
    PutMeta(&'static str, Vec<u8>),
}

type Reply = Sender<Result<(), String>>;

/// The writer thread's handle.
pub(crate) struct Writer {
    tx: Mutex<Sender<(Op, Option<Reply>)>>,
    pub(crate) pending: Pending,
}

impl Writer {
    /// Starts the writer thread for `db`.
    pub(crate) fn start(db: Arc<Database>) -> std::io::Result<Writer> {
        let (tx, rx) = channel();
        let pending: Pending = Arc::default();
        let p = pending.clone();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || run(&db, &p, rx))?;
        Ok(Writer {
            tx: Mutex::new(tx),
            pending,
        })
    }

    /// Queues an operation without waiting for its commit.
    pub(crate) fn send(&self, op: Op) -> Result<(), StorageError<u64>> {
        self.queue(op, None)
    }

    /// Queues an operation and waits until it is committed.
    pub(crate) fn wait(&self, op: Op) -> Result<(), StorageError<u64>> {
        let (reply, done) = channel();
        self.queue(op, Some(reply))?;
        match done.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(StorageIOError::write_logs(AnyError::error(msg)).into()),
            Err(_) => Err(StorageIOError::write_logs(AnyError::error("log writer stopped")).into()),
        }
    }

    fn queue(&self, op: Op, reply: Option<Reply>) -> Result<(), StorageError<u64>> {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send((op, reply))
            .map_err(|_| StorageIOError::write_logs(AnyError::error("log writer stopped")).into())
    }
}

fn run(db: &Database, pending: &Pending, rx: Receiver<(Op, Option<Reply>)>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let (result, written) = commit(db, pending, &batch);
        let outcome = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
        // Committed entries are now readable from the database.
        if outcome.is_ok() {
            let mut p = pending.lock().unwrap_or_else(PoisonError::into_inner);
            for id in &written {
                if p.get(&id.index).is_some_and(|e| e.log_id == *id) {
                    p.remove(&id.index);
                }
            }
        }
        for (op, reply) in batch {
            if let Op::Append { callback, .. } = op {
                callback.log_io_completed(outcome.clone().map_err(std::io::Error::other));
            }
            if let Some(reply) = reply {
                let _ = reply.send(outcome.clone());
            }
        }
    }
}

/// Applies a batch in one transaction; returns the result and the entries written.
fn commit(
    db: &Database,
    pending: &Pending,
    batch: &[(Op, Option<Reply>)],
) -> (Result<(), StorageError<u64>>, Vec<LogId<u64>>) {
    let mut written = Vec::new();
    let result = (|| {
        let txn = db.begin_write().map_err(io_err)?;
        {
            let mut logs = txn.open_table(LOGS).map_err(io_err)?;
            let mut meta = txn.open_table(META).map_err(io_err)?;
            for (op, _) in batch {
                match op {
                    Op::Append { ids, .. } => {
                        // Copy out what is still pending (a truncation may have dropped some).
                        let entries: Vec<Entry<TypeConfig>> = {
                            let p = pending.lock().unwrap_or_else(PoisonError::into_inner);
                            ids.iter()
                                .filter_map(|id| p.get(&id.index).filter(|e| e.log_id == *id))
                                .cloned()
                                .collect()
                        };
                        for e in entries {
                            let bytes = encode(&e)?;
                            logs.insert(e.log_id.index, bytes.as_slice())
                                .map_err(io_err)?;
                            written.push(e.log_id);
                        }
                    }
                    Op::Truncate(from) => {
                        logs.retain_in::<u64, _>(*from.., |_, _| false)
                            .map_err(io_err)?;
                        written.retain(|id| id.index < *from);
                    }
                    Op::Purge(upto, id) => {
                        meta.insert(KEY_PURGED, id.as_slice()).map_err(io_err)?;
                        logs.retain_in::<u64, _>(..=*upto, |_, _| false)
                            .map_err(io_err)?;
                    }
                    Op::PutMeta(key, value) => {
                        meta.insert(*key, value.as_slice()).map_err(io_err)?;
                    }
                }
            }
        }
        // redb's default durability fsyncs before commit returns.
        txn.commit().map_err(io_err)
    })();
    (result, written)
}

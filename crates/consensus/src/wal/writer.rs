//! The group-commit writer of the write-ahead log: one thread owns every write. It takes all
//! operations queued since its last commit, encodes them as records at the end of the newest
//! segment (opening a new segment when one is full), makes them durable with one
//! `fdatasync`, then publishes them (entries become readable from disk) and reports:
//! openraft's flush callbacks for appended entries, and a reply for callers that wait.

use super::segment::{self, Kind};
use super::{Inner, Loc, Shared};
use crate::TypeConfig;
use openraft::storage::LogFlushed;
use openraft::{LogId, Vote};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

/// Most operations folded into one commit.
const MAX_BATCH: usize = 4096;

/// Size of a new segment (larger when one record needs more).
pub(crate) const SEGMENT_SIZE: u64 = 64 * 1024 * 1024;

/// The batch buffer is kept between commits (fresh pages cost a fault each, and entries of
/// a busy region are megabytes); above this capacity it is given back after the commit.
const KEEP_BUFFER: usize = 32 * 1024 * 1024;

/// One queued write.
pub(crate) enum Op {
    /// Make these appended entries durable (they are in `pending`), then call back.
    Append {
        ids: Vec<LogId<u64>>,
        callback: LogFlushed<TypeConfig>,
    },
    /// Delete entries from this index on.
    Truncate(u64),
    /// Delete entries up to this log id.
    Purge(LogId<u64>),
    /// Record the vote.
    Vote(Vote<u64>),
    /// Record the committed log id.
    Committed(Option<LogId<u64>>),
}

type Reply = Sender<Result<(), String>>;

/// The writer thread's handle.
pub(crate) struct Writer {
    tx: Mutex<Sender<(Op, Option<Reply>)>>,
}

/// Where the next record goes.
pub(crate) struct Tail {
    pub(crate) seq: u64,
    pub(crate) file: Arc<File>,
    pub(crate) size: u64,
    /// Offset of the next record.
    pub(crate) at: u64,
}

impl Writer {
    /// Starts the writer thread, appending at `tail`.
    pub(crate) fn start(shared: Arc<Shared>, tail: Tail) -> std::io::Result<Writer> {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || run(&shared, tail, rx))?;
        Ok(Writer { tx: Mutex::new(tx) })
    }

    /// Queues an operation without waiting for its commit.
    pub(crate) fn send(&self, op: Op) -> Result<(), String> {
        self.queue(op, None)
    }

    /// Queues an operation and waits until it is durable.
    pub(crate) fn wait(&self, op: Op) -> Result<(), String> {
        let (reply, done) = channel();
        self.queue(op, Some(reply))?;
        done.recv()
            .unwrap_or_else(|_| Err("the Raft log writer stopped".into()))
    }

    fn queue(&self, op: Op, reply: Option<Reply>) -> Result<(), String> {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send((op, reply))
            .map_err(|_| "the Raft log writer stopped".to_string())
    }
}

fn run(shared: &Shared, mut tail: Tail, rx: Receiver<(Op, Option<Reply>)>) {
    // The committed log id is not needed for safety (openraft learns it again from the
    // leader), and openraft saves it after every commit: a batch of nothing else is only
    // remembered, and written (made durable) with the next batch that has to be, instead of
    // costing an fdatasync of its own on every server for every entry.
    let mut deferred: Option<Option<LogId<u64>>> = None;
    let mut buf = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if batch.iter().all(|(op, _)| matches!(op, Op::Committed(_))) {
            for (op, reply) in batch {
                if let Op::Committed(c) = op {
                    deferred = Some(c);
                }
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
            }
            continue;
        }
        if let Some(c) = deferred.take() {
            batch.insert(0, (Op::Committed(c), None));
        }
        let outcome = commit(shared, &mut tail, &batch, &mut buf);
        if buf.capacity() > KEEP_BUFFER {
            buf = Vec::new();
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

/// What a batch changes once it is durable.
enum Effect {
    Entry(u64, Loc),
    Truncate(u64),
    Purge(LogId<u64>),
    Vote(Vote<u64>),
    Committed(Option<LogId<u64>>),
}

/// Records being written to one segment.
struct Pass {
    buf: Vec<u8>,
    /// Vote, committed and purge point as of the records encoded so far: the prelude of a
    /// new segment, so older segments can be deleted once their entries are purged.
    vote: Option<Vote<u64>>,
    committed: Option<LogId<u64>>,
    purged: Option<LogId<u64>>,
}

impl Pass {
    /// Appends a record to the tail segment, moving to a new segment first if it does not fit.
    /// Returns the offset of its payload.
    fn push(
        &mut self,
        shared: &Shared,
        tail: &mut Tail,
        kind: Kind,
        parts: &[&[u8]],
    ) -> Result<(u64, u64), String> {
        let len = parts.iter().map(|p| p.len()).sum();
        self.push_with(shared, tail, kind, len, |buf| {
            for p in parts {
                buf.extend_from_slice(p);
            }
            Ok(())
        })
    }

    /// As [`Pass::push`], the `len` payload bytes written by `write` straight into the batch.
    fn push_with(
        &mut self,
        shared: &Shared,
        tail: &mut Tail,
        kind: Kind,
        len: usize,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
    ) -> Result<(u64, u64), String> {
        let need = segment::RECORD_HEADER_LEN + len as u64;
        if tail.at + self.buf.len() as u64 + need > tail.size {
            self.rotate(shared, tail, need)?;
        }
        let offset = tail.at + self.buf.len() as u64 + segment::RECORD_HEADER_LEN;
        segment::append_record(&mut self.buf, kind, len, write)?;
        Ok((tail.seq, offset))
    }

    /// Writes what is buffered for the tail segment and makes it durable.
    fn flush(&mut self, tail: &mut Tail) -> Result<(), String> {
        if self.buf.is_empty() {
            return Ok(());
        }
        tail.file
            .write_all_at(&self.buf, tail.at)
            .and_then(|()| tail.file.sync_data())
            .map_err(|e| format!("cannot write the Raft log: {e}"))?;
        tail.at += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Closes the tail segment and starts the next one with the current vote, committed and
    /// purge point.
    fn rotate(&mut self, shared: &Shared, tail: &mut Tail, need: u64) -> Result<(), String> {
        self.flush(tail)?;
        let seq = tail.seq + 1;
        let size = shared.segment_size.max(segment::HEADER_LEN + need + 4096);
        let file = segment::create(&shared.dir, seq, size).map_err(|e| {
            format!(
                "cannot create a Raft log segment in {}: {e}",
                shared.dir.display()
            )
        })?;
        let file = Arc::new(file);
        shared.lock().files.insert(seq, file.clone());
        *tail = Tail {
            seq,
            file,
            size,
            at: segment::HEADER_LEN,
        };
        // flush emptied the buffer; the prelude starts the new segment's batch.
        if let Some(v) = &self.vote {
            segment::encode_record(&mut self.buf, Kind::Vote, &[&encode(v)?])?;
        }
        if let Some(p) = &self.purged {
            segment::encode_record(&mut self.buf, Kind::Purge, &[&encode(p)?])?;
        }
        segment::encode_record(&mut self.buf, Kind::Committed, &[&encode(&self.committed)?])?;
        Ok(())
    }
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, String> {
    bincode::serialize(v).map_err(encode_err)
}

fn encode_err(e: bincode::Error) -> String {
    format!("cannot encode a Raft log record: {e}")
}

/// Writes a batch durably and publishes its effects. `buf` is the (empty) batch buffer,
/// handed back empty.
fn commit(
    shared: &Shared,
    tail: &mut Tail,
    batch: &[(Op, Option<Reply>)],
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    buf.clear();
    let mut pass = {
        let inner = shared.lock();
        Pass {
            buf: std::mem::take(buf),
            vote: inner.vote,
            committed: inner.committed,
            purged: inner.last_purged,
        }
    };
    let mut effects = Vec::new();
    for (op, _) in batch {
        match op {
            Op::Append { ids, .. } => {
                // What is still pending (a truncation may have dropped some), shared.
                let entries: Vec<_> = {
                    let inner = shared.lock();
                    ids.iter()
                        .filter_map(|id| {
                            inner
                                .pending
                                .get(&id.index)
                                .filter(|e| e.log_id == *id)
                                .cloned()
                        })
                        .collect()
                };
                for e in entries {
                    let id = e.log_id;
                    let prefix = super::entry_prefix(&id);
                    let body = bincode::serialized_size(&*e).map_err(encode_err)?;
                    let len = u32::try_from(prefix.len() as u64 + body)
                        .map_err(|_| "a Raft entry larger than 4 GiB".to_string())?;
                    let (seq, offset) =
                        pass.push_with(shared, tail, Kind::Entry, len as usize, |buf| {
                            buf.extend_from_slice(&prefix);
                            bincode::serialize_into(buf, &*e).map_err(encode_err)
                        })?;
                    effects.push(Effect::Entry(
                        id.index,
                        Loc {
                            seq,
                            offset,
                            len,
                            log_id: id,
                        },
                    ));
                }
            }
            Op::Truncate(from) => {
                pass.push(shared, tail, Kind::Truncate, &[&from.to_le_bytes()])?;
                effects.push(Effect::Truncate(*from));
            }
            Op::Purge(id) => {
                pass.push(shared, tail, Kind::Purge, &[&encode(id)?])?;
                pass.purged = Some(*id);
                effects.push(Effect::Purge(*id));
            }
            Op::Vote(v) => {
                pass.push(shared, tail, Kind::Vote, &[&encode(v)?])?;
                pass.vote = Some(*v);
                effects.push(Effect::Vote(*v));
            }
            Op::Committed(c) => {
                pass.push(shared, tail, Kind::Committed, &[&encode(c)?])?;
                pass.committed = *c;
                effects.push(Effect::Committed(*c));
            }
        }
    }
    #[cfg(test)]
    let wrote = !pass.buf.is_empty();
    pass.flush(tail)?;
    *buf = std::mem::take(&mut pass.buf);
    #[cfg(test)]
    if wrote {
        shared
            .syncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let mut purged = false;
    {
        let mut inner = shared.lock();
        for effect in effects {
            match effect {
                Effect::Entry(index, loc) => {
                    inner.index.split_off(&index);
                    if inner
                        .pending
                        .get(&index)
                        .is_some_and(|e| e.log_id == loc.log_id)
                    {
                        inner.pending.remove(&index);
                    }
                    inner.index.insert(index, loc);
                }
                Effect::Truncate(from) => {
                    inner.index.split_off(&from);
                }
                Effect::Purge(id) => {
                    inner.index = inner.index.split_off(&(id.index + 1));
                    inner.last_purged = Some(id);
                    purged = true;
                }
                Effect::Vote(v) => inner.vote = Some(v),
                // save_committed already set it; a later one may be set meanwhile.
                Effect::Committed(c) => inner.committed = inner.committed.max(c),
            }
        }
    }
    if purged {
        remove_unused_segments(shared, tail.seq);
    }
    Ok(())
}

/// Deletes segments older than the tail that hold no live entry.
fn remove_unused_segments(shared: &Shared, tail_seq: u64) {
    let unused: Vec<u64> = {
        let inner: std::sync::MutexGuard<'_, Inner> = shared.lock();
        let live: std::collections::BTreeSet<u64> = inner.index.values().map(|l| l.seq).collect();
        // Only a prefix of segments may go: replay needs every segment after the first kept.
        inner
            .files
            .keys()
            .copied()
            .take_while(|s| *s < tail_seq && !live.contains(s))
            .collect()
    };
    if unused.is_empty() {
        return;
    }
    for seq in &unused {
        let p = segment::path(&shared.dir, *seq);
        if let Err(e) = std::fs::remove_file(&p) {
            tracing::warn!(file = %p.display(), error = %e, "cannot remove a purged Raft log segment");
            return;
        }
        shared.lock().files.remove(seq);
    }
    if let Err(e) = segment::sync_dir(&shared.dir) {
        tracing::warn!(dir = %shared.dir.display(), error = %e, "cannot sync the Raft log directory");
    }
}

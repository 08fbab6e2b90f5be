//! The durable Raft log: a write-ahead log of its own in `<data_dir>/server/raft/`, made for
//! what Raft needs and nothing more.
//!
//! - `identity.json`: this server's Raft node ID and region, written once.
//! - `<seq>.wal`: segments (see [`segment`] for the format). Records are appended in order:
//!   entries, truncations, purges, votes and the committed log id. Replaying the segments in
//!   order rebuilds an index `log index -> (segment, offset)`; entries are read back from the
//!   files (the page cache) when openraft asks for them.
//!
//! Group commit: `append` hands entries to one writer thread ([`writer`]) and returns; the
//! writer appends everything queued since its last commit with one write and one `fdatasync`,
//! and only then tells openraft those entries are flushed. Entries between append and commit
//! are readable from a pending map. Votes, truncations and purges wait for their commit.
//!
//! Why not redb: a redb commit rewrites b-tree pages and allocator state and costs several
//! times the CPU and latency of appending a few hundred bytes and one `fdatasync`, and the Raft
//! log never needs its random access (see docs/benchmarks.md).

mod segment;
mod writer;

use crate::TypeConfig;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, CommittedLeaderId, Entry, LogId, RaftLogReader, StorageError, StorageIOError, Vote,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::File;
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use thiserror::Error;
use writer::{Op, Tail, Writer};

/// Why the log store could not be opened.
#[derive(Debug, Error)]
pub enum StoreOpenError {
    /// A file of the log is unreadable, corrupt, truncated, or not ours.
    #[error("cannot open the Raft log in {path}: {reason}")]
    Unreadable {
        /// The log directory or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The data dir was created by a server of another region.
    #[error(
        "data_dir {path} belongs to region {found:?}, but this server is configured for region \
         {configured:?}; use another data_dir or the matching region"
    )]
    WrongRegion {
        /// The identity file.
        path: PathBuf,
        /// Region recorded in the store.
        found: String,
        /// Region in the configuration.
        configured: String,
    },
}

/// Where a durable entry is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Loc {
    seq: u64,
    /// Offset of the record's payload (the entry prefix, then the entry).
    offset: u64,
    len: u32,
    log_id: LogId<u64>,
}

/// The log's state, shared by the store handles and the writer.
#[derive(Default)]
pub(crate) struct Inner {
    /// Durable entries.
    index: BTreeMap<u64, Loc>,
    /// Appended, not yet durable (shared with the writer, which encodes them unlocked).
    pending: BTreeMap<u64, Arc<Entry<TypeConfig>>>,
    /// Open segments by sequence number.
    files: BTreeMap<u64, Arc<File>>,
    vote: Option<Vote<u64>>,
    committed: Option<LogId<u64>>,
    last_purged: Option<LogId<u64>>,
}

pub(crate) struct Shared {
    dir: PathBuf,
    /// Size of new segments.
    segment_size: u64,
    inner: Mutex<Inner>,
    /// How many batches the writer made durable (tests count fdatasyncs).
    #[cfg(test)]
    syncs: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The durable Raft log. Clones share the log and its writer.
#[derive(Clone)]
pub struct WalLogStore {
    shared: Arc<Shared>,
    writer: Arc<Writer>,
}

impl Debug for WalLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WalLogStore({})", self.shared.dir.display())
    }
}

/// `identity.json`.
#[derive(Serialize, Deserialize)]
struct Identity {
    region: String,
    node_id: u64,
}

/// Index, term and leader node of an entry, ahead of its encoding in the record, so replay
/// learns the log id without decoding entries.
fn entry_prefix(id: &LogId<u64>) -> [u8; 24] {
    let mut p = [0u8; 24];
    p[0..8].copy_from_slice(&id.index.to_le_bytes());
    p[8..16].copy_from_slice(&id.leader_id.term.to_le_bytes());
    p[16..24].copy_from_slice(&id.leader_id.node_id.to_le_bytes());
    p
}

fn prefix_log_id(payload: &[u8]) -> Option<LogId<u64>> {
    let word = |i: usize| -> Option<u64> {
        let b: [u8; 8] = payload.get(i..i + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    };
    Some(LogId::new(
        CommittedLeaderId::new(word(8)?, word(16)?),
        word(0)?,
    ))
}

fn read_err(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::read_logs(AnyError::error(e.to_string())).into()
}

fn write_err(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_logs(AnyError::error(e.to_string())).into()
}

fn vote_err(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_vote(AnyError::error(e.to_string())).into()
}

impl WalLogStore {
    /// Opens (or creates) the log in `dir` for a server of `region`, and returns it with this
    /// server's Raft node ID (chosen at random when the log is created, then kept).
    pub fn open(dir: &Path, region: &str) -> Result<(Self, u64), StoreOpenError> {
        Self::open_sized(dir, region, writer::SEGMENT_SIZE)
    }

    /// [`Self::open`] with new segments of `segment_size` bytes.
    pub(crate) fn open_sized(
        dir: &Path,
        region: &str,
        segment_size: u64,
    ) -> Result<(Self, u64), StoreOpenError> {
        let unreadable = |path: &Path, reason: String| StoreOpenError::Unreadable {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(parent) = dir.parent() {
            let old = parent.join("raft.redb");
            if old.exists() {
                return Err(unreadable(
                    &old,
                    "this data_dir holds a Raft log in the redb format of earlier Caravan \
                     builds; this build keeps it in raft/ (move the data_dir aside to start \
                     fresh)"
                        .into(),
                ));
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| unreadable(dir, e.to_string()))?;
        let node_id = identity(dir, region)?;

        let mut seqs = Vec::new();
        let listing = std::fs::read_dir(dir).map_err(|e| unreadable(dir, e.to_string()))?;
        for item in listing {
            let item = item.map_err(|e| unreadable(dir, e.to_string()))?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = segment::seq_of(&name) {
                seqs.push(seq);
            } else if name.ends_with(".wal.new") {
                // A segment whose creation a crash interrupted: never used.
                let _ = std::fs::remove_file(item.path());
            }
        }
        seqs.sort_unstable();
        if let Some(w) = seqs.windows(2).find(|w| w[1] != w[0] + 1) {
            return Err(unreadable(
                dir,
                format!(
                    "segment {} is missing (found {:016x}.wal and {:016x}.wal)",
                    w[0] + 1,
                    w[0],
                    w[1]
                ),
            ));
        }

        let mut inner = Inner::default();
        let mut tail = None;
        for (i, seq) in seqs.iter().enumerate() {
            let p = segment::path(dir, *seq);
            let last = i + 1 == seqs.len();
            let scanned = segment::scan(&p).map_err(|d| unreadable(&p, d.0))?;
            if scanned.seq != *seq {
                return Err(unreadable(
                    &p,
                    format!(
                        "the file is named for segment {seq} but holds segment {}",
                        scanned.seq
                    ),
                ));
            }
            let (records, next) = scanned.records(&p, last).map_err(|d| unreadable(&p, d.0))?;
            for r in &records {
                replay(&mut inner, *seq, r).map_err(|reason| {
                    unreadable(&p, format!("record at offset {}: {reason}", r.offset))
                })?;
            }
            if last {
                // Clear a torn tail so it cannot be read as records later.
                let garbage_end = scanned
                    .bytes
                    .iter()
                    .rposition(|b| *b != 0)
                    .map_or(0, |i| i as u64 + 1);
                segment::clear(&scanned.file, next, garbage_end)
                    .map_err(|e| unreadable(&p, e.to_string()))?;
            }
            let file = Arc::new(scanned.file);
            inner.files.insert(*seq, file.clone());
            if last {
                tail = Some(Tail {
                    seq: *seq,
                    file,
                    size: scanned.size,
                    at: next,
                });
            }
        }
        let tail = match tail {
            Some(t) => t,
            None => {
                let file = segment::create(dir, 1, segment_size)
                    .map_err(|e| unreadable(dir, e.to_string()))?;
                let file = Arc::new(file);
                inner.files.insert(1, file.clone());
                Tail {
                    seq: 1,
                    file,
                    size: segment_size,
                    at: segment::HEADER_LEN,
                }
            }
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            segment_size,
            inner: Mutex::new(inner),
            #[cfg(test)]
            syncs: Default::default(),
        });
        let writer =
            Writer::start(shared.clone(), tail).map_err(|e| unreadable(dir, e.to_string()))?;
        Ok((
            Self {
                shared,
                writer: Arc::new(writer),
            },
            node_id,
        ))
    }
}

/// Reads `identity.json`, or writes it for a new log; checks the region.
fn identity(dir: &Path, region: &str) -> Result<u64, StoreOpenError> {
    let p = dir.join("identity.json");
    let unreadable = |reason: String| StoreOpenError::Unreadable {
        path: p.clone(),
        reason,
    };
    match std::fs::read(&p) {
        Ok(bytes) => {
            let id: Identity = serde_json::from_slice(&bytes)
                .map_err(|e| unreadable(format!("not a Caravan Raft identity: {e}")))?;
            if id.region != region {
                return Err(StoreOpenError::WrongRegion {
                    path: p.clone(),
                    found: id.region,
                    configured: region.to_string(),
                });
            }
            Ok(id.node_id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let has_segments = std::fs::read_dir(dir)
                .map_err(|e| unreadable(e.to_string()))?
                .filter_map(Result::ok)
                .any(|i| segment::seq_of(&i.file_name().to_string_lossy()).is_some());
            if has_segments {
                return Err(unreadable(
                    "the file is missing but the log has segments; it belongs to an unknown server"
                        .into(),
                ));
            }
            // Never 0: a random non-zero ID avoids collisions across regions.
            let node_id = rand::random::<u64>().max(1);
            let body = serde_json::to_vec_pretty(&Identity {
                region: region.to_string(),
                node_id,
            })
            .map_err(|e| unreadable(e.to_string()))?;
            let tmp = dir.join("identity.json.new");
            std::fs::write(&tmp, body)
                .and_then(|()| File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &p))
                .and_then(|()| segment::sync_dir(dir))
                .map_err(|e| unreadable(e.to_string()))?;
            Ok(node_id)
        }
        Err(e) => Err(unreadable(e.to_string())),
    }
}

/// Applies one record read back from segment `seq`.
fn replay(inner: &mut Inner, seq: u64, r: &segment::Record<'_>) -> Result<(), String> {
    let decode_err = |e: bincode::Error| format!("cannot decode: {e}");
    match r.kind {
        segment::Kind::Entry => {
            let log_id = prefix_log_id(r.payload).ok_or("an entry record is too short")?;
            let len = u32::try_from(r.payload.len()).map_err(|_| "an entry over 4 GiB")?;
            inner.index.split_off(&log_id.index);
            inner.index.insert(
                log_id.index,
                Loc {
                    seq,
                    offset: r.offset,
                    len,
                    log_id,
                },
            );
        }
        segment::Kind::Truncate => {
            let b: [u8; 8] = r
                .payload
                .try_into()
                .map_err(|_| "a truncate record of the wrong size")?;
            inner.index.split_off(&u64::from_le_bytes(b));
        }
        segment::Kind::Purge => {
            let id: LogId<u64> = bincode::deserialize(r.payload).map_err(decode_err)?;
            inner.index = inner.index.split_off(&(id.index + 1));
            inner.last_purged = Some(id);
        }
        segment::Kind::Vote => {
            inner.vote = Some(bincode::deserialize(r.payload).map_err(decode_err)?)
        }
        segment::Kind::Committed => {
            inner.committed = bincode::deserialize(r.payload).map_err(decode_err)?
        }
    }
    Ok(())
}

/// Bytes of entries one AppendEntries carries at most (always at least one entry). openraft
/// sends up to `max_payload_entries` (300) entries at once and drops a call that takes longer
/// than the heartbeat interval (30 ms). A follower behind by a few hundred plan entries (most
/// of a megabyte each for a thousand placements) was sent requests of hundreds of megabytes
/// that never finished in time, so it never caught up, and the leader, without a quorum that
/// answered, lost its leadership over and over (the C1M benchmark, issue 4).
pub(crate) const MAX_APPEND_BYTES: u64 = 1 << 20;

/// The bytes an entry takes (its commands; a small constant for blank and membership ones).
fn entry_bytes(e: &Entry<TypeConfig>) -> u64 {
    match &e.payload {
        openraft::EntryPayload::Normal(crate::Payload::Commands(c)) => {
            c.iter().map(|b| b.len() as u64).sum()
        }
        openraft::EntryPayload::Normal(crate::Payload::Restore(b)) => b.len() as u64,
        _ => 64,
    }
}

impl RaftLogReader<TypeConfig> for WalLogStore {
    /// The entries from `start` on that fit in [`MAX_APPEND_BYTES`] (at least one), for one
    /// AppendEntries.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        let stop = {
            let inner = self.shared.lock();
            let mut total = 0u64;
            let mut stop = start;
            while stop < end {
                let size = match inner.pending.get(&stop) {
                    Some(e) => entry_bytes(e),
                    None => match inner.index.get(&stop) {
                        Some(loc) => u64::from(loc.len),
                        None => break,
                    },
                };
                if stop > start && total + size > MAX_APPEND_BYTES {
                    break;
                }
                total += size;
                stop += 1;
            }
            stop.max(start.saturating_add(1)).min(end.max(start))
        };
        self.try_get_log_entries(start..stop).await
    }

    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        // Pending entries as they are; durable ones read from their segment outside the lock.
        let mut out: BTreeMap<u64, Entry<TypeConfig>> = BTreeMap::new();
        let mut to_read = Vec::new();
        {
            let inner = self.shared.lock();
            for (i, e) in inner.pending.range(range.clone()) {
                out.insert(*i, Entry::clone(e));
            }
            for (i, loc) in inner.index.range(range) {
                if !out.contains_key(i) {
                    let file = inner.files.get(&loc.seq).cloned().ok_or_else(|| {
                        read_err(format!("segment {} of entry {i} is not open", loc.seq))
                    })?;
                    to_read.push((*loc, file));
                }
            }
        }
        for (loc, file) in to_read {
            let mut buf = vec![0u8; loc.len as usize];
            file.read_exact_at(&mut buf, loc.offset).map_err(read_err)?;
            let entry: Entry<TypeConfig> = bincode::deserialize(buf.get(24..).unwrap_or_default())
                .map_err(|e| read_err(format!("entry {}: {e}", loc.log_id.index)))?;
            out.insert(loc.log_id.index, entry);
        }
        Ok(out.into_values().collect())
    }
}

impl RaftLogStorage<TypeConfig> for WalLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let inner = self.shared.lock();
        let last = inner
            .pending
            .values()
            .next_back()
            .map(|e| e.log_id)
            .max(inner.index.values().next_back().map(|l| l.log_id));
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last.or(inner.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        self.writer.wait(Op::Vote(*vote)).map_err(vote_err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        Ok(self.shared.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        // Not needed for safety (openraft re-learns it from the leader), so it rides along
        // with the next batch that must be durable instead of costing an fsync of its own
        // (writer.rs).
        // Readable at once; openraft only moves it forward.
        {
            let mut inner = self.shared.lock();
            inner.committed = inner.committed.max(committed);
        }
        self.writer
            .send(Op::Committed(committed))
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self.shared.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut ids = Vec::new();
        {
            let mut inner = self.shared.lock();
            for e in entries {
                ids.push(e.log_id);
                inner.pending.insert(e.log_id.index, Arc::new(e));
            }
        }
        self.writer
            .send(Op::Append { ids, callback })
            .map_err(write_err)
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.shared.lock().pending.split_off(&log_id.index);
        self.writer
            .wait(Op::Truncate(log_id.index))
            .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.writer.wait(Op::Purge(log_id)).map_err(write_err)
    }
}

#[cfg(test)]
mod tests;

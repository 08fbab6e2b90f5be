//! The durable Raft log: one redb database (`<data_dir>/server/raft.redb`) holding the log
//! entries, the vote, the committed log id, the last purged log id and the server's identity
//! (its Raft node ID and region).
//!
//! Group commit: `append` hands entries to one writer thread ([`crate::log_writer`]) and
//! returns; the writer puts everything queued since its last commit into one redb transaction,
//! commits (redb fsyncs before the commit returns) and only then tells openraft those entries
//! are flushed. Entries between append and commit are readable from a pending map. Votes,
//! truncation and purges wait for their own commit.

use crate::log_writer::{Op, Pending, Writer};
use crate::TypeConfig;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, RaftLogReader, StorageError, StorageIOError, Vote};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

pub(crate) const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
pub(crate) const KEY_PURGED: &str = "last_purged";
const KEY_REGION: &str = "region";
const KEY_NODE_ID: &str = "node_id";

/// Why the log store could not be opened.
#[derive(Debug, Error)]
pub enum StoreOpenError {
    /// The file is not a readable redb database (corrupt, truncated, or not ours).
    #[error("cannot open Raft log {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// redb's explanation.
        reason: String,
    },
    /// The data dir was created by a server of another region.
    #[error(
        "data_dir {path} belongs to region {found:?}, but this server is configured for region \
         {configured:?}; use another data_dir or the matching region"
    )]
    WrongRegion {
        /// The file.
        path: PathBuf,
        /// Region recorded in the store.
        found: String,
        /// Region in the configuration.
        configured: String,
    },
}

/// The durable Raft log. Clones share the database and the writer.
#[derive(Clone)]
pub struct RedbLogStore {
    db: Arc<Database>,
    pending: Pending,
    writer: Arc<Writer>,
}

impl Debug for RedbLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbLogStore")
    }
}

pub(crate) fn io_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StorageError<u64>> {
    bincode::serialize(v).map_err(io_err)
}

fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, StorageError<u64>> {
    bincode::deserialize(b).map_err(read_err)
}

impl RedbLogStore {
    /// Opens (or creates) the log at `path` for a server of `region`, and returns it with this
    /// server's Raft node ID (chosen at random when the store is created, then kept).
    pub fn open(path: &Path, region: &str) -> Result<(Self, u64), StoreOpenError> {
        let unreadable = |e: &dyn std::fmt::Display| StoreOpenError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let db = Database::create(path).map_err(|e| unreadable(&e))?;
        let txn = db.begin_write().map_err(|e| unreadable(&e))?;
        let node_id = {
            let mut meta = txn.open_table(META).map_err(|e| unreadable(&e))?;
            txn.open_table(LOGS).map_err(|e| unreadable(&e))?;
            let found_region = meta
                .get(KEY_REGION)
                .map_err(|e| unreadable(&e))?
                .map(|v| String::from_utf8_lossy(v.value()).into_owned());
            match found_region {
                Some(found) if found != region => {
                    return Err(StoreOpenError::WrongRegion {
                        path: path.to_path_buf(),
                        found,
                        configured: region.to_string(),
                    })
                }
                Some(_) => {}
                None => {
                    meta.insert(KEY_REGION, region.as_bytes())
                        .map_err(|e| unreadable(&e))?;
                }
            }
            let stored = meta
                .get(KEY_NODE_ID)
                .map_err(|e| unreadable(&e))?
                .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
                .map(u64::from_be_bytes);
            match stored {
                Some(id) => id,
                None => {
                    // Never 0: openraft tests and tools treat small IDs specially only by
                    // convention, but a random non-zero ID avoids collisions across regions.
                    let id = rand::random::<u64>().max(1);
                    meta.insert(KEY_NODE_ID, id.to_be_bytes().as_slice())
                        .map_err(|e| unreadable(&e))?;
                    id
                }
            }
        };
        txn.commit().map_err(|e| unreadable(&e))?;
        let db = Arc::new(db);
        let writer = Writer::start(db.clone()).map_err(|e| unreadable(&e))?;
        Ok((
            Self {
                db,
                pending: writer.pending.clone(),
                writer: Arc::new(writer),
            },
            node_id,
        ))
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError<u64>> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let meta = txn.open_table(META).map_err(read_err)?;
        match meta.get(key).map_err(read_err)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    /// The last log id in the database, if any entry is there.
    fn last_stored_id(&self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let logs = txn.open_table(LOGS).map_err(read_err)?;
        let last = match logs.last().map_err(read_err)? {
            Some((_, v)) => Some(decode::<Entry<TypeConfig>>(v.value())?.log_id),
            None => None,
        };
        Ok(last)
    }
}

impl RaftLogReader<TypeConfig> for RedbLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        // Pending first, then the database: an entry committed in between is in the database
        // and may also be in our copy of pending; pending wins, both are the same entry.
        let mut out: std::collections::BTreeMap<u64, Entry<TypeConfig>> = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .range(range.clone())
            .map(|(i, e)| (*i, e.clone()))
            .collect();
        let txn = self.db.begin_read().map_err(read_err)?;
        let logs = txn.open_table(LOGS).map_err(read_err)?;
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        for item in logs.range::<u64>(bounds).map_err(read_err)? {
            let (k, v) = item.map_err(read_err)?;
            if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(k.value()) {
                slot.insert(decode(v.value())?);
            }
        }
        Ok(out.into_values().collect())
    }
}

impl RaftLogStorage<TypeConfig> for RedbLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let last_purged: Option<LogId<u64>> = self.get_meta(KEY_PURGED)?;
        let pending_last = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .next_back()
            .map(|e| e.log_id);
        let last = pending_last.or(self.last_stored_id()?);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        self.writer.wait(Op::PutMeta(KEY_VOTE, encode(vote)?))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        self.get_meta(KEY_VOTE)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        // Not needed for safety (openraft re-learns it from the leader), so it rides along
        // with the next commit instead of costing an fsync of its own.
        self.writer
            .send(Op::PutMeta(KEY_COMMITTED, encode(&committed)?))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self
            .get_meta::<Option<LogId<u64>>>(KEY_COMMITTED)?
            .flatten())
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
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for e in entries {
                ids.push(e.log_id);
                pending.insert(e.log_id.index, e);
            }
        }
        self.writer.send(Op::Append { ids, callback })
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .split_off(&log_id.index);
        self.writer.wait(Op::Truncate(log_id.index))
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        // One commit records the purge point and removes the entries.
        self.writer.wait(Op::Purge(log_id.index, encode(&log_id)?))
    }
}

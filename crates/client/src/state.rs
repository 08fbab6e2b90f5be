//! The client's durable state (`<data_dir>/client/state.redb`): for every task it started and
//! has not seen end, what its driver needs to find it again (`TaskRecord`), so that a client
//! agent that restarts takes its running tasks over instead of starting them again, and learns
//! how the ones that ended while it was away ended.
//!
//! Written when a task starts (durably: a `kill -9` right after loses nothing) and removed
//! when it ends for good.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Task records by `<alloc_id>/<task>`.
const TASKS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("tasks");

/// A state store problem, with the file it concerns.
#[derive(Debug, Error)]
#[error("client state {path}: {message}")]
pub struct StateError {
    /// The store's file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// What the client keeps about one started task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TaskRecord {
    /// The driver that started it.
    pub(crate) driver: String,
    /// The driver's record of its handle (`TaskHandle::record`).
    pub(crate) handle: serde_json::Value,
    /// Variables from its `template` blocks with `env = true`, rendered before its first
    /// start (not rendered again for a task taken over).
    #[serde(default)]
    pub(crate) template_env: BTreeMap<String, String>,
}

/// The store.
pub(crate) struct ClientState {
    db: redb::Database,
    path: PathBuf,
}

/// The directory a task's driver keeps its files in (`TaskSpec::state_dir`), out of the
/// task's reach: `<data_dir>/client/tasks/<alloc_id>/<task>`.
pub(crate) fn task_state_dir(data_dir: &Path, alloc_id: &str, task: &str) -> PathBuf {
    data_dir
        .join("client")
        .join("tasks")
        .join(alloc_id)
        .join(task)
}

fn key(alloc_id: &str, task: &str) -> String {
    format!("{alloc_id}/{task}")
}

impl ClientState {
    /// Opens (or creates) the store in `client_dir`. A file that is not a store, or a damaged
    /// one, is an error naming it: the client does not start over silently, since the tasks it
    /// lists would be left running unowned.
    pub(crate) fn open(client_dir: &Path) -> Result<Self, StateError> {
        let path = client_dir.join("state.redb");
        let db = redb::Database::create(&path).map_err(|e| StateError {
            path: path.clone(),
            message: format!(
                "{e} (move the file away to start without the tasks it records; they keep \
                 running unmanaged)"
            ),
        })?;
        Ok(Self { db, path })
    }

    fn err(&self, e: impl std::fmt::Display) -> StateError {
        StateError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Records a started task, durably.
    pub(crate) fn put(
        &self,
        alloc_id: &str,
        task: &str,
        record: &TaskRecord,
    ) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(record).map_err(|e| self.err(e))?;
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(TASKS).map_err(|e| self.err(e))?;
            table
                .insert(key(alloc_id, task).as_str(), bytes.as_slice())
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// The record of a task, if one is kept; one that does not decode is reported and
    /// treated as none.
    pub(crate) fn get(&self, alloc_id: &str, task: &str) -> Result<Option<TaskRecord>, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(TASKS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let Some(value) = table
            .get(key(alloc_id, task).as_str())
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(value.value())
            .map(Some)
            .map_err(|e| self.err(format!("record of {alloc_id}/{task}: {e}")))
    }

    /// Forgets a task (it ended for good).
    pub(crate) fn remove(&self, alloc_id: &str, task: &str) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(TASKS).map_err(|e| self.err(e))?;
            table
                .remove(key(alloc_id, task).as_str())
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// Every record kept, as (alloc ID, task, record); undecodable ones are skipped.
    pub(crate) fn all(&self) -> Result<Vec<(String, String, TaskRecord)>, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(TASKS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            let Some((alloc, task)) = k.value().split_once('/') else {
                continue;
            };
            if let Ok(record) = serde_json::from_slice(v.value()) {
                out.push((alloc.to_string(), task.to_string(), record));
            }
        }
        Ok(out)
    }

    /// Whether any task of `alloc_id` is recorded (this client ran it before a restart).
    pub(crate) fn has_alloc(&self, alloc_id: &str) -> bool {
        let Ok(txn) = self.db.begin_read() else {
            return false;
        };
        let Ok(table) = txn.open_table(TASKS) else {
            return false;
        };
        // Keys of the allocation's tasks sort between `<id>/` and `<id>0` ('0' follows '/').
        let (from, to) = (format!("{alloc_id}/"), format!("{alloc_id}0"));
        table
            .range(from.as_str()..to.as_str())
            .map(|mut r| r.next().is_some())
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32) -> TaskRecord {
        TaskRecord {
            driver: "raw_exec".into(),
            handle: serde_json::json!({ "pid": pid }),
            template_env: BTreeMap::from([("A".to_string(), "1".to_string())]),
        }
    }

    #[test]
    fn records_survive_a_reopen_and_go_when_removed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = ClientState::open(dir.path()).unwrap();
            assert_eq!(s.get("a1", "web").unwrap(), None);
            s.put("a1", "web", &record(10)).unwrap();
            s.put("a1", "side", &record(11)).unwrap();
            s.put("a2", "web", &record(12)).unwrap();
        }
        let s = ClientState::open(dir.path()).unwrap();
        assert_eq!(s.get("a1", "web").unwrap(), Some(record(10)));
        assert!(s.has_alloc("a2"));
        assert_eq!(s.all().unwrap().len(), 3);
        s.remove("a1", "web").unwrap();
        assert_eq!(s.get("a1", "web").unwrap(), None);
        assert!(s.has_alloc("a1"));
        assert!(!s.has_alloc("a3"));
    }

    #[test]
    fn a_file_that_is_not_a_store_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("state.redb"),
            b"this is not a database at all",
        )
        .unwrap();
        let err = ClientState::open(dir.path()).err().expect("an error");
        let text = err.to_string();
        assert!(text.contains("state.redb"), "{text}");
        // The file is left as it was, for the operator to look at.
        assert_eq!(
            std::fs::read(dir.path().join("state.redb")).unwrap(),
            b"this is not a database at all"
        );
    }
}

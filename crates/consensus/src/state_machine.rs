//! The Raft state machine: committed entries applied to a `state::StateStore`.
//!
//! Readers (endpoints, the scheduler, blocking queries) use [`StateHandle`]: O(1) snapshots of
//! the store and a watch of its index. The state machine changes the store in place, one
//! batch of committed entries at a time (a snapshot restore builds a new store and swaps it
//! in).

use crate::snapshot::{self, Meta, SnapshotError, SnapshotStore};
use crate::{Applied, ApplyError, ApplyErrorKind, EntryApplied, Payload, ServerNode, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, RaftSnapshotBuilder, StorageError, StorageIOError,
    StoredMembership,
};
use state::{Command, StateError, StateStore};
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};
use tokio::sync::watch;

/// Read access to the applied state.
pub struct StateHandle {
    state: RwLock<StateStore>,
    index_tx: watch::Sender<u64>,
    /// Set once the state is there (at once, or after the rebuild from disk, load.rs), or to
    /// why the rebuild failed.
    loaded: watch::Sender<Option<Result<(), String>>>,
    /// Entries openraft re-applied at startup while the state was being rebuilt: the rebuild
    /// applies them before it publishes the state. The lock also orders that against
    /// [`StateHandle::defer_while_loading`].
    replay: Mutex<Vec<Entry<TypeConfig>>>,
}

impl StateHandle {
    fn new(state: StateStore) -> Self {
        let (index_tx, _) = watch::channel(state.latest_index());
        Self {
            state: RwLock::new(state),
            index_tx,
            loaded: watch::channel(Some(Ok(()))).0,
            replay: Mutex::new(Vec::new()),
        }
    }

    /// An empty handle whose state is still being rebuilt.
    fn loading() -> Self {
        let handle = Self::new(StateStore::new());
        handle.loaded.send_replace(None);
        handle
    }

    /// An immutable snapshot of the current state (O(1)). Empty while the state is being
    /// rebuilt: readers that must see it wait for [`StateHandle::wait_loaded`] first.
    ///
    /// While a batch of entries applies (see [`StateHandle::update`]) this waits for it; on an
    /// async worker thread it first hands the thread's other tasks to another thread, so that
    /// Raft's heartbeats and replication never wait behind a reader waiting for the state.
    pub fn snapshot(&self) -> StateStore {
        match self.state.try_read() {
            Ok(state) => return state.snapshot(),
            Err(TryLockError::Poisoned(p)) => return p.into_inner().snapshot(),
            Err(TryLockError::WouldBlock) => {}
        }
        let read = || {
            self.state
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .snapshot()
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(read)
            }
            _ => read(),
        }
    }

    /// Subscribes to changes of the state index.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.index_tx.subscribe()
    }

    /// Waits until the state is there; the error says why the rebuild from disk failed.
    pub async fn wait_loaded(&self) -> Result<(), String> {
        if let Some(outcome) = self.loaded.borrow().clone() {
            return outcome;
        }
        let mut rx = self.loaded.subscribe();
        // The sender lives in self, so the wait cannot fail while self is borrowed.
        let outcome = rx.wait_for(Option::is_some).await.map(|o| o.clone());
        outcome.ok().flatten().unwrap_or(Ok(()))
    }

    /// Whether the state is there (or its rebuild failed).
    pub fn is_loaded(&self) -> bool {
        self.loaded.borrow().is_some()
    }

    pub(crate) fn finish_load(&self, state: Result<StateStore, String>) {
        let mut replay = self.replay.lock().unwrap_or_else(PoisonError::into_inner);
        let outcome = state.map(|mut state| {
            let entries = std::mem::take(&mut *replay);
            if !entries.is_empty() {
                tracing::info!(
                    entries = entries.len(),
                    "applying the entries Raft re-applied while the state was rebuilt"
                );
            }
            for entry in entries {
                apply_payload(&mut state, entry.log_id.index, entry.payload);
            }
            self.replace(state)
        });
        self.loaded.send_replace(Some(outcome));
    }

    /// Keeps `entries` to apply when the rebuild finishes, if it has not; gives them back if
    /// it has.
    fn defer_while_loading(
        &self,
        entries: Vec<Entry<TypeConfig>>,
    ) -> Option<Vec<Entry<TypeConfig>>> {
        let mut replay = self.replay.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_loaded() {
            return Some(entries);
        }
        replay.extend(entries);
        None
    }

    /// Changes the state in place. Readers wait for `f` (one batch of committed entries,
    /// decoded beforehand); in return the state is not copied: a snapshot shares every node of
    /// the store with it, so a change applied to a fresh snapshot copied each node it touched
    /// and freed the old one when the snapshot replaced the state, even where no reader held
    /// that node (over half of a follower's CPU in C1M). In place, only nodes that a reader's
    /// snapshot still holds are copied.
    pub(crate) fn update<T>(&self, f: impl FnOnce(&mut StateStore) -> T) -> T {
        let (out, index) = {
            let mut guard = self.state.write().unwrap_or_else(PoisonError::into_inner);
            let out = f(&mut guard);
            (out, guard.latest_index())
        };
        self.publish_index(index);
        out
    }

    fn replace(&self, next: StateStore) {
        let index = next.latest_index();
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = next;
        self.publish_index(index);
    }

    /// Tells the index's watchers (blocking queries) the state is now at `index`.
    fn publish_index(&self, index: u64) {
        self.index_tx.send_if_modified(|i| {
            let changed = *i != index;
            *i = index;
            changed
        });
    }
}

/// The state machine openraft drives.
pub struct StateMachine {
    handle: Arc<StateHandle>,
    /// True until `Raft::new` returns: openraft re-applies committed entries in there, before
    /// Raft runs, and nobody waits for their results (see `apply`).
    starting: Arc<AtomicBool>,
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, ServerNode>,
    snapshots: SnapshotStore,
    snapshot_seq: Arc<AtomicU64>,
}

fn sm_err(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::read_state_machine(AnyError::error(e.to_string())).into()
}

impl StateMachine {
    /// A state machine starting from the snapshot in `snapshots`, if there is one. The
    /// snapshot is verified here, and its state rebuilt on a thread of its own (load.rs):
    /// until then the handle is empty and everything that needs the state waits for it.
    pub fn open(snapshots: SnapshotStore) -> Result<Self, SnapshotError> {
        let (handle, last_applied, membership) = match snapshots.load()? {
            Some(bytes) => {
                let meta = snapshot::verify(&bytes)?;
                let handle = Arc::new(StateHandle::loading());
                crate::load::spawn(handle.clone(), bytes, snapshots.describe());
                snapshots.set_current_meta(meta.clone());
                (handle, meta.last_log_id, meta.last_membership)
            }
            None => (
                Arc::new(StateHandle::new(StateStore::new())),
                None,
                StoredMembership::default(),
            ),
        };
        Ok(Self {
            handle,
            starting: Arc::new(AtomicBool::new(true)),
            last_applied,
            membership,
            snapshots,
            snapshot_seq: Arc::default(),
        })
    }

    /// A state machine whose state is still being rebuilt, for tests that finish the rebuild
    /// themselves.
    #[cfg(test)]
    pub(crate) fn loading_for_test() -> Self {
        Self {
            handle: Arc::new(StateHandle::loading()),
            starting: Arc::new(AtomicBool::new(false)),
            last_applied: None,
            membership: StoredMembership::default(),
            snapshots: SnapshotStore::memory(),
            snapshot_seq: Arc::default(),
        }
    }

    /// Cleared once `Raft::new` has returned (see the `starting` field).
    pub(crate) fn starting_flag(&self) -> Arc<AtomicBool> {
        self.starting.clone()
    }

    /// The read side, shared with the server.
    pub fn handle(&self) -> Arc<StateHandle> {
        self.handle.clone()
    }

    /// The current state as snapshot bytes (for `operator snapshot save`).
    pub fn export(handle: &StateHandle, meta: &Meta) -> Result<Vec<u8>, SnapshotError> {
        snapshot::encode(meta, &handle.snapshot().to_image())
    }
}

/// An entry's commands decoded, ready to apply: decoding happens before the state is locked.
struct Decoded {
    commands: Vec<Command>,
    /// Per command in the entry: `None` for one in `commands`, else why it could not be
    /// decoded (reported, and skipped).
    slots: Vec<Option<Applied>>,
}

fn invalid(index: u64, message: String) -> Applied {
    Applied {
        index,
        error: Some(ApplyError {
            kind: ApplyErrorKind::Invalid,
            message,
        }),
        ..Applied::default()
    }
}

fn decode_commands(index: u64, encoded: &[serde_bytes::ByteBuf]) -> Decoded {
    let mut commands = Vec::with_capacity(encoded.len());
    let mut slots = Vec::with_capacity(encoded.len());
    for bytes in encoded {
        match crate::command_codec::decode(bytes) {
            Ok(c) => {
                slots.push(None);
                commands.push(c);
            }
            Err(e) => {
                tracing::error!(index, error = %e, "cannot decode a committed command");
                slots.push(Some(invalid(
                    index,
                    format!("cannot decode command at index {index}: {e}"),
                )));
            }
        }
    }
    Decoded { commands, slots }
}

fn apply_decoded(state: &mut StateStore, index: u64, decoded: Decoded) -> Vec<Applied> {
    let mut results = state.apply_batch(index, decoded.commands).into_iter();
    decoded
        .slots
        .into_iter()
        .map(|slot| match slot {
            Some(failed) => failed,
            None => match results.next() {
                Some(Ok(o)) => Applied {
                    index,
                    job_modify_index: o.job_modify_index,
                    error: None,
                },
                Some(Err(e)) => {
                    let kind = match e {
                        StateError::NotFound { .. } => ApplyErrorKind::NotFound,
                        StateError::Conflict(_) => ApplyErrorKind::Conflict,
                        StateError::StaleIndex { .. } => ApplyErrorKind::Invalid,
                    };
                    Applied {
                        index,
                        job_modify_index: 0,
                        error: Some(ApplyError {
                            kind,
                            message: e.to_string(),
                        }),
                    }
                }
                None => invalid(index, "missing result".into()),
            },
        })
        .collect()
}

/// An entry made ready to apply.
enum Prepared {
    /// Nothing to apply (a blank or membership entry).
    Nothing,
    Commands(Decoded),
    Restore(Vec<u8>),
}

fn prepare(index: u64, payload: EntryPayload<TypeConfig>) -> Prepared {
    match payload {
        EntryPayload::Blank | EntryPayload::Membership(_) => Prepared::Nothing,
        EntryPayload::Normal(Payload::Commands(cmds)) => {
            Prepared::Commands(decode_commands(index, &cmds))
        }
        EntryPayload::Normal(Payload::Restore(bytes)) => Prepared::Restore(bytes),
    }
}

fn apply_prepared(state: &mut StateStore, index: u64, prepared: Prepared) -> Vec<Applied> {
    match prepared {
        Prepared::Nothing => Vec::new(),
        Prepared::Commands(decoded) => apply_decoded(state, index, decoded),
        Prepared::Restore(bytes) => vec![apply_restore(state, index, &bytes)],
    }
}

/// Applies one entry's payload at `index`; one result per command.
fn apply_payload(
    state: &mut StateStore,
    index: u64,
    payload: EntryPayload<TypeConfig>,
) -> Vec<Applied> {
    apply_prepared(state, index, prepare(index, payload))
}

fn apply_restore(state: &mut StateStore, index: u64, bytes: &[u8]) -> Applied {
    let mut out = Applied {
        index,
        ..Applied::default()
    };
    let restored = snapshot::decode(bytes)
        .map_err(|e| e.to_string())
        .and_then(|(_, image)| StateStore::from_image(image));
    match restored {
        Ok(s) => *state = s.restored_at(index.max(state.latest_index() + 1)),
        Err(message) => {
            out.error = Some(ApplyError {
                kind: ApplyErrorKind::Invalid,
                message: format!("cannot restore snapshot: {message}"),
            })
        }
    }
    out
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, ServerNode>), StorageError<u64>> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<EntryApplied>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        for entry in &entries {
            self.last_applied = Some(entry.log_id);
            if let EntryPayload::Membership(m) = &entry.payload {
                self.membership = StoredMembership::new(Some(entry.log_id), m.clone());
            }
        }
        if self.starting.load(Ordering::Acquire) {
            // openraft's startup re-apply runs inside `Raft::new`: waiting here for the rebuild
            // would hold Raft back until it is done. Nobody waits for these results, so the
            // rebuild applies the entries before it publishes the state.
            let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
            match self.handle.defer_while_loading(entries) {
                None => {
                    return Ok(indexes
                        .into_iter()
                        .map(|index| EntryApplied {
                            index,
                            results: Vec::new(),
                        })
                        .collect())
                }
                Some(back) => entries = back,
            }
        }
        self.handle.wait_loaded().await.map_err(sm_err)?;
        let prepared: Vec<(u64, Prepared)> = entries
            .into_iter()
            .map(|e| (e.log_id.index, prepare(e.log_id.index, e.payload)))
            .collect();
        let restores = prepared
            .iter()
            .any(|(_, p)| matches!(p, Prepared::Restore(_)));
        let apply_all = |state: &mut StateStore| {
            prepared
                .into_iter()
                .map(|(index, p)| EntryApplied {
                    index,
                    results: apply_prepared(state, index, p),
                })
                .collect()
        };
        if restores {
            // Rebuilding the whole state takes long: readers keep the old one meanwhile.
            let mut state = self.handle.snapshot();
            let replies = apply_all(&mut state);
            self.handle.replace(state);
            return Ok(replies);
        }
        Ok(self.handle.update(apply_all))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let loaded = self.handle.wait_loaded().await;
        SnapshotBuilder {
            state: loaded.map(|()| self.handle.snapshot()),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            snapshots: self.snapshots.clone(),
            seq: self.snapshot_seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        // A rebuild still running would overwrite the installed state when it finishes.
        self.handle.wait_loaded().await.map_err(sm_err)?;
        let bytes = snapshot.into_inner();
        let snapshots = self.snapshots.clone();
        let meta_owned = meta.clone();
        let state = tokio::task::spawn_blocking(move || -> Result<StateStore, String> {
            let (_, image) = snapshot::decode(&bytes).map_err(|e| e.to_string())?;
            let state = StateStore::from_image(image)?;
            snapshots
                .save(&meta_owned, &bytes)
                .map_err(|e| e.to_string())?;
            Ok(state)
        })
        .await
        .map_err(sm_err)?
        .map_err(|e| {
            StorageError::from(StorageIOError::write_snapshot(
                Some(meta.signature()),
                AnyError::error(e),
            ))
        })?;
        self.handle.replace(state);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        tracing::info!(
            snapshot = %meta.snapshot_id,
            last_log_index = meta.last_log_id.map_or(0, |l| l.index),
            "installed a snapshot from the leader"
        );
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        let Some(meta) = self.snapshots.current_meta() else {
            return Ok(None);
        };
        let bytes = self.snapshots.load().map_err(sm_err)?;
        Ok(bytes.map(|b| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(b)),
        }))
    }
}

/// Builds a snapshot from an O(1) copy of the state, off the Raft core's thread.
pub struct SnapshotBuilder {
    /// The state, or why it could not be rebuilt from disk (then no snapshot is built).
    state: Result<StateStore, String>,
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, ServerNode>,
    snapshots: SnapshotStore,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, self.seq),
            None => format!("0-0-{}", self.seq),
        };
        let meta = Meta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        let state = self.state.clone().map_err(sm_err)?;
        let snapshots = self.snapshots.clone();
        let meta2 = meta.clone();
        let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, SnapshotError> {
            let bytes = snapshot::encode(&meta2, &state.to_image())?;
            snapshots.save(&meta2, &bytes)?;
            Ok(bytes)
        })
        .await
        .map_err(sm_err)?
        .map_err(|e| {
            StorageError::from(StorageIOError::write_snapshot(
                Some(meta.signature()),
                AnyError::error(e.to_string()),
            ))
        })?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

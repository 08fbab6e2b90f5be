//! The log that changes region state. Today it applies commands serially in memory; the Raft
//! issue replaces this with openraft, keeping `apply`'s contract: a command is applied at the
//! next index, or rejected with the store unchanged.

use rpc::RpcError;
use state::{ApplyOutcome, Command, StateError, StateStore};
use std::sync::{PoisonError, RwLock};
use tokio::sync::{watch, Mutex};

/// The state store plus its write path and a change signal for blocking queries.
pub(crate) struct StateLog {
    state: RwLock<StateStore>,
    /// Serialises writers so indexes are assigned in order.
    write: Mutex<()>,
    /// The latest applied index; blocking queries wait on changes.
    index_tx: watch::Sender<u64>,
}

impl StateLog {
    pub(crate) fn new() -> Self {
        let (index_tx, _) = watch::channel(0);
        Self {
            state: RwLock::new(StateStore::new()),
            write: Mutex::new(()),
            index_tx,
        }
    }

    /// An immutable snapshot of the current state (O(1)).
    pub(crate) fn snapshot(&self) -> StateStore {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot()
    }

    /// Subscribes to index changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.index_tx.subscribe()
    }

    /// Applies a command at the next index.
    pub(crate) async fn apply(&self, cmd: Command) -> Result<(u64, ApplyOutcome), RpcError> {
        let _writer = self.write.lock().await;
        let (index, outcome) = {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            let index = state.latest_index() + 1;
            let outcome = state.apply(index, cmd).map_err(|e| match e {
                StateError::NotFound { .. } => RpcError::not_found(e.to_string()),
                StateError::Conflict(_) => RpcError::conflict(e.to_string()),
                StateError::StaleIndex { .. } => RpcError::internal(e.to_string()),
            })?;
            (index, outcome)
        };
        self.index_tx.send_replace(index);
        Ok((index, outcome))
    }
}

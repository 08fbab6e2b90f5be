//! The write path to region state: every command is committed through Raft
//! ([`consensus::RaftNode`]) and applied by every server's state machine. Reads take O(1)
//! snapshots of the applied state.

use consensus::{ApplyErrorKind, RaftNode, StateHandle, WriteError};
use rpc::{ErrorCode, RpcError};
use state::{ApplyOutcome, Command, StateStore};
use std::sync::Arc;
use tokio::sync::watch;

/// The state store plus its write path and a change signal for blocking queries.
pub(crate) struct StateLog {
    raft: Arc<RaftNode>,
    state: Arc<StateHandle>,
}

impl StateLog {
    pub(crate) fn new(raft: Arc<RaftNode>) -> Self {
        let state = raft.state();
        Self { raft, state }
    }

    /// An immutable snapshot of the current state (O(1)).
    pub(crate) fn snapshot(&self) -> StateStore {
        self.state.snapshot()
    }

    /// Subscribes to index changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.state.subscribe()
    }

    /// Commits a command; returns the index it applied at and its outcome, or why it was
    /// rejected (the state is then unchanged).
    pub(crate) async fn apply(&self, cmd: Command) -> Result<(u64, ApplyOutcome), RpcError> {
        let applied = self.raft.write(cmd).await.map_err(write_error)?;
        match applied.error {
            None => Ok((
                applied.index,
                ApplyOutcome {
                    job_modify_index: applied.job_modify_index,
                },
            )),
            Some(e) => Err(match e.kind {
                ApplyErrorKind::NotFound => RpcError::not_found(e.message),
                ApplyErrorKind::Conflict => RpcError::conflict(e.message),
                ApplyErrorKind::Invalid => RpcError::internal(e.message),
            }),
        }
    }
}

const NOT_LEADER: &str = "not the leader; retry the request";

/// Whether `e` says a write reached a server that was no longer the leader, so nothing was
/// appended and the request can be sent to the new leader.
pub(crate) fn is_not_leader(e: &RpcError) -> bool {
    e.code == ErrorCode::NoLeader && e.message == NOT_LEADER
}

/// Maps a failed Raft write to the error callers see.
pub(crate) fn write_error(e: WriteError) -> RpcError {
    match e {
        WriteError::NotLeader { leader } => {
            let mut err = RpcError::new(ErrorCode::NoLeader, NOT_LEADER);
            err.leader_hint = leader.map(|l| l.rpc_addr);
            err
        }
        WriteError::Raft(msg) => RpcError::new(ErrorCode::Unavailable, msg),
    }
}

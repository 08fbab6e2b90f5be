//! [`RaftNode`]: one server's Raft member, the only face of openraft the server crate sees.
//! Writes, restores, membership changes, leadership and the receiving end of peer calls.

use crate::batch::Batcher;
use crate::leader_watch::{self, WatchGuard};
use crate::network::{self, Network};
use crate::snapshot::{Meta, SnapshotError, SnapshotStore};
use crate::{
    Applied, MemLogStore, Payload, Raft, ServerNode, StateHandle, StateMachine, StoreOpenError,
    TypeConfig, WalLogStore,
};
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, Config, ServerState, SnapshotPolicy};
use rpc::peer::PeerClient;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use thiserror::Error;
use tokio::sync::watch;
use tokio::time::Instant;

/// Where the Raft log and snapshots live.
#[derive(Debug, Clone)]
pub enum Storage {
    /// `<dir>/raft/` (the log) and `<dir>/snapshots/`, durable, for a server of `region`.
    Durable {
        /// The server directory (`<data_dir>/server`).
        dir: PathBuf,
        /// The region the data must belong to.
        region: String,
    },
    /// In memory (dev agents without a data_dir, tests).
    Memory,
}

/// Raft timing and compaction.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// Election timeout range.
    pub election_min_ms: u64,
    /// Election timeout range.
    pub election_max_ms: u64,
    /// Take a snapshot after this many entries (Nomad's `raft_snapshot_threshold`).
    pub snapshot_threshold: u64,
    /// Entries kept in the log behind a snapshot (Nomad's `raft_trailing_logs`).
    pub trailing_logs: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        Self {
            // openraft 0.9 lets a follower elect only after the leader's lease
            // (election_max_ms) plus a random election timeout, and a voter refuses votes until
            // its lease has run out. The leader watch (leader_watch.rs) calls the election when
            // the lease runs out, so the lease is what a failover costs; the timers, after
            // 250-300 ms of silence, are the fallback. Shorter timing calls spurious elections
            // when a loaded machine delays heartbeats (20/100-200 ms did, before TCP_NODELAY
            // removed 40 ms response stalls and a slow append stopped silencing a follower for
            // openraft's 500 ms backoff); `raft_multiplier` scales all three.
            heartbeat_ms: 30,
            election_min_ms: 100,
            election_max_ms: 150,
            snapshot_threshold: 8192,
            trailing_logs: 10240,
        }
    }
}

/// Why a Raft node could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The log could not be opened.
    #[error(transparent)]
    Store(#[from] StoreOpenError),
    /// The snapshot could not be read.
    #[error("{0}")]
    Snapshot(#[from] SnapshotError),
    /// The snapshot on disk could not be loaded.
    #[error("cannot load the snapshot in {dir}: {source}")]
    SnapshotFile {
        /// The snapshot directory.
        dir: PathBuf,
        /// Why.
        source: SnapshotError,
    },
    /// The state could not be rebuilt from the snapshot on disk.
    #[error("{0}")]
    Load(String),
    /// openraft refused the configuration or failed to start.
    #[error("Raft: {0}")]
    Raft(String),
}

/// Why a write did not commit.
#[derive(Debug, Clone, Error)]
pub enum WriteError {
    /// This server is not the leader.
    #[error("not the leader")]
    NotLeader {
        /// The leader, if known.
        leader: Option<ServerNode>,
    },
    /// Raft failed (shutting down, storage error) or refused the change.
    #[error("{0}")]
    Raft(String),
}

/// Who leads, as this server sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leadership {
    /// The leader's ID and node.
    pub leader: Option<(u64, ServerNode)>,
    /// This server is the leader.
    pub is_self: bool,
    /// The current term.
    pub term: u64,
}

/// A member of the Raft configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Raft node ID.
    pub id: u64,
    /// Name and address.
    pub node: ServerNode,
    /// Voter (else learner).
    pub voter: bool,
}

/// This server's Raft member.
pub struct RaftNode {
    raft: Raft,
    id: u64,
    node: ServerNode,
    state: Arc<StateHandle>,
    snapshots: SnapshotStore,
    leadership: watch::Receiver<Leadership>,
    last_contact: Arc<Mutex<Option<Instant>>>,
    batcher: Batcher,
    _watch: WatchGuard,
}

fn raft_err<E: std::fmt::Display>(e: E) -> WriteError {
    WriteError::Raft(e.to_string())
}

pub(crate) fn write_err(e: RaftError<u64, ClientWriteError<u64, ServerNode>>) -> WriteError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => WriteError::NotLeader {
            leader: f.leader_node,
        },
        other => raft_err(other),
    }
}

/// Starts openraft on `log` and `sm`; returns it and the state's read side. Until it returns,
/// the state machine lets openraft's startup re-apply run without waiting for the state's
/// rebuild (state_machine.rs).
async fn new_raft<LS: openraft::storage::RaftLogStorage<TypeConfig>>(
    id: u64,
    config: Arc<Config>,
    network: Network,
    log: LS,
    sm: StateMachine,
) -> Result<(Raft, Arc<StateHandle>), StartError> {
    let state = sm.handle();
    let starting = sm.starting_flag();
    let raft = Raft::new(id, config, network, log, sm)
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    starting.store(false, std::sync::atomic::Ordering::Release);
    Ok((raft, state))
}

impl RaftNode {
    /// Opens storage and starts the Raft member. `node` is this server's name and advertised
    /// RPC address; `peers` carries Raft RPCs to the other servers.
    pub async fn start(
        storage: Storage,
        node: ServerNode,
        settings: &RaftSettings,
        peers: PeerClient,
    ) -> Result<Self, StartError> {
        let config = Config {
            cluster_name: "caravan".into(),
            heartbeat_interval: settings.heartbeat_ms,
            election_timeout_min: settings.election_min_ms,
            election_timeout_max: settings.election_max_ms,
            install_snapshot_timeout: 10_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_threshold.max(1)),
            max_in_snapshot_log_to_keep: settings.trailing_logs,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let config = Arc::new(config);
        let network = Network::new(
            peers.clone(),
            std::time::Duration::from_millis(settings.heartbeat_ms),
        );
        let (raft, id, state, snapshots) = match storage {
            Storage::Durable { dir, region } => {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    StartError::Raft(format!("cannot create {}: {e}", dir.display()))
                })?;
                let (log, id) = WalLogStore::open(&dir.join("raft"), &region)?;
                let snap_dir = dir.join("snapshots");
                let snapshots = SnapshotStore::dir(&snap_dir)?;
                let sm = StateMachine::open(snapshots.clone()).map_err(|source| {
                    StartError::SnapshotFile {
                        dir: snap_dir.clone(),
                        source,
                    }
                })?;
                let (raft, state) = new_raft(id, config, network, log, sm).await?;
                (raft, id, state, snapshots)
            }
            Storage::Memory => {
                let id = rand::random::<u64>().max(1);
                let snapshots = SnapshotStore::memory();
                let sm = StateMachine::open(snapshots.clone())?;
                let (raft, state) = new_raft(id, config, network, MemLogStore::new(), sm).await?;
                (raft, id, state, snapshots)
            }
        };
        let leadership = watch_leadership(&raft);
        crate::load::follow_leadership(state.clone(), leadership.clone());
        let batcher = Batcher::start(raft.clone());
        let watch = leader_watch::start(
            raft.clone(),
            peers,
            leader_watch::Timing::new(
                settings.heartbeat_ms,
                settings.election_min_ms,
                settings.election_max_ms,
            ),
        );
        Ok(Self {
            batcher,
            _watch: watch,
            raft,
            id,
            node,
            state,
            snapshots,
            leadership,
            last_contact: Arc::default(),
        })
    }

    /// This server's Raft node ID.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// This server's name and address.
    pub fn node(&self) -> &ServerNode {
        &self.node
    }

    /// The applied state.
    pub fn state(&self) -> Arc<StateHandle> {
        self.state.clone()
    }

    /// Commits a command (leader only) and returns how it applied. The command is consumed
    /// once encoded, before the write is sent.
    pub async fn write(&self, cmd: state::Command) -> Result<Applied, WriteError> {
        let bytes = crate::command_codec::encode(cmd).map_err(WriteError::Raft)?;
        self.batcher.write(bytes).await
    }

    /// Replaces the whole state with a snapshot file's content, through the log.
    pub async fn restore(&self, snapshot: Vec<u8>) -> Result<Applied, WriteError> {
        crate::snapshot::decode_meta(&snapshot).map_err(raft_err)?;
        let resp = self
            .raft
            .client_write(Payload::Restore(snapshot))
            .await
            .map_err(write_err)?;
        resp.data
            .results
            .into_iter()
            .next()
            .ok_or_else(|| WriteError::Raft("the restore entry reported no result".into()))
    }

    /// The current state as snapshot file bytes (`operator snapshot save`).
    pub fn export(&self) -> Result<Vec<u8>, SnapshotError> {
        let metrics = self.raft.metrics().borrow().clone();
        let meta = Meta {
            last_log_id: metrics.last_applied,
            last_membership: (*metrics.membership_config).clone(),
            snapshot_id: format!("export-{}", metrics.last_applied.map_or(0, |l| l.index)),
        };
        StateMachine::export(&self.state, &meta)
    }

    /// Leadership as it changes.
    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.leadership.clone()
    }

    /// Leadership now.
    pub fn current_leadership(&self) -> Leadership {
        self.leadership.borrow().clone()
    }

    /// Waits until this leader has applied everything committed before its term (a barrier),
    /// and its state is rebuilt, so leader duties start from complete state.
    pub async fn barrier(&self) -> Result<(), WriteError> {
        // openraft counts the entries behind the snapshot on disk as applied at once; the
        // state they make is there only when its rebuild finished (load.rs). A server that
        // restarts as the leader (its vote for itself was committed) passes the Raft barrier
        // at once.
        self.state.wait_loaded().await.map_err(WriteError::Raft)?;
        self.raft
            .ensure_linearizable()
            .await
            .map(|_| ())
            .map_err(raft_err)
    }

    /// Whether this server has Raft state (bootstrapped or joined before).
    pub async fn is_initialized(&self) -> bool {
        self.raft.is_initialized().await.unwrap_or(false)
    }

    /// Bootstraps a new region with exactly these voters. Every server of the region calls it
    /// with the same set.
    pub async fn initialize(&self, members: BTreeMap<u64, ServerNode>) -> Result<(), WriteError> {
        self.raft.initialize(members).await.map_err(raft_err)
    }

    /// Adds a server as a voter (leader only): first as a learner that catches up, then
    /// promoted.
    pub async fn add_voter(&self, id: u64, node: ServerNode) -> Result<(), WriteError> {
        let members = self.configuration();
        if members
            .iter()
            .any(|p| p.id == id && p.voter && p.node == node)
        {
            return Ok(());
        }
        self.raft
            .add_learner(id, node, true)
            .await
            .map_err(write_err)?;
        self.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
            .await
    }

    /// Changes the membership, waiting (up to 10 s) for a change already in progress.
    async fn change_membership(
        &self,
        change: ChangeMembers<u64, ServerNode>,
    ) -> Result<(), WriteError> {
        for _ in 0..100 {
            match self.raft.change_membership(change.clone(), false).await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                ))) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                Err(e) => return Err(write_err(e)),
            }
        }
        Err(WriteError::Raft(
            "another membership change is still in progress; try again".into(),
        ))
    }

    /// Removes a server from the configuration (leader only).
    pub async fn remove_server(&self, id: u64) -> Result<(), WriteError> {
        let members = self.configuration();
        let Some(peer) = members.iter().find(|p| p.id == id) else {
            return Err(WriteError::Raft(format!(
                "no server with ID {id} in the configuration"
            )));
        };
        let change = if peer.voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.change_membership(change).await
    }

    /// The Raft configuration: every server with its role.
    pub fn configuration(&self) -> Vec<Peer> {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| Peer {
                id: *id,
                node: node.clone(),
                voter: voters.contains(id),
            })
            .collect()
    }

    /// The highest applied log index.
    pub fn applied_index(&self) -> u64 {
        self.raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |l| l.index)
    }

    /// The snapshot store (for tests and tools).
    pub fn snapshots(&self) -> &SnapshotStore {
        &self.snapshots
    }

    /// Asks Raft to snapshot now (log compaction).
    pub async fn trigger_snapshot(&self) -> Result<(), WriteError> {
        self.raft.trigger().snapshot().await.map_err(raft_err)
    }

    /// Milliseconds since this server last heard from the leader (0 on the leader).
    pub fn last_contact_ms(&self) -> u64 {
        if self.leadership.borrow().is_self {
            return 0;
        }
        self.last_contact
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map_or(0, |t| {
                u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
            })
    }

    /// Handles a `raft/*` peer call.
    pub async fn handle_peer(&self, kind: &str, body: &[u8]) -> Result<Vec<u8>, String> {
        if kind == network::KIND_APPEND || kind == network::KIND_SNAPSHOT {
            *self
                .last_contact
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
        network::handle(&self.raft, kind, body).await
    }

    /// The openraft handle, for this crate's tests.
    #[cfg(test)]
    pub(crate) fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Stops Raft (after which writes fail).
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "Raft did not shut down cleanly");
        }
    }
}

/// Maps openraft's metrics to [`Leadership`], published only when it changes.
fn watch_leadership(raft: &Raft) -> watch::Receiver<Leadership> {
    let mut metrics = raft.metrics();
    let (tx, rx) = watch::channel(Leadership::default());
    tokio::spawn(async move {
        loop {
            let next = {
                let m = metrics.borrow_and_update();
                let leader = m.current_leader.and_then(|id| {
                    m.membership_config
                        .membership()
                        .get_node(&id)
                        .map(|n| (id, n.clone()))
                });
                Leadership {
                    is_self: m.state == ServerState::Leader && m.current_leader == Some(m.id),
                    leader,
                    term: m.current_term,
                }
            };
            tx.send_if_modified(|cur| {
                let changed = *cur != next;
                *cur = next;
                changed
            });
            if metrics.changed().await.is_err() {
                return;
            }
        }
    });
    rx
}

//! Raft RPCs between servers, over the `rpc` crate's peer calls (`caravan.Caravan/Peer` on the
//! RPC port). Messages are bincode; entry payloads inside them are already-encoded commands.
//!
//! [`Network`] is the sending side openraft uses; [`handle`] is the receiving side the server's
//! peer handler calls for kinds starting with `raft/`. Besides openraft's three RPCs,
//! `raft/status` answers the leader watch (`leader_watch.rs`) with a server's [`Status`].

use crate::{Raft, ServerNode, TypeConfig};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{LogId, Vote};
use rpc::peer::{PeerCallError, PeerClient};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Peer-call kinds.
pub const KIND_APPEND: &str = "raft/append";
/// Peer-call kinds.
pub const KIND_VOTE: &str = "raft/vote";
/// Peer-call kinds.
pub const KIND_SNAPSHOT: &str = "raft/snapshot";
/// Peer-call kinds: a server's [`Status`] (no request body), asked by the leader watch.
pub const KIND_STATUS: &str = "raft/status";

/// What a server says about its Raft member (`raft/status`), for a voter that suspects the
/// leader is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Its Raft node ID.
    pub id: u64,
    /// Its vote (committed: it follows, or is, that term's leader).
    pub vote: Vote<u64>,
    /// Its last log ID, which a candidate's log must not be behind.
    pub last_log: Option<LogId<u64>>,
    /// Milliseconds since its vote was last refreshed (by the leader's appends, or by granting
    /// a vote); none when not since it started.
    pub vote_age_ms: Option<u64>,
    /// Milliseconds until its lease on the leader runs out: it refuses votes until then.
    pub lease_left_ms: u64,
    /// It is the leader.
    pub leading: bool,
}

/// Decodes a `raft/status` reply.
pub(crate) fn decode_status(body: &[u8]) -> Result<Status, String> {
    bincode::deserialize(body).map_err(|e| format!("cannot decode {KIND_STATUS} reply: {e}"))
}

/// Creates connections to peers for openraft.
#[derive(Clone, Default)]
pub struct Network {
    client: PeerClient,
    heartbeat: Duration,
}

impl Network {
    /// A network sharing `client`'s connections, for a leader sending heartbeats every
    /// `heartbeat`.
    pub fn new(client: PeerClient, heartbeat: Duration) -> Self {
        Self { client, heartbeat }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, node: &ServerNode) -> Connection {
        Connection {
            target,
            node: node.clone(),
            client: self.client.clone(),
            heartbeat: self.heartbeat,
        }
    }
}

/// One peer, as openraft sees it.
pub struct Connection {
    target: u64,
    node: ServerNode,
    client: PeerClient,
    heartbeat: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

impl Connection {
    async fn send<Req, Resp, E>(
        &self,
        kind: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, ServerNode, RaftError<u64, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = bincode::serialize(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        // openraft drops every call after `hard_ttl` and counts it as a timeout, which it
        // retries at the next heartbeat. The peer call's own deadline is later, and a call
        // that runs out of it anyway (on a loaded machine both deadlines pass before either is
        // looked at, and the peer's answer is then "Timeout expired") is `Slow`, not
        // `Unreachable`: that makes openraft stop sending to the peer for a backoff, and a
        // follower without heartbeats for that long calls an election.
        let deadline = option.hard_ttl() * 2;
        let reply = self
            .client
            .call(&self.node.rpc_addr, kind, body, deadline)
            .await
            .map_err(|e| match e {
                PeerCallError::Unreachable { .. } => {
                    RPCError::Unreachable(Unreachable::new(&Msg(e.to_string())))
                }
                // A slow answer is retried at the next heartbeat; reported as `Unreachable`,
                // it made openraft stop sending for a backoff, and under load (an entry of a
                // thousand placements, a follower's slow fdatasync) the silence outlasted the
                // lease and the followers elected a new leader.
                PeerCallError::Remote { .. } | PeerCallError::Slow { .. } => {
                    RPCError::Network(NetworkError::new(&Msg(e.to_string())))
                }
            })?;
        let result: Result<Resp, RaftError<u64, E>> =
            bincode::deserialize(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    /// After a peer could not be reached: retry after 1, 2 and 4 heartbeat intervals, within
    /// the lease a follower gives its leader, so that a short outage does not make the follower
    /// call an election; then every 500 ms (openraft's default) while it stays unreachable.
    fn backoff(&self) -> Backoff {
        let h = self.heartbeat.max(Duration::from_millis(1));
        Backoff::new(
            [h, h * 2, h * 4]
                .into_iter()
                .chain(std::iter::repeat(Duration::from_millis(500).max(h * 4))),
        )
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, ServerNode, RaftError<u64>>> {
        self.send(KIND_APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, ServerNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.send(KIND_SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, ServerNode, RaftError<u64>>> {
        self.send(KIND_VOTE, &rpc, &option).await
    }
}

fn reply<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    bincode::serialize(v).map_err(|e| format!("cannot encode Raft reply: {e}"))
}

fn request<T: DeserializeOwned>(kind: &str, body: &[u8]) -> Result<T, String> {
    bincode::deserialize(body).map_err(|e| format!("cannot decode {kind} request: {e}"))
}

/// Handles a `raft/*` peer call with the local Raft node.
pub async fn handle(raft: &Raft, kind: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    match kind {
        KIND_APPEND => reply(&raft.append_entries(request(kind, body)?).await),
        KIND_VOTE => reply(&raft.vote(request(kind, body)?).await),
        KIND_SNAPSHOT => reply(&raft.install_snapshot(request(kind, body)?).await),
        KIND_STATUS if body.is_empty() => reply(&crate::leader_watch::status(raft).await?),
        KIND_STATUS => Err(format!(
            "{kind} takes no request body ({} bytes sent)",
            body.len()
        )),
        other => Err(format!("unknown Raft call {other:?}")),
    }
}

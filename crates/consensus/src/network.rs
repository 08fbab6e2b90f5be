//! Raft RPCs between servers, over the `rpc` crate's peer calls (`caravan.Caravan/Peer` on the
//! RPC port). Messages are bincode; entry payloads inside them are already-encoded commands.
//!
//! [`Network`] is the sending side openraft uses; [`handle`] is the receiving side the server's
//! peer handler calls for kinds starting with `raft/`.

use crate::{Raft, ServerNode, TypeConfig};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use rpc::peer::{PeerCallError, PeerClient};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Peer-call kinds.
pub const KIND_APPEND: &str = "raft/append";
/// Peer-call kinds.
pub const KIND_VOTE: &str = "raft/vote";
/// Peer-call kinds.
pub const KIND_SNAPSHOT: &str = "raft/snapshot";

/// Creates connections to peers for openraft.
#[derive(Clone, Default)]
pub struct Network {
    client: PeerClient,
}

impl Network {
    /// A network sharing `client`'s connections.
    pub fn new(client: PeerClient) -> Self {
        Self { client }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, node: &ServerNode) -> Connection {
        Connection {
            target,
            node: node.clone(),
            client: self.client.clone(),
        }
    }
}

/// One peer, as openraft sees it.
pub struct Connection {
    target: u64,
    node: ServerNode,
    client: PeerClient,
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
        let reply = self
            .client
            .call(&self.node.rpc_addr, kind, body, option.hard_ttl())
            .await
            .map_err(|e| match e {
                PeerCallError::Unreachable { .. } => {
                    RPCError::Unreachable(Unreachable::new(&Msg(e.to_string())))
                }
                PeerCallError::Remote { .. } => {
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
        other => Err(format!("unknown Raft call {other:?}")),
    }
}

//! The server's side of peer calls: Raft RPCs, and the membership handshake servers use to
//! bootstrap a region and to join one (`server/info`, `server/join`).

use crate::Shared;
use async_trait::async_trait;
use consensus::ServerNode;
use rpc::peer::PeerHandler;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Peer-call kinds.
pub(crate) const KIND_INFO: &str = "server/info";
/// Peer-call kinds.
pub(crate) const KIND_JOIN: &str = "server/join";

/// What a server says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServerInfo {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) region: String,
    pub(crate) datacenter: String,
    pub(crate) rpc_addr: String,
    pub(crate) serf_port: u16,
    pub(crate) build: String,
    pub(crate) bootstrap_expect: u32,
    /// It has Raft state (bootstrapped, or joined a region).
    pub(crate) initialized: bool,
    /// The leader's RPC address, if it knows one.
    pub(crate) leader: Option<String>,
}

/// A server asking to be added to the region.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JoinRequest {
    pub(crate) id: u64,
    pub(crate) node: ServerNode,
    pub(crate) region: String,
}

impl Shared {
    pub(crate) async fn info(&self) -> ServerInfo {
        let leadership = self.raft.current_leadership();
        ServerInfo {
            id: self.raft.id(),
            name: self.config.node_name.clone(),
            region: self.config.region.clone(),
            datacenter: self.config.datacenter.clone(),
            rpc_addr: self.config.rpc_addr.clone(),
            serf_port: self.config.serf_port,
            build: self.config.build.clone(),
            bootstrap_expect: self.config.bootstrap_expect,
            initialized: self.raft.is_initialized().await,
            leader: leadership.leader.map(|(_, n)| n.rpc_addr),
        }
    }

    /// Asks each address (in parallel) who it is: one answer per address, in the order asked.
    pub(crate) async fn probe(
        &self,
        addrs: Vec<String>,
        timeout: Duration,
    ) -> Vec<(String, Result<ServerInfo, String>)> {
        let calls: Vec<_> = addrs
            .into_iter()
            .map(|addr| {
                let peers = self.peers.clone();
                let target = addr.clone();
                let call = tokio::spawn(async move {
                    peers
                        .call(&target, KIND_INFO, Vec::new(), timeout)
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|b| {
                            serde_json::from_slice::<ServerInfo>(&b).map_err(|e| e.to_string())
                        })
                });
                (addr, call)
            })
            .collect();
        let mut out = Vec::with_capacity(calls.len());
        for (addr, call) in calls {
            let answer = call.await.unwrap_or_else(|e| Err(e.to_string()));
            out.push((addr, answer));
        }
        out
    }

    /// Adds a server to the region, forwarding to the leader when this server is not it.
    pub(crate) async fn join(&self, req: JoinRequest) -> Result<(), String> {
        if req.region != self.config.region {
            return Err(format!(
                "server {} is in region {:?}, this region is {:?}",
                req.node.name, req.region, self.config.region
            ));
        }
        let leadership = self.raft.current_leadership();
        if leadership.is_self {
            return self
                .raft
                .add_voter(req.id, req.node)
                .await
                .map_err(|e| e.to_string());
        }
        let Some((_, leader)) = leadership.leader else {
            return Err("no cluster leader".into());
        };
        let body = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
        self.peers
            .call(&leader.rpc_addr, KIND_JOIN, body, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Dispatches peer calls to Raft or the membership handshake.
pub(crate) struct ServerPeer {
    pub(crate) shared: Arc<Shared>,
}

#[async_trait]
impl PeerHandler for ServerPeer {
    async fn handle(&self, kind: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
        match kind {
            KIND_INFO => serde_json::to_vec(&self.shared.info().await).map_err(|e| e.to_string()),
            KIND_JOIN => {
                let req: JoinRequest = serde_json::from_slice(&body)
                    .map_err(|e| format!("cannot decode join request: {e}"))?;
                self.shared.join(req).await.map(|()| Vec::new())
            }
            raft => self.shared.raft.handle_peer(raft, &body).await,
        }
    }
}

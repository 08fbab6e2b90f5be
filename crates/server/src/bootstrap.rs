//! Forming a region: a new server asks every `retry_join` address who it is. Once
//! `bootstrap_expect` servers of this region, none yet part of a Raft group, agree on that
//! number, each of them bootstraps Raft with exactly that set (the same set on each, so there
//! is one region, not several). A server that finds an existing region asks its leader to be
//! added. A server with Raft state never bootstraps again.

use crate::peer::{JoinRequest, ServerInfo, KIND_JOIN};
use crate::Shared;
use consensus::ServerNode;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};

const INFO_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) async fn run(shared: Arc<Shared>) {
    if shared.raft.is_initialized().await {
        info!(
            id = shared.raft.id(),
            "Raft state found; rejoining the region"
        );
        return;
    }
    let me = ServerNode {
        name: shared.config.node_name.clone(),
        rpc_addr: shared.config.rpc_addr.clone(),
    };
    let expect = shared.config.bootstrap_expect.max(1) as usize;
    loop {
        if shared.raft.is_initialized().await {
            return;
        }
        match attempt(&shared, &me, expect).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(problem) => error!("{problem}"),
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(shared.config.retry_interval) => {}
        }
    }
}

/// One round: Ok(true) when bootstrapped or joined, Ok(false) to wait, Err for a problem the
/// operator must fix (reported, then retried).
async fn attempt(shared: &Shared, me: &ServerNode, expect: usize) -> Result<bool, String> {
    let infos = discover(shared).await;
    let mine = shared.config.bootstrap_expect;
    let mut fresh: BTreeMap<u64, ServerNode> = BTreeMap::new();
    fresh.insert(shared.raft.id(), me.clone());
    for (addr, info) in &infos {
        if info.region != shared.config.region {
            warn!(
                addr = %addr,
                "server {} is in region {:?}, not {:?}; ignoring it",
                info.name, info.region, shared.config.region
            );
            continue;
        }
        if info.initialized {
            if let Some(leader) = &info.leader {
                return join(shared, me, leader).await;
            }
            continue;
        }
        if info.bootstrap_expect != mine {
            return Err(format!(
                "refusing to bootstrap: server {} at {addr} has bootstrap_expect = {}, but this \
                 server has bootstrap_expect = {mine}; every server of a region must expect the \
                 same number",
                info.name, info.bootstrap_expect
            ));
        }
        fresh.insert(
            info.id,
            ServerNode {
                name: info.name.clone(),
                rpc_addr: info.rpc_addr.clone(),
            },
        );
    }
    if fresh.len() < expect {
        info!(
            found = fresh.len(),
            expect, "waiting for more servers before bootstrapping the region"
        );
        return Ok(false);
    }
    if fresh.len() > expect {
        return Err(format!(
            "refusing to bootstrap: found {} servers that have not joined a region, but \
             bootstrap_expect = {expect}",
            fresh.len()
        ));
    }
    info!(servers = ?fresh.values().map(|n| n.rpc_addr.as_str()).collect::<Vec<_>>(),
        "bootstrapping the region");
    match shared.raft.initialize(fresh).await {
        Ok(()) => Ok(true),
        // Another server's entries may have reached us first: then we are part of the region.
        Err(_) if shared.raft.is_initialized().await => Ok(true),
        Err(e) => Err(format!("bootstrap failed: {e}")),
    }
}

/// Asks every `retry_join` address about itself (in parallel), skipping this server.
async fn discover(shared: &Shared) -> Vec<(String, ServerInfo)> {
    let addrs = shared
        .config
        .retry_join
        .iter()
        .filter(|addr| **addr != shared.config.rpc_addr)
        .cloned()
        .collect();
    let mut out = Vec::new();
    for (addr, answer) in shared.probe(addrs, INFO_TIMEOUT).await {
        match answer {
            Ok(info) if info.id == shared.raft.id() => {}
            Ok(info) => out.push((addr, info)),
            Err(e) => tracing::debug!(addr = %addr, error = %e, "retry_join: no answer"),
        }
    }
    out
}

async fn join(shared: &Shared, me: &ServerNode, leader: &str) -> Result<bool, String> {
    let req = JoinRequest {
        id: shared.raft.id(),
        node: me.clone(),
        region: shared.config.region.clone(),
    };
    let body = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
    info!(leader, "joining the existing region");
    shared
        .peers
        .call(leader, KIND_JOIN, body, Duration::from_secs(30))
        .await
        .map(|_| true)
        .map_err(|e| format!("joining the region through {leader} failed: {e}"))
}

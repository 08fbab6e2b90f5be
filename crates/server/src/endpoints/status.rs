//! Status endpoints: leader and peers of a region, answered by any server.

use crate::Shared;
use rpc::RpcError;

pub(super) fn leader(shared: &Shared, region: &str) -> Result<String, RpcError> {
    shared.check_region(region)?;
    Ok(shared
        .raft
        .current_leadership()
        .leader
        .map(|(_, n)| n.rpc_addr)
        .unwrap_or_default())
}

pub(super) fn peers(shared: &Shared, region: &str) -> Result<Vec<String>, RpcError> {
    shared.check_region(region)?;
    let mut peers: Vec<String> = shared
        .raft
        .configuration()
        .into_iter()
        .filter(|p| p.voter)
        .map(|p| p.node.rpc_addr)
        .collect();
    peers.sort();
    Ok(peers)
}

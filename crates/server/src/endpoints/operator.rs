//! Operator endpoints: the Raft configuration, removing a peer, snapshot save and restore, and
//! the servers of the region for `server members`.

use crate::log::write_error;
use crate::peer::ServerInfo;
use crate::Shared;
use rpc::{ErrorCode, PeerRef, RaftConfiguration, RaftServer, RpcError, ServerMember};
use std::time::Duration;

pub(super) fn raft_configuration(
    shared: &Shared,
    region: &str,
) -> Result<RaftConfiguration, RpcError> {
    shared.check_region(region)?;
    let leader = shared.raft.current_leadership().leader.map(|(id, _)| id);
    let mut servers: Vec<RaftServer> = shared
        .raft
        .configuration()
        .into_iter()
        .map(|p| RaftServer {
            id: p.id.to_string(),
            node: format!("{}.{}", p.node.name, shared.config.region),
            address: p.node.rpc_addr,
            leader: Some(p.id) == leader,
            voter: p.voter,
            raft_protocol: "3".into(),
        })
        .collect();
    servers.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(RaftConfiguration {
        index: shared.raft.applied_index(),
        servers,
    })
}

pub(super) async fn remove_peer(
    shared: &Shared,
    region: &str,
    peer: PeerRef,
) -> Result<(), RpcError> {
    shared.check_region(region)?;
    let config = shared.raft.configuration();
    let found = config.iter().find(|p| match &peer {
        PeerRef::Id(id) => p.id.to_string() == *id,
        PeerRef::Address(addr) => p.node.rpc_addr == *addr,
    });
    let Some(found) = found else {
        let what = match &peer {
            PeerRef::Id(id) => format!("ID {id:?}"),
            PeerRef::Address(a) => format!("address {a:?}"),
        };
        return Err(RpcError::not_found(format!(
            "no server with {what} in the Raft configuration"
        )));
    };
    shared
        .raft
        .remove_server(found.id)
        .await
        .map_err(write_error)
}

pub(super) async fn snapshot_save(shared: &Shared, region: &str) -> Result<Vec<u8>, RpcError> {
    shared.check_region(region)?;
    let raft = shared.raft.clone();
    tokio::task::spawn_blocking(move || raft.export())
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?
        .map_err(|e| RpcError::internal(format!("cannot take snapshot: {e}")))
}

pub(super) async fn snapshot_restore(
    shared: &Shared,
    region: &str,
    snapshot: Vec<u8>,
) -> Result<u64, RpcError> {
    shared.check_region(region)?;
    // Check the whole file before it enters the log.
    let check = snapshot.clone();
    tokio::task::spawn_blocking(move || consensus::snapshot::decode(&check).map(|_| ()))
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?
        .map_err(|e| RpcError::bad_request(format!("invalid snapshot: {e}")))?;
    let applied = shared.raft.restore(snapshot).await.map_err(write_error)?;
    if let Some(e) = applied.error {
        return Err(RpcError::new(ErrorCode::BadRequest, e.message));
    }
    // The restored state's pending evaluations and nodes are the leader duties' work now.
    crate::leader::start_duties(shared, true).await;
    Ok(applied.index)
}

pub(super) async fn members(shared: &Shared, region: &str) -> Result<Vec<ServerMember>, RpcError> {
    shared.check_region(region)?;
    let leadership = shared.raft.current_leadership();
    let leader = leadership.leader.map(|(id, _)| id);
    let me = shared.info().await;
    let mut out = vec![member(&me, "alive", Some(me.id) == leader)];
    let others: Vec<_> = shared
        .raft
        .configuration()
        .into_iter()
        .filter(|p| p.id != me.id)
        .collect();
    let answers = shared
        .probe(
            others.iter().map(|p| p.node.rpc_addr.clone()).collect(),
            Duration::from_millis(500),
        )
        .await;
    for (peer, (_, answer)) in others.into_iter().zip(answers) {
        let is_leader = Some(peer.id) == leader;
        out.push(match answer {
            Ok(info) => member(&info, "alive", is_leader),
            Err(_) => ServerMember {
                name: peer.node.name,
                id: peer.id.to_string(),
                rpc_addr: peer.node.rpc_addr,
                status: "failed".into(),
                leader: is_leader,
                region: shared.config.region.clone(),
                ..Default::default()
            },
        });
    }
    Ok(out)
}

fn member(info: &ServerInfo, status: &str, leader: bool) -> ServerMember {
    ServerMember {
        name: info.name.clone(),
        id: info.id.to_string(),
        rpc_addr: info.rpc_addr.clone(),
        serf_port: info.serf_port,
        status: status.into(),
        leader,
        build: info.build.clone(),
        datacenter: info.datacenter.clone(),
        region: info.region.clone(),
        bootstrap_expect: info.bootstrap_expect,
    }
}

pub(super) async fn scheduler_get_config(
    shared: &Shared,
    q: &rpc::QueryOptions,
) -> Result<rpc::QueryResponse<structs::SchedulerConfiguration>, RpcError> {
    shared
        .blocking(q, |s| {
            Ok((
                s.scheduler_config().clone(),
                s.index_of(&[state::Table::SchedulerConfig]),
            ))
        })
        .await
}

pub(super) async fn scheduler_set_config(
    shared: &Shared,
    region: &str,
    mut config: structs::SchedulerConfiguration,
    cas: Option<u64>,
) -> Result<rpc::SchedulerSetConfigResponse, RpcError> {
    shared.check_region(region)?;
    config.validate().map_err(RpcError::bad_request)?;
    let paused = config.pause_eval_broker;
    match shared
        .log
        .apply(state::Command::SchedulerSetConfig { config, cas })
        .await
    {
        Ok((index, _)) => {
            shared.broker.set_paused(paused).await;
            Ok(rpc::SchedulerSetConfigResponse {
                updated: true,
                index,
            })
        }
        // A check-and-set that did not match changes nothing: Nomad answers `Updated: false`.
        Err(e) if e.code == ErrorCode::Conflict && cas.is_some() => {
            Ok(rpc::SchedulerSetConfigResponse {
                updated: false,
                index: shared
                    .log
                    .snapshot()
                    .index_of(&[state::Table::SchedulerConfig]),
            })
        }
        Err(e) => Err(e),
    }
}

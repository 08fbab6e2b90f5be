//! The leader watch with three in-process Raft members calling each other over real gRPC peer
//! calls (in-memory logs), and the `raft/status` call's answers to good and bad input.

use crate::network::{self, Status};
use crate::{RaftNode, RaftSettings, ServerNode, Storage};
use async_trait::async_trait;
use rpc::peer::{PeerClient, PeerHandler};
use rpc::{
    AllocClientUpdate, NodeUpdateResponse, PeerRef, QueryOptions, QueryResponse, RaftConfiguration,
    Rpc, RpcError, SchedulerSetConfigResponse, ServerMember,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use structs::{
    AllocListStub, Allocation, Evaluation, Job, JobDeregisterResponse, JobListStub, JobPlanRequest,
    JobPlanResponse, JobRegisterRequest, JobRegisterResponse, JobSummary, Node, NodeListStub,
    SchedulerConfiguration,
};
use tokio::time::{sleep, Instant};

/// Peer calls go to the Raft member, as in the server.
struct RaftPeer(Arc<RaftNode>);

#[async_trait]
impl PeerHandler for RaftPeer {
    async fn handle(&self, kind: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
        self.0.handle_peer(kind, &body).await
    }
}

/// These tests serve peer calls only.
struct NoRpc;

fn unused() -> RpcError {
    RpcError::internal("not served in this test")
}

#[async_trait]
impl Rpc for NoRpc {
    async fn job_register(&self, _: JobRegisterRequest) -> Result<JobRegisterResponse, RpcError> {
        Err(unused())
    }
    async fn job_deregister(
        &self,
        _: &str,
        _: &str,
        _: bool,
    ) -> Result<JobDeregisterResponse, RpcError> {
        Err(unused())
    }
    async fn job_plan(&self, _: JobPlanRequest) -> Result<JobPlanResponse, RpcError> {
        Err(unused())
    }
    async fn job_list(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<JobListStub>>, RpcError> {
        Err(unused())
    }
    async fn job_get(&self, _: &str, _: &QueryOptions) -> Result<QueryResponse<Job>, RpcError> {
        Err(unused())
    }
    async fn job_versions(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Job>>, RpcError> {
        Err(unused())
    }
    async fn job_allocations(
        &self,
        _: &str,
        _: bool,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        Err(unused())
    }
    async fn job_evaluations(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        Err(unused())
    }
    async fn job_summary(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<JobSummary>, RpcError> {
        Err(unused())
    }
    async fn alloc_list(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        Err(unused())
    }
    async fn alloc_get(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Allocation>, RpcError> {
        Err(unused())
    }
    async fn node_list(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<NodeListStub>>, RpcError> {
        Err(unused())
    }
    async fn node_get(&self, _: &str, _: &QueryOptions) -> Result<QueryResponse<Node>, RpcError> {
        Err(unused())
    }
    async fn node_allocations(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        Err(unused())
    }
    async fn eval_list(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        Err(unused())
    }
    async fn eval_get(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Evaluation>, RpcError> {
        Err(unused())
    }
    async fn status_leader(&self, _: &str) -> Result<String, RpcError> {
        Err(unused())
    }
    async fn status_peers(&self, _: &str) -> Result<Vec<String>, RpcError> {
        Err(unused())
    }
    async fn regions(&self) -> Result<Vec<String>, RpcError> {
        Err(unused())
    }
    async fn region_members(&self, _: &str) -> Result<Vec<ServerMember>, RpcError> {
        Err(unused())
    }
    async fn raft_configuration(&self, _: &str) -> Result<RaftConfiguration, RpcError> {
        Err(unused())
    }
    async fn raft_remove_peer(&self, _: &str, _: PeerRef) -> Result<(), RpcError> {
        Err(unused())
    }
    async fn snapshot_save(&self, _: &str) -> Result<Vec<u8>, RpcError> {
        Err(unused())
    }
    async fn snapshot_restore(&self, _: &str, _: Vec<u8>) -> Result<u64, RpcError> {
        Err(unused())
    }
    async fn node_update_eligibility(&self, _: &str, _: &str) -> Result<u64, RpcError> {
        Err(unused())
    }
    async fn alloc_stop(&self, _: &str) -> Result<rpc::AllocStopResponse, RpcError> {
        Err(unused())
    }
    async fn node_update_drain(
        &self,
        _: &str,
        _: rpc::NodeDrainRequest,
    ) -> Result<rpc::NodeDrainResponse, RpcError> {
        Err(unused())
    }
    async fn scheduler_get_config(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<SchedulerConfiguration>, RpcError> {
        Err(unused())
    }
    async fn scheduler_set_config(
        &self,
        _: &str,
        _: SchedulerConfiguration,
        _: Option<u64>,
    ) -> Result<SchedulerSetConfigResponse, RpcError> {
        Err(unused())
    }
    async fn node_register(&self, _: Node) -> Result<NodeUpdateResponse, RpcError> {
        Err(unused())
    }
    async fn node_heartbeat(&self, _: &str) -> Result<NodeUpdateResponse, RpcError> {
        Err(unused())
    }
    async fn node_client_allocs(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        Err(unused())
    }
    async fn alloc_client_update(&self, _: Vec<AllocClientUpdate>) -> Result<u64, RpcError> {
        Err(unused())
    }
}

/// `n` Raft members serving peer calls on loopback ports, not yet a region.
async fn members(n: usize) -> Vec<Arc<RaftNode>> {
    let mut nodes = Vec::new();
    for i in 0..n {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let node = ServerNode {
            name: format!("s{i}"),
            rpc_addr: addr,
        };
        let raft = Arc::new(
            RaftNode::start(
                Storage::Memory,
                node,
                &RaftSettings::default(),
                PeerClient::new(),
            )
            .await
            .unwrap(),
        );
        // The server runs until the test's runtime ends.
        tokio::spawn(rpc::grpc_server::serve(
            Arc::new(NoRpc),
            Some(Arc::new(RaftPeer(raft.clone()))),
            listener,
            Default::default(),
        ));
        nodes.push(raft);
    }
    nodes
}

/// Waits (up to 20 s) until one of `nodes` leads a term after `after_term` and the others
/// follow it; returns its position.
async fn leader_of(nodes: &[&Arc<RaftNode>], after_term: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let views: Vec<_> = nodes.iter().map(|n| n.current_leadership()).collect();
        if let Some(i) = views.iter().position(|l| l.is_self && l.term > after_term) {
            let id = nodes[i].id();
            if views
                .iter()
                .all(|l| l.term == views[i].term && l.leader.as_ref().map(|(l, _)| *l) == Some(id))
            {
                return i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no leader after term {after_term}: {views:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

fn command(n: u64) -> state::Command {
    state::Command::AllocClientUpdate {
        updates: vec![state::ClientAllocUpdate {
            alloc_id: format!("watch-{n}"),
            client_status: "running".into(),
            ..Default::default()
        }],
        evals: vec![],
        now: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_leader_is_replaced_by_the_watch_with_timer_elections_off() {
    let nodes = members(3).await;
    let members: BTreeMap<u64, ServerNode> =
        nodes.iter().map(|n| (n.id(), n.node().clone())).collect();
    nodes[0].initialize(members).await.unwrap();
    let all: Vec<&Arc<RaftNode>> = nodes.iter().collect();
    let first = leader_of(&all, 0).await;
    // From here on only the watch can call an election.
    for n in &nodes {
        n.raft().runtime_config().elect(false);
    }
    for i in 0..20 {
        nodes[first].write(command(i)).await.unwrap();
    }
    let term = nodes[first].current_leadership().term;
    // The leader's Raft stops: it sends nothing more, and its peer calls fail.
    nodes[first].shutdown().await;

    let survivors: Vec<&Arc<RaftNode>> =
        (0..3).filter(|i| *i != first).map(|i| &nodes[i]).collect();
    let next = leader_of(&survivors, term).await;
    // The new leader commits writes with one follower.
    survivors[next].write(command(100)).await.unwrap();
    let other = survivors[1 - next];
    assert_eq!(
        other.current_leadership().leader.map(|(id, _)| id),
        Some(survivors[next].id())
    );
}

#[tokio::test]
async fn status_answers_an_empty_body_and_refuses_any_other() {
    let nodes = members(1).await;
    let node = &nodes[0];
    let reply = node.handle_peer(network::KIND_STATUS, &[]).await.unwrap();
    let status: Status = network::decode_status(&reply).unwrap();
    assert_eq!(status.id, node.id());
    assert!(!status.leading);
    assert_eq!(status.last_log, None);

    let err = node
        .handle_peer(network::KIND_STATUS, b"\xff\x00garbage")
        .await
        .unwrap_err();
    assert!(err.contains("raft/status takes no request body"), "{err}");
    assert!(network::decode_status(b"\x01").is_err());
    assert!(node.handle_peer("raft/unknown", &[]).await.is_err());
}

#[tokio::test]
async fn a_single_server_region_reports_itself_leading() {
    let nodes = members(1).await;
    let node = &nodes[0];
    node.initialize(BTreeMap::from([(node.id(), node.node().clone())]))
        .await
        .unwrap();
    leader_of(&[node], 0).await;
    let reply = node.handle_peer(network::KIND_STATUS, &[]).await.unwrap();
    let status = network::decode_status(&reply).unwrap();
    assert!(status.leading);
    assert!(status.vote.is_committed());
    assert_eq!(status.vote.leader_id().voted_for(), Some(node.id()));
}

//! An in-memory fake of the servers: one node, allocations placed on it, blocking allocation
//! queries on an index, and the status reports received.

use async_trait::async_trait;
use rpc::{
    AllocClientUpdate, ErrorCode, NodeUpdateResponse, QueryMeta, QueryOptions, QueryResponse, Rpc,
    RpcError,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use structs::*;
use tokio::sync::watch;

/// The fake servers: a node, allocations placed on it, and the reports received.
#[derive(Default)]
pub(super) struct FakeState {
    pub(super) node: Option<Node>,
    pub(super) allocs: BTreeMap<String, Allocation>,
    /// The newest report per allocation.
    pub(super) reports: BTreeMap<String, AllocClientUpdate>,
    /// How many reports each allocation got.
    pub(super) report_count: BTreeMap<String, usize>,
    pub(super) registrations: usize,
    pub(super) heartbeats: usize,
    /// The next heartbeats answer NotFound (the servers forgot the node).
    pub(super) forget_node: usize,
}

/// The fake servers, shared with the client under test.
pub(super) struct Fake {
    pub(super) state: Mutex<FakeState>,
    index: watch::Sender<u64>,
    ttl: Duration,
}

impl Fake {
    /// Fake servers handing out heartbeat TTLs of 10s.
    pub(super) fn new() -> Arc<Self> {
        Self::with_ttl(Duration::from_secs(10))
    }

    /// Fake servers handing out heartbeat TTLs of `ttl`.
    pub(super) fn with_ttl(ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(FakeState::default()),
            index: watch::channel(1).0,
            ttl,
        })
    }

    /// Places (or replaces) an allocation on the node.
    pub(super) fn place(&self, alloc: Allocation) {
        self.state
            .lock()
            .unwrap()
            .allocs
            .insert(alloc.id.clone(), alloc);
        self.index.send_modify(|i| *i += 1);
    }

    /// Sets an allocation's desired status to stop.
    pub(super) fn stop(&self, id: &str) {
        if let Some(a) = self.state.lock().unwrap().allocs.get_mut(id) {
            a.desired_status = "stop".into();
        }
        self.index.send_modify(|i| *i += 1);
    }

    /// The newest report of an allocation.
    pub(super) fn report(&self, id: &str) -> Option<AllocClientUpdate> {
        self.state.lock().unwrap().reports.get(id).cloned()
    }

    /// The registered node's ID.
    pub(super) fn node_id(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .node
            .as_ref()
            .map(|n| n.id.clone())
    }
}

fn nope<T>() -> Result<T, RpcError> {
    Err(RpcError::internal("not in the fake"))
}

#[async_trait]
impl Rpc for Fake {
    async fn job_register(&self, _: JobRegisterRequest) -> Result<JobRegisterResponse, RpcError> {
        nope()
    }
    async fn job_deregister(
        &self,
        _: &str,
        _: &str,
        _: bool,
    ) -> Result<JobDeregisterResponse, RpcError> {
        nope()
    }
    async fn job_plan(&self, _: JobPlanRequest) -> Result<JobPlanResponse, RpcError> {
        nope()
    }
    async fn job_list(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<JobListStub>>, RpcError> {
        nope()
    }
    async fn job_get(&self, _: &str, _: &QueryOptions) -> Result<QueryResponse<Job>, RpcError> {
        nope()
    }
    async fn job_versions(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Job>>, RpcError> {
        nope()
    }
    async fn job_allocations(
        &self,
        _: &str,
        _: bool,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        nope()
    }
    async fn job_evaluations(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        nope()
    }
    async fn job_summary(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<JobSummary>, RpcError> {
        nope()
    }
    async fn alloc_list(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        nope()
    }
    async fn alloc_get(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Allocation>, RpcError> {
        nope()
    }
    async fn node_list(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<NodeListStub>>, RpcError> {
        nope()
    }
    async fn node_get(&self, _: &str, _: &QueryOptions) -> Result<QueryResponse<Node>, RpcError> {
        nope()
    }
    async fn node_allocations(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        nope()
    }
    async fn eval_list(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        nope()
    }
    async fn eval_get(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Evaluation>, RpcError> {
        nope()
    }
    async fn status_leader(&self, _: &str) -> Result<String, RpcError> {
        nope()
    }
    async fn status_peers(&self, _: &str) -> Result<Vec<String>, RpcError> {
        nope()
    }
    async fn regions(&self) -> Result<Vec<String>, RpcError> {
        nope()
    }
    async fn region_members(&self, _: &str) -> Result<Vec<rpc::ServerMember>, RpcError> {
        nope()
    }
    async fn raft_configuration(&self, _: &str) -> Result<rpc::RaftConfiguration, RpcError> {
        nope()
    }
    async fn raft_remove_peer(&self, _: &str, _: rpc::PeerRef) -> Result<(), RpcError> {
        nope()
    }
    async fn snapshot_save(&self, _: &str) -> Result<Vec<u8>, RpcError> {
        nope()
    }
    async fn snapshot_restore(&self, _: &str, _: Vec<u8>) -> Result<u64, RpcError> {
        nope()
    }
    async fn node_update_eligibility(&self, _: &str, _: &str) -> Result<u64, RpcError> {
        nope()
    }
    async fn alloc_stop(&self, _: &str) -> Result<rpc::AllocStopResponse, RpcError> {
        nope()
    }
    async fn node_update_drain(
        &self,
        _: &str,
        _: rpc::NodeDrainRequest,
    ) -> Result<rpc::NodeDrainResponse, RpcError> {
        nope()
    }
    async fn scheduler_get_config(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<SchedulerConfiguration>, RpcError> {
        nope()
    }
    async fn scheduler_set_config(
        &self,
        _: &str,
        _: SchedulerConfiguration,
        _: Option<u64>,
    ) -> Result<rpc::SchedulerSetConfigResponse, RpcError> {
        nope()
    }
    async fn node_register(&self, node: Node) -> Result<NodeUpdateResponse, RpcError> {
        let mut s = self.state.lock().unwrap();
        s.node = Some(node);
        s.registrations += 1;
        Ok(NodeUpdateResponse {
            heartbeat_ttl: self.ttl,
            index: 1,
        })
    }
    async fn node_heartbeat(&self, _: &str) -> Result<NodeUpdateResponse, RpcError> {
        let mut s = self.state.lock().unwrap();
        s.heartbeats += 1;
        if s.forget_node > 0 {
            s.forget_node -= 1;
            return Err(RpcError::new(ErrorCode::NotFound, "node not found"));
        }
        Ok(NodeUpdateResponse {
            heartbeat_ttl: self.ttl,
            index: 1,
        })
    }
    async fn node_client_allocs(
        &self,
        _: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        let mut rx = self.index.subscribe();
        while *rx.borrow_and_update() <= q.min_index {
            if tokio::time::timeout(Duration::from_secs(5), rx.changed())
                .await
                .is_err()
            {
                break;
            }
        }
        let index = *self.index.borrow();
        let allocs = self
            .state
            .lock()
            .unwrap()
            .allocs
            .values()
            .cloned()
            .collect();
        Ok(QueryResponse {
            value: allocs,
            meta: QueryMeta {
                index,
                known_leader: true,
                last_contact_ms: 0,
            },
        })
    }
    async fn alloc_client_update(&self, updates: Vec<AllocClientUpdate>) -> Result<u64, RpcError> {
        let mut s = self.state.lock().unwrap();
        for u in updates {
            *s.report_count.entry(u.alloc_id.clone()).or_default() += 1;
            // As the servers do: the allocation keeps what its client reported.
            if let Some(a) = s.allocs.get_mut(&u.alloc_id) {
                a.client_status = u.client_status.clone();
                a.task_states = u.task_states.clone();
            }
            s.reports.insert(u.alloc_id.clone(), u);
        }
        Ok(1)
    }
}

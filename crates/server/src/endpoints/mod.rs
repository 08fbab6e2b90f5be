//! The `Rpc` implementation: one file per resource; this file only routes trait calls, to the
//! local handler or (writes and non-stale reads on a follower) to the leader.

mod alloc_stop;
mod allocs;
mod client;
mod jobs;
mod operator;
mod status;

use crate::forward::Route;
use crate::Shared;
use async_trait::async_trait;
use rpc::{
    AllocClientUpdate, NodeUpdateResponse, PeerRef, QueryOptions, QueryResponse, RaftConfiguration,
    Rpc, RpcError, ServerMember,
};
use std::sync::Arc;
use structs::{
    AllocListStub, Allocation, Evaluation, Job, JobDeregisterResponse, JobListStub, JobPlanRequest,
    JobPlanResponse, JobRegisterRequest, JobRegisterResponse, JobSummary, Node, NodeListStub,
};

/// The server's RPC endpoints (in-process).
pub struct ServerRpc {
    shared: Arc<Shared>,
}

impl ServerRpc {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// Keeps entries whose ID starts with the query's prefix.
pub(crate) fn has_prefix(id: &str, q: &QueryOptions) -> bool {
    q.prefix.is_empty() || id.starts_with(&q.prefix)
}

/// Runs `$local` here, or `$remote` with the leader's client bound to `$r`.
/// A request that failed because leadership moved before its write was appended (nothing was
/// committed), or whose forward found the leader gone, is routed again once leadership
/// changes, a few times within the hold timeout.
macro_rules! routed {
    ($self:ident, $stale:expr, |$r:ident| $remote:expr, $local:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut leadership = $self.shared.raft.leadership();
            let seen = leadership.borrow_and_update().clone();
            let (result, forwarded) = match $self.shared.route($stale).await? {
                Route::Leader($r) => ($remote, true),
                Route::Local => ($local, false),
            };
            match result {
                Err(e) if crate::log::is_not_leader(&e) && attempt < 4 => {
                    tracing::debug!(attempt, "leadership moved during a request; routing it again");
                }
                Err(e) if forwarded && e.code == rpc::ErrorCode::Unavailable && attempt < 4 => {
                    // The leader we forwarded to is unreachable: wait for the region to notice
                    // and elect another, then route again.
                    tracing::debug!(attempt, error = %e.message, "leader unreachable; waiting for a new one");
                    let changed = tokio::time::timeout(
                        crate::forward::HOLD,
                        leadership.wait_for(|l| l.leader != seen.leader && l.leader.is_some()),
                    )
                    .await;
                    if !matches!(changed, Ok(Ok(_))) {
                        break Err(e);
                    }
                }
                other => break other,
            }
        }
    }};
}

/// The namespace of a query (`default` when unset).
pub(crate) fn namespace(q: &QueryOptions) -> &str {
    if q.namespace.is_empty() {
        "default"
    } else {
        &q.namespace
    }
}

#[async_trait]
impl Rpc for ServerRpc {
    async fn job_register(&self, req: JobRegisterRequest) -> Result<JobRegisterResponse, RpcError> {
        routed!(
            self,
            false,
            |r| r.job_register(req.clone()).await,
            jobs::register(&self.shared, req.clone()).await
        )
    }
    async fn job_deregister(
        &self,
        namespace: &str,
        job_id: &str,
        purge: bool,
    ) -> Result<JobDeregisterResponse, RpcError> {
        routed!(
            self,
            false,
            |r| r.job_deregister(namespace, job_id, purge).await,
            jobs::deregister(&self.shared, namespace, job_id, purge).await
        )
    }
    async fn job_plan(&self, req: JobPlanRequest) -> Result<JobPlanResponse, RpcError> {
        routed!(
            self,
            false,
            |r| r.job_plan(req.clone()).await,
            jobs::plan(&self.shared, req.clone())
        )
    }
    async fn job_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<JobListStub>>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.job_list(q).await,
            jobs::list(&self.shared, q).await
        )
    }
    async fn job_get(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Job>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.job_get(job_id, q).await,
            jobs::get(&self.shared, job_id, q).await
        )
    }
    async fn job_versions(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Job>>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.job_versions(job_id, q).await,
            jobs::versions(&self.shared, job_id, q).await
        )
    }
    async fn job_allocations(
        &self,
        job_id: &str,
        all: bool,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.job_allocations(job_id, all, q).await,
            jobs::allocations(&self.shared, job_id, all, q).await
        )
    }
    async fn job_evaluations(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.job_evaluations(job_id, q).await,
            jobs::evaluations(&self.shared, job_id, q).await
        )
    }
    async fn job_summary(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<JobSummary>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.job_summary(job_id, q).await,
            jobs::summary(&self.shared, job_id, q).await
        )
    }
    async fn alloc_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.alloc_list(q).await,
            allocs::list(&self.shared, q).await
        )
    }
    async fn alloc_get(
        &self,
        alloc_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Allocation>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.alloc_get(alloc_id, q).await,
            allocs::get(&self.shared, alloc_id, q).await
        )
    }
    async fn node_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<NodeListStub>>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.node_list(q).await,
            allocs::node_list(&self.shared, q).await
        )
    }
    async fn node_get(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Node>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.node_get(node_id, q).await,
            allocs::node_get(&self.shared, node_id, q).await
        )
    }
    async fn node_allocations(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.node_allocations(node_id, q).await,
            allocs::node_allocations(&self.shared, node_id, q).await
        )
    }
    async fn eval_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.eval_list(q).await,
            allocs::eval_list(&self.shared, q).await
        )
    }
    async fn eval_get(
        &self,
        eval_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Evaluation>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.eval_get(eval_id, q).await,
            allocs::eval_get(&self.shared, eval_id, q).await
        )
    }
    async fn status_leader(&self, region: &str) -> Result<String, RpcError> {
        status::leader(&self.shared, region)
    }
    async fn status_peers(&self, region: &str) -> Result<Vec<String>, RpcError> {
        status::peers(&self.shared, region)
    }
    async fn regions(&self) -> Result<Vec<String>, RpcError> {
        Ok(vec![self.shared.config.region.clone()])
    }
    async fn node_register(&self, node: Node) -> Result<NodeUpdateResponse, RpcError> {
        routed!(
            self,
            false,
            |r| r.node_register(node.clone()).await,
            client::node_register(&self.shared, node.clone()).await
        )
    }
    async fn node_heartbeat(&self, node_id: &str) -> Result<NodeUpdateResponse, RpcError> {
        routed!(
            self,
            false,
            |r| r.node_heartbeat(node_id).await,
            client::node_heartbeat(&self.shared, node_id).await
        )
    }
    async fn node_client_allocs(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.node_client_allocs(node_id, q).await,
            client::node_client_allocs(&self.shared, node_id, q).await
        )
    }
    async fn alloc_client_update(&self, updates: Vec<AllocClientUpdate>) -> Result<u64, RpcError> {
        routed!(
            self,
            false,
            |r| r.alloc_client_update(updates.clone()).await,
            client::alloc_client_update(&self.shared, updates.clone()).await
        )
    }
    async fn region_members(&self, region: &str) -> Result<Vec<ServerMember>, RpcError> {
        operator::members(&self.shared, region).await
    }
    async fn raft_configuration(&self, region: &str) -> Result<RaftConfiguration, RpcError> {
        routed!(
            self,
            false,
            |r| r.raft_configuration(region).await,
            operator::raft_configuration(&self.shared, region)
        )
    }
    async fn raft_remove_peer(&self, region: &str, peer: PeerRef) -> Result<(), RpcError> {
        routed!(
            self,
            false,
            |r| r.raft_remove_peer(region, peer.clone()).await,
            operator::remove_peer(&self.shared, region, peer.clone()).await
        )
    }
    async fn snapshot_save(&self, region: &str) -> Result<Vec<u8>, RpcError> {
        routed!(
            self,
            false,
            |r| r.snapshot_save(region).await,
            operator::snapshot_save(&self.shared, region).await
        )
    }
    async fn snapshot_restore(&self, region: &str, snapshot: Vec<u8>) -> Result<u64, RpcError> {
        routed!(
            self,
            false,
            |r| r.snapshot_restore(region, snapshot.clone()).await,
            operator::snapshot_restore(&self.shared, region, snapshot.clone()).await
        )
    }
    async fn alloc_stop(&self, alloc_id: &str) -> Result<rpc::AllocStopResponse, RpcError> {
        routed!(
            self,
            false,
            |r| r.alloc_stop(alloc_id).await,
            alloc_stop::alloc_stop(&self.shared, alloc_id).await
        )
    }
    async fn node_update_eligibility(
        &self,
        node_id: &str,
        eligibility: &str,
    ) -> Result<u64, RpcError> {
        routed!(
            self,
            false,
            |r| r.node_update_eligibility(node_id, eligibility).await,
            client::node_update_eligibility(&self.shared, node_id, eligibility).await
        )
    }
    async fn node_update_drain(
        &self,
        node_id: &str,
        req: rpc::NodeDrainRequest,
    ) -> Result<rpc::NodeDrainResponse, RpcError> {
        routed!(
            self,
            false,
            |r| r.node_update_drain(node_id, req.clone()).await,
            client::node_update_drain(&self.shared, node_id, req.clone()).await
        )
    }
    async fn scheduler_get_config(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<structs::SchedulerConfiguration>, RpcError> {
        routed!(
            self,
            q.stale,
            |r| r.scheduler_get_config(q).await,
            operator::scheduler_get_config(&self.shared, q).await
        )
    }
    async fn scheduler_set_config(
        &self,
        region: &str,
        config: structs::SchedulerConfiguration,
        cas: Option<u64>,
    ) -> Result<rpc::SchedulerSetConfigResponse, RpcError> {
        routed!(
            self,
            false,
            |r| r.scheduler_set_config(region, config.clone(), cas).await,
            operator::scheduler_set_config(&self.shared, region, config.clone(), cas).await
        )
    }
}

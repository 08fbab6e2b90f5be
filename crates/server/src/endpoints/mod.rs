//! The `Rpc` implementation: one file per resource, this file only routes trait calls.

mod allocs;
mod client;
mod jobs;
mod status;

use crate::Shared;
use async_trait::async_trait;
use rpc::{AllocClientUpdate, NodeUpdateResponse, QueryOptions, QueryResponse, Rpc, RpcError};
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
        jobs::register(&self.shared, req).await
    }
    async fn job_deregister(
        &self,
        namespace: &str,
        job_id: &str,
        purge: bool,
    ) -> Result<JobDeregisterResponse, RpcError> {
        jobs::deregister(&self.shared, namespace, job_id, purge).await
    }
    async fn job_plan(&self, req: JobPlanRequest) -> Result<JobPlanResponse, RpcError> {
        jobs::plan(&self.shared, req)
    }
    async fn job_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<JobListStub>>, RpcError> {
        jobs::list(&self.shared, q).await
    }
    async fn job_get(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Job>, RpcError> {
        jobs::get(&self.shared, job_id, q).await
    }
    async fn job_versions(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Job>>, RpcError> {
        jobs::versions(&self.shared, job_id, q).await
    }
    async fn job_allocations(
        &self,
        job_id: &str,
        all: bool,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        jobs::allocations(&self.shared, job_id, all, q).await
    }
    async fn job_evaluations(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        jobs::evaluations(&self.shared, job_id, q).await
    }
    async fn job_summary(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<JobSummary>, RpcError> {
        jobs::summary(&self.shared, job_id, q).await
    }
    async fn alloc_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        allocs::list(&self.shared, q).await
    }
    async fn alloc_get(
        &self,
        alloc_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Allocation>, RpcError> {
        allocs::get(&self.shared, alloc_id, q).await
    }
    async fn node_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<NodeListStub>>, RpcError> {
        allocs::node_list(&self.shared, q).await
    }
    async fn node_get(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Node>, RpcError> {
        allocs::node_get(&self.shared, node_id, q).await
    }
    async fn node_allocations(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        allocs::node_allocations(&self.shared, node_id, q).await
    }
    async fn eval_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        allocs::eval_list(&self.shared, q).await
    }
    async fn eval_get(
        &self,
        eval_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Evaluation>, RpcError> {
        allocs::eval_get(&self.shared, eval_id, q).await
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
        client::node_register(&self.shared, node).await
    }
    async fn node_heartbeat(&self, node_id: &str) -> Result<NodeUpdateResponse, RpcError> {
        client::node_heartbeat(&self.shared, node_id).await
    }
    async fn node_client_allocs(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        client::node_client_allocs(&self.shared, node_id, q).await
    }
    async fn alloc_client_update(&self, updates: Vec<AllocClientUpdate>) -> Result<u64, RpcError> {
        client::alloc_client_update(&self.shared, updates).await
    }
}

//! The `Rpc` trait: every endpoint the HTTP API, the CLI (through HTTP) and the client agent use
//! to reach the servers, plus typed errors with stable codes. The in-process implementation
//! lives in `server`; `grpc_server::serve` and `remote::RemoteRpc` carry the same calls between
//! agents over gRPC (`proto/caravan.proto`).
//!
//! This crate owns no logic: it is the seam. It must not depend on `server` or `state`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use structs::{
    AllocListStub, Allocation, Evaluation, Job, JobDeregisterResponse, JobListStub, JobPlanRequest,
    JobPlanResponse, JobRegisterRequest, JobRegisterResponse, JobSummary, Node, NodeListStub,
    SchedulerConfiguration, TaskState, VecMap,
};

mod error;
pub mod grpc_server;
mod operator;
pub mod peer;
pub mod remote;
mod stream;
mod wire;
pub use error::{ErrorCode, RpcError};
pub use operator::{
    PeerRef, RaftConfiguration, RaftServer, SchedulerSetConfigResponse, ServerMember,
};

/// Options of a read: region, namespace, `?prefix=`, and blocking (`?index=&wait=`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryOptions {
    /// Target region; empty means the serving agent's own.
    pub region: String,
    /// Namespace; empty means `default`.
    pub namespace: String,
    /// ID prefix filter on list endpoints.
    pub prefix: String,
    /// Block until the result's index is greater than this (0 = do not block).
    pub min_index: u64,
    /// How long to block at most (the server caps it).
    pub wait: Option<Duration>,
    /// Allow any server to answer (`?stale`).
    pub stale: bool,
}

/// What a read returns besides its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryMeta {
    /// The Raft index the result reflects (`X-Nomad-Index`).
    pub index: u64,
    /// Whether the answering server knows a leader (`X-Nomad-KnownLeader`).
    pub known_leader: bool,
    /// Milliseconds since the answering server heard from the leader (`X-Nomad-LastContact`).
    pub last_contact_ms: u64,
}

/// A read's value and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse<T> {
    /// The result.
    pub value: T,
    /// Index and leader information.
    pub meta: QueryMeta,
}

/// A client's report of one allocation's progress.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AllocClientUpdate {
    /// The allocation.
    pub alloc_id: String,
    /// `pending`, `running`, `complete`, `failed`.
    pub client_status: String,
    /// Human-readable reason.
    pub client_description: String,
    /// Every task's state and events.
    pub task_states: VecMap<String, TaskState>,
}

/// The server's answer to a node registration or heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeUpdateResponse {
    /// Heartbeat again within this long, or the node is marked down.
    pub heartbeat_ttl: Duration,
    /// Raft index of the write.
    pub index: u64,
}

/// The server's answer to `alloc stop`: the evaluation that replaces the allocation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AllocStopResponse {
    /// The evaluation created.
    pub eval_id: String,
    /// Raft index of the write.
    pub index: u64,
}

/// What `POST /v1/node/:id/drain` asks for (Nomad's `NodeUpdateDrainRequest`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeDrainRequest {
    /// The drain to start or change; None ends the current one (`-disable`).
    pub drain_spec: Option<structs::DrainSpec>,
    /// When ending the drain: make the node eligible again (`-disable` without
    /// `-keep-ineligible`).
    pub mark_eligible: bool,
    /// `-m` (as the `message` key) and `-meta`, kept in the node's `LastDrain`.
    pub meta: std::collections::BTreeMap<String, String>,
}

/// What a drain update answers (Nomad's `NodeDrainUpdateResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeDrainResponse {
    /// Evaluations created (system jobs when the node becomes eligible again).
    #[serde(rename = "EvalIDs")]
    pub eval_ids: Vec<String>,
    /// Raft index of the evaluations (0 when none).
    pub eval_create_index: u64,
    /// Raft index of the node update.
    pub node_modify_index: u64,
}

/// Every call an agent makes to the servers of a region. Reads take `QueryOptions`; missing
/// objects are `ErrorCode::NotFound`.
#[async_trait]
pub trait Rpc: Send + Sync + 'static {
    // ---- jobs ----
    /// Registers (creates or updates) a job and creates its evaluation.
    async fn job_register(&self, req: JobRegisterRequest) -> Result<JobRegisterResponse, RpcError>;
    /// Stops a job (or removes it with `purge`) and creates its evaluation.
    async fn job_deregister(
        &self,
        namespace: &str,
        job_id: &str,
        purge: bool,
    ) -> Result<JobDeregisterResponse, RpcError>;
    /// Dry-runs the scheduler for a new version of a job.
    async fn job_plan(&self, req: JobPlanRequest) -> Result<JobPlanResponse, RpcError>;
    /// Lists jobs.
    async fn job_list(&self, q: &QueryOptions)
        -> Result<QueryResponse<Vec<JobListStub>>, RpcError>;
    /// One job.
    async fn job_get(&self, job_id: &str, q: &QueryOptions)
        -> Result<QueryResponse<Job>, RpcError>;
    /// Every tracked version of a job, newest first.
    async fn job_versions(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Job>>, RpcError>;
    /// A job's allocations (`all`: include those of older job incarnations).
    async fn job_allocations(
        &self,
        job_id: &str,
        all: bool,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError>;
    /// A job's evaluations.
    async fn job_evaluations(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError>;
    /// A job's summary.
    async fn job_summary(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<JobSummary>, RpcError>;

    // ---- allocations, nodes, evaluations ----
    /// Lists allocations.
    async fn alloc_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError>;
    /// One allocation (exact ID).
    async fn alloc_get(
        &self,
        alloc_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Allocation>, RpcError>;
    /// Lists nodes.
    async fn node_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<NodeListStub>>, RpcError>;
    /// One node (exact ID).
    async fn node_get(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Node>, RpcError>;
    /// A node's allocations.
    async fn node_allocations(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError>;
    /// Lists evaluations.
    async fn eval_list(&self, q: &QueryOptions)
        -> Result<QueryResponse<Vec<Evaluation>>, RpcError>;
    /// One evaluation (exact ID).
    async fn eval_get(
        &self,
        eval_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Evaluation>, RpcError>;

    // ---- status ----
    /// The RPC address of the region's leader.
    async fn status_leader(&self, region: &str) -> Result<String, RpcError>;
    /// The RPC addresses of the region's Raft peers.
    async fn status_peers(&self, region: &str) -> Result<Vec<String>, RpcError>;
    /// Every known region.
    async fn regions(&self) -> Result<Vec<String>, RpcError>;
    /// The servers of a region with their status.
    async fn region_members(&self, region: &str) -> Result<Vec<ServerMember>, RpcError>;

    // ---- operator ----
    /// The region's Raft configuration.
    async fn raft_configuration(&self, region: &str) -> Result<RaftConfiguration, RpcError>;
    /// Removes a server from the region's Raft configuration.
    async fn raft_remove_peer(&self, region: &str, peer: PeerRef) -> Result<(), RpcError>;
    /// The region's whole state as a snapshot file.
    async fn snapshot_save(&self, region: &str) -> Result<Vec<u8>, RpcError>;
    /// Replaces the region's state with a snapshot file; returns the index it applied at.
    async fn snapshot_restore(&self, region: &str, snapshot: Vec<u8>) -> Result<u64, RpcError>;
    /// Stops an allocation and has the scheduler place a replacement (`alloc stop`).
    async fn alloc_stop(&self, alloc_id: &str) -> Result<AllocStopResponse, RpcError>;
    /// Marks a node eligible or ineligible for new placements; returns the Raft index.
    async fn node_update_eligibility(
        &self,
        node_id: &str,
        eligibility: &str,
    ) -> Result<u64, RpcError>;
    /// Starts, changes or ends a node's drain.
    async fn node_update_drain(
        &self,
        node_id: &str,
        req: NodeDrainRequest,
    ) -> Result<NodeDrainResponse, RpcError>;
    /// The region's scheduler configuration.
    async fn scheduler_get_config(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<SchedulerConfiguration>, RpcError>;
    /// Sets the region's scheduler configuration; with `cas`, only if its `ModifyIndex` is
    /// that (otherwise `Updated` is false).
    async fn scheduler_set_config(
        &self,
        region: &str,
        config: SchedulerConfiguration,
        cas: Option<u64>,
    ) -> Result<SchedulerSetConfigResponse, RpcError>;

    // ---- client agent ----
    /// Registers or re-registers a client node (fingerprint included).
    async fn node_register(&self, node: Node) -> Result<NodeUpdateResponse, RpcError>;
    /// Heartbeats a node; an unknown node gets `NotFound` and must register again.
    async fn node_heartbeat(&self, node_id: &str) -> Result<NodeUpdateResponse, RpcError>;
    /// The allocations placed on a node, with their jobs, blocking on `q.min_index`.
    async fn node_client_allocs(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError>;
    /// Reports allocations' client status and task states.
    async fn alloc_client_update(&self, updates: Vec<AllocClientUpdate>) -> Result<u64, RpcError>;
}

/// What the HTTP API needs from the local client agent (when this agent runs one): its
/// allocation directories, and control of its running tasks.
#[async_trait::async_trait]
pub trait ClientFs: Send + Sync + 'static {
    /// The allocation directory of an allocation this client runs, if it has it.
    fn alloc_dir(&self, alloc_id: &str) -> Option<PathBuf>;
    /// Sends `signal` (a name like `SIGUSR1`) to the task, or to every running task of the
    /// allocation.
    async fn signal_tasks(
        &self,
        alloc_id: &str,
        task: Option<&str>,
        signal: &str,
    ) -> Result<(), TaskControlError>;
    /// Restarts the task, or every running task of the allocation, outside its restart policy.
    async fn restart_tasks(
        &self,
        alloc_id: &str,
        task: Option<&str>,
    ) -> Result<(), TaskControlError>;
    /// The memory and CPU of the allocation's running tasks.
    async fn alloc_stats(
        &self,
        alloc_id: &str,
    ) -> Result<structs::AllocResourceUsage, TaskControlError>;
}

/// Why a task could not be signalled or restarted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskControlError {
    /// This client runs no such allocation.
    #[error("Unknown allocation \"{0}\"")]
    UnknownAlloc(String),
    /// The allocation has no running task of that name.
    #[error("Task not running: {0}")]
    NotRunning(String),
    /// No such signal.
    #[error("invalid signal {0:?}")]
    BadSignal(String),
}

#[cfg(test)]
mod peer_tests;
#[cfg(test)]
mod transport_tests;

//! Allocations: one task group placed on one node, and what happened to its tasks.

use crate::{Job, VecMap};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Desired status: the server wants the allocation running.
pub const ALLOC_DESIRED_RUN: &str = "run";
/// Desired status: the server wants the allocation stopped.
pub const ALLOC_DESIRED_STOP: &str = "stop";
/// Desired status: evicted (preempted).
pub const ALLOC_DESIRED_EVICT: &str = "evict";

/// Client status values.
pub const ALLOC_CLIENT_PENDING: &str = "pending";
/// At least one task runs.
pub const ALLOC_CLIENT_RUNNING: &str = "running";
/// Every task finished successfully.
pub const ALLOC_CLIENT_COMPLETE: &str = "complete";
/// A task failed for good.
pub const ALLOC_CLIENT_FAILED: &str = "failed";
/// The node was lost.
pub const ALLOC_CLIENT_LOST: &str = "lost";

/// Task states.
pub const TASK_STATE_PENDING: &str = "pending";
/// The task's process runs.
pub const TASK_STATE_RUNNING: &str = "running";
/// The task ended and will not run again.
pub const TASK_STATE_DEAD: &str = "dead";

/// An allocation. `Job` is the job version it was placed for (shared, never mutated).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Allocation {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub name: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_name: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job: Option<Arc<Job>>,
    pub task_group: String,
    pub allocated_resources: AllocatedResources,
    pub metrics: AllocMetric,
    pub desired_status: String,
    pub desired_description: String,
    /// What the server wants next (the drainer marks allocations to migrate).
    pub desired_transition: crate::DesiredTransition,
    pub client_status: String,
    pub client_description: String,
    pub task_states: VecMap<String, TaskState>,
    #[serde(rename = "PreviousAllocation")]
    pub previous_allocation: String,
    #[serde(rename = "NextAllocation")]
    pub next_allocation: String,
    #[serde(rename = "FollowupEvalID")]
    pub followup_eval_id: String,
    pub create_index: u64,
    pub modify_index: u64,
    pub alloc_modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

impl Allocation {
    /// True when the server no longer wants it to run.
    pub fn server_terminal(&self) -> bool {
        self.desired_status == ALLOC_DESIRED_STOP || self.desired_status == ALLOC_DESIRED_EVICT
    }

    /// True when the client reported it finished (complete, failed or lost).
    pub fn client_terminal(&self) -> bool {
        matches!(
            self.client_status.as_str(),
            ALLOC_CLIENT_COMPLETE | ALLOC_CLIENT_FAILED | ALLOC_CLIENT_LOST
        )
    }

    /// True when either side considers it finished; terminal allocs use no resources.
    pub fn terminal(&self) -> bool {
        self.server_terminal() || self.client_terminal()
    }

    /// The job version of the allocation (0 when the job is not embedded).
    pub fn job_version(&self) -> u64 {
        self.job.as_ref().map(|j| j.version).unwrap_or(0)
    }

    /// The index in `<job>.<group>[<index>]`.
    pub fn index(&self) -> u64 {
        self.name
            .rsplit_once('[')
            .and_then(|(_, rest)| rest.strip_suffix(']'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// Resources the scheduler gave an allocation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedResources {
    pub tasks: VecMap<String, AllocatedTaskResources>,
    pub shared: AllocatedSharedResources,
}

impl AllocatedResources {
    /// Total cpu MHz over all tasks.
    pub fn cpu(&self) -> i64 {
        self.tasks.values().map(|t| t.cpu.cpu_shares).sum()
    }
    /// Total memory MB over all tasks.
    pub fn memory_mb(&self) -> i64 {
        self.tasks.values().map(|t| t.memory.memory_mb).sum()
    }
}

/// Per-task allocated resources.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedTaskResources {
    pub cpu: AllocatedCpuResources,
    pub memory: AllocatedMemoryResources,
}

/// Allocated cpu.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedCpuResources {
    pub cpu_shares: i64,
}

/// Allocated memory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedMemoryResources {
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
    #[serde(rename = "MemoryMaxMB")]
    pub memory_max_mb: i64,
}

/// Resources shared by the group: disk and ports.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedSharedResources {
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
    pub ports: Vec<AllocatedPortMapping>,
}

/// One port given to an allocation: host port `Value`, container port `To`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocatedPortMapping {
    pub label: String,
    pub value: i64,
    pub to: i64,
    #[serde(rename = "HostIP")]
    pub host_ip: String,
}

/// The state of one task inside an allocation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskState {
    pub state: String,
    pub failed: bool,
    pub restarts: u64,
    pub last_restart: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub events: Vec<TaskEvent>,
}

/// A task event, e.g. `Received`, `Task Setup`, `Started`, `Terminated`, `Restarting`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskEvent {
    #[serde(rename = "Type")]
    pub event_type: String,
    /// Unix nanoseconds.
    pub time: i64,
    pub display_message: String,
    pub message: String,
    pub details: VecMap<String, String>,
    pub exit_code: i64,
    pub signal: i64,
    pub fails_task: bool,
    pub restart_reason: String,
    pub kill_timeout: i64,
    pub start_delay: i64,
}

/// Why the scheduler placed (or failed to place) an allocation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocMetric {
    pub nodes_evaluated: i64,
    pub nodes_filtered: i64,
    pub nodes_in_pool: i64,
    pub nodes_available: VecMap<String, i64>,
    pub class_filtered: VecMap<String, i64>,
    pub constraint_filtered: VecMap<String, i64>,
    pub nodes_exhausted: i64,
    pub class_exhausted: VecMap<String, i64>,
    pub dimension_exhausted: VecMap<String, i64>,
    pub quota_exhausted: Vec<String>,
    /// Nomad's `<node>.<scorer>` map, replaced by `ScoreMetaData` since Nomad 0.9: never set,
    /// kept for the JSON's shape (`"Scores": null`).
    pub scores: Option<VecMap<String, f64>>,
    /// The best-scoring nodes (up to five), best first.
    pub score_meta_data: Vec<crate::NodeScoreMeta>,
    pub allocation_time: i64,
    pub coalesced_failures: i64,
}

/// The list form of an allocation (`GET /v1/allocations`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocListStub {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub name: String,
    pub namespace: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_name: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job_type: String,
    pub job_version: u64,
    pub task_group: String,
    pub desired_status: String,
    pub desired_description: String,
    pub desired_transition: crate::DesiredTransition,
    pub client_status: String,
    pub client_description: String,
    pub task_states: VecMap<String, TaskState>,
    #[serde(rename = "FollowupEvalID")]
    pub followup_eval_id: String,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

impl From<&Allocation> for AllocListStub {
    fn from(a: &Allocation) -> Self {
        Self {
            id: a.id.clone(),
            eval_id: a.eval_id.clone(),
            name: a.name.clone(),
            namespace: a.namespace.clone(),
            node_id: a.node_id.clone(),
            node_name: a.node_name.clone(),
            job_id: a.job_id.clone(),
            job_type: a
                .job
                .as_ref()
                .map(|j| j.job_type.clone())
                .unwrap_or_default(),
            job_version: a.job_version(),
            task_group: a.task_group.clone(),
            desired_status: a.desired_status.clone(),
            desired_description: a.desired_description.clone(),
            desired_transition: a.desired_transition.clone(),
            client_status: a.client_status.clone(),
            client_description: a.client_description.clone(),
            task_states: a.task_states.clone(),
            followup_eval_id: a.followup_eval_id.clone(),
            create_index: a.create_index,
            modify_index: a.modify_index,
            create_time: a.create_time,
            modify_time: a.modify_time,
        }
    }
}

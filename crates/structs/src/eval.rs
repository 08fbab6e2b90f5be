//! Evaluations, and job summaries and stubs derived from state.

use crate::{AllocMetric, Job};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Evaluation status values.
pub const EVAL_STATUS_PENDING: &str = "pending";
/// Waiting for capacity; re-run when nodes change.
pub const EVAL_STATUS_BLOCKED: &str = "blocked";
/// The scheduler finished with it.
pub const EVAL_STATUS_COMPLETE: &str = "complete";
/// The scheduler gave up.
pub const EVAL_STATUS_FAILED: &str = "failed";
/// Superseded.
pub const EVAL_STATUS_CANCELED: &str = "canceled";

/// Evaluation triggers.
pub const TRIGGER_JOB_REGISTER: &str = "job-register";
/// The job was stopped or purged.
pub const TRIGGER_JOB_DEREGISTER: &str = "job-deregister";
/// A node changed.
pub const TRIGGER_NODE_UPDATE: &str = "node-update";
/// The drainer marked allocations of the job for migration.
pub const TRIGGER_NODE_DRAIN: &str = "node-drain";
/// An allocation stopped by a user (`alloc stop`).
pub const TRIGGER_ALLOC_STOP: &str = "alloc-stop";
/// Capacity freed up for a blocked eval.
pub const TRIGGER_QUEUED_ALLOCS: &str = "queued-allocs";
/// An allocation failed and is rescheduled.
pub const TRIGGER_ALLOC_FAILURE: &str = "alloc-failure";
/// The plan could not be committed after several attempts.
pub const TRIGGER_MAX_PLANS: &str = "max-plan-attempts";
/// `TriggeredBy`: retries an evaluation that failed its deliveries.
pub const TRIGGER_FAILED_FOLLOW_UP: &str = "failed-follow-up";

/// A request to reconcile a job's desired and actual allocations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Evaluation {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
    pub priority: i64,
    #[serde(rename = "Type")]
    pub eval_type: String,
    pub triggered_by: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job_modify_index: u64,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_modify_index: u64,
    #[serde(rename = "DeploymentID")]
    pub deployment_id: String,
    pub status: String,
    pub status_description: String,
    pub wait: i64,
    pub wait_until: Option<String>,
    pub next_eval: String,
    pub previous_eval: String,
    pub blocked_eval: String,
    #[serde(rename = "FailedTGAllocs")]
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    pub class_eligibility: BTreeMap<String, bool>,
    pub escaped_computed_class: bool,
    pub queued_allocations: BTreeMap<String, i64>,
    pub snapshot_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

impl Evaluation {
    /// True when the scheduler is done with it.
    pub fn terminal(&self) -> bool {
        matches!(
            self.status.as_str(),
            EVAL_STATUS_COMPLETE | EVAL_STATUS_FAILED | EVAL_STATUS_CANCELED
        )
    }
}

/// Per-group counts of allocations by client status (`GET /v1/job/:id/summary`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobSummary {
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub namespace: String,
    pub summary: BTreeMap<String, TaskGroupSummary>,
    pub children: JobChildrenSummary,
    pub create_index: u64,
    pub modify_index: u64,
}

/// Counts for one group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskGroupSummary {
    pub queued: i64,
    pub complete: i64,
    pub failed: i64,
    pub running: i64,
    pub starting: i64,
    pub lost: i64,
    pub unknown: i64,
}

/// Counts of child jobs of a periodic or parameterized job.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobChildrenSummary {
    pub pending: i64,
    pub running: i64,
    pub dead: i64,
}

/// The list form of a job (`GET /v1/jobs`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobListStub {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ParentID")]
    pub parent_id: String,
    pub name: String,
    pub namespace: String,
    pub datacenters: Vec<String>,
    pub node_pool: String,
    #[serde(rename = "Type")]
    pub job_type: String,
    pub priority: i64,
    pub periodic: bool,
    pub parameterized_job: bool,
    pub stop: bool,
    pub status: String,
    pub status_description: String,
    pub job_summary: Option<JobSummary>,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
    pub submit_time: i64,
    pub meta: BTreeMap<String, String>,
}

impl JobListStub {
    /// The stub of a job with its summary.
    pub fn new(job: &Job, summary: Option<JobSummary>) -> Self {
        Self {
            id: job.id.clone(),
            parent_id: job.parent_id.clone(),
            name: job.name.clone(),
            namespace: job.namespace.clone(),
            datacenters: job.datacenters.clone(),
            node_pool: job.node_pool.clone(),
            job_type: job.job_type.clone(),
            priority: job.priority,
            periodic: job.periodic.is_some(),
            parameterized_job: job.parameterized_job.is_some(),
            stop: job.stop,
            status: job.status.clone(),
            status_description: job.status_description.clone(),
            job_summary: summary,
            create_index: job.create_index,
            modify_index: job.modify_index,
            job_modify_index: job.job_modify_index,
            submit_time: job.submit_time,
            meta: job.meta.clone(),
        }
    }
}

//! Request and response bodies of the HTTP API that are not domain objects.

use crate::{AllocMetric, Job};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `PUT /v1/jobs` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobRegisterRequest {
    pub job: Option<Job>,
    pub enforce_index: bool,
    pub job_modify_index: u64,
    pub policy_override: bool,
    pub preserve_counts: bool,
    pub eval_priority: i64,
    pub submission: Option<JobSubmission>,
}

/// The original job source (`Submission`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobSubmission {
    pub source: String,
    pub format: String,
    pub variable_flags: BTreeMap<String, String>,
    pub variables: String,
}

/// Response to writes that create an evaluation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobRegisterResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_modify_index: u64,
    pub warnings: String,
    pub index: u64,
    pub last_contact: u64,
    pub known_leader: bool,
}

/// `POST /v1/jobs/parse` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct JobsParseRequest {
    #[serde(rename = "JobHCL")]
    pub job_hcl: String,
    #[serde(rename = "Canonicalize")]
    pub canonicalize: bool,
    #[serde(rename = "Variables")]
    pub variables: String,
}

/// `POST /v1/job/:id/plan` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobPlanRequest {
    pub job: Option<Job>,
    pub diff: bool,
    pub policy_override: bool,
}

/// `POST /v1/job/:id/plan` response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobPlanResponse {
    pub annotations: PlanAnnotations,
    #[serde(rename = "FailedTGAllocs")]
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    pub job_modify_index: u64,
    pub created_evals: Vec<crate::Evaluation>,
    pub diff: Option<JobDiff>,
    pub next_periodic_launch: Option<String>,
    pub warnings: String,
}

/// What a plan would do per group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PlanAnnotations {
    #[serde(rename = "DesiredTGUpdates")]
    pub desired_tg_updates: BTreeMap<String, DesiredUpdates>,
}

/// Counts of what a plan does to one group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DesiredUpdates {
    pub ignore: u64,
    pub place: u64,
    pub migrate: u64,
    pub stop: u64,
    pub in_place_update: u64,
    pub destructive_update: u64,
    pub canary: u64,
    pub preemptions: u64,
}

/// A structural diff between two job versions (`Type`: Added, Deleted, Edited, None).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub fields: Vec<FieldDiff>,
    pub objects: Vec<ObjectDiff>,
    pub task_groups: Vec<TaskGroupDiff>,
}

/// A changed group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskGroupDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    pub name: String,
    pub fields: Vec<FieldDiff>,
    pub objects: Vec<ObjectDiff>,
    pub tasks: Vec<TaskDiff>,
    /// What the scheduler would do, e.g. `{"create": 1, "in-place update": 2}`.
    pub updates: BTreeMap<String, u64>,
}

/// A changed task.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    pub name: String,
    pub fields: Vec<FieldDiff>,
    pub objects: Vec<ObjectDiff>,
    pub annotations: Vec<String>,
}

/// A changed nested object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ObjectDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    pub name: String,
    pub fields: Vec<FieldDiff>,
    pub objects: Vec<ObjectDiff>,
}

/// A changed scalar field.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct FieldDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    pub name: String,
    pub old: String,
    pub new: String,
    pub annotations: Vec<String>,
}

/// `DELETE /v1/job/:id` response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobDeregisterResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_modify_index: u64,
    pub index: u64,
}

/// `POST /v1/validate/job` response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobValidateResponse {
    pub driver_config_validated: bool,
    pub validation_errors: Vec<String>,
    pub error: String,
    pub warnings: String,
}

/// `GET /v1/job/:id/versions` response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobVersionsResponse {
    pub versions: Vec<Job>,
    pub diffs: Vec<JobDiff>,
}

/// One log frame of `GET /v1/client/fs/logs/:alloc` (without `plain=true`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StreamFrame {
    pub offset: i64,
    /// Base64 of the bytes.
    pub data: String,
    pub file: String,
    pub file_event: String,
}

/// One entry of an allocation directory (`/v1/client/fs/ls` and `stat`), as Nomad's
/// `AllocFileInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocFileInfo {
    /// The entry's name.
    pub name: String,
    /// A directory.
    pub is_dir: bool,
    /// Bytes.
    pub size: u64,
    /// `drwxr-xr-x` style (Go's `FileMode.String`).
    pub file_mode: String,
    /// RFC 3339.
    pub mod_time: String,
    /// Sniffed for files (`text/plain; charset=utf-8` or `application/octet-stream`).
    pub content_type: String,
}

/// Memory figures of a task or allocation (`/v1/client/allocation/:id/stats`), in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MemoryStats {
    /// Resident set size.
    #[serde(rename = "RSS")]
    pub rss: u64,
    /// Page cache.
    pub cache: u64,
    /// Swapped out.
    pub swap: u64,
    /// Usage as the kernel or engine counts it.
    pub usage: u64,
    /// The highest usage seen.
    pub max_usage: u64,
    /// Kernel memory.
    pub kernel_usage: u64,
    /// The highest kernel memory seen.
    pub kernel_max_usage: u64,
    /// Which of the above were measured.
    pub measured: Vec<String>,
}

/// CPU figures of a task or allocation: percentages of one core since the last sample.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CpuStats {
    /// Kernel-mode share.
    pub system_mode: f64,
    /// User-mode share.
    pub user_mode: f64,
    /// MHz-ticks used (`Percent` of the task's share of the node's compute).
    pub total_ticks: f64,
    /// Periods the cgroup was throttled.
    pub throttled_periods: u64,
    /// Time throttled.
    pub throttled_time: u64,
    /// Both modes together.
    pub percent: f64,
    /// Which of the above were measured.
    pub measured: Vec<String>,
}

/// Memory and CPU of a task or allocation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ResourceUsage {
    /// Memory.
    pub memory_stats: MemoryStats,
    /// CPU.
    pub cpu_stats: CpuStats,
}

/// One task's usage.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskResourceUsage {
    /// The figures.
    pub resource_usage: ResourceUsage,
    /// Unix nanoseconds of the sample.
    pub timestamp: i64,
}

/// An allocation's usage: its tasks' and their sum (Nomad's `AllocResourceUsage`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocResourceUsage {
    /// The sum over the tasks.
    pub resource_usage: ResourceUsage,
    /// By task name.
    pub tasks: BTreeMap<String, TaskResourceUsage>,
    /// Unix nanoseconds of the sample.
    pub timestamp: i64,
}

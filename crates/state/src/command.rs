//! The commands that change the state store: what Raft entries carry.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use structs::{Allocation, DesiredTransition, DrainStrategy, Evaluation, Job, Node, TaskState};

/// One committed change. Everything that would differ between servers (time, IDs) is inside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Create or update a job, with the evaluation it triggers.
    JobRegister {
        /// The job as submitted (canonicalized and validated).
        job: Box<Job>,
        /// The evaluation to create.
        eval: Option<Box<Evaluation>>,
        /// Check-and-set: register only if the job's `JobModifyIndex` equals this
        /// (0 = only if the job does not exist).
        enforce_index: Option<u64>,
        /// Unix nanoseconds.
        now: i64,
    },
    /// Stop a job (or delete it with `purge`).
    JobDeregister {
        /// Namespace.
        namespace: String,
        /// Job ID.
        job_id: String,
        /// Delete instead of stopping.
        purge: bool,
        /// The evaluation to create.
        eval: Option<Box<Evaluation>>,
        /// Unix nanoseconds.
        now: i64,
    },
    /// Register or re-register a client node.
    NodeRegister {
        /// The node with its fingerprint.
        node: Box<Node>,
        /// Unix nanoseconds.
        now: i64,
    },
    /// Change a node's status (e.g. down after a missed heartbeat), with the evals it triggers.
    NodeUpdateStatus {
        /// The node.
        node_id: String,
        /// New status.
        status: String,
        /// Evaluations for the jobs with allocations on the node.
        evals: Vec<Evaluation>,
        /// Unix nanoseconds.
        now: i64,
    },
    /// Create or update evaluations.
    EvalUpsert {
        /// The evaluations.
        evals: Vec<Evaluation>,
    },
    /// Commit (part of) a scheduler plan.
    PlanApply(PlanResult),
    /// Record what clients reported about their allocations.
    AllocClientUpdate {
        /// The reports.
        updates: Vec<ClientAllocUpdate>,
        /// Evaluations triggered by the reports.
        evals: Vec<Evaluation>,
        /// Unix nanoseconds.
        now: i64,
    },
    /// Mark a node eligible or ineligible for new placements (`node eligibility`).
    NodeUpdateEligibility {
        /// The node.
        node_id: String,
        /// `eligible` or `ineligible`.
        eligibility: String,
        /// Evaluations it triggers (system jobs, when it becomes eligible).
        evals: Vec<Evaluation>,
        /// Unix nanoseconds.
        now: i64,
    },
    /// Start, change or end a node's drain (`node drain`; the drainer ends it when every
    /// allocation left the node).
    NodeUpdateDrain {
        /// The node.
        node_id: String,
        /// The drain to run; None ends the current one.
        strategy: Option<DrainStrategy>,
        /// On ending: make the node eligible again (`-disable` without `-keep-ineligible`).
        mark_eligible: bool,
        /// `-m` and `-meta`, kept in the node's `LastDrain`.
        meta: BTreeMap<String, String>,
        /// On ending: the drain completed (the drainer) rather than being canceled.
        complete: bool,
        /// Evaluations it triggers (system jobs, when the node becomes eligible again).
        evals: Vec<Evaluation>,
        /// Unix nanoseconds.
        now: i64,
    },
    /// Set allocations' desired transition (the drainer marks them for migration), with the
    /// evaluations that act on it.
    AllocUpdateDesiredTransition {
        /// The allocations.
        alloc_ids: Vec<String>,
        /// The flags to set (unset ones are left as they are).
        transition: DesiredTransition,
        /// Evaluations for the jobs of those allocations.
        evals: Vec<Evaluation>,
        /// Unix nanoseconds.
        now: i64,
    },
    /// Set the scheduler configuration (`PUT /v1/operator/scheduler/configuration`).
    SchedulerSetConfig {
        /// The new configuration (its indexes are set by the store).
        config: structs::SchedulerConfiguration,
        /// Check-and-set: only if the current `ModifyIndex` equals this.
        cas: Option<u64>,
    },
}

/// The committed part of a plan.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PlanResult {
    /// New allocations and in-place updates.
    pub allocs_upserted: Vec<Allocation>,
    /// Allocations to stop: (alloc ID, desired description).
    pub allocs_stopped: Vec<(String, String)>,
    /// Allocations whose client status the plan changes (e.g. lost), with the new status.
    pub allocs_client_status: Vec<(String, String, String)>,
    /// Evaluations to create or update (the evaluated one, blocked and follow-up evals).
    pub evals: Vec<Evaluation>,
    /// Unix nanoseconds.
    pub now: i64,
}

/// A client's report about one allocation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClientAllocUpdate {
    /// The allocation.
    pub alloc_id: String,
    /// New client status.
    pub client_status: String,
    /// Reason.
    pub client_description: String,
    /// Task states.
    pub task_states: structs::VecMap<String, TaskState>,
}

//! The scheduler. Pure: no tokio, clock, I/O or entropy. [`compute`] is deterministic for
//! (snapshot, evaluation, context); node order is shuffled from `SchedCtx::seed` (the eval ID),
//! and new allocation IDs are derived from it.
//!
//! ```text
//!  Evaluation ──► reconcile (reconcile.rs)
//!                   existing allocs vs job: ignore / in-place / destructive / stop / place
//!                          │ placements
//!                          ▼
//!                 for each placement (place.rs):
//!                   nodes in job's datacenters + pool, shuffled by seed
//!                     ─► feasibility (feasible.rs): ready, drivers, constraints, distinct_hosts
//!                     ─► fit (fit.rs): cpu, memory, disk, static/dynamic ports
//!                     ─► rank (rank.rs): bin-pack score, job anti-affinity; limit iterator
//!                          │
//!                          ▼
//!                        Plan { node_allocation, node_update }  + failed groups (AllocMetric)
//! ```
//!
//! The server submits the plan to the leader's plan applier, which re-checks every node with
//! [`fit::node_fits`] against the latest state (optimistic concurrency) before committing.

pub mod diff;
mod feasible;
pub mod fit;
mod place;
mod rank;
mod reconcile;
mod score;
mod system;
mod version;

use state::StateStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use structs::{
    AllocMetric, Allocation, DesiredUpdates, Evaluation, Job, PlanAnnotations, EVAL_STATUS_BLOCKED,
    JOB_TYPE_SYSBATCH, JOB_TYPE_SYSTEM, TRIGGER_QUEUED_ALLOCS,
};

/// Inputs that would otherwise come from the clock or entropy.
#[derive(Debug, Clone, Default)]
pub struct SchedCtx {
    /// Unix nanoseconds, stamped on new allocations.
    pub now: i64,
    /// Seed for node shuffling and derived IDs (normally the eval ID plus the attempt).
    pub seed: String,
}

/// What a scheduler run wants to change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The evaluation being processed.
    pub eval_id: String,
    /// The job version placed (None when the job was purged).
    pub job: Option<Arc<Job>>,
    /// New and in-place-updated allocations, by node.
    pub node_allocation: BTreeMap<String, Vec<Allocation>>,
    /// Allocations to stop, by node: (alloc ID, desired description).
    pub node_update: BTreeMap<String, Vec<(String, String)>>,
    /// Commit all or nothing.
    pub all_at_once: bool,
}

impl Plan {
    /// True when the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.node_allocation.is_empty() && self.node_update.is_empty()
    }
    /// Number of allocations placed or updated.
    pub fn placed(&self) -> usize {
        self.node_allocation.values().map(Vec::len).sum()
    }
}

/// The result of [`compute`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedOutcome {
    /// What to commit.
    pub plan: Plan,
    /// Per group, why placements failed.
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    /// Per group, how many allocations could not be placed.
    pub queued: BTreeMap<String, i64>,
    /// Per group, what the plan does.
    pub annotations: PlanAnnotations,
    /// A blocked evaluation to create when placements failed (waits for capacity).
    pub blocked_eval: Option<Evaluation>,
}

/// Runs the scheduler for one evaluation against a snapshot.
pub fn compute(snap: &StateStore, eval: &Evaluation, ctx: &SchedCtx) -> SchedOutcome {
    let job = snap.job_by_id(&eval.namespace, &eval.job_id).cloned();
    let mut out = SchedOutcome {
        plan: Plan {
            eval_id: eval.id.clone(),
            job: job.clone(),
            all_at_once: job.as_ref().is_some_and(|j| j.all_at_once),
            ..Default::default()
        },
        ..Default::default()
    };
    let is_system = job
        .as_ref()
        .is_some_and(|j| j.job_type == JOB_TYPE_SYSTEM || j.job_type == JOB_TYPE_SYSBATCH);
    if is_system {
        system::compute_system(snap, eval, ctx, &mut out);
    } else {
        let rec = reconcile::reconcile(snap, eval, job.as_deref());
        for (node, stops) in rec.stops {
            out.plan.node_update.entry(node).or_default().extend(stops);
        }
        for alloc in rec.in_place {
            out.plan
                .node_allocation
                .entry(alloc.node_id.clone())
                .or_default()
                .push(alloc);
        }
        out.annotations.desired_tg_updates = rec.desired;
        if let Some(job) = &job {
            place::place_all(snap, eval, ctx, job, rec.place, &mut out);
        }
    }
    if !out.failed_tg_allocs.is_empty() {
        out.blocked_eval = Some(blocked_eval_for(eval, ctx, &out.queued));
    }
    out
}

/// The evaluation that waits for capacity when some placements failed.
fn blocked_eval_for(
    eval: &Evaluation,
    ctx: &SchedCtx,
    queued: &BTreeMap<String, i64>,
) -> Evaluation {
    Evaluation {
        id: structs::derive_uuid(&format!("{}/blocked", ctx.seed), 0),
        namespace: eval.namespace.clone(),
        priority: eval.priority,
        eval_type: eval.eval_type.clone(),
        triggered_by: TRIGGER_QUEUED_ALLOCS.into(),
        job_id: eval.job_id.clone(),
        job_modify_index: eval.job_modify_index,
        status: EVAL_STATUS_BLOCKED.into(),
        status_description: "created to place remaining allocations".into(),
        previous_eval: eval.id.clone(),
        queued_allocations: queued.clone(),
        create_time: ctx.now,
        modify_time: ctx.now,
        ..Default::default()
    }
}

/// Adds one to a group's annotation counter.
pub(crate) fn annotate<'a>(
    out: &'a mut BTreeMap<String, DesiredUpdates>,
    group: &str,
) -> &'a mut DesiredUpdates {
    out.entry(group.to_string()).or_default()
}

#[cfg(test)]
mod harness;
#[cfg(test)]
mod scoring_tests;

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
//!                   nodes in job's datacenters + pool (node_view.rs: kept while the node
//!                   table is unchanged), shuffled by seed
//!                     ─► feasibility (feasible.rs): ready, drivers, constraints, distinct_hosts
//!                     ─► fit (fit.rs, group_fit.rs): cpu, memory, disk, static/dynamic ports
//!                     ─► rank (rank.rs): bin-pack score, job anti-affinity; limit iterator
//!                          │
//!                          ▼
//!                        Plan { node_allocation, node_update }  + failed groups (AllocMetric)
//! ```
//!
//! The server submits the plan to the leader's plan applier, which re-checks every node with
//! [`fit::node_fits`] against the latest state (optimistic concurrency) before committing.

pub mod diff;
mod distinct;
mod feasible;
pub mod fit;
mod group_fit;
mod node_view;
pub use node_view::NodeCache;
mod place;
mod rank;
mod reconcile;
mod reschedule;
mod score;
mod system;
mod version;

use state::StateStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use structs::{
    AllocMetric, Allocation, DesiredUpdates, Evaluation, Job, PlanAnnotations, EVAL_STATUS_BLOCKED,
    EVAL_STATUS_PENDING, JOB_TYPE_SYSBATCH, JOB_TYPE_SYSTEM, TRIGGER_ALLOC_FAILURE,
    TRIGGER_QUEUED_ALLOCS,
};

/// Inputs that would otherwise come from the clock or entropy.
#[derive(Debug, Clone, Default)]
pub struct SchedCtx {
    /// Unix nanoseconds, stamped on new allocations.
    pub now: i64,
    /// Seed for node shuffling and derived IDs (normally the eval ID plus the attempt).
    pub seed: String,
    /// Views of the node table kept between runs (a default one keeps them for this run
    /// only); they never change what a run plans.
    pub nodes: NodeCache,
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
    /// Evaluations that wait (`WaitUntil`) to reschedule failed allocations whose delay has
    /// not passed; the allocations carry their IDs (`FollowupEvalID`) in the plan.
    pub followup_evals: Vec<Evaluation>,
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
        // The job's allocations, read once for reconciling and placing.
        let allocs = snap.allocs_by_job(&eval.namespace, &eval.job_id);
        let mut rec = reconcile::reconcile(snap, &allocs, job.as_deref(), ctx.now);
        followup_evals(
            snap,
            eval,
            ctx,
            std::mem::take(&mut rec.followups),
            &mut out,
        );
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
            place::place_all(snap, &allocs, eval, ctx, job, rec.place, &mut out);
        }
    }
    if !out.failed_tg_allocs.is_empty() {
        out.blocked_eval = Some(blocked_eval_for(eval, ctx, &out.queued));
    }
    out
}

/// Follow-up evaluations share a time when their allocations are due this close together
/// (Nomad batches failed allocations into one follow-up the same way).
const FOLLOWUP_BATCH_NS: i64 = 5_000_000_000;

/// Creates the follow-up evaluations for failed allocations to reschedule later, and puts
/// each allocation, with its `FollowupEvalID`, in the plan. An allocation that already waits
/// for a pending follow-up is left alone.
fn followup_evals(
    snap: &StateStore,
    eval: &Evaluation,
    ctx: &SchedCtx,
    mut due: Vec<(Arc<Allocation>, i64)>,
    out: &mut SchedOutcome,
) {
    due.sort_by_key(|(a, at)| (*at, a.id.clone()));
    // Per follow-up evaluation (in `out.followup_evals`, which only this fills), when the
    // first allocation of its batch is due.
    let mut firsts: Vec<i64> = Vec::new();
    for (alloc, at) in due {
        let waiting = !alloc.followup_eval_id.is_empty()
            && alloc.followup_eval_id != eval.id
            && snap
                .eval_by_id(&alloc.followup_eval_id)
                .is_some_and(|e| !e.terminal());
        if waiting {
            continue;
        }
        let batch = firsts
            .iter()
            .position(|first| at - first <= FOLLOWUP_BATCH_NS)
            .and_then(|i| out.followup_evals.get_mut(i));
        let id = match batch {
            Some(e) => {
                // The batch waits for its latest allocation.
                e.wait_until = Some(structs::time::rfc3339_nano(at));
                e.id.clone()
            }
            None => {
                let id =
                    structs::derive_uuid(&format!("{}/followup", ctx.seed), firsts.len() as u64);
                out.followup_evals.push(Evaluation {
                    id: id.clone(),
                    namespace: eval.namespace.clone(),
                    priority: eval.priority,
                    eval_type: eval.eval_type.clone(),
                    triggered_by: TRIGGER_ALLOC_FAILURE.into(),
                    job_id: eval.job_id.clone(),
                    job_modify_index: eval.job_modify_index,
                    status: EVAL_STATUS_PENDING.into(),
                    status_description: "created for delayed rescheduling".into(),
                    wait_until: Some(structs::time::rfc3339_nano(at)),
                    previous_eval: eval.id.clone(),
                    create_time: ctx.now,
                    modify_time: ctx.now,
                    ..Default::default()
                });
                firsts.push(at);
                id
            }
        };
        let mut updated = (*alloc).clone();
        updated.followup_eval_id = id;
        out.plan
            .node_allocation
            .entry(updated.node_id.clone())
            .or_default()
            .push(updated);
    }
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
mod feasibility_tests;
#[cfg(test)]
mod harness;
#[cfg(test)]
mod migrate_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod reschedule_tests;
#[cfg(test)]
mod scoring_tests;

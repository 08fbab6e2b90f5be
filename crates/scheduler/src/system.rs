//! System and sysbatch jobs: one allocation of each group on every feasible node.

use crate::feasible::Feasibility;
use crate::fit::usage_without;
use crate::group_fit::fit_group;
use crate::place::{new_alloc, node_in_scope, FreshIds, NewAlloc};
use crate::rank::SeededRng;
use crate::reconcile::{
    migrating, tasks_updated, STOP_JOB_STOPPED, STOP_MIGRATING, STOP_NOT_NEEDED, STOP_UPDATING,
};
use crate::{annotate, SchedCtx, SchedOutcome};
use state::StateStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use structs::{Allocation, Evaluation};

pub(crate) fn compute_system(
    snap: &StateStore,
    eval: &Evaluation,
    ctx: &SchedCtx,
    out: &mut SchedOutcome,
) {
    let job = snap.job_by_id(&eval.namespace, &eval.job_id).cloned();
    let live: Vec<Arc<Allocation>> = snap
        .allocs_by_job(&eval.namespace, &eval.job_id)
        .into_iter()
        .filter(|a| !a.server_terminal())
        .filter(|a| match (&job, &a.job) {
            (Some(j), Some(aj)) => aj.create_index == j.create_index,
            _ => true,
        })
        .collect();
    let stop = |out: &mut SchedOutcome, a: &Allocation, why: &str| {
        out.plan
            .node_update
            .entry(a.node_id.clone())
            .or_default()
            .push((a.id.clone(), why.to_string()));
        annotate(&mut out.annotations.desired_tg_updates, &a.task_group).stop += 1;
    };
    let Some(job) = job.filter(|j| !j.stop) else {
        for a in live.iter().filter(|a| !a.client_terminal()) {
            stop(out, a, STOP_JOB_STOPPED);
        }
        return;
    };
    let mut by_node_group: BTreeMap<(String, String), Vec<&Arc<Allocation>>> = BTreeMap::new();
    for a in &live {
        by_node_group
            .entry((a.node_id.clone(), a.task_group.clone()))
            .or_default()
            .push(a);
    }
    let mut rng = SeededRng::new(&ctx.seed);
    let mut ids = FreshIds::new(snap, &ctx.seed);
    for group in &job.task_groups {
        let feas = Feasibility::new(&job, group);
        for node in snap.nodes() {
            let existing = by_node_group
                .remove(&(node.id.clone(), group.name.clone()))
                .unwrap_or_default();
            let eligible =
                node.ready_for_work() && node_in_scope(&job, node) && feas.check(node).is_ok();
            if !eligible {
                // The drainer marks system allocations last; they stop and are not replaced.
                for a in existing.iter().filter(|a| migrating(a)) {
                    stop(out, a, STOP_MIGRATING);
                }
                if node.ready_for_work() {
                    for a in existing.iter().filter(|a| !a.client_terminal()) {
                        stop(out, a, STOP_NOT_NEEDED);
                    }
                }
                continue;
            }
            if let Some(a) = existing.first() {
                let same = a
                    .job
                    .as_ref()
                    .is_some_and(|j| j.job_modify_index == job.job_modify_index);
                if same || a.client_terminal() {
                    annotate(&mut out.annotations.desired_tg_updates, &group.name).ignore += 1;
                    continue;
                }
                let old_group = a.job.as_ref().and_then(|j| j.group(&group.name));
                if old_group.is_some_and(|old| !tasks_updated(old, group)) {
                    let mut updated = (***a).clone();
                    updated.job = Some(job.clone());
                    out.plan
                        .node_allocation
                        .entry(node.id.clone())
                        .or_default()
                        .push(updated);
                    annotate(&mut out.annotations.desired_tg_updates, &group.name)
                        .in_place_update += 1;
                    continue;
                }
                stop(out, a, STOP_UPDATING);
            }
            let stopping: Vec<String> = out
                .plan
                .node_update
                .get(&node.id)
                .map(|v| v.iter().map(|(id, _)| id.clone()).collect())
                .unwrap_or_default();
            // The state's usage of the node, less what the plan stops, with what it places or
            // updates in place (an update replaces the version the state counts).
            let planned = out.plan.node_allocation.get(&node.id);
            let mut usage = usage_without(
                snap,
                node,
                stopping
                    .iter()
                    .chain(planned.into_iter().flatten().map(|a| &a.id)),
            );
            for a in planned.into_iter().flatten() {
                usage.add(a);
            }
            let oversubscribe = snap.scheduler_config().memory_oversubscription_enabled;
            match fit_group(node, &usage, group, rng.next_u64(), oversubscribe) {
                Ok(resources) => {
                    let alloc = new_alloc(
                        NewAlloc {
                            job: &job,
                            group,
                            node,
                            eval,
                            ctx,
                            id: ids.take(),
                            index: 0,
                            previous: existing.first().map(|a| a.id.clone()).unwrap_or_default(),
                        },
                        resources,
                    );
                    let d = annotate(&mut out.annotations.desired_tg_updates, &group.name);
                    if existing.is_empty() {
                        d.place += 1;
                    } else {
                        d.stop -= 1;
                        d.destructive_update += 1;
                    }
                    out.plan
                        .node_allocation
                        .entry(node.id.clone())
                        .or_default()
                        .push(alloc);
                }
                Err(dim) => {
                    let m = out.failed_tg_allocs.entry(group.name.clone()).or_default();
                    if m.nodes_evaluated > 0 {
                        m.coalesced_failures += 1;
                    }
                    m.nodes_evaluated += 1;
                    m.nodes_exhausted += 1;
                    *m.dimension_exhausted.get_or_insert_with(dim, || 0) += 1;
                    *out.queued.entry(group.name.clone()).or_insert(0) += 1;
                }
            }
        }
    }
    // Groups removed from the job, or allocations on nodes that left.
    for allocs in by_node_group.values() {
        for a in allocs.iter().filter(|a| !a.client_terminal()) {
            if job.group(&a.task_group).is_none() {
                stop(out, a, STOP_NOT_NEEDED);
            }
        }
    }
}

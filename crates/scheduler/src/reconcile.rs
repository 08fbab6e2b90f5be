//! Reconciliation: compares a job's desired groups with its existing allocations and decides,
//! per allocation, to ignore it, update it in place, replace it (destructive), stop it, or place
//! a new one.

use crate::annotate;
use crate::reschedule::{self, Reschedule};
use state::StateStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use structs::{
    Allocation, DesiredUpdates, Job, TaskGroup, ALLOC_CLIENT_COMPLETE, ALLOC_CLIENT_FAILED,
    ALLOC_DESIRED_RUN,
};

/// Stop reasons, as Nomad words them.
pub(crate) const STOP_NOT_NEEDED: &str = "alloc not needed due to job update";
pub(crate) const STOP_JOB_STOPPED: &str = "alloc not needed as job is stopped";
pub(crate) const STOP_UPDATING: &str = "alloc is being updated due to job update";
pub(crate) const STOP_MIGRATING: &str = "alloc is being migrated";

/// True when the allocation is marked to leave its node (by the drainer, or `alloc stop`) and
/// still runs there (a drain that ends clears its marks).
pub(crate) fn migrating(alloc: &Allocation) -> bool {
    alloc.desired_transition.should_migrate() && !alloc.client_terminal()
}

/// One allocation to place.
#[derive(Debug, Clone)]
pub(crate) struct PlaceRequest {
    pub(crate) group: String,
    pub(crate) index: u64,
    /// The allocation this one replaces (a destructive update, or a failed one rescheduled).
    pub(crate) previous: Option<Arc<Allocation>>,
}

/// The decisions for one job.
#[derive(Debug, Default)]
pub(crate) struct Reconciled {
    pub(crate) stops: BTreeMap<String, Vec<(String, String)>>,
    pub(crate) in_place: Vec<Allocation>,
    pub(crate) place: Vec<PlaceRequest>,
    pub(crate) desired: BTreeMap<String, DesiredUpdates>,
    /// Failed allocations to replace later, with when (Unix ns).
    pub(crate) followups: Vec<(Arc<Allocation>, i64)>,
}

impl Reconciled {
    fn stop(&mut self, alloc: &Allocation, why: &str) {
        self.stops
            .entry(alloc.node_id.clone())
            .or_default()
            .push((alloc.id.clone(), why.to_string()));
        annotate(&mut self.desired, &alloc.task_group).stop += 1;
    }

    /// Stops `alloc` and places its replacement in the same slot. The annotation does not count
    /// it as a stop: the caller counts it under why it is replaced (the counters returned).
    fn replace(
        &mut self,
        alloc: &Arc<Allocation>,
        group: &str,
        index: u64,
        why: &str,
    ) -> &mut DesiredUpdates {
        self.stop(alloc, why);
        self.place.push(PlaceRequest {
            group: group.to_string(),
            index,
            previous: Some(Arc::clone(alloc)),
        });
        let d = annotate(&mut self.desired, group);
        d.stop -= 1;
        d
    }
}

/// Decides what to do with a job's allocations. `job` is None when the job was purged.
/// `allocs` are the job's allocations; `now` (Unix ns) decides which failed allocations are
/// due for rescheduling.
pub(crate) fn reconcile(
    snap: &StateStore,
    allocs: &[Arc<Allocation>],
    job: Option<&Job>,
    now: i64,
) -> Reconciled {
    let mut rec = Reconciled::default();
    // Allocations the server still wants running, of this incarnation of the job ID.
    let live: Vec<Arc<Allocation>> = allocs
        .iter()
        .filter(|a| !a.server_terminal())
        .filter(|a| match (job, &a.job) {
            (Some(j), Some(aj)) => aj.create_index == j.create_index,
            _ => true,
        })
        .cloned()
        .collect();

    let Some(job) = job.filter(|j| !j.stop) else {
        for alloc in live.iter().filter(|a| !a.client_terminal()) {
            rec.stop(alloc, STOP_JOB_STOPPED);
        }
        return rec;
    };

    let mut by_group: BTreeMap<&str, Vec<&Arc<Allocation>>> = BTreeMap::new();
    for alloc in &live {
        by_group
            .entry(alloc.task_group.as_str())
            .or_default()
            .push(alloc);
    }
    for (group_name, allocs) in &by_group {
        if job.group(group_name).is_none() {
            for alloc in allocs.iter().filter(|a| !a.client_terminal()) {
                rec.stop(alloc, STOP_NOT_NEEDED);
            }
        }
    }
    for group in &job.task_groups {
        let allocs = by_group.remove(group.name.as_str()).unwrap_or_default();
        reconcile_group(snap, now, job, group, allocs, &mut rec);
    }
    rec
}

fn reconcile_group(
    snap: &StateStore,
    now: i64,
    job: &Job,
    group: &TaskGroup,
    allocs: Vec<&Arc<Allocation>>,
    rec: &mut Reconciled,
) {
    let count = u64::try_from(group.count).unwrap_or(0);
    // Fill each index with one allocation; lost allocations and duplicates free their slot.
    let mut slots: BTreeMap<u64, &Arc<Allocation>> = BTreeMap::new();
    let mut ordered = allocs;
    ordered.sort_by_key(|a| (a.index(), std::cmp::Reverse(a.create_index)));
    for alloc in ordered {
        let done_batch = job.is_batch()
            && matches!(
                alloc.client_status.as_str(),
                ALLOC_CLIENT_COMPLETE | ALLOC_CLIENT_FAILED
            );
        let keeps_slot =
            !alloc.client_terminal() || done_batch || alloc.client_status == ALLOC_CLIENT_FAILED;
        if !keeps_slot {
            continue;
        }
        let idx = alloc.index();
        if idx >= count || slots.contains_key(&idx) {
            if !alloc.client_terminal() {
                rec.stop(alloc, STOP_NOT_NEEDED);
            }
            continue;
        }
        slots.insert(idx, alloc);
    }
    for idx in 0..count {
        let Some(alloc) = slots.get(&idx) else {
            rec.place.push(PlaceRequest {
                group: group.name.clone(),
                index: idx,
                previous: None,
            });
            annotate(&mut rec.desired, &group.name).place += 1;
            continue;
        };
        if migrating(alloc) {
            // Stopped on its draining node and placed again elsewhere (not a reschedule).
            rec.replace(alloc, &group.name, idx, STOP_MIGRATING).migrate += 1;
            continue;
        }
        if alloc.client_status == ALLOC_CLIENT_FAILED && alloc.desired_status == ALLOC_DESIRED_RUN {
            match reschedule::decide(snap, group.reschedule_policy.as_ref(), alloc, now) {
                Reschedule::Now => {
                    rec.place.push(PlaceRequest {
                        group: group.name.clone(),
                        index: idx,
                        previous: Some((*alloc).clone()),
                    });
                    annotate(&mut rec.desired, &group.name).place += 1;
                    continue;
                }
                Reschedule::At(at) => {
                    rec.followups.push(((*alloc).clone(), at));
                    annotate(&mut rec.desired, &group.name).ignore += 1;
                    continue;
                }
                Reschedule::Never => {}
            }
        }
        let old_job = alloc.job.as_deref();
        if alloc.client_terminal()
            || old_job.is_some_and(|j| j.job_modify_index == job.job_modify_index)
        {
            annotate(&mut rec.desired, &group.name).ignore += 1;
            continue;
        }
        let old_group = old_job.and_then(|j| j.group(&group.name));
        if old_group.is_none_or(|old| tasks_updated(old, group)) {
            rec.replace(alloc, &group.name, idx, STOP_UPDATING)
                .destructive_update += 1;
        } else {
            let mut updated = (***alloc).clone();
            updated.job = Some(Arc::new(job.clone()));
            rec.in_place.push(updated);
            annotate(&mut rec.desired, &group.name).in_place_update += 1;
        }
    }
}

/// True when a group changed in a way that needs new allocations (Nomad's "destructive" update):
/// tasks, drivers, config, env, resources, artifacts, templates, networks or disk.
pub(crate) fn tasks_updated(old: &TaskGroup, new: &TaskGroup) -> bool {
    if old.tasks.len() != new.tasks.len()
        || old.networks != new.networks
        || old.ephemeral_disk != new.ephemeral_disk
        || old.volumes != new.volumes
    {
        return true;
    }
    old.tasks.iter().zip(&new.tasks).any(|(a, b)| {
        a.name != b.name
            || a.driver != b.driver
            || a.user != b.user
            || a.config != b.config
            || a.env != b.env
            || a.resources != b.resources
            || a.artifacts != b.artifacts
            || a.templates != b.templates
            || a.volume_mounts != b.volume_mounts
            || a.log_config != b.log_config
            || a.kill_signal != b.kill_signal
            || a.lifecycle != b.lifecycle
            || a.dispatch_payload != b.dispatch_payload
    })
}

//! The leader's node drainer: moves allocations off draining nodes at the pace each group's
//! `migrate` block allows, stops what is left at the drain's deadline, and ends a drain once
//! its node holds nothing that runs.
//!
//! Each tick reads one state snapshot and decides ([`decide`], pure) which allocations to mark
//! for migration (`DesiredTransition.Migrate`) and which drains are complete; the marks go
//! through Raft with one `node-drain` evaluation per job, and the scheduler then stops each
//! marked allocation and places its replacement on an eligible node.
//!
//! What each job type gets (Nomad's rules):
//! - service: at most `max_parallel` of a group's allocations migrate at once, counted over
//!   every draining node; the next ones are marked only when the group has `count -
//!   max_parallel` healthy allocations again (running, every task up for `min_healthy_time`).
//! - batch and sysbatch: left to finish; marked when the deadline passes.
//! - system: marked last, once nothing else on the node runs (unless `-ignore-system`); they
//!   stop and are not replaced (the node is ineligible).
//!
//! At the deadline (`-force`: at once) every remaining allocation is marked.

use crate::{job_eval, now_ns, Shared};
use state::{Command, StateStore};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use structs::{
    Allocation, DesiredTransition, Evaluation, Job, Node, ALLOC_CLIENT_RUNNING, JOB_TYPE_SYSTEM,
    TASK_STATE_RUNNING, TRIGGER_NODE_DRAIN,
};
use tracing::{info, warn};

/// How often the drainer looks at the draining nodes.
const TICK: Duration = Duration::from_millis(500);

/// What one tick decided.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Decision {
    /// Allocations to mark for migration, by ID.
    pub(crate) migrate: BTreeSet<String>,
    /// The jobs (namespace, ID) of those allocations, to evaluate.
    pub(crate) jobs: BTreeSet<(String, String)>,
    /// Draining nodes with nothing left to move.
    pub(crate) complete: Vec<String>,
}

impl Decision {
    /// Marks `alloc` for migration, and its job for an evaluation.
    fn mark(&mut self, alloc: &Allocation) {
        self.migrate.insert(alloc.id.clone());
        self.jobs
            .insert((alloc.namespace.clone(), alloc.job_id.clone()));
    }
}

/// A group's allocations to consider together: (namespace, job ID, group).
type GroupKey = (String, String, String);

fn is_system(alloc: &Allocation, job: Option<&Job>) -> bool {
    let kind = job
        .or(alloc.job.as_deref())
        .map(|j| j.job_type.as_str())
        .unwrap_or_default();
    kind == JOB_TYPE_SYSTEM
}

fn waits_for_deadline(alloc: &Allocation, job: Option<&Job>) -> bool {
    job.or(alloc.job.as_deref()).is_some_and(|j| j.is_batch())
}

/// Running on its node (whether or not for long).
fn serving(alloc: &Allocation) -> bool {
    !alloc.terminal() && alloc.client_status == ALLOC_CLIENT_RUNNING
}

/// Running, and every task that runs has been up for `min_healthy_ns` (Nomad's
/// `task_states` health; check results are not kept by the servers).
fn healthy(alloc: &Allocation, min_healthy_ns: i64, now: i64) -> bool {
    if !serving(alloc) {
        return false;
    }
    let running: Vec<_> = alloc
        .task_states
        .values()
        .filter(|t| t.state == TASK_STATE_RUNNING)
        .collect();
    !running.is_empty()
        && running.iter().all(|t| {
            t.started_at
                .as_deref()
                .and_then(structs::time::parse_rfc3339)
                .is_some_and(|at| now.saturating_sub(at) >= min_healthy_ns)
        })
}

/// Decides what to mark and which drains are done, from one snapshot at `now` (Unix ns).
pub(crate) fn decide(snap: &StateStore, now: i64) -> Decision {
    let mut out = Decision::default();
    // Service allocations on draining nodes not marked yet, by group, in node order.
    let mut waiting: BTreeMap<GroupKey, Vec<Arc<Allocation>>> = BTreeMap::new();
    let draining: Vec<&Arc<Node>> = snap.nodes().filter(|n| n.draining()).collect();
    let draining_ids: BTreeSet<&str> = draining.iter().map(|n| n.id.as_str()).collect();
    for node in &draining {
        let Some(strategy) = &node.drain_strategy else {
            continue;
        };
        let forced = strategy.deadline_passed(now);
        let live: Vec<Arc<Allocation>> = snap
            .allocs_by_node(&node.id)
            .into_iter()
            .filter(|a| !a.terminal())
            .collect();
        let mut others_left = false;
        let mut system = Vec::new();
        for alloc in &live {
            let job = snap.job_by_id(&alloc.namespace, &alloc.job_id);
            if is_system(alloc, job.map(|j| &**j)) {
                system.push(alloc);
                continue;
            }
            others_left = true;
            if alloc.desired_transition.should_migrate() {
                continue;
            }
            let stopped_job = job.is_none_or(|j| j.stop);
            if forced || stopped_job {
                out.mark(alloc);
            } else if !waits_for_deadline(alloc, job.map(|j| &**j)) {
                waiting
                    .entry((
                        alloc.namespace.clone(),
                        alloc.job_id.clone(),
                        alloc.task_group.clone(),
                    ))
                    .or_default()
                    .push(alloc.clone());
            }
        }
        if !strategy.ignore_system_jobs && !others_left {
            for alloc in system
                .iter()
                .filter(|a| !a.desired_transition.should_migrate())
            {
                out.mark(alloc);
            }
        }
        let blocking = if strategy.ignore_system_jobs {
            others_left
        } else {
            !live.is_empty()
        };
        if !blocking {
            out.complete.push(node.id.clone());
        }
    }
    for ((namespace, job_id, group_name), candidates) in waiting {
        let group = snap
            .job_by_id(&namespace, &job_id)
            .and_then(|j| j.group(&group_name).cloned());
        let Some(group) = group else {
            for alloc in &candidates {
                out.mark(alloc);
            }
            continue;
        };
        let migrate = group.migrate.clone().unwrap_or_default();
        let max_parallel = migrate.max_parallel.max(1);
        let siblings: Vec<Arc<Allocation>> = snap
            .allocs_by_job(&namespace, &job_id)
            .into_iter()
            .filter(|a| a.task_group == group_name && !a.terminal())
            .collect();
        // Allocations that serve and are not marked: those still on a draining node while
        // they run, the others (replacements) once healthy for `min_healthy_time`.
        let healthy_now = siblings
            .iter()
            .filter(|a| !a.desired_transition.should_migrate())
            .filter(|a| {
                if draining_ids.contains(a.node_id.as_str()) {
                    serving(a)
                } else {
                    healthy(a, migrate.min_healthy_time, now)
                }
            })
            .count() as i64;
        let mut budget = healthy_now - (group.count - max_parallel);
        for alloc in candidates {
            // One that does not run serves nobody: it can move without waiting.
            if serving(&alloc) {
                if budget <= 0 {
                    continue;
                }
                budget -= 1;
            }
            out.mark(&alloc);
        }
    }
    out
}

/// The leader's drainer loop: a tick every [`TICK`] while this server leads.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if !shared.duties_active.load(Ordering::Acquire) {
            continue;
        }
        if let Err(e) = tick(&shared).await {
            // Leadership moved or Raft is busy: the next tick (or the next leader) retries.
            warn!(error = %e, "node drainer tick failed");
        }
    }
}

async fn tick(shared: &Shared) -> Result<(), rpc::RpcError> {
    let snap = shared.log.snapshot();
    if !snap.nodes().any(|n| n.draining()) {
        return Ok(());
    }
    let now = now_ns();
    let decision = decide(&snap, now);
    if !decision.migrate.is_empty() {
        let evals: Vec<Evaluation> = decision
            .jobs
            .iter()
            .filter_map(|(ns, id)| snap.job_by_id(ns, id))
            .map(|job| drain_eval(job, now))
            .collect();
        info!(
            allocs = decision.migrate.len(),
            jobs = evals.len(),
            "node drainer marked allocations for migration"
        );
        shared
            .log
            .apply(Command::AllocUpdateDesiredTransition {
                alloc_ids: decision.migrate.into_iter().collect(),
                transition: DesiredTransition {
                    migrate: Some(true),
                    ..Default::default()
                },
                evals: evals.clone(),
                now,
            })
            .await?;
        for eval in evals {
            shared.broker.enqueue(eval).await;
        }
    }
    for node_id in decision.complete {
        info!(node_id = %node_id, "node drain complete");
        shared
            .log
            .apply(Command::NodeUpdateDrain {
                node_id,
                strategy: None,
                mark_eligible: false,
                meta: BTreeMap::new(),
                complete: true,
                evals: Vec::new(),
                now,
            })
            .await?;
    }
    Ok(())
}

fn drain_eval(job: &Job, now: i64) -> Evaluation {
    Evaluation {
        job_modify_index: job.job_modify_index,
        ..job_eval(job, TRIGGER_NODE_DRAIN, now)
    }
}

#[cfg(test)]
#[path = "drainer_tests.rs"]
mod tests;

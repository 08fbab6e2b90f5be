//! Runs one allocation: builds its directory, runs every task of its group in its lifecycle
//! order, reports the allocation whenever a task's state changes, and stops the other tasks
//! when one fails for good or the group's leader task ends (Nomad's `Sibling Task Failed` /
//! `Leader Task Dead`).
//! The order tasks run in is `lifecycle.rs`'s.

use crate::alloc_dir::AllocDir;
use crate::watcher::ClientCtx;
use rpc::AllocClientUpdate;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use structs::{
    Allocation, Task, TaskEvent, TaskState, VecMap, ALLOC_CLIENT_COMPLETE, ALLOC_CLIENT_FAILED,
    ALLOC_CLIENT_PENDING, ALLOC_CLIENT_RUNNING, TASK_STATE_DEAD, TASK_STATE_PENDING,
    TASK_STATE_RUNNING,
};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// How many events a task keeps (Nomad keeps the last 10).
const MAX_EVENTS: usize = 10;

/// Why the tasks of an allocation are being killed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KillReason {
    /// The servers want the allocation stopped (or the client is shutting down).
    Stop,
    /// Another task of the group failed for good.
    SiblingFailed(String),
    /// The group's leader task ended.
    LeaderDead,
}

/// Task states of one allocation, shared by its task runners, and the switch that kills them.
pub(crate) struct AllocState {
    alloc_id: String,
    states: Mutex<VecMap<String, TaskState>>,
    /// Bumped on every change of `states`, for the lifecycle's waits.
    changed: tokio::sync::watch::Sender<u64>,
    /// Tasks whose not having started yet does not keep the allocation pending (poststart and
    /// poststop tasks).
    later: Vec<String>,
    reason: Mutex<Option<KillReason>>,
    kill: CancellationToken,
    ctx: Arc<ClientCtx>,
    /// Tasks that had ended for good (and whether they failed) when this client, restarted,
    /// took the allocation over again.
    ended_before: BTreeMap<String, bool>,
}

/// Unix nanoseconds now.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A task event of `kind` happening now, with its display message.
pub(crate) fn task_event(kind: &str, message: impl Into<String>) -> TaskEvent {
    let message = message.into();
    TaskEvent {
        event_type: kind.into(),
        time: now_ns(),
        display_message: message.clone(),
        message,
        ..Default::default()
    }
}

impl AllocState {
    /// Applies `change` to a task's state and reports the allocation (except while the client
    /// shuts down: tasks are stopped then, but the servers keep the allocation as it was, so a
    /// restarted client runs it again).
    pub(crate) async fn update(&self, task: &str, change: impl FnOnce(&mut TaskState)) {
        let update = {
            let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
            let state = states.get_or_insert_with(task.to_string(), TaskState::default);
            change(state);
            if state.events.len() > MAX_EVENTS {
                let excess = state.events.len() - MAX_EVENTS;
                state.events.drain(..excess);
            }
            let (status, description) = client_status(&states, &self.later);
            AllocClientUpdate {
                alloc_id: self.alloc_id.clone(),
                client_status: status.into(),
                client_description: description.into(),
                task_states: states.clone(),
            }
        };
        self.changed.send_modify(|n| *n += 1);
        if !self.ctx.shutdown.is_cancelled() {
            self.ctx.reporter.send(update).await;
        }
    }

    /// Waits until `cond` holds for the task states, or `kill` fires (false then).
    pub(crate) async fn wait_until(
        &self,
        kill: &CancellationToken,
        cond: impl Fn(&VecMap<String, TaskState>) -> bool,
    ) -> bool {
        let mut rx = self.changed.subscribe();
        loop {
            if cond(&self.states.lock().unwrap_or_else(PoisonError::into_inner)) {
                return true;
            }
            tokio::select! {
                _ = kill.cancelled() => return false,
                changed = rx.changed() => if changed.is_err() { return false },
            }
        }
    }

    /// For a task that had ended for good before the client restarted: whether it failed.
    pub(crate) fn ended_before_restart(&self, task: &str) -> Option<bool> {
        self.ended_before.get(task).copied()
    }

    /// The switch that kills every task of the allocation.
    pub(crate) fn kill_switch(&self) -> CancellationToken {
        self.kill.clone()
    }

    /// Whether `task` has failed.
    pub(crate) fn failed(&self, task: &str) -> bool {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(task)
            .is_some_and(|s| s.failed)
    }

    /// Marks tasks that never started dead (their allocation ended before their turn).
    pub(crate) async fn never_ran(&self, tasks: &[Task]) {
        for t in tasks {
            let pending = self
                .states
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&t.name)
                .is_some_and(|s| s.state == TASK_STATE_PENDING && s.started_at.is_none());
            if pending {
                self.update(&t.name, |s| s.state = TASK_STATE_DEAD.into())
                    .await;
            }
        }
    }

    /// Records an event for a task.
    pub(crate) async fn event(&self, task: &str, event: TaskEvent) {
        self.update(task, |s| s.events.push(event)).await;
    }

    /// Kills every task, keeping the first reason given.
    pub(crate) fn kill(&self, reason: KillReason) {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
        self.kill.cancel();
    }

    /// Why the tasks are being killed (`Stop` when the allocation's stop token fired).
    pub(crate) fn kill_reason(&self) -> KillReason {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or(KillReason::Stop)
    }
}

/// Nomad's client status from task states: failed if any task failed, complete when all are
/// dead, running once every task has started (but those in `later`) and one runs, pending
/// before.
fn client_status(
    states: &VecMap<String, TaskState>,
    later: &[String],
) -> (&'static str, &'static str) {
    if states
        .values()
        .any(|s| s.state == TASK_STATE_DEAD && s.failed)
    {
        return (ALLOC_CLIENT_FAILED, "Failed tasks");
    }
    if states.values().all(|s| s.state == TASK_STATE_DEAD) {
        return (ALLOC_CLIENT_COMPLETE, "All tasks have completed");
    }
    let never_started = states.iter().any(|(name, s)| {
        s.state == TASK_STATE_PENDING && s.started_at.is_none() && !later.contains(name)
    });
    if !never_started && states.values().any(|s| s.state == TASK_STATE_RUNNING) {
        return (ALLOC_CLIENT_RUNNING, "Tasks are running");
    }
    (ALLOC_CLIENT_PENDING, "No tasks have started")
}

/// Runs the allocation until its tasks end or `stop` is cancelled.
pub(crate) async fn run(ctx: Arc<ClientCtx>, alloc: Allocation, stop: CancellationToken) {
    let alloc = Arc::new(alloc);
    let Some(group) = alloc
        .job
        .as_ref()
        .and_then(|j| j.group(&alloc.task_group))
        .cloned()
    else {
        warn!(alloc_id = %alloc.id, group = %alloc.task_group, "allocation without its job or group");
        ctx.reporter
            .send(AllocClientUpdate {
                alloc_id: alloc.id.clone(),
                client_status: ALLOC_CLIENT_FAILED.into(),
                client_description: format!(
                    "allocation has no job or no task group {:?}",
                    alloc.task_group
                ),
                task_states: VecMap::new(),
            })
            .await;
        return;
    };
    let pending = TaskState {
        state: TASK_STATE_PENDING.into(),
        ..Default::default()
    };
    let later = group
        .tasks
        .iter()
        .filter(|t| matches!(crate::lifecycle::hook(t), "poststart" | "poststop"))
        .map(|t| t.name.clone())
        .collect();
    // Run before this client restarted (it recorded tasks of it): the task states go on from
    // what it last reported, so restarts counts and events carry over.
    let restored = ctx.state.has_alloc(&alloc.id);
    let states: VecMap<String, TaskState> = group
        .tasks
        .iter()
        .map(|t| {
            let known = restored
                .then(|| alloc.task_states.get(&t.name).cloned())
                .flatten();
            (t.name.clone(), known.unwrap_or_else(|| pending.clone()))
        })
        .collect();
    let ended_before = states
        .iter()
        .filter(|(_, s)| restored && s.state == TASK_STATE_DEAD)
        .map(|(name, s)| (name.clone(), s.failed))
        .collect();
    let state = Arc::new(AllocState {
        alloc_id: alloc.id.clone(),
        states: Mutex::new(states),
        ended_before,
        changed: tokio::sync::watch::channel(0).0,
        later,
        reason: Mutex::new(None),
        kill: stop.child_token(),
        ctx: ctx.clone(),
    });
    let alloc_dir = AllocDir::new(&ctx.alloc_root, &alloc.id);
    if let Err(e) = alloc_dir.build(group.tasks.iter().map(|t| t.name.as_str())) {
        let message = format!(
            "failed to build alloc dir {}: {e}",
            alloc_dir.root().display()
        );
        for t in &group.tasks {
            state
                .update(&t.name, |s| {
                    let mut ev = task_event("Setup Failure", message.clone());
                    ev.fails_task = true;
                    s.events.push(ev);
                    s.state = TASK_STATE_DEAD.into();
                    s.failed = true;
                })
                .await;
        }
        return;
    }
    crate::lifecycle::run_tasks(&ctx, &alloc, &group, &state, &alloc_dir).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(state: &str, failed: bool) -> TaskState {
        TaskState {
            state: state.into(),
            failed,
            started_at: (state != "pending").then(|| "x".into()),
            ..Default::default()
        }
    }

    #[test]
    fn status_rules() {
        let m = |v: Vec<TaskState>| {
            v.into_iter()
                .enumerate()
                .map(|(i, s)| (i.to_string(), s))
                .collect()
        };
        let status = |v| client_status(&m(v), &[]).0;
        assert_eq!(status(vec![st("pending", false)]), "pending");
        assert_eq!(
            status(vec![st("running", false), st("running", false)]),
            "running"
        );
        assert_eq!(
            status(vec![st("running", false), st("pending", false)]),
            "pending"
        );
        // A task waiting to restart after it ran once keeps the allocation running.
        let mut restarting = st("running", false);
        restarting.state = "pending".into();
        assert_eq!(status(vec![st("running", false), restarting]), "running");
        assert_eq!(
            status(vec![st("dead", false), st("dead", false)]),
            "complete"
        );
        assert_eq!(
            status(vec![st("dead", true), st("running", false)]),
            "failed"
        );
        // A poststop task (task "1") not yet started does not hold the allocation pending.
        let states = m(vec![st("running", false), st("pending", false)]);
        assert_eq!(client_status(&states, &["1".into()]).0, "running");
    }

    #[test]
    fn events_have_type_time_and_message() {
        let e = task_event("Started", "Task started by client");
        assert_eq!(e.event_type, "Started");
        assert_eq!(e.display_message, e.message);
        assert!(e.time > 0);
    }
}

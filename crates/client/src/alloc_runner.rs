//! Runs one allocation: builds its directory, runs every task, and reports the allocation's
//! status whenever a task's state changes.

use crate::task_runner;
use crate::watcher::ClientCtx;
use rpc::AllocClientUpdate;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use structs::{
    Allocation, TaskEvent, TaskState, ALLOC_CLIENT_COMPLETE, ALLOC_CLIENT_FAILED,
    ALLOC_CLIENT_PENDING, ALLOC_CLIENT_RUNNING, TASK_STATE_DEAD, TASK_STATE_PENDING,
    TASK_STATE_RUNNING,
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Task states of one allocation, shared by its task runners.
pub(crate) struct AllocState {
    alloc_id: String,
    states: Mutex<BTreeMap<String, TaskState>>,
    ctx: Arc<ClientCtx>,
}

/// Unix nanoseconds now.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl AllocState {
    /// Applies `change` to a task's state and reports the allocation.
    pub(crate) async fn update(&self, task: &str, change: impl FnOnce(&mut TaskState)) {
        let update = {
            let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
            let state = states.entry(task.to_string()).or_default();
            change(state);
            if state.events.len() > 10 {
                let excess = state.events.len() - 10;
                state.events.drain(..excess);
            }
            let (status, description) = client_status(&states);
            AllocClientUpdate {
                alloc_id: self.alloc_id.clone(),
                client_status: status.into(),
                client_description: description.into(),
                task_states: states.clone(),
            }
        };
        self.ctx.reporter.send(update).await;
    }

    /// Records an event (and optionally a new state) for a task.
    pub(crate) async fn event(&self, task: &str, kind: &str, message: String, state: Option<&str>) {
        self.update(task, |s| {
            s.events.push(TaskEvent {
                event_type: kind.into(),
                time: now_ns(),
                display_message: message.clone(),
                message,
                ..Default::default()
            });
            if let Some(new) = state {
                s.state = new.into();
            }
        })
        .await;
    }
}

/// Nomad's client status from task states.
fn client_status(states: &BTreeMap<String, TaskState>) -> (&'static str, &'static str) {
    let all = |st: &str| states.values().all(|s| s.state == st);
    if states
        .values()
        .any(|s| s.state == TASK_STATE_DEAD && s.failed)
    {
        return (ALLOC_CLIENT_FAILED, "Failed tasks");
    }
    if all(TASK_STATE_DEAD) {
        return (ALLOC_CLIENT_COMPLETE, "All tasks have completed");
    }
    if states.values().any(|s| s.state == TASK_STATE_RUNNING)
        && !states
            .values()
            .any(|s| s.state == TASK_STATE_PENDING && s.restarts == 0 && s.started_at.is_none())
    {
        return (ALLOC_CLIENT_RUNNING, "Tasks are running");
    }
    (ALLOC_CLIENT_PENDING, "No tasks have started")
}

fn build_dirs(alloc_dir: &Path, tasks: &[String]) -> std::io::Result<()> {
    for sub in ["alloc/logs", "alloc/data", "alloc/tmp"] {
        std::fs::create_dir_all(alloc_dir.join(sub))?;
    }
    for t in tasks {
        for sub in ["local", "secrets", "tmp"] {
            std::fs::create_dir_all(alloc_dir.join(t).join(sub))?;
        }
    }
    Ok(())
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
        warn!(alloc_id = %alloc.id, "allocation has no job or group; ignoring it");
        return;
    };
    let state = Arc::new(AllocState {
        alloc_id: alloc.id.clone(),
        states: Mutex::new(
            group
                .tasks
                .iter()
                .map(|t| {
                    (
                        t.name.clone(),
                        TaskState {
                            state: TASK_STATE_PENDING.into(),
                            ..Default::default()
                        },
                    )
                })
                .collect(),
        ),
        ctx: ctx.clone(),
    });
    let alloc_dir = ctx.alloc_root.join(&alloc.id);
    let names: Vec<String> = group.tasks.iter().map(|t| t.name.clone()).collect();
    if let Err(e) = build_dirs(&alloc_dir, &names) {
        for t in &names {
            state
                .event(
                    t,
                    "Setup Failure",
                    format!("failed to build alloc dir: {e}"),
                    Some(TASK_STATE_DEAD),
                )
                .await;
            state.update(t, |s| s.failed = true).await;
        }
        return;
    }
    let mut tasks = JoinSet::new();
    for task in group.tasks.clone() {
        let runner = task_runner::TaskRunner {
            ctx: ctx.clone(),
            alloc: alloc.clone(),
            restart: group.restart_policy.clone().unwrap_or_default(),
            task,
            alloc_dir: alloc_dir.clone(),
            state: state.clone(),
            stop: stop.clone(),
        };
        tasks.spawn(runner.run());
    }
    while tasks.join_next().await.is_some() {}
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
        assert_eq!(client_status(&m(vec![st("pending", false)])).0, "pending");
        assert_eq!(
            client_status(&m(vec![st("running", false), st("running", false)])).0,
            "running"
        );
        assert_eq!(
            client_status(&m(vec![st("running", false), st("pending", false)])).0,
            "pending"
        );
        assert_eq!(
            client_status(&m(vec![st("dead", false), st("dead", false)])).0,
            "complete"
        );
        assert_eq!(
            client_status(&m(vec![st("dead", true), st("running", false)])).0,
            "failed"
        );
    }
}

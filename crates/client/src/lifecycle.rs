//! The order an allocation's tasks run in (Nomad's lifecycle): `prestart` tasks first — the
//! main tasks start once every ephemeral prestart task has completed and every prestart
//! sidecar runs; `poststart` tasks once every main task runs; when the main tasks have ended,
//! sidecars are stopped; `poststop` tasks run last, also when the allocation is stopped (not
//! when the client itself shuts down, since it runs the allocation again when it is back).
//! Ephemeral lifecycle tasks run once, whatever the job type.

use crate::alloc_dir::AllocDir;
use crate::alloc_runner::{AllocState, KillReason};
use crate::restart::RestartTracker;
use crate::task_runner::TaskRunner;
use crate::watcher::ClientCtx;
use std::sync::Arc;
use structs::{Allocation, Task, TaskGroup, TASK_STATE_DEAD, TASK_STATE_RUNNING};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Runs every task of `group` in lifecycle order until all have ended.
pub(crate) async fn run_tasks(
    ctx: &Arc<ClientCtx>,
    alloc: &Arc<Allocation>,
    group: &TaskGroup,
    state: &Arc<AllocState>,
    alloc_dir: &AllocDir,
) {
    let batch = alloc.job.as_ref().is_some_and(|j| j.is_batch());
    let of = |h: &str, sidecar: bool| -> Vec<Task> {
        group
            .tasks
            .iter()
            .filter(|t| {
                hook(t) == h
                    && (h.is_empty() || t.lifecycle.as_ref().is_some_and(|l| l.sidecar == sidecar))
            })
            .cloned()
            .collect()
    };
    let main = of("", false);
    let (pre, pre_sidecars) = (of("prestart", false), of("prestart", true));
    let (post, post_sidecars) = (of("poststart", false), of("poststart", true));
    let poststop: Vec<Task> = group
        .tasks
        .iter()
        .filter(|t| hook(t) == "poststop")
        .cloned()
        .collect();
    let runner = |task: Task, kill: CancellationToken| {
        let (name, leader) = (task.name.clone(), task.leader);
        // Ephemeral lifecycle tasks end when they succeed, whatever the job type (Nomad).
        let run_once = batch || task.lifecycle.as_ref().is_some_and(|l| !l.sidecar);
        let r = TaskRunner {
            ctx: ctx.clone(),
            alloc: alloc.clone(),
            restart: RestartTracker::new(
                group.restart_policy.clone().unwrap_or_default(),
                run_once,
            ),
            task,
            alloc_dir: alloc_dir.clone(),
            state: state.clone(),
            kill,
            template_env: Default::default(),
        };
        async move { (name, leader, r.run().await) }
    };
    let kill = state.kill_switch();
    // Sidecars are stopped once the main tasks have ended (or with everything else).
    let sidecar_kill = kill.child_token();
    let mut sidecars = JoinSet::new();
    let mut tasks = JoinSet::new();

    // Prestart: ephemeral tasks to completion, sidecars up.
    for t in pre_sidecars.iter().cloned() {
        sidecars.spawn(runner(t, sidecar_kill.clone()));
    }
    let mut prestart = JoinSet::new();
    for t in pre.iter().cloned() {
        prestart.spawn(runner(t, kill.clone()));
    }
    while let Some(done) = prestart.join_next().await {
        finished(state, &alloc.id, done);
    }
    let sidecar_names: Vec<String> = pre_sidecars.iter().map(|t| t.name.clone()).collect();
    let pre_ok = !kill.is_cancelled()
        && pre.iter().all(|t| !state.failed(&t.name))
        && state
            .wait_until(&kill, |states| {
                sidecar_names.iter().all(|n| {
                    states.get(n).is_some_and(|s| {
                        s.state == TASK_STATE_RUNNING || s.state == TASK_STATE_DEAD
                    })
                })
            })
            .await
        && pre_sidecars.iter().all(|t| !state.failed(&t.name));

    if pre_ok {
        for t in main.iter().cloned() {
            tasks.spawn(runner(t, kill.clone()));
        }
        // Poststart once every main task runs.
        let main_names: Vec<String> = main.iter().map(|t| t.name.clone()).collect();
        let mut poststart_started = main_names.is_empty();
        if poststart_started {
            for t in post_sidecars.iter().cloned() {
                sidecars.spawn(runner(t, sidecar_kill.clone()));
            }
            for t in post.iter().cloned() {
                sidecars.spawn(runner(t, kill.clone()));
            }
        }
        loop {
            tokio::select! {
                done = tasks.join_next() => match done {
                    Some(done) => finished(state, &alloc.id, done),
                    None => break,
                },
                // A sidecar failing for good fails the allocation while its main tasks run.
                Some(done) = sidecars.join_next(), if !sidecars.is_empty() => {
                    finished(state, &alloc.id, done);
                }
                up = state.wait_until(&kill, |states| {
                    main_names.iter().all(|n| {
                        states.get(n).is_some_and(|s| s.state == TASK_STATE_RUNNING)
                    })
                }), if !poststart_started => {
                    poststart_started = true;
                    if up {
                        for t in post_sidecars.iter().cloned() {
                            sidecars.spawn(runner(t, sidecar_kill.clone()));
                        }
                        for t in post.iter().cloned() {
                            sidecars.spawn(runner(t, kill.clone()));
                        }
                    }
                }
            }
        }
    }
    sidecar_kill.cancel();
    while let Some(done) = sidecars.join_next().await {
        finished(state, &alloc.id, done);
    }
    state
        .never_ran(
            &main
                .iter()
                .chain(&post)
                .chain(&post_sidecars)
                .cloned()
                .collect::<Vec<_>>(),
        )
        .await;

    // Poststop: after everything else, unless the client itself is shutting down (it runs
    // the allocation again when it comes back).
    if ctx.shutdown.is_cancelled() {
        return;
    }
    let mut last = JoinSet::new();
    for t in poststop {
        last.spawn(runner(t, ctx.shutdown.child_token()));
    }
    while let Some(done) = last.join_next().await {
        if let Ok((_, _, failed)) = &done {
            if *failed {
                warn!(alloc_id = %alloc.id, "a poststop task failed");
            }
        }
    }
}

/// A task's lifecycle hook (`prestart`, `poststart`, `poststop`), empty for main tasks.
pub(crate) fn hook(t: &Task) -> &str {
    t.lifecycle.as_ref().map_or("", |l| l.hook.as_str())
}

/// Acts on a task runner's end: a task that failed for good fails its siblings, the leader's
/// end ends them.
fn finished(
    state: &AllocState,
    alloc_id: &str,
    done: Result<(String, bool, bool), tokio::task::JoinError>,
) {
    match done {
        Ok((name, _, true)) => state.kill(KillReason::SiblingFailed(name)),
        Ok((_, true, false)) => state.kill(KillReason::LeaderDead),
        Ok(_) => {}
        Err(e) => {
            warn!(alloc_id = %alloc_id, error = %e, "task runner crashed; stopping the allocation");
            state.kill(KillReason::Stop);
        }
    }
}

//! Runs one task: environment and interpolated config, driver start, rotated logs, the restart
//! policy, and stopping with the task's kill signal and timeout. Events and their messages are
//! Nomad's (`Received`, `Task Setup`, `Started`, `Terminated`, `Restarting`, `Not Restarting`,
//! `Killing`, `Killed`, `Driver Failure`, `Sibling Task Failed`, `Leader Task Dead`).

use crate::alloc_dir::AllocDir;
use crate::alloc_runner::{now_ns, task_event, AllocState, KillReason};
use crate::control::Control;
use crate::env::{interpolate_value, task_env, task_resources};
use crate::logs::RotatingLog;
use crate::restart::{Decision, RestartTracker};
use crate::state::{ClientState, StateError, TaskRecord};
use crate::watcher::ClientCtx;
use drivers::{Driver, ExitResult, Recovered, TaskHandle, TaskOutput, TaskSpec};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use structs::duration::format_duration;
use structs::{Allocation, Task, VecMap, TASK_STATE_DEAD, TASK_STATE_PENDING, TASK_STATE_RUNNING};
use tokio::time::Instant;
use tracing::{info, warn};

/// One task of a running allocation.
pub(crate) struct TaskRunner {
    pub(crate) ctx: Arc<ClientCtx>,
    pub(crate) alloc: Arc<Allocation>,
    pub(crate) task: Task,
    pub(crate) restart: RestartTracker,
    pub(crate) alloc_dir: AllocDir,
    pub(crate) state: Arc<AllocState>,
    /// Cancelled when this task must be killed (the allocation's, or its phase's, switch).
    pub(crate) kill: tokio_util::sync::CancellationToken,
    /// Variables from `template` blocks with `env = true`, rendered before the first start.
    pub(crate) template_env: BTreeMap<String, String>,
}

fn ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Copies one output FIFO into its rotating log files, until every writer (the task and
/// whatever it started) has closed it. Asynchronous, so a client shutting down with tasks left
/// running is not held up by a copy that would never end. Write errors are logged once and the
/// output keeps being drained, so a full disk never blocks the task.
fn pump(reader: std::fs::File, mut log: RotatingLog) {
    let mut rx = match tokio::net::unix::pipe::Receiver::from_file(reader) {
        Ok(rx) => rx,
        Err(e) => {
            warn!(error = %e, "cannot read task output");
            return;
        }
    };
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 32 * 1024];
        let mut failing = false;
        loop {
            match rx.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => match log.write(&buf[..n]) {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        warn!(error = %e, "cannot write task log; dropping output");
                    }
                    Err(_) => {}
                },
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    });
}

impl TaskRunner {
    /// Pipes into `alloc/logs/<task>.{stdout,stderr}.N` (or nowhere with `logs.disabled`).
    fn output(&self) -> std::io::Result<TaskOutput> {
        let cfg = self.task.log_config.clone().unwrap_or_default();
        if cfg.disabled {
            return TaskOutput::discard();
        }
        let max_files = u64::try_from(cfg.max_files).unwrap_or(10);
        let max_bytes = self.ctx.config.max_log_file_bytes.unwrap_or_else(|| {
            u64::try_from(cfg.max_file_size_mb)
                .unwrap_or(10)
                .saturating_mul(1024 * 1024)
        });
        let logs = self.alloc_dir.logs();
        let sink = |stream: &str| -> std::io::Result<(std::os::fd::OwnedFd, PathBuf)> {
            let base = self.log_base(stream);
            let fifo = crate::logs::open_fifo(&logs, &base)?;
            pump(
                fifo.reader,
                RotatingLog::new(logs.clone(), base, max_files, max_bytes),
            );
            Ok((fifo.writer, fifo.path))
        };
        let (stdout, out_path) = sink("stdout")?;
        let (stderr, err_path) = sink("stderr")?;
        Ok(TaskOutput {
            stdout,
            stderr,
            fifos: vec![out_path, err_path],
        })
    }

    /// The client's directory for what the driver keeps about this task.
    fn state_dir(&self) -> PathBuf {
        crate::state::task_state_dir(&self.ctx.config.data_dir, &self.alloc.id, &self.task.name)
    }

    /// Records a started task's handle, so a restarted client finds it again.
    async fn remember(&self, handle: &dyn TaskHandle) {
        let Some(record) = handle.record() else {
            return;
        };
        let record = TaskRecord {
            driver: self.task.driver.clone(),
            handle: record,
            template_env: self.template_env.clone(),
        };
        self.in_store(
            "cannot record the started task",
            move |state, alloc, task| state.put(alloc, task, &record),
        )
        .await;
    }

    /// Forgets the task's handle and removes its output FIFOs (it ended for good).
    async fn forget(&self) {
        for stream in ["stdout", "stderr"] {
            let fifo = crate::logs::fifo_path(&self.alloc_dir.logs(), &self.log_base(stream));
            let _ = std::fs::remove_file(fifo);
        }
        self.in_store("cannot remove the task's record", |state, alloc, task| {
            state.remove(alloc, task)
        })
        .await;
    }

    /// Runs `change` on the client's state store for this task, off the async workers (a
    /// commit waits for the disk); a failure is logged as `what`.
    async fn in_store(
        &self,
        what: &'static str,
        change: impl FnOnce(&ClientState, &str, &str) -> Result<(), StateError> + Send + 'static,
    ) {
        let (state, alloc, task) = (
            self.ctx.state.clone(),
            self.alloc.id.clone(),
            self.task.name.clone(),
        );
        match tokio::task::spawn_blocking(move || change(&state, &alloc, &task)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "{what}"),
            Err(e) => warn!(error = %e, "{what}"),
        }
    }

    /// The name of one of the task's logs (`web.stdout`).
    fn log_base(&self, stream: &str) -> String {
        format!("{}.{stream}", self.task.name)
    }

    /// The task as an earlier run of the client left it, when it recorded one: running (taken
    /// over), or how it ended.
    async fn resume(
        &mut self,
        driver: &dyn Driver,
    ) -> Option<Result<Box<dyn TaskHandle>, ExitResult>> {
        let record = match self.ctx.state.get(&self.alloc.id, &self.task.name) {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                warn!(error = %e, "cannot read the task's record; starting it anew");
                return None;
            }
        };
        if record.driver != driver.name() {
            return None;
        }
        self.template_env = record.template_env.clone();
        let found = match self.output() {
            Ok(output) => driver
                .recover(&self.spec(driver), &record.handle, output)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("failed to open the log FIFOs: {e}")),
        };
        let why = match found {
            Ok(Recovered::Running(handle)) => return Some(Ok(handle)),
            Ok(Recovered::Exited(exit)) => return Some(Err(exit)),
            Ok(Recovered::Gone(why)) => why,
            Err(e) => e,
        };
        warn!(alloc_id = %self.alloc.id, task = %self.task.name, %why, "cannot re-attach to the task");
        self.state
            .event(
                &self.task.name,
                task_event(
                    "Driver Failure",
                    format!("failed to re-attach to the task: {why}"),
                ),
            )
            .await;
        Some(Err(ExitResult {
            exit_code: -1,
            ..Default::default()
        }))
    }

    fn spec(&self, driver: &dyn Driver) -> TaskSpec {
        let empty = BTreeMap::new();
        let host_env = if driver.inherits_host_env() {
            &self.ctx.host_env
        } else {
            &empty
        };
        let mut env = task_env(
            &self.alloc,
            &self.task,
            &self.ctx.node,
            &self.ctx.config.region,
            self.alloc_dir.root(),
            driver.fs_isolation(),
            host_env,
        );
        env.extend(self.template_env.clone());
        let config = match interpolate_value(
            &Value::Object(self.task.config.clone()),
            &env,
            &self.ctx.node,
        ) {
            Value::Object(m) => m,
            _ => self.task.config.clone(),
        };
        TaskSpec {
            alloc_id: self.alloc.id.clone(),
            task_name: self.task.name.clone(),
            config,
            env,
            task_dir: self.alloc_dir.task(&self.task.name),
            alloc_dir: self.alloc_dir.shared(),
            user: self.task.user.clone(),
            resources: task_resources(&self.alloc, &self.task),
            state_dir: self.state_dir(),
            ports: self
                .alloc
                .allocated_resources
                .shared
                .ports
                .iter()
                .map(|p| drivers::TaskPort {
                    label: p.label.clone(),
                    value: p.value,
                    to: p.to,
                    host_ip: p.host_ip.clone(),
                })
                .collect(),
        }
    }

    async fn finish(&self, failed: bool) {
        self.forget().await;
        self.state
            .update(&self.task.name, |s| {
                s.state = TASK_STATE_DEAD.into();
                s.failed = failed;
                s.finished_at = Some(structs::time::rfc3339_nano(now_ns()));
            })
            .await;
    }

    /// Kills a running task for the allocation's kill reason and marks it dead.
    async fn kill(&self, handle: &mut dyn TaskHandle, signal: i32, timeout: Duration) {
        let name = &self.task.name;
        match self.state.kill_reason() {
            KillReason::Stop => {}
            KillReason::SiblingFailed(sibling) => {
                let mut ev = task_event(
                    "Sibling Task Failed",
                    format!("Task's sibling {sibling:?} failed"),
                );
                ev.details.insert("failed_sibling".into(), sibling);
                self.state.event(name, ev).await;
            }
            KillReason::LeaderDead => {
                let ev = task_event("Leader Task Dead", "Leader Task in Group dead");
                self.state.event(name, ev).await;
            }
        }
        // `shutdown_delay` (the task's, else the group's): time for load balancers to stop
        // sending traffic before the kill signal.
        let group_delay = self
            .alloc
            .job
            .as_ref()
            .and_then(|j| j.group(&self.alloc.task_group))
            .and_then(|g| g.shutdown_delay)
            .unwrap_or(0);
        let delay = if self.task.shutdown_delay > 0 {
            self.task.shutdown_delay
        } else {
            group_delay
        };
        if delay > 0 {
            let delay = Duration::from_nanos(u64::try_from(delay).unwrap_or(0));
            self.state
                .event(
                    name,
                    task_event(
                        "Waiting for shutdown delay",
                        format!(
                            "Waiting for shutdown_delay of {} before killing the task.",
                            format_duration(ns(delay))
                        ),
                    ),
                )
                .await;
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.ctx.shutdown.cancelled() => {}
            }
        }
        let mut ev = task_event(
            "Killing",
            format!(
                "Sent interrupt. Waiting {} before force killing",
                format_duration(ns(timeout))
            ),
        );
        ev.kill_timeout = ns(timeout);
        self.state.event(name, ev).await;
        let exit = handle.stop(signal, timeout).await;
        info!(alloc_id = %self.alloc.id, task = %name, ?exit, "task killed");
        self.state
            .event(name, task_event("Killed", "Task successfully killed"))
            .await;
        self.finish(false).await;
    }

    /// Fetches the task's artifacts and renders its templates (once, before the first
    /// start); the failure event when one of them cannot be done.
    async fn prepare(&mut self, driver: &dyn Driver) -> Result<(), structs::TaskEvent> {
        let task_dir = self.alloc_dir.task(&self.task.name);
        if !self.task.artifacts.is_empty() {
            self.state
                .event(
                    &self.task.name,
                    task_event("Downloading Artifacts", "Client is downloading artifacts"),
                )
                .await;
            if let Err(e) = crate::artifact::fetch_all(&self.task.artifacts, &task_dir).await {
                let mut ev = task_event("Failed Artifact Download", e);
                ev.fails_task = true;
                return Err(ev);
            }
        }
        if !self.task.templates.is_empty() {
            let env = self.spec(driver).env;
            match crate::template::render_all(&self.task.templates, &task_dir, &env) {
                Ok(vars) => self.template_env = vars,
                Err(e) => {
                    let mut ev = task_event("Task hook failed", format!("template failed: {e}"));
                    ev.fails_task = true;
                    return Err(ev);
                }
            }
        }
        Ok(())
    }

    /// Runs the task to its end; returns whether it failed for good.
    pub(crate) async fn run(mut self) -> bool {
        let name = self.task.name.clone();
        let kill = self.kill.clone();
        if let Some(failed) = self.state.ended_before_restart(&name) {
            // It ended for good before the client restarted: not run again.
            return failed;
        }
        let driver = self.ctx.drivers.get(self.task.driver.as_str()).cloned();
        let mut resumed = match &driver {
            Some(driver) => self.resume(driver.as_ref()).await,
            None => None,
        };
        if resumed.is_none() {
            self.state
                .event(&name, task_event("Received", "Task received by client"))
                .await;
            self.state
                .event(&name, task_event("Task Setup", "Building Task Directory"))
                .await;
        }
        let Some(driver) = driver else {
            let mut ev = task_event(
                "Driver Failure",
                format!(
                    "driver {:?} is not available on this client",
                    self.task.driver
                ),
            );
            ev.fails_task = true;
            self.state.event(&name, ev).await;
            self.finish(true).await;
            return true;
        };
        // A task taken over was prepared before the client restarted.
        if resumed.is_none() {
            if let Err(ev) = self.prepare(driver.as_ref()).await {
                self.state.event(&name, ev).await;
                self.finish(true).await;
                return true;
            }
        }
        let kill_signal = drivers::signal_number(&self.task.kill_signal)
            .unwrap_or_else(|| driver.default_kill_signal());
        let kill_timeout = Duration::from_nanos(u64::try_from(self.task.kill_timeout).unwrap_or(0))
            .min(self.ctx.config.max_kill_timeout);
        loop {
            if kill.is_cancelled() {
                self.finish(false).await;
                return false;
            }
            let started = match resumed.take() {
                Some(Ok(handle)) => Ok(handle),
                Some(Err(exit)) => Err(Ok(exit)),
                None => match self.output() {
                    Ok(output) => driver
                        .start(&self.spec(driver.as_ref()), output)
                        .await
                        .map_err(|e| Err(e.to_string())),
                    Err(e) => Err(Err(format!("failed to create the log FIFOs: {e}"))),
                },
            };
            let exit = match started {
                // It ended while the client was away.
                Err(Ok(exit)) => exit,
                Err(Err(reason)) => {
                    warn!(alloc_id = %self.alloc.id, task = %name, %reason, "task failed to start");
                    self.state
                        .event(&name, task_event("Driver Failure", reason))
                        .await;
                    ExitResult {
                        exit_code: -1,
                        ..Default::default()
                    }
                }
                Ok(mut handle) => {
                    // Controllable from the moment it runs, before the record and report.
                    let mut control = self.ctx.controls.register(&self.alloc.id, &name);
                    let reattached = handle.reattached();
                    let how = if reattached {
                        "Task re-attached by client"
                    } else {
                        "Task started by client"
                    };
                    self.remember(handle.as_ref()).await;
                    self.state
                        .update(&name, |s| {
                            s.state = TASK_STATE_RUNNING.into();
                            if !reattached || s.started_at.is_none() {
                                s.started_at = Some(structs::time::rfc3339_nano(now_ns()));
                            }
                            s.events.push(task_event("Started", how));
                        })
                        .await;
                    // The CPU time and when it was read, for the next sample's percentages.
                    let mut cpu_seen = (Instant::now(), 0u64);
                    let outcome = loop {
                        tokio::select! {
                            exit = handle.wait() => break (exit, false),
                            _ = kill.cancelled() => {
                                drop(control);
                                if self.ctx.detaching() {
                                    // The client shuts down and leaves it running, recorded
                                    // for the next start to take over.
                                    info!(alloc_id = %self.alloc.id, task = %name, "leaving the task running");
                                    return false;
                                }
                                self.kill(handle.as_mut(), kill_signal, kill_timeout).await;
                                return false;
                            }
                            Some(c) = control.rx.recv() => match c {
                                Control::Signal(sig) => {
                                    let ev = task_event("Signaling", "Task being sent a signal");
                                    self.state.event(&name, ev).await;
                                    handle.signal(sig);
                                }
                                Control::Stats(reply) => {
                                    let usage =
                                        sample(handle.as_ref(), &mut cpu_seen, &self.ctx).await;
                                    let _ = reply.send(usage);
                                }
                                Control::Restart => {
                                    self.state
                                        .event(
                                            &name,
                                            task_event(
                                                "Restart Signaled",
                                                "User requested running tasks to restart",
                                            ),
                                        )
                                        .await;
                                    break (handle.stop(kill_signal, kill_timeout).await, true);
                                }
                            }
                        }
                    };
                    drop(control);
                    if outcome.1 {
                        // A user's restart: at once, and not counted by the restart policy.
                        self.state.event(&name, terminated(&outcome.0)).await;
                        self.state
                            .update(&name, |s| {
                                s.state = TASK_STATE_PENDING.into();
                                s.restarts += 1;
                                s.last_restart = Some(structs::time::rfc3339_nano(now_ns()));
                                s.events
                                    .push(task_event("Restarting", "Task restarting in 0s"));
                            })
                            .await;
                        continue;
                    }
                    outcome.0
                }
            };
            self.state.event(&name, terminated(&exit)).await;
            match self.restart.decide(&exit, Instant::now()) {
                Decision::Done { failed, reason } => {
                    if let Some(reason) = reason {
                        let mut ev = task_event("Not Restarting", reason);
                        ev.fails_task = failed;
                        self.state.event(&name, ev).await;
                    }
                    self.finish(failed).await;
                    return failed;
                }
                Decision::Restart { delay, reason } => {
                    let mut ev = task_event("Restarting", Decision::restart_message(delay, reason));
                    ev.start_delay = ns(delay);
                    ev.restart_reason = reason.into();
                    self.state
                        .update(&name, |s| {
                            s.state = TASK_STATE_PENDING.into();
                            s.restarts += 1;
                            s.last_restart = Some(structs::time::rfc3339_nano(now_ns()));
                            s.events.push(ev);
                        })
                        .await;
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = kill.cancelled() => {}
                    }
                }
            }
        }
    }
}

/// The task's usage now; CPU as percentages of one core since the previous sample (or the
/// start).
async fn sample(
    handle: &dyn TaskHandle,
    seen: &mut (Instant, u64),
    ctx: &ClientCtx,
) -> structs::TaskResourceUsage {
    let u = handle.usage().await;
    let now = Instant::now();
    let wall = now.duration_since(seen.0).as_nanos().max(1) as f64;
    let total = u.user_ns + u.system_ns;
    let used = total.saturating_sub(seen.1) as f64;
    let share = |part: u64| {
        if total == 0 {
            0.0
        } else {
            used * (part as f64 / total as f64) / wall * 100.0
        }
    };
    *seen = (now, total);
    let percent = used / wall * 100.0;
    let mhz: f64 = ctx
        .node
        .attributes
        .get("cpu.frequency")
        .and_then(|f| f.parse().ok())
        .unwrap_or(0.0);
    let mut cpu = structs::CpuStats::default();
    if u.cpu_measured {
        cpu = structs::CpuStats {
            system_mode: share(u.system_ns),
            user_mode: share(u.user_ns),
            total_ticks: percent / 100.0 * mhz,
            percent,
            measured: vec!["System Mode".into(), "User Mode".into(), "Percent".into()],
            ..Default::default()
        };
    }
    structs::TaskResourceUsage {
        resource_usage: structs::ResourceUsage {
            memory_stats: structs::MemoryStats {
                rss: u.rss,
                usage: u.usage,
                measured: u.memory_measured.iter().map(|m| m.to_string()).collect(),
                ..Default::default()
            },
            cpu_stats: cpu,
        },
        timestamp: now_ns(),
    }
}

/// The `Terminated` event of an exit.
fn terminated(exit: &ExitResult) -> structs::TaskEvent {
    let mut ev = task_event("Terminated", terminated_message(exit));
    if exit.oom_killed {
        ev.message = "OOM Killed".into();
    }
    ev.exit_code = exit.exit_code;
    ev.signal = exit.signal;
    ev.details = VecMap::from([
        ("exit_code".to_string(), exit.exit_code.to_string()),
        ("signal".to_string(), exit.signal.to_string()),
        ("oom_killed".to_string(), exit.oom_killed.to_string()),
    ]);
    ev
}

/// A `Terminated` event's text, as Nomad shows it (`Exit Code: 137, Signal: 9, Exit Message:
/// "OOM Killed"`).
fn terminated_message(exit: &ExitResult) -> String {
    let mut msg = format!("Exit Code: {}", exit.exit_code);
    if exit.signal != 0 {
        msg.push_str(&format!(", Signal: {}", exit.signal));
    }
    if exit.oom_killed {
        msg.push_str(", Exit Message: \"OOM Killed\"");
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminated_events_read_as_nomads() {
        let exit = |exit_code, signal, oom_killed| ExitResult {
            exit_code,
            signal,
            oom_killed,
        };
        assert_eq!(terminated_message(&exit(3, 0, false)), "Exit Code: 3");
        assert_eq!(
            terminated_message(&exit(0, 15, false)),
            "Exit Code: 0, Signal: 15"
        );
        assert_eq!(
            terminated_message(&exit(0, 9, true)),
            "Exit Code: 0, Signal: 9, Exit Message: \"OOM Killed\""
        );
    }
}

//! Runs one task: environment, driver start, logs, the restart policy, and stopping with the
//! task's kill signal and timeout.

use crate::alloc_runner::{now_ns, AllocState};
use crate::env::{interpolate_value, task_env};
use crate::logs::RotatingLog;
use crate::watcher::ClientCtx;
use drivers::{ExitResult, TaskOutput, TaskSpec};
use serde_json::Value;
use std::collections::VecDeque;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use structs::duration::format_duration;
use structs::{
    Allocation, RestartPolicy, Task, TASK_STATE_DEAD, TASK_STATE_PENDING, TASK_STATE_RUNNING,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The client's cap on `kill_timeout` (Nomad's `max_kill_timeout`).
const MAX_KILL_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct TaskRunner {
    pub(crate) ctx: Arc<ClientCtx>,
    pub(crate) alloc: Arc<Allocation>,
    pub(crate) task: Task,
    pub(crate) restart: RestartPolicy,
    pub(crate) alloc_dir: PathBuf,
    pub(crate) state: Arc<AllocState>,
    pub(crate) stop: CancellationToken,
}

/// What the restart policy says after an exit.
#[derive(Debug, PartialEq)]
pub(crate) enum Decision {
    /// The task finished for good.
    Done {
        failed: bool,
        reason: Option<String>,
    },
    /// Start again after this delay.
    Restart { delay: Duration, message: String },
}

/// Nomad's restart policy: batch tasks that exit 0 are done; any other exit restarts after
/// `delay` while fewer than `attempts` restarts happened within `interval`; then `fail` marks the
/// task failed and `delay` waits out the interval.
pub(crate) fn decide(
    policy: &RestartPolicy,
    batch: bool,
    exit: &ExitResult,
    recent: &mut VecDeque<Instant>,
    now: Instant,
) -> Decision {
    if batch && exit.successful() {
        return Decision::Done {
            failed: false,
            reason: None,
        };
    }
    let interval = Duration::from_nanos(u64::try_from(policy.interval).unwrap_or(0));
    let delay = Duration::from_nanos(u64::try_from(policy.delay).unwrap_or(0));
    while recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= interval)
    {
        recent.pop_front();
    }
    let attempts = usize::try_from(policy.attempts).unwrap_or(0);
    if recent.len() < attempts {
        recent.push_back(now);
        return Decision::Restart {
            delay,
            message: format!(
                "Task restarting in {}",
                format_duration(delay.as_nanos() as i64)
            ),
        };
    }
    if policy.mode == "delay" {
        let wait = recent
            .front()
            .map(|t| interval.saturating_sub(now.duration_since(*t)))
            .unwrap_or(delay)
            .max(delay);
        recent.clear();
        recent.push_back(now + wait);
        return Decision::Restart {
            delay: wait,
            message: format!(
                "Exceeded allowed attempts {} in interval {} and mode is \"delay\" - Task restarting in {}",
                policy.attempts,
                format_duration(policy.interval),
                format_duration(wait.as_nanos() as i64)
            ),
        };
    }
    Decision::Done {
        failed: true,
        reason: Some(format!(
            "Exceeded allowed attempts {} in interval {} and mode is \"fail\"",
            policy.attempts,
            format_duration(policy.interval)
        )),
    }
}

/// Copies one output pipe into its rotating log files on a blocking thread.
fn pump(mut reader: std::io::PipeReader, mut log: RotatingLog) {
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Err(e) = log.write(&buf[..n]) {
                        tracing::warn!(error = %e, "cannot write task log");
                    }
                }
            }
        }
    });
}

impl TaskRunner {
    fn output(&self) -> std::io::Result<TaskOutput> {
        let cfg = self.task.log_config.clone().unwrap_or_default();
        let dir = self.alloc_dir.join("alloc").join("logs");
        let max_files = u64::try_from(cfg.max_files).unwrap_or(10);
        let max_bytes = u64::try_from(cfg.max_file_size_mb)
            .unwrap_or(10)
            .saturating_mul(1024 * 1024);
        let (out_r, out_w) = std::io::pipe()?;
        let (err_r, err_w) = std::io::pipe()?;
        pump(
            out_r,
            RotatingLog::new(
                dir.clone(),
                format!("{}.stdout", self.task.name),
                max_files,
                max_bytes,
            ),
        );
        pump(
            err_r,
            RotatingLog::new(
                dir,
                format!("{}.stderr", self.task.name),
                max_files,
                max_bytes,
            ),
        );
        Ok(TaskOutput {
            stdout: out_w.into(),
            stderr: err_w.into(),
        })
    }

    fn spec(&self) -> TaskSpec {
        let env = task_env(
            &self.alloc,
            &self.task,
            &self.ctx.node,
            &self.ctx.region,
            &self.alloc_dir,
        );
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
            task_dir: self.alloc_dir.join(&self.task.name),
        }
    }

    async fn finish(&self, failed: bool) {
        self.state
            .update(&self.task.name, |s| {
                s.state = TASK_STATE_DEAD.into();
                s.failed = failed;
                s.finished_at = Some(structs::time::rfc3339_nano(now_ns()));
            })
            .await;
    }

    pub(crate) async fn run(self) {
        let name = self.task.name.clone();
        self.state
            .event(&name, "Received", "Task received by client".into(), None)
            .await;
        self.state
            .event(&name, "Task Setup", "Building Task Directory".into(), None)
            .await;
        let Some(driver) = self.ctx.drivers.get(self.task.driver.as_str()).cloned() else {
            self.state
                .event(
                    &name,
                    "Driver Failure",
                    format!(
                        "driver {:?} is not available on this client",
                        self.task.driver
                    ),
                    None,
                )
                .await;
            self.finish(true).await;
            return;
        };
        let kill_signal = drivers::signal_number(&self.task.kill_signal)
            .unwrap_or_else(|| driver.default_kill_signal());
        let kill_timeout = Duration::from_nanos(u64::try_from(self.task.kill_timeout).unwrap_or(0))
            .min(MAX_KILL_TIMEOUT);
        let batch = self.alloc.job.as_ref().is_some_and(|j| j.is_batch());
        let mut recent = VecDeque::new();
        loop {
            if self.stop.is_cancelled() {
                self.finish(false).await;
                return;
            }
            let started = match self.output() {
                Ok(output) => driver
                    .start(&self.spec(), output)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("failed to create log pipes: {e}")),
            };
            let exit = match started {
                Err(reason) => {
                    self.state
                        .event(&name, "Driver Failure", reason, None)
                        .await;
                    ExitResult {
                        exit_code: -1,
                        ..Default::default()
                    }
                }
                Ok(mut handle) => {
                    self.state
                        .update(&name, |s| {
                            s.state = TASK_STATE_RUNNING.into();
                            s.started_at = Some(structs::time::rfc3339_nano(now_ns()));
                            s.events.push(structs::TaskEvent {
                                event_type: "Started".into(),
                                time: now_ns(),
                                display_message: "Task started by client".into(),
                                message: "Task started by client".into(),
                                ..Default::default()
                            });
                        })
                        .await;
                    tokio::select! {
                        exit = handle.wait() => exit,
                        _ = self.stop.cancelled() => {
                            self.state.event(&name, "Killing", format!("Sent interrupt. Waiting {} before force killing", format_duration(kill_timeout.as_nanos() as i64)), None).await;
                            handle.stop(kill_signal, kill_timeout).await;
                            self.state.event(&name, "Killed", "Task successfully killed".into(), None).await;
                            self.finish(false).await;
                            return;
                        }
                    }
                }
            };
            let mut msg = format!("Exit Code: {}", exit.exit_code);
            if exit.signal != 0 {
                msg.push_str(&format!(", Signal: {}", exit.signal));
            }
            self.state.event(&name, "Terminated", msg, None).await;
            match decide(&self.restart, batch, &exit, &mut recent, Instant::now()) {
                Decision::Done { failed, reason } => {
                    if let Some(reason) = reason {
                        self.state
                            .event(&name, "Not Restarting", reason, None)
                            .await;
                    }
                    self.finish(failed).await;
                    return;
                }
                Decision::Restart { delay, message } => {
                    self.state
                        .update(&name, |s| {
                            s.state = TASK_STATE_PENDING.into();
                            s.restarts += 1;
                            s.last_restart = Some(structs::time::rfc3339_nano(now_ns()));
                            s.events.push(structs::TaskEvent {
                                event_type: "Restarting".into(),
                                time: now_ns(),
                                display_message: message.clone(),
                                message,
                                ..Default::default()
                            });
                        })
                        .await;
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.cancelled() => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: i64, mode: &str) -> RestartPolicy {
        RestartPolicy {
            attempts,
            interval: 60 * 1_000_000_000,
            delay: 1_000_000_000,
            mode: mode.into(),
            render_templates: false,
        }
    }

    fn failed() -> ExitResult {
        ExitResult {
            exit_code: 1,
            ..Default::default()
        }
    }

    #[test]
    fn batch_success_is_done_and_failures_restart_then_fail() {
        let now = Instant::now();
        let mut recent = VecDeque::new();
        let p = policy(2, "fail");
        assert_eq!(
            decide(&p, true, &ExitResult::default(), &mut recent, now),
            Decision::Done {
                failed: false,
                reason: None
            }
        );
        assert!(matches!(
            decide(&p, true, &failed(), &mut recent, now),
            Decision::Restart { .. }
        ));
        assert!(matches!(
            decide(&p, true, &failed(), &mut recent, now),
            Decision::Restart { .. }
        ));
        match decide(&p, true, &failed(), &mut recent, now) {
            Decision::Done {
                failed: true,
                reason: Some(r),
            } => {
                assert_eq!(
                    r,
                    "Exceeded allowed attempts 2 in interval 1m0s and mode is \"fail\""
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn service_exit_zero_restarts_and_interval_forgets_old_restarts() {
        let now = Instant::now();
        let mut recent = VecDeque::new();
        let p = policy(1, "fail");
        assert!(matches!(
            decide(&p, false, &ExitResult::default(), &mut recent, now),
            Decision::Restart { .. }
        ));
        assert!(matches!(
            decide(&p, false, &failed(), &mut recent, now),
            Decision::Done { failed: true, .. }
        ));
        let later = now + Duration::from_secs(61);
        let mut recent = VecDeque::from([now]);
        assert!(matches!(
            decide(&p, false, &failed(), &mut recent, later),
            Decision::Restart { .. }
        ));
    }

    #[test]
    fn delay_mode_waits_out_the_interval() {
        let now = Instant::now();
        let mut recent = VecDeque::from([now]);
        match decide(
            &policy(1, "delay"),
            false,
            &failed(),
            &mut recent,
            now + Duration::from_secs(10),
        ) {
            Decision::Restart { delay, message } => {
                assert_eq!(delay, Duration::from_secs(50));
                assert!(message.contains("mode is \"delay\""));
            }
            other => panic!("{other:?}"),
        }
    }
}

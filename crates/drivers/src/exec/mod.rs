//! `exec`: runs the task's command isolated: its own PID, mount, IPC and UTS namespaces, a
//! chroot of the task directory with the host's system directories bound read-only
//! (`sandbox.rs`), cgroup limits from its resources (`cgroup.rs`), as `nobody` unless the task
//! sets `user`. Needs root; reports itself unhealthy otherwise.

mod cgroup;
mod sandbox;

use crate::process::{parse_record, Adopted, GroupProcess};
use crate::raw_exec::command_and_args;
use crate::supervise::Supervision;
use crate::{
    Driver, DriverError, ExitResult, FsIsolation, Recovered, TaskHandle, TaskOutput, TaskSpec,
};
use async_trait::async_trait;
use cgroup::{Cgroup, Limits, Mode};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use structs::DriverInfo;

/// The user tasks run as when they set none (Nomad's default for `exec`).
const DEFAULT_USER: &str = "nobody";

/// The exec driver.
pub struct ExecDriver {
    /// The host's cgroups, or why the driver cannot run here.
    mode: Result<Mode, String>,
}

impl ExecDriver {
    /// A driver on this host's cgroups (`/sys/fs/cgroup`), usable when the agent is root.
    pub fn new() -> Self {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let mode = if root {
            cgroup::detect(Path::new("/sys/fs/cgroup"))
        } else {
            Err("the exec driver needs the client to run as root".into())
        };
        Self { mode }
    }
}

impl Default for ExecDriver {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Driver for ExecDriver {
    fn name(&self) -> &'static str {
        "exec"
    }

    fn fingerprint(&self) -> DriverInfo {
        let mut info = DriverInfo {
            detected: true,
            ..Default::default()
        };
        match &self.mode {
            Ok(mode) => {
                info.healthy = true;
                info.health_description = "Healthy".into();
                info.attributes.insert("driver.exec".into(), "1".into());
                let version = match mode {
                    Mode::V1(_) => "1",
                    Mode::V2(_) => "2",
                };
                info.attributes
                    .insert("os.cgroups.version".into(), version.into());
            }
            Err(why) => {
                info.healthy = false;
                info.health_description = why.clone();
            }
        }
        info
    }

    fn fs_isolation(&self) -> FsIsolation {
        FsIsolation::Chroot
    }

    async fn recover(
        &self,
        spec: &TaskSpec,
        record: &Value,
        _output: TaskOutput,
    ) -> Result<Recovered, DriverError> {
        self.recover_task(spec, record).await
    }

    async fn start(
        &self,
        spec: &TaskSpec,
        output: TaskOutput,
    ) -> Result<Box<dyn TaskHandle>, DriverError> {
        let mode = self
            .mode
            .as_ref()
            .map_err(|why| DriverError::StartFailed(why.clone()))?;
        let (command, args) = command_and_args(spec)?;
        let work_dir = match spec.config.get("work_dir") {
            None | Some(Value::Null) => "/".to_string(),
            Some(Value::String(d)) if !d.is_empty() => d.clone(),
            Some(other) => {
                return Err(DriverError::InvalidConfig(format!(
                    "\"work_dir\" must be a path, got {other}"
                )))
            }
        };
        let user = if spec.user.is_empty() {
            DEFAULT_USER
        } else {
            spec.user.as_str()
        };
        let (uid, gid) = sandbox::lookup_user(user)
            .map_err(|e| DriverError::StartFailed(format!("user {user:?}: {e}")))?;
        let r = spec.resources;
        let limits = Limits::new(r.cpu_mhz, r.memory_mb, r.memory_max_mb);
        // Off the async workers: taking over a leftover cgroup waits for its processes to die.
        let (mode, alloc_id, task) = (mode.clone(), spec.alloc_id.clone(), spec.task_name.clone());
        let cg =
            tokio::task::spawn_blocking(move || Cgroup::create(&mode, &alloc_id, &task, limits))
                .await
                .map_err(|e| DriverError::StartFailed(format!("cannot set up the cgroup: {e}")))?
                .map_err(|e| DriverError::StartFailed(format!("cannot set up the cgroup: {e}")))?;
        let cg = Arc::new(cg);
        let started = async {
            let procs = cg.procs_files()?;
            let plan = sandbox::Plan::prepare(
                &sandbox::Layout {
                    task_dir: &spec.task_dir,
                    alloc_dir: &spec.alloc_dir,
                    work_dir: &work_dir,
                    uid,
                    gid,
                },
                procs,
                Supervision::new(&spec.state_dir, &output.fifos)?,
            )?;
            let mut cmd = tokio::process::Command::new(&command);
            cmd.args(&args)
                .env_clear()
                .envs(&spec.env)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::from(output.stdout))
                .stderr(std::process::Stdio::from(output.stderr))
                .process_group(0)
                .kill_on_drop(false);
            crate::process::restore_thp(&mut cmd);
            // SAFETY: `enter` makes only async-signal-safe system calls on memory prepared
            // before the fork (the plan, moved into the hook), as pre_exec requires.
            unsafe {
                cmd.pre_exec(move || plan.enter());
            }
            cmd.spawn()
        };
        match started.await {
            Ok(child) => Ok(Box::new(ExecHandle {
                process: GroupProcess::new(child, Some(spec.state_dir.clone())),
                cgroup: cg,
                finished: None,
            })),
            Err(e) => {
                let _ = tokio::task::spawn_blocking(move || {
                    cg.kill_all();
                    cg.remove();
                })
                .await;
                Err(DriverError::Start(e))
            }
        }
    }
}

impl ExecDriver {
    /// Takes over (or clears up after) a task an earlier run of the client started.
    async fn recover_task(
        &self,
        spec: &TaskSpec,
        record: &Value,
    ) -> Result<Recovered, DriverError> {
        let mode = self
            .mode
            .as_ref()
            .map_err(|why| DriverError::StartFailed(why.clone()))?;
        let record = parse_record(record)?;
        let cg = Arc::new(Cgroup::existing(mode, &spec.alloc_id, &spec.task_name));
        let found = match GroupProcess::adopt(&record) {
            Adopted::Running(process) => {
                return Ok(Recovered::Running(Box::new(ExecHandle {
                    process: *process,
                    cgroup: cg,
                    finished: None,
                })))
            }
            found => found,
        };
        // Ended while the client was away: what it left goes, and the OOM count tells why.
        let oom = clear(cg).await;
        Ok(match found {
            Adopted::Exited(mut exit) => {
                exit.oom_killed = oom && exit.signal == i64::from(libc::SIGKILL);
                Recovered::Exited(exit)
            }
            other => other.recovered(),
        })
    }
}

/// Kills what is left in a task's cgroup and removes it; whether the OOM killer ended
/// anything in it.
async fn clear(cg: Arc<Cgroup>) -> bool {
    tokio::task::spawn_blocking(move || {
        let oom = cg.oom_kills() > 0;
        cg.kill_all();
        cg.remove();
        oom
    })
    .await
    .unwrap_or(false)
}

/// A running exec task: its supervisor process and its cgroup.
struct ExecHandle {
    process: GroupProcess,
    cgroup: Arc<Cgroup>,
    finished: Option<ExitResult>,
}

impl ExecHandle {
    /// After the task ended: whether the OOM killer did it, and nothing left behind.
    async fn finish(&mut self, mut result: ExitResult) -> ExitResult {
        if let Some(done) = self.finished {
            return done;
        }
        let oom = clear(self.cgroup.clone()).await;
        result.oom_killed = oom && result.signal == i64::from(libc::SIGKILL);
        self.finished = Some(result);
        result
    }
}

#[async_trait]
impl TaskHandle for ExecHandle {
    fn pid(&self) -> u32 {
        self.process.pid()
    }

    async fn wait(&mut self) -> ExitResult {
        let result = self.process.wait().await;
        self.finish(result).await
    }

    fn signal(&self, signal: i32) {
        self.process.signal(signal);
    }

    fn reattached(&self) -> bool {
        self.process.reattached()
    }

    fn record(&self) -> Option<Value> {
        self.process.record()
    }

    async fn stop(&mut self, signal: i32, timeout: Duration) -> ExitResult {
        let result = self.process.stop(signal, timeout).await;
        self.finish(result).await
    }

    async fn usage(&self) -> crate::TaskUsage {
        if self.finished.is_some() {
            return crate::TaskUsage::default();
        }
        let cg = self.cgroup.clone();
        tokio::task::spawn_blocking(move || cg.usage())
            .await
            .unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests;

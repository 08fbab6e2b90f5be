//! Task drivers: the `Driver` trait and its implementations (`raw_exec`, `exec`, `docker`,
//! `mock`), with one conformance suite every driver passes.
//!
//! Owns: starting a task's process (or fake), signalling and killing it, reporting its exit.
//! Must not: know about allocations, restart policies or servers (the client owns those), or
//! write logs (the client hands the driver the output sinks).

mod docker;
mod exec;
mod mock;
mod process;
mod raw_exec;
#[cfg(test)]
mod suite;
mod supervise;

pub use docker::{DockerDriver, DockerPolicy};
pub use exec::ExecDriver;
pub use mock::MockDriver;
pub use process::agent_disabled_thp;
pub use raw_exec::RawExecDriver;

use async_trait::async_trait;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use structs::DriverInfo;
use thiserror::Error;

/// Why a driver could not start or control a task.
#[derive(Debug, Error)]
pub enum DriverError {
    /// The task's `config` is missing something or has the wrong type.
    #[error("invalid task config: {0}")]
    InvalidConfig(String),
    /// The driver is not enabled on this client.
    #[error("driver {0:?} is not enabled on this client")]
    Disabled(String),
    /// Starting the process failed.
    #[error("failed to start task: {0}")]
    Start(#[from] std::io::Error),
    /// The driver refused to start the task (e.g. the mock's `start_error`).
    #[error("failed to start task: {0}")]
    StartFailed(String),
}

/// Everything a driver needs to start one task.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// Allocation ID (for logs and names).
    pub alloc_id: String,
    /// Task name.
    pub task_name: String,
    /// The task's driver config, already interpolated.
    pub config: Map<String, Value>,
    /// The complete environment of the task.
    pub env: BTreeMap<String, String>,
    /// The task directory (working directory by default; the root of a chroot).
    pub task_dir: PathBuf,
    /// The allocation's shared directory (`alloc/`), bound at `/alloc` in a chroot.
    pub alloc_dir: PathBuf,
    /// The user to run as (empty: the driver's default).
    pub user: String,
    /// What the task asked for, enforced by isolating drivers.
    pub resources: TaskResources,
    /// The allocation's network ports (image drivers map them by label).
    pub ports: Vec<TaskPort>,
    /// A directory of the client's, out of the task's reach, for what the driver keeps about
    /// the task (the supervisor's record of how it ended).
    pub state_dir: PathBuf,
}

/// One allocated port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPort {
    /// The group's label for it (`http`).
    pub label: String,
    /// The port on the host.
    pub value: i64,
    /// The port inside the task's network (`to`), 0 for the same as `value`.
    pub to: i64,
    /// The host address it is bound on (empty: all).
    pub host_ip: String,
}

/// A task's resources as drivers enforce them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskResources {
    /// CPU in MHz.
    pub cpu_mhz: i64,
    /// Memory reserved, in MB.
    pub memory_mb: i64,
    /// The memory it may use beyond that (`memory_max`), in MB; 0 for none.
    pub memory_max_mb: i64,
}

impl Default for TaskResources {
    /// Nomad's defaults for a task without a `resources` block.
    fn default() -> Self {
        Self {
            cpu_mhz: 100,
            memory_mb: 300,
            memory_max_mb: 0,
        }
    }
}

/// How a driver isolates a task's filesystem, which decides the paths a task sees
/// (`NOMAD_TASK_DIR` and the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsIsolation {
    /// The host's filesystem: paths are the host's.
    None,
    /// A chroot of the task directory: `/local`, `/secrets`, `/alloc`.
    Chroot,
    /// An image with the directories mounted at `/local`, `/secrets`, `/alloc`.
    Image,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitResult {
    /// Exit code (0 when killed by a signal).
    pub exit_code: i64,
    /// The signal that killed it, if any.
    pub signal: i64,
    /// Killed for using too much memory.
    pub oom_killed: bool,
}

impl ExitResult {
    /// True for a clean exit.
    pub fn successful(&self) -> bool {
        self.exit_code == 0 && self.signal == 0
    }
}

/// Where a task's output goes: the client passes pipe writers (or files) here; process
/// drivers hand them to the task, others (docker) write what they collect into them.
pub struct TaskOutput {
    /// Standard output.
    pub stdout: std::os::fd::OwnedFd,
    /// Standard error.
    pub stderr: std::os::fd::OwnedFd,
    /// When the sinks are FIFOs: their paths, which a supervised task's supervisor keeps open
    /// for reading, so the task's writes wait for a restarted client instead of failing.
    pub fifos: Vec<PathBuf>,
}

impl TaskOutput {
    /// Output thrown away (`/dev/null`).
    pub fn discard() -> std::io::Result<Self> {
        let null = || {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .map(std::os::fd::OwnedFd::from)
        };
        Ok(Self {
            stdout: null()?,
            stderr: null()?,
            fifos: Vec::new(),
        })
    }
}

/// A started task.
#[async_trait]
pub trait TaskHandle: Send + Sync {
    /// The process ID (0 for tasks without a process).
    fn pid(&self) -> u32;
    /// Whether the driver took over a task an earlier run of the client had started (it was
    /// still running) instead of starting it.
    fn reattached(&self) -> bool {
        false
    }
    /// What the driver needs to find the task again after the client restarts (`recover`);
    /// None when it cannot outlive the client.
    fn record(&self) -> Option<Value> {
        None
    }
    /// Waits for the task to end.
    async fn wait(&mut self) -> ExitResult;
    /// Sends `signal` to the task (its whole process group).
    fn signal(&self, signal: i32);
    /// Stops the task: `signal`, then after `timeout` SIGKILL to the whole group; returns how
    /// it ended.
    async fn stop(&mut self, signal: i32, timeout: Duration) -> ExitResult;
    /// The task's memory and CPU time now, as far as the driver measures them.
    async fn usage(&self) -> TaskUsage {
        TaskUsage::default()
    }
}

/// What became of a task the client started before it restarted.
pub enum Recovered {
    /// Still running: the client takes it over.
    Running(Box<dyn TaskHandle>),
    /// It ended while the client was away, this way.
    Exited(ExitResult),
    /// Neither it nor a record of its end is left (why, for the task's events).
    Gone(String),
}

impl std::fmt::Debug for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recovered::Running(h) => write!(f, "Running(pid {})", h.pid()),
            Recovered::Exited(e) => write!(f, "Exited({e:?})"),
            Recovered::Gone(why) => write!(f, "Gone({why:?})"),
        }
    }
}

/// A task's memory now and CPU time so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskUsage {
    /// Resident memory, bytes.
    pub rss: u64,
    /// Memory as the cgroup or engine counts it (page cache included), bytes.
    pub usage: u64,
    /// CPU time in user mode, nanoseconds.
    pub user_ns: u64,
    /// CPU time in kernel mode, nanoseconds.
    pub system_ns: u64,
    /// Which memory figures were measured (Nomad's names: `RSS`, `Usage`).
    pub memory_measured: Vec<&'static str>,
    /// Whether CPU time was measured.
    pub cpu_measured: bool,
}

/// A task driver.
#[async_trait]
pub trait Driver: Send + Sync {
    /// The driver's name as job files use it (`raw_exec`).
    fn name(&self) -> &'static str;
    /// Whether the driver is usable here, and its node attributes (the latest `detect`).
    fn fingerprint(&self) -> DriverInfo;
    /// Checks again whether the driver is usable (drivers that ask a daemon do it here) and
    /// returns the new fingerprint.
    async fn detect(&self) -> DriverInfo {
        self.fingerprint()
    }
    /// Starts a task.
    async fn start(
        &self,
        spec: &TaskSpec,
        output: TaskOutput,
    ) -> Result<Box<dyn TaskHandle>, DriverError>;
    /// Finds a task an earlier run of the client started, from its handle's `record`: still
    /// running (its output from now on to `output`), ended (how), or gone without a trace.
    async fn recover(
        &self,
        spec: &TaskSpec,
        record: &Value,
        output: TaskOutput,
    ) -> Result<Recovered, DriverError> {
        let _ = (spec, record, output);
        Ok(Recovered::Gone(format!(
            "the {} driver cannot re-attach to tasks",
            self.name()
        )))
    }
    /// The signal used to stop tasks when the job sets no `kill_signal` (Nomad: SIGINT).
    fn default_kill_signal(&self) -> i32 {
        libc::SIGINT
    }
    /// Whether tasks see the agent's own environment under theirs. Nomad gives it to drivers
    /// without image isolation (`raw_exec`, `exec`), not to image drivers (`docker`).
    fn inherits_host_env(&self) -> bool {
        true
    }
    /// How the driver isolates the task's filesystem.
    fn fs_isolation(&self) -> FsIsolation {
        FsIsolation::None
    }
}

/// Parses a signal name (`SIGTERM`, `TERM`, `SIGINT`...) to its number.
pub fn signal_number(name: &str) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    Some(match bare {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "ALRM" => libc::SIGALRM,
        "WINCH" => libc::SIGWINCH,
        _ => return None,
    })
}

/// The drivers a client offers, by name, given its `options` (`driver.raw_exec.enable`).
pub fn catalog(
    options: &BTreeMap<String, String>,
) -> BTreeMap<&'static str, std::sync::Arc<dyn Driver>> {
    let enabled = |key: &str| {
        options
            .get(key)
            .is_some_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "True"))
    };
    let mut drivers: BTreeMap<&'static str, std::sync::Arc<dyn Driver>> = BTreeMap::new();
    drivers.insert(
        "raw_exec",
        std::sync::Arc::new(RawExecDriver::new(enabled("driver.raw_exec.enable"))),
    );
    drivers.insert("exec", std::sync::Arc::new(ExecDriver::new()));
    drivers.insert(
        "docker",
        std::sync::Arc::new(DockerDriver::new(
            DockerPolicy {
                privileged: enabled("docker.privileged.enabled"),
                host_volumes: enabled("docker.volumes.enabled"),
            },
            options.get("docker.endpoint").cloned(),
        )),
    );
    drivers.insert("mock", std::sync::Arc::new(MockDriver));
    drivers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(signal_number("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(signal_number("int"), Some(libc::SIGINT));
        assert_eq!(signal_number("SIGNOPE"), None);
    }

    #[test]
    fn raw_exec_enabled_only_by_option() {
        let off = catalog(&BTreeMap::new());
        assert!(!off["raw_exec"].fingerprint().detected);
        let on = catalog(&[("driver.raw_exec.enable".to_string(), "1".to_string())].into());
        assert!(on["raw_exec"].fingerprint().healthy);
    }
}

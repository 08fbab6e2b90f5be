//! A child process in its own process group, stopped by signalling the whole group.
//!
//! A task owns its group: when the leader exits (on its own or stopped), whatever it left
//! behind in the group is killed too, as Nomad's executor destroys a task's cgroup, so a
//! restarted task never races an orphan of its previous run for a port or a file.

use crate::supervise::{recorded_exit, start_ticks, ProcessRecord};
use crate::{DriverError, ExitResult, TaskHandle, TaskUsage};
use async_trait::async_trait;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::process::Child;
use tracing::debug;

/// Set when the agent turned transparent huge pages off for itself (`src/main.rs`): the
/// setting is inherited across `fork` and `exec`, and tasks must run under the host's policy.
static RESTORE_THP: AtomicBool = AtomicBool::new(false);

/// Records that the agent process disabled transparent huge pages for itself (not inherited
/// from its parent), so that tasks it starts get them back.
pub fn agent_disabled_thp() {
    RESTORE_THP.store(true, Ordering::Relaxed);
}

/// Makes `cmd`'s process run under the host's transparent huge page policy again, when the
/// agent disabled it for itself.
pub(crate) fn restore_thp(cmd: &mut tokio::process::Command) {
    if RESTORE_THP.load(Ordering::Relaxed) {
        // SAFETY: the hook runs in the forked child before exec and only makes the prctl
        // system call, which is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0);
                Ok(())
            });
        }
    }
}

/// How the client learns that the group's leader ended.
enum Leader {
    /// This run of the client started it: its child.
    Child(Child),
    /// An earlier run started it: a pidfd, readable once it ends (None when the kernel has
    /// no pidfds: polled by PID and start time then).
    Adopted {
        pidfd: Option<AsyncFd<OwnedFd>>,
        start_ticks: u64,
    },
}

/// A running process that leads its own process group.
pub(crate) struct GroupProcess {
    leader: Leader,
    pid: u32,
    exited: Option<ExitResult>,
    /// Where the leader, a supervisor (`supervise.rs`), records the task's status; None for
    /// an unsupervised process.
    state_dir: Option<PathBuf>,
}

impl GroupProcess {
    /// Wraps a child spawned with `process_group(0)` (so its pid is its group id); with
    /// `state_dir`, the child is the supervisor of the task and records its status there.
    pub(crate) fn new(child: Child, state_dir: Option<PathBuf>) -> Self {
        let pid = child.id().unwrap_or(0);
        Self {
            leader: Leader::Child(child),
            pid,
            exited: None,
            state_dir,
        }
    }

    /// What finds this supervised process again after a client restart.
    pub(crate) fn process_record(&self) -> Option<ProcessRecord> {
        Some(ProcessRecord {
            pid: self.pid,
            start_ticks: start_ticks(self.pid)?,
            state_dir: self.state_dir.clone()?,
        })
    }

    /// Finds the supervised process of `record` again: alive, ended (with the status it
    /// recorded), or gone without a record.
    pub(crate) fn adopt(record: &ProcessRecord) -> Adopted {
        // The pidfd first: it pins the PID, so the start time read after is this process's.
        let pidfd = pidfd_open(record.pid);
        if start_ticks(record.pid) == Some(record.start_ticks) {
            let pidfd = pidfd.and_then(|fd| {
                // SAFETY: the AsyncFd owns the descriptor, which stays open as long as it.
                unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()
            });
            return Adopted::Running(Box::new(Self {
                leader: Leader::Adopted {
                    pidfd,
                    start_ticks: record.start_ticks,
                },
                pid: record.pid,
                exited: None,
                state_dir: Some(record.state_dir.clone()),
            }));
        }
        match recorded_exit(&record.state_dir) {
            Some(exit) => Adopted::Exited(exit),
            None => Adopted::Gone,
        }
    }

    fn kill_group(&self, signal: i32) {
        let Ok(pgid) = i32::try_from(self.pid) else {
            return;
        };
        if pgid <= 1 {
            return;
        }
        // SAFETY: kill(2) takes plain integers; a negative pid addresses the process group the
        // task leads (it was started with its own group, pgid > 1), never this agent's.
        let rc = unsafe { libc::kill(-pgid, signal) };
        if rc != 0 {
            debug!(pgid, signal, "process group already gone");
        }
    }

    /// Waits for the leader to end; how the task ended.
    async fn leader_exit(&mut self) -> ExitResult {
        match &mut self.leader {
            Leader::Child(child) => to_exit(child.wait().await),
            Leader::Adopted { pidfd, start_ticks } => {
                match pidfd {
                    Some(fd) => {
                        let _ = fd.readable().await;
                    }
                    None => {
                        while crate::supervise::start_ticks(self.pid) == Some(*start_ticks) {
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    }
                }
                // Not our child: its status is the one its supervisor recorded; without one
                // the supervisor was killed with the group (SIGKILL).
                self.state_dir
                    .as_deref()
                    .and_then(recorded_exit)
                    .unwrap_or(ExitResult {
                        signal: i64::from(libc::SIGKILL),
                        ..Default::default()
                    })
            }
        }
    }

    async fn reap(&mut self) -> ExitResult {
        let result = self.leader_exit().await;
        // The leader is gone; anything it left in its group goes too.
        self.kill_group(libc::SIGKILL);
        self.exited = Some(result);
        result
    }
}

/// A supervised process found again (`GroupProcess::adopt`).
pub(crate) enum Adopted {
    /// Still running.
    Running(Box<GroupProcess>),
    /// It ended this way.
    Exited(ExitResult),
    /// Gone, leaving no status.
    Gone,
}

impl Adopted {
    /// As a driver reports it, the running process being the task's handle.
    pub(crate) fn recovered(self) -> crate::Recovered {
        match self {
            Adopted::Running(p) => crate::Recovered::Running(p),
            Adopted::Exited(e) => crate::Recovered::Exited(e),
            Adopted::Gone => {
                crate::Recovered::Gone("the task's process is gone and left no exit status".into())
            }
        }
    }
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: pidfd_open takes a PID and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = libc::c_int::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the descriptor was just returned by the kernel and is owned by no one else.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Decodes a supervised task's record as the driver stored it.
pub(crate) fn parse_record(record: &serde_json::Value) -> Result<ProcessRecord, DriverError> {
    serde_json::from_value(record.clone())
        .map_err(|e| DriverError::InvalidConfig(format!("unreadable task record: {e}")))
}

/// One live process of a group: its PID and its `/proc/<pid>/stat` fields after `(comm)`
/// (state, ppid, pgrp, ..., utime as the 12th, stime as the 13th).
pub(crate) struct GroupMember {
    pub(crate) pid: u32,
    pub(crate) stat: Vec<String>,
}

/// The live (non-zombie) processes of process group `pgid`, from `/proc`.
pub(crate) fn group_members(pgid: u32) -> Vec<GroupMember> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let group = pgid.to_string();
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (_, rest) = stat.rsplit_once(')')?;
            let fields: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
            (fields.len() > 2 && fields[0] != "Z" && fields[2] == group)
                .then_some(GroupMember { pid, stat: fields })
        })
        .collect()
}

/// Memory and CPU time of every live process in process group `pgid`, from `/proc`; with
/// `supervised`, the group's leader (the supervisor, a copy of the agent) is not counted.
pub(crate) fn group_usage(pgid: u32, supervised: bool) -> TaskUsage {
    // SAFETY: sysconf has no preconditions.
    let ticks = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .unwrap_or(100)
        .max(1);
    let mut u = TaskUsage {
        memory_measured: vec!["RSS"],
        cpu_measured: true,
        ..Default::default()
    };
    for m in group_members(pgid) {
        if supervised && m.pid == pgid {
            continue;
        }
        let tick_ns = |i: usize| {
            m.stat
                .get(i)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
                * 1_000_000_000
                / ticks
        };
        u.user_ns += tick_ns(11);
        u.system_ns += tick_ns(12);
        let rss_kb = std::fs::read_to_string(format!("/proc/{}/status", m.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            })
            .unwrap_or(0);
        u.rss += rss_kb * 1024;
    }
    u
}

fn to_exit(status: std::io::Result<std::process::ExitStatus>) -> ExitResult {
    match status {
        Ok(s) => ExitResult {
            exit_code: i64::from(s.code().unwrap_or(0)),
            signal: i64::from(s.signal().unwrap_or(0)),
            oom_killed: false,
        },
        Err(_) => ExitResult {
            exit_code: -1,
            ..Default::default()
        },
    }
}

#[async_trait]
impl TaskHandle for GroupProcess {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn reattached(&self) -> bool {
        matches!(self.leader, Leader::Adopted { .. })
    }

    fn record(&self) -> Option<serde_json::Value> {
        serde_json::to_value(self.process_record()?).ok()
    }

    async fn wait(&mut self) -> ExitResult {
        match self.exited {
            Some(e) => e,
            None => self.reap().await,
        }
    }

    fn signal(&self, signal: i32) {
        if self.exited.is_none() {
            self.kill_group(signal);
        }
    }

    async fn usage(&self) -> TaskUsage {
        if self.exited.is_some() {
            return TaskUsage::default();
        }
        let pid = self.pid;
        let supervised = self.state_dir.is_some();
        tokio::task::spawn_blocking(move || group_usage(pid, supervised))
            .await
            .unwrap_or_default()
    }

    async fn stop(&mut self, signal: i32, timeout: Duration) -> ExitResult {
        if let Some(e) = self.exited {
            return e;
        }
        self.kill_group(signal);
        match tokio::time::timeout(timeout, self.leader_exit()).await {
            Ok(result) => {
                self.kill_group(libc::SIGKILL);
                self.exited = Some(result);
                result
            }
            Err(_) => {
                debug!(pid = self.pid, "task outlived its kill timeout; killing");
                self.kill_group(libc::SIGKILL);
                self.reap().await
            }
        }
    }
}

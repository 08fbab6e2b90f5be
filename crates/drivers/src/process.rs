//! A child process in its own process group, stopped by signalling the whole group.
//!
//! A task owns its group: when the leader exits (on its own or stopped), whatever it left
//! behind in the group is killed too, as Nomad's executor destroys a task's cgroup, so a
//! restarted task never races an orphan of its previous run for a port or a file.

use crate::{ExitResult, TaskHandle, TaskUsage};
use async_trait::async_trait;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
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

/// A running process that leads its own process group.
pub(crate) struct GroupProcess {
    child: Child,
    pid: u32,
    exited: Option<ExitResult>,
}

impl GroupProcess {
    /// Wraps a child spawned with `process_group(0)` (so its pid is its group id).
    pub(crate) fn new(child: Child) -> Self {
        let pid = child.id().unwrap_or(0);
        Self {
            child,
            pid,
            exited: None,
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

    async fn reap(&mut self) -> ExitResult {
        let result = to_exit(self.child.wait().await);
        // The leader is gone; anything it left in its group goes too.
        self.kill_group(libc::SIGKILL);
        self.exited = Some(result);
        result
    }
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

/// Memory and CPU time of every live process in process group `pgid`, from `/proc`.
pub(crate) fn group_usage(pgid: u32) -> TaskUsage {
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
        tokio::task::spawn_blocking(move || group_usage(pid))
            .await
            .unwrap_or_default()
    }

    async fn stop(&mut self, signal: i32, timeout: Duration) -> ExitResult {
        if let Some(e) = self.exited {
            return e;
        }
        self.kill_group(signal);
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => {
                let result = to_exit(status);
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

//! A child process in its own process group, stopped by signalling the whole group.

use crate::{ExitResult, TaskHandle};
use async_trait::async_trait;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;
use tokio::process::Child;

/// A running process that leads its own process group.
pub(crate) struct GroupProcess {
    child: Child,
    pid: u32,
    exited: Option<ExitResult>,
}

impl GroupProcess {
    pub(crate) fn new(child: Child) -> Self {
        let pid = child.id().unwrap_or(0);
        Self {
            child,
            pid,
            exited: None,
        }
    }

    fn kill_group(&self, signal: i32) {
        if self.pid == 0 {
            return;
        }
        let Ok(pgid) = i32::try_from(self.pid) else {
            return;
        };
        // SAFETY: kill(2) takes plain integers; a negative pid addresses the process group the
        // task leads (it was started with its own group), never this agent's.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
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
        if let Some(e) = self.exited {
            return e;
        }
        let e = to_exit(self.child.wait().await);
        self.exited = Some(e);
        e
    }

    fn signal(&self, signal: i32) {
        self.kill_group(signal);
    }

    async fn stop(&mut self, signal: i32, timeout: Duration) -> ExitResult {
        if let Some(e) = self.exited {
            // The leader is gone, but children in its group may linger.
            self.kill_group(libc::SIGKILL);
            return e;
        }
        self.kill_group(signal);
        let result = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => to_exit(status),
            Err(_) => {
                self.kill_group(libc::SIGKILL);
                to_exit(self.child.wait().await)
            }
        };
        // Whatever else the task started in its group goes too.
        self.kill_group(libc::SIGKILL);
        self.exited = Some(result);
        result
    }
}

//! The supervisor that lets a process task outlive the client agent (Nomad's executor, in
//! miniature): the process the client spawns forks the task, then stays as its parent to
//!
//! - wait for it and write its wait status to a file in the task's state directory, so that a
//!   client restarted after the task ended still learns how it ended;
//! - hold a read end of the task's output FIFOs open, so that while the client is away the
//!   task's writes fill the pipe (and wait) instead of killing it with SIGPIPE;
//! - end the way the task did (its exit code, or the same signal), which the client that
//!   started it reads as the task's own status.
//!
//! It leads the task's process group, ignores the signals the client sends the group (only
//! the task acts on them) and runs between fork and exec: only async-signal-safe system calls,
//! on paths prepared as C strings before the fork.
//!
//! A client that restarts finds the supervisor again by PID and start time (`ProcessRecord`)
//! and waits for it through a pidfd.

use crate::ExitResult;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The file in a task's state directory that holds its wait status once it ended.
pub(crate) const STATUS_FILE: &str = "exit-status";

/// Signals the supervisor ignores: the client signals the whole process group, and only the
/// task must act on them.
const IGNORED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGWINCH,
    libc::SIGPIPE,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// What the supervisor needs, prepared before the fork.
pub(crate) struct Supervision {
    status_path: CString,
    keep_open: Vec<CString>,
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path {} contains a NUL byte", p.display()),
        )
    })
}

impl Supervision {
    /// Supervision writing the status into `state_dir` (created, and cleared of an earlier
    /// run's status) and holding `keep_open` (the output FIFOs) open for reading.
    pub(crate) fn new(state_dir: &Path, keep_open: &[PathBuf]) -> io::Result<Self> {
        std::fs::create_dir_all(state_dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create the task state dir {}: {e}",
                    state_dir.display()
                ),
            )
        })?;
        let status = state_dir.join(STATUS_FILE);
        match std::fs::remove_file(&status) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Self {
            status_path: cstring(&status)?,
            keep_open: keep_open
                .iter()
                .map(|p| cstring(p))
                .collect::<io::Result<_>>()?,
        })
    }

    /// Becomes the supervisor of `child`: waits for it, records and mirrors how it ended.
    /// With `report_fd` (>= 0) the task's wait status comes from that pipe (the exec driver's
    /// init sends it), `child`'s own status when it sent none.
    ///
    /// # Safety
    /// Call only in a forked child (between fork and exec): it closes every other descriptor
    /// and ends the process with `_exit`.
    pub(crate) unsafe fn supervise(&self, child: libc::pid_t, report_fd: libc::c_int) -> ! {
        close_all_but(report_fd);
        for p in &self.keep_open {
            // Never read: only keeps a reader on the pipe while the client is away.
            libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK);
        }
        for &sig in IGNORED {
            libc::signal(sig, libc::SIG_IGN);
        }
        let mut child_status: libc::c_int = 0;
        while libc::waitpid(child, &mut child_status, 0) == -1 {
            if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                libc::_exit(127);
            }
        }
        let mut st = child_status;
        if report_fd >= 0 {
            let mut bytes = [0u8; 4];
            // Without a report, the child itself died (killed with the namespace): its status.
            if libc::read(report_fd, bytes.as_mut_ptr().cast(), bytes.len()) == 4 {
                st = libc::c_int::from_ne_bytes(bytes);
            }
        }
        self.record(st);
        exit_as(st)
    }

    /// Writes `st` in decimal to the status file (no allocation: a stack buffer).
    unsafe fn record(&self, st: libc::c_int) {
        let mut buf = [0u8; 16];
        let mut i = buf.len();
        let negative = st < 0;
        let mut n = i64::from(st).unsigned_abs();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if negative {
            i -= 1;
            buf[i] = b'-';
        }
        let fd = libc::open(
            self.status_path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o600,
        );
        if fd >= 0 {
            libc::write(fd, buf[i..].as_ptr().cast(), buf.len() - i);
            libc::close(fd);
        }
    }
}

/// Ends this process the way wait status `st` says its child ended.
unsafe fn exit_as(st: libc::c_int) -> ! {
    if libc::WIFEXITED(st) {
        libc::_exit(libc::WEXITSTATUS(st));
    }
    if libc::WIFSIGNALED(st) {
        let sig = libc::WTERMSIG(st);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
        libc::_exit(128 + sig);
    }
    libc::_exit(127)
}

/// Closes every descriptor but `keep` (none when negative); the spawn's error pipe goes too,
/// so that the spawn learns the outcome from the task's exec alone.
pub(crate) unsafe fn close_all_but(keep: libc::c_int) {
    if keep > 0 {
        libc::syscall(
            libc::SYS_close_range,
            0u32,
            (keep - 1) as libc::c_uint,
            0u32,
        );
    }
    libc::syscall(
        libc::SYS_close_range,
        (keep.max(-1) + 1) as libc::c_uint,
        u32::MAX,
        0u32,
    );
}

/// How a wait status reads as an exit.
pub(crate) fn exit_of(st: libc::c_int) -> ExitResult {
    if libc::WIFSIGNALED(st) {
        ExitResult {
            exit_code: 0,
            signal: i64::from(libc::WTERMSIG(st)),
            oom_killed: false,
        }
    } else {
        ExitResult {
            exit_code: i64::from(libc::WEXITSTATUS(st)),
            ..Default::default()
        }
    }
}

/// The status a supervisor recorded in `state_dir`, if it did (and it reads as one).
pub(crate) fn recorded_exit(state_dir: &Path) -> Option<ExitResult> {
    let text = std::fs::read_to_string(state_dir.join(STATUS_FILE)).ok()?;
    text.trim().parse::<libc::c_int>().ok().map(exit_of)
}

/// What finds a supervised task again after a client restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessRecord {
    /// The supervisor's PID (the task's process group).
    pub(crate) pid: u32,
    /// Its start time in clock ticks after boot (`/proc/<pid>/stat` field 22), which tells it
    /// from a later process that got the same PID.
    pub(crate) start_ticks: u64,
    /// The directory its status file goes to.
    pub(crate) state_dir: PathBuf,
}

/// The start time of process `pid` in clock ticks after boot, while it is alive (not a zombie).
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After `(comm)`: state is field 3, starttime field 22.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_read_as_exits() {
        // Exit code 3: status 3 << 8. Killed by SIGTERM: status 15.
        assert_eq!(exit_of(3 << 8).exit_code, 3);
        assert_eq!(exit_of(15).signal, 15);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(recorded_exit(dir.path()), None);
        std::fs::write(dir.path().join(STATUS_FILE), "768").unwrap();
        assert_eq!(recorded_exit(dir.path()).map(|e| e.exit_code), Some(3));
        std::fs::write(dir.path().join(STATUS_FILE), "garbage").unwrap();
        assert_eq!(recorded_exit(dir.path()), None);
    }

    #[test]
    fn the_start_time_tells_a_live_process() {
        let me = std::process::id();
        assert!(start_ticks(me).is_some());
        assert_eq!(start_ticks(me), start_ticks(me));
        assert_eq!(start_ticks(u32::MAX), None);
    }
}

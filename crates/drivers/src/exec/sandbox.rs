//! The isolation of an `exec` task: its chroot, prepared in the task directory before the fork,
//! and the namespaces, mounts and user change made between fork and exec.
//!
//! The process tree of a running task (host PIDs; the client sees the first):
//!
//! ```text
//! supervisor   host PID namespace; in the task's cgroup and process group; ignores the
//!   |          kill signals, records the task's status and exits the way the task did
//!   |          (`supervise.rs`)
//!   init       PID 1 of the task's new PID, mount, IPC and UTS namespaces, root: mounts the
//!   |          chroot, reaps orphans, reports the task's wait status to the supervisor
//!   task       PID 2, chrooted, as the task's user: what the job's `command` execs into
//! ```
//!
//! The task is not PID 1, so it gets default signal handling (an init without a handler
//! ignores SIGTERM/SIGINT); when init exits the kernel kills whatever is left in the namespace.
//!
//! Between fork and exec only async-signal-safe system calls run: every path and string is
//! prepared as a C string before the fork, the cgroup files opened before it too.

use crate::supervise::{close_all_but, Supervision};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Host directories the chroot shares, read-only (Nomad's default `chroot_env`, by mount).
const HOST_DIRS: &[&str] = &[
    "/bin", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/sbin", "/usr",
];
/// Device nodes the task gets (bound from the host's).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];
/// The capabilities an exec task may keep (Nomad's default set for `exec`, without
/// `sys_chroot`, which would let a root task leave its chroot): chown, dac_override, fowner,
/// fsetid, kill, setgid, setuid, setpcap, net_bind_service, mknod, audit_write, setfcap. Every
/// other one leaves the bounding set before exec, so not even a root task or a setuid binary
/// gets it back.
const KEPT_CAPS: &[libc::c_int] = &[0, 1, 3, 4, 5, 6, 7, 8, 10, 27, 29, 31];

/// One bind mount into the chroot.
struct Bind {
    source: CString,
    target: CString,
    read_only: bool,
}

/// Everything the forked side needs, prepared before the fork.
pub(crate) struct Plan {
    root: CString,
    binds: Vec<Bind>,
    proc_dir: CString,
    shm_dir: CString,
    work_dir: CString,
    uid: libc::uid_t,
    gid: libc::gid_t,
    cgroup_procs: Vec<File>,
    /// The supervisor's status file and output FIFOs.
    supervision: Supervision,
    /// The highest capability number this kernel knows.
    last_cap: libc::c_int,
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path {} contains a NUL byte", p.display()),
        )
    })
}

fn context(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The task's user: its uid and gid from the host's user database.
pub(crate) fn lookup_user(name: &str) -> io::Result<(libc::uid_t, libc::gid_t)> {
    let cname = CString::new(name).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "user name contains a NUL byte")
    })?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value for getpwnam_r to fill.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to live memory of the stated size; getpwnam_r writes the entry
    // into `pwd` and `buf` and sets `result` to `&pwd` or null.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    if result.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("user {name:?} does not exist on this client"),
        ));
    }
    Ok((pwd.pw_uid, pwd.pw_gid))
}

/// What a task directory needs to become the task's root.
pub(crate) struct Layout<'a> {
    /// The task directory: the chroot's `/`.
    pub task_dir: &'a Path,
    /// The allocation's shared directory, bound at `/alloc`.
    pub alloc_dir: &'a Path,
    /// The working directory inside the chroot (absolute).
    pub work_dir: &'a str,
    /// The task's user.
    pub uid: libc::uid_t,
    /// The task's group.
    pub gid: libc::gid_t,
}

impl Plan {
    /// Builds the chroot's skeleton in the task directory (mount points, symlinks, `/tmp`)
    /// and prepares the mounts; `cgroup_procs` are the task cgroup's open `cgroup.procs`.
    pub(crate) fn prepare(
        l: &Layout<'_>,
        cgroup_procs: Vec<File>,
        supervision: Supervision,
    ) -> io::Result<Plan> {
        use std::os::unix::fs::{chown, symlink, PermissionsExt};
        let root = l.task_dir;
        let mkdir = |p: &Path| {
            std::fs::create_dir_all(p).map_err(context(format!("cannot create {}", p.display())))
        };
        // What the agent changes as root (owners, modes, mount points) must be the task
        // directory's own entries, not symlinks an artifact left to lead elsewhere.
        for sub in [
            "", "local", "secrets", "tmp", "alloc", "dev", "proc", "dev/shm",
        ] {
            let p = root.join(sub);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is a symlink; the task directory must hold it itself",
                        p.display()
                    ),
                ));
            }
        }
        mkdir(root)?;
        // The task's user must be able to reach its own root.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
        let mut binds = Vec::new();
        for host in HOST_DIRS {
            let host = Path::new(host);
            let Ok(meta) = std::fs::symlink_metadata(host) else {
                continue;
            };
            let target = root.join(host.strip_prefix("/").unwrap_or(host));
            if meta.file_type().is_symlink() {
                // Merged /usr: `/bin -> usr/bin` becomes the same link inside.
                let link = std::fs::read_link(host)?;
                if std::fs::symlink_metadata(&target).is_err() {
                    symlink(&link, &target)
                        .map_err(context(format!("cannot create {}", target.display())))?;
                }
            } else if meta.is_dir() {
                mkdir(&target)?;
                binds.push(Bind {
                    source: cstring(host)?,
                    target: cstring(&target)?,
                    read_only: true,
                });
            }
        }
        let dev = root.join("dev");
        mkdir(&dev)?;
        for name in DEVICES {
            let host = Path::new("/dev").join(name);
            if !host.exists() {
                continue;
            }
            let target = dev.join(name);
            if !target.exists() {
                File::create(&target)
                    .map_err(context(format!("cannot create {}", target.display())))?;
            }
            binds.push(Bind {
                source: cstring(&host)?,
                target: cstring(&target)?,
                read_only: false,
            });
        }
        for (name, to) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            let p = dev.join(name);
            if std::fs::symlink_metadata(&p).is_err() {
                symlink(to, &p).map_err(context(format!("cannot create {}", p.display())))?;
            }
        }
        let shm = dev.join("shm");
        mkdir(&shm)?;
        let proc_dir = root.join("proc");
        mkdir(&proc_dir)?;
        let tmp = root.join("tmp");
        mkdir(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))?;
        let alloc = root.join("alloc");
        mkdir(&alloc)?;
        mkdir(l.alloc_dir)?;
        binds.push(Bind {
            source: cstring(l.alloc_dir)?,
            target: cstring(&alloc)?,
            read_only: false,
        });
        // The task writes its own directories; the group's shared data and tmp too.
        for sub in ["local", "secrets"] {
            let p = root.join(sub);
            mkdir(&p)?;
            chown(&p, Some(l.uid), Some(l.gid))
                .map_err(context(format!("cannot chown {}", p.display())))?;
        }
        for sub in ["data", "tmp"] {
            let p = l.alloc_dir.join(sub);
            if p.is_dir() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o1777))?;
            }
        }
        let work_dir = if l.work_dir.starts_with('/') {
            l.work_dir.to_string()
        } else {
            format!("/{}", l.work_dir)
        };
        Ok(Plan {
            root: cstring(root)?,
            binds,
            proc_dir: cstring(&proc_dir)?,
            shm_dir: cstring(&shm)?,
            work_dir: CString::new(work_dir).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "work_dir contains a NUL byte")
            })?,
            uid: l.uid,
            gid: l.gid,
            cgroup_procs,
            supervision,
            last_cap: std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(40),
        })
    }

    /// Runs in the child the spawn forked, before exec; returns only in the task's process
    /// (whose exec follows), the supervisor and init never return. An error returned here
    /// (or from init, or from the task's process before exec) reaches the spawning side as
    /// the spawn's error.
    ///
    /// # Safety
    /// Call only between fork and exec (`Command::pre_exec`): it forks, changes namespaces and
    /// the root, and ends processes with `_exit`.
    pub(crate) unsafe fn enter(&self) -> io::Result<()> {
        for f in &self.cgroup_procs {
            if libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        check(libc::unshare(
            libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS,
        ))?;
        let mut status_pipe = [0; 2];
        check(libc::pipe2(status_pipe.as_mut_ptr(), libc::O_CLOEXEC))?;
        match check(libc::fork())? {
            0 => {
                libc::close(status_pipe[0]);
                self.init(status_pipe[1])
            }
            init => self.supervision.supervise(init, status_pipe[0]),
        }
    }

    /// PID 1 of the new namespaces: mounts the chroot, starts the task, then reaps.
    unsafe fn init(&self, status: libc::c_int) -> io::Result<()> {
        let null = std::ptr::null::<libc::c_char>();
        // Nothing mounted here may reach the host's namespace.
        check(libc::mount(
            null,
            c"/".as_ptr(),
            null,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        for b in &self.binds {
            check(libc::mount(
                b.source.as_ptr(),
                b.target.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ))?;
            if b.read_only {
                check(libc::mount(
                    null,
                    b.target.as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    std::ptr::null(),
                ))?;
            }
        }
        // This namespace's processes only.
        check(libc::mount(
            c"proc".as_ptr(),
            self.proc_dir.as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ))?;
        check(libc::mount(
            c"shm".as_ptr(),
            self.shm_dir.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=1777,size=65536k".as_ptr().cast(),
        ))?;
        check(libc::chroot(self.root.as_ptr()))?;
        check(libc::chdir(c"/".as_ptr()))?;
        match check(libc::fork())? {
            0 => {
                libc::close(status);
                for cap in 0..=self.last_cap {
                    if !KEPT_CAPS.contains(&cap) {
                        check(libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0))?;
                    }
                }
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(self.gid))?;
                check(libc::setuid(self.uid))?;
                check(libc::chdir(self.work_dir.as_ptr()))?;
                Ok(())
            }
            task => reap(task, status),
        }
    }
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Init's loop: reaps every child; when the task ends, sends its wait status and exits
/// (which ends the namespace).
unsafe fn reap(task: libc::pid_t, status_fd: libc::c_int) -> ! {
    close_all_but(status_fd);
    loop {
        let mut st: libc::c_int = 0;
        let pid = libc::waitpid(-1, &mut st, 0);
        if pid == task {
            let bytes = st.to_ne_bytes();
            libc::write(status_fd, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(0);
        }
        if pid == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            libc::_exit(0);
        }
    }
}

//! One task's cgroup, on either cgroup version: limits written before the task starts, the
//! task joined to it from inside its fork, OOM kills counted, leftovers killed, removed after.
//!
//! Layout (Nomad's, under a `caravan` parent): v2 `<root>/caravan/<alloc>.<task>` with the
//! `cpu` and `memory` controllers enabled on the way down; v1 `<root>/<controller>/caravan/
//! <alloc>.<task>` for `memory`, `cpu` and (for usage figures) `cpuacct`.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The parent of every task cgroup.
const PARENT: &str = "caravan";

/// Which cgroup version the host runs, and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The unified hierarchy (`cgroup.controllers` at the root).
    V2(PathBuf),
    /// Per-controller hierarchies (`<root>/memory`, `<root>/cpu`, ...).
    V1(PathBuf),
}

/// Finds the usable cgroup version under `root` (normally `/sys/fs/cgroup`): v2 when the
/// unified hierarchy offers the memory and cpu controllers, else v1 when its memory controller
/// is mounted; none otherwise, with the reason.
pub(crate) fn detect(root: &Path) -> Result<Mode, String> {
    if let Ok(controllers) = std::fs::read_to_string(root.join("cgroup.controllers")) {
        let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
        return if has("memory") && has("cpu") {
            Ok(Mode::V2(root.to_path_buf()))
        } else {
            Err(format!(
                "cgroup v2 at {} lacks the memory or cpu controller (has: {})",
                root.display(),
                controllers.trim()
            ))
        };
    }
    if root.join("memory").join("memory.limit_in_bytes").exists() {
        return Ok(Mode::V1(root.to_path_buf()));
    }
    Err(format!(
        "no cgroup memory controller under {} (neither v2 nor v1)",
        root.display()
    ))
}

/// A task's limits, from its `resources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// CPU in MHz (Nomad's `cpu`), the task's share of the CPU under contention.
    pub cpu_mhz: u64,
    /// The hard memory limit in bytes (`memory_max`, or `memory` without it).
    pub memory_max: u64,
    /// The memory the task reserved, when `memory_max` lets it go beyond (a soft limit).
    pub memory_soft: Option<u64>,
}

impl Limits {
    /// Limits for `cpu` MHz, `memory_mb` and `memory_max_mb` (0: none).
    pub(crate) fn new(cpu: i64, memory_mb: i64, memory_max_mb: i64) -> Self {
        let mb = |v: i64| u64::try_from(v).unwrap_or(0).saturating_mul(1024 * 1024);
        let oversubscribed = memory_max_mb > memory_mb && memory_mb > 0;
        Self {
            cpu_mhz: u64::try_from(cpu).unwrap_or(0),
            memory_max: if oversubscribed {
                mb(memory_max_mb)
            } else {
                mb(memory_mb)
            },
            memory_soft: oversubscribed.then(|| mb(memory_mb)),
        }
    }

    /// cgroup v1 `cpu.shares`: the MHz, at least 2 (the kernel's minimum).
    fn cpu_shares(&self) -> u64 {
        self.cpu_mhz.clamp(2, 262_144)
    }

    /// cgroup v2 `cpu.weight` (1-10000), converted from shares the way runc and systemd do.
    fn cpu_weight(&self) -> u64 {
        1 + ((self.cpu_shares() - 2) * 9999) / 262_142
    }
}

/// One task's cgroup (one directory per controller on v1, one on v2).
#[derive(Debug)]
pub(crate) struct Cgroup {
    /// The directories the task joins; the first holds the memory controller.
    dirs: Vec<PathBuf>,
    v2: bool,
}

/// A cgroup directory name from the allocation and task (no `/`, as Nomad names them).
fn name(alloc_id: &str, task: &str) -> String {
    format!("{alloc_id}.{task}").replace(['/', '\0'], "_")
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    std::fs::write(dir.join(file), value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot write {value:?} to {}: {e}",
                dir.join(file).display()
            ),
        )
    })
}

impl Cgroup {
    /// The cgroup of `task` in `alloc_id` (as `create` makes it), without touching it: for a
    /// task a restarted client takes over.
    pub(crate) fn existing(mode: &Mode, alloc_id: &str, task: &str) -> Cgroup {
        let name = name(alloc_id, task);
        match mode {
            Mode::V2(root) => Cgroup {
                dirs: vec![root.join(PARENT).join(&name)],
                v2: true,
            },
            Mode::V1(root) => {
                let mut dirs = vec![root.join("memory").join(PARENT).join(&name)];
                for ctl in ["cpu", "cpuacct"] {
                    if root.join(ctl).is_dir() {
                        dirs.push(root.join(ctl).join(PARENT).join(&name));
                    }
                }
                Cgroup { dirs, v2: false }
            }
        }
    }

    /// Creates (or takes over, after killing what is left in it) the cgroup of `task` in
    /// `alloc_id` and writes its limits.
    pub(crate) fn create(
        mode: &Mode,
        alloc_id: &str,
        task: &str,
        limits: Limits,
    ) -> io::Result<Cgroup> {
        if let Mode::V2(root) = mode {
            let parent = root.join(PARENT);
            std::fs::create_dir_all(&parent)?;
            // Controllers must be enabled in every ancestor's subtree for the leaf to get
            // them (already enabled is not an error).
            for dir in [root.as_path(), parent.as_path()] {
                let _ = write(dir, "cgroup.subtree_control", "+cpu +memory");
            }
        }
        let cg = Self::existing(mode, alloc_id, task);
        for dir in &cg.dirs {
            if dir.is_dir() {
                // A previous run of this task left it (the agent died): empty it first.
                cg.kill_all();
            }
            std::fs::create_dir_all(dir)?;
        }
        cg.set_limits(limits)?;
        Ok(cg)
    }

    fn set_limits(&self, l: Limits) -> io::Result<()> {
        let mem = &self.dirs[0];
        if self.v2 {
            if l.memory_max > 0 {
                write(mem, "memory.max", &l.memory_max.to_string())?;
                if mem.join("memory.swap.max").exists() {
                    write(mem, "memory.swap.max", "0")?;
                }
            }
            if let Some(soft) = l.memory_soft {
                write(mem, "memory.low", &soft.to_string())?;
            }
            write(mem, "cpu.weight", &l.cpu_weight().to_string())?;
        } else {
            if l.memory_max > 0 {
                write(mem, "memory.limit_in_bytes", &l.memory_max.to_string())?;
                // With swap accounting, swap counts against the same limit (no swapping out
                // of trouble); written after the memory limit, which it may not be below.
                if mem.join("memory.memsw.limit_in_bytes").exists() {
                    write(
                        mem,
                        "memory.memsw.limit_in_bytes",
                        &l.memory_max.to_string(),
                    )?;
                }
            }
            if let Some(soft) = l.memory_soft {
                write(mem, "memory.soft_limit_in_bytes", &soft.to_string())?;
            }
            if let Some(cpu) = self.dirs.iter().find(|d| d.join("cpu.shares").exists()) {
                write(cpu, "cpu.shares", &l.cpu_shares().to_string())?;
            }
        }
        Ok(())
    }

    /// Opens each directory's `cgroup.procs` for writing, before the fork: the child joins by
    /// writing `0` (itself) to each, which needs no allocation.
    pub(crate) fn procs_files(&self) -> io::Result<Vec<File>> {
        self.dirs
            .iter()
            .map(|d| {
                OpenOptions::new()
                    .write(true)
                    .open(d.join("cgroup.procs"))
                    .map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("cannot open {}: {e}", d.join("cgroup.procs").display()),
                        )
                    })
            })
            .collect()
    }

    /// How many times the kernel's OOM killer killed a process of this cgroup.
    pub(crate) fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        std::fs::read_to_string(self.dirs[0].join(file))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Memory now and CPU time so far of everything in the cgroup.
    pub(crate) fn usage(&self) -> crate::TaskUsage {
        let read = |dir: &Path, file: &str| std::fs::read_to_string(dir.join(file)).ok();
        let number =
            |text: Option<String>| text.and_then(|t| t.trim().parse::<u64>().ok()).unwrap_or(0);
        let field = |text: &Option<String>, key: &str| {
            text.as_deref()
                .and_then(|t| {
                    t.lines().find_map(|l| {
                        let (k, v) = l.split_once(' ')?;
                        (k == key).then(|| v.trim().parse::<u64>().ok()).flatten()
                    })
                })
                .unwrap_or(0)
        };
        let mem = &self.dirs[0];
        let stat = read(mem, "memory.stat");
        let mut u = crate::TaskUsage {
            memory_measured: vec!["RSS", "Usage"],
            cpu_measured: true,
            ..Default::default()
        };
        if self.v2 {
            u.usage = number(read(mem, "memory.current"));
            u.rss = field(&stat, "anon");
            let cpu = read(mem, "cpu.stat");
            u.user_ns = field(&cpu, "user_usec") * 1000;
            u.system_ns = field(&cpu, "system_usec") * 1000;
        } else {
            u.usage = number(read(mem, "memory.usage_in_bytes"));
            u.rss = field(&stat, "total_rss").max(field(&stat, "rss"));
            match self
                .dirs
                .iter()
                .find(|d| d.join("cpuacct.usage_user").exists())
            {
                Some(acct) => {
                    u.user_ns = number(read(acct, "cpuacct.usage_user"));
                    u.system_ns = number(read(acct, "cpuacct.usage_sys"));
                }
                None => u.cpu_measured = false,
            }
        }
        u
    }

    /// The processes in the cgroup now.
    fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .dirs
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .filter(|p| *p > 1)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// SIGKILLs everything still in the cgroup, waiting (about 5 s at most) for it to be gone.
    pub(crate) fn kill_all(&self) {
        for _ in 0..1000 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                // SAFETY: kill(2) with plain integers; these are processes of the task's own
                // cgroup, never the agent (which never joins it).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Removes the directories (after `kill_all`); a failure is logged, not fatal.
    pub(crate) fn remove(&self) {
        for dir in &self.dirs {
            if let Err(e) = std::fs::remove_dir(dir) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::debug!(dir = %dir.display(), error = %e, "cannot remove cgroup");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_nomads_rules() {
        let plain = Limits::new(500, 256, 0);
        assert_eq!(plain.memory_max, 256 << 20);
        assert_eq!(plain.memory_soft, None);
        assert_eq!(plain.cpu_shares(), 500);
        let over = Limits::new(100, 256, 1024);
        assert_eq!(over.memory_max, 1024 << 20);
        assert_eq!(over.memory_soft, Some(256 << 20));
        // A memory_max below memory is no oversubscription.
        assert_eq!(Limits::new(100, 256, 128).memory_max, 256 << 20);
        // cpu.weight: shares 2 -> 1, 1024 -> 39 (runc's conversion), the top -> 10000.
        assert_eq!(Limits::new(0, 1, 0).cpu_weight(), 1);
        assert_eq!(Limits::new(1024, 1, 0).cpu_weight(), 39);
        assert_eq!(Limits::new(1 << 30, 1, 0).cpu_weight(), 10_000);
    }

    #[test]
    fn detects_the_version_and_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let err = detect(dir.path()).unwrap_err();
        assert!(err.contains("no cgroup memory controller"), "{err}");
        std::fs::write(dir.path().join("cgroup.controllers"), "hugetlb\n").unwrap();
        let err = detect(dir.path()).unwrap_err();
        assert!(err.contains("lacks the memory or cpu controller"), "{err}");
        std::fs::write(
            dir.path().join("cgroup.controllers"),
            "cpu io memory pids\n",
        )
        .unwrap();
        assert_eq!(detect(dir.path()), Ok(Mode::V2(dir.path().to_path_buf())));

        let v1 = tempfile::tempdir().unwrap();
        std::fs::create_dir(v1.path().join("memory")).unwrap();
        std::fs::write(v1.path().join("memory/memory.limit_in_bytes"), "0").unwrap();
        assert_eq!(detect(v1.path()), Ok(Mode::V1(v1.path().to_path_buf())));
    }

    #[test]
    fn writes_limits_on_v2() {
        let root = tempfile::tempdir().unwrap();
        let cg = Cgroup::create(
            &Mode::V2(root.path().to_path_buf()),
            "a1",
            "web/x",
            Limits::new(1024, 64, 128),
        )
        .unwrap();
        let dir = root.path().join("caravan/a1.web_x");
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), (128u64 << 20).to_string());
        assert_eq!(read("memory.low"), (64u64 << 20).to_string());
        assert_eq!(read("cpu.weight"), "39");
        for d in [root.path().to_path_buf(), root.path().join("caravan")] {
            assert_eq!(
                std::fs::read_to_string(d.join("cgroup.subtree_control")).unwrap(),
                "+cpu +memory"
            );
        }
        std::fs::write(dir.join("memory.events"), "low 0\noom 2\noom_kill 1\n").unwrap();
        assert_eq!(cg.oom_kills(), 1);
    }

    #[test]
    fn writes_limits_on_v1() {
        let root = tempfile::tempdir().unwrap();
        for ctl in ["memory", "cpu"] {
            std::fs::create_dir(root.path().join(ctl)).unwrap();
        }
        let mem = root.path().join("memory/caravan/a1.web");
        let cpu = root.path().join("cpu/caravan/a1.web");
        // The kernel makes these files; a fake tree needs them to exist to be found.
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::write(mem.join("memory.memsw.limit_in_bytes"), "").unwrap();
        std::fs::write(cpu.join("cpu.shares"), "").unwrap();
        let cg = Cgroup::create(
            &Mode::V1(root.path().to_path_buf()),
            "a1",
            "web",
            Limits::new(250, 32, 0),
        )
        .unwrap();
        let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(
            read(&mem, "memory.limit_in_bytes"),
            (32u64 << 20).to_string()
        );
        assert_eq!(
            read(&mem, "memory.memsw.limit_in_bytes"),
            (32u64 << 20).to_string()
        );
        assert_eq!(read(&cpu, "cpu.shares"), "250");
        assert!(!mem.join("memory.soft_limit_in_bytes").exists());
        std::fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 3);
    }
}

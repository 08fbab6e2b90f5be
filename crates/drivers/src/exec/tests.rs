//! The exec driver on the real kernel: namespaces, chroot, user, cgroup limits. These need
//! root and a cgroup memory controller (CI has both); elsewhere they say so and pass nothing.

use super::*;
use crate::suite::{obj, shell, spec, to_file};
use serde_json::{json, Map};

/// True when this machine can run exec tasks; otherwise prints why.
pub(crate) fn can_isolate() -> bool {
    match ExecDriver::new().mode {
        Ok(_) => true,
        Err(why) => {
            eprintln!("exec driver tests not run here: {why}");
            false
        }
    }
}

async fn run(s: &TaskSpec) -> (ExitResult, String) {
    let (out, path) = to_file(&s.task_dir, &format!("out-{}", s.alloc_id));
    let mut h = ExecDriver::new().start(s, out).await.unwrap();
    let res = h.wait().await;
    (res, std::fs::read_to_string(path).unwrap())
}

#[tokio::test]
async fn a_task_sees_only_its_own_processes_and_runs_as_nobody() {
    if !can_isolate() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A shell builtin loop: no extra process is started to list /proc.
    let s = spec(
        dir.path(),
        shell("id -u; id -gn; for p in /proc/[0-9]*; do echo pid ${p#/proc/}; done; hostname"),
    );
    let (res, out) = run(&s).await;
    assert!(res.successful(), "{res:?}: {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "65534", "{out}");
    assert_eq!(lines[1], "nogroup", "{out}");
    // init is 1, the shell 2; `id` and `hostname` ran and were reaped before the loop.
    let pids: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("pid "))
        .collect();
    assert_eq!(pids, ["1", "2"], "{out}");

    // `user` picks another account; even root keeps only the exec capability set (no
    // sys_chroot, sys_admin...), in the bounding set and so in what it runs.
    let mut s = spec(
        dir.path(),
        shell("id -u; grep -E '^Cap(Bnd|Eff)' /proc/self/status; /usr/sbin/chroot / /bin/true 2>/dev/null && echo chroot-allowed || echo chroot-refused"),
    );
    s.user = "root".into();
    let (res, out) = run(&s).await;
    assert!(res.successful(), "{res:?}: {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0");
    assert_eq!(lines[1], "CapEff:\t00000000a80005fb", "{out}");
    assert_eq!(lines[2], "CapBnd:\t00000000a80005fb", "{out}");
    assert_eq!(lines[3], "chroot-refused", "{out}");
}

#[tokio::test]
async fn the_task_directory_is_its_root_and_the_host_is_read_only() {
    if !can_isolate() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let task_dir = dir.path().join("web");
    let alloc_dir = dir.path().join("alloc");
    std::fs::create_dir_all(alloc_dir.join("data")).unwrap();
    std::fs::write(alloc_dir.join("data/shared.txt"), "from the group").unwrap();
    // A file on the host's /tmp the task must not see (its /tmp is its own).
    let host_file = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    let host_name = host_file
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let mut s = spec(
        &task_dir,
        shell(&format!(
            "pwd; echo written > /local/out.txt; cat /alloc/data/shared.txt; echo; \
             touch /usr/caravan-probe 2>/dev/null && echo usr-writable || echo usr-read-only; \
             [ -e /tmp/{host_name} ] && echo host-tmp-visible || echo host-tmp-hidden; \
             echo scratch > /tmp/x && echo tmp-writable; \
             cat /etc/hostname >/dev/null && echo etc-readable"
        )),
    );
    s.alloc_dir = alloc_dir;
    std::fs::create_dir_all(&task_dir).unwrap();
    let (res, out) = run(&s).await;
    assert!(res.successful(), "{res:?}: {out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "/",
            "from the group",
            "usr-read-only",
            "host-tmp-hidden",
            "tmp-writable",
            "etc-readable"
        ],
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/out.txt")).unwrap(),
        "written\n"
    );
    assert!(!Path::new("/usr/caravan-probe").exists());

    // `work_dir` is inside the chroot.
    s.config = shell("pwd");
    s.config.insert("work_dir".into(), json!("/local"));
    let (res, out) = run(&s).await;
    assert!(res.successful(), "{res:?}");
    assert_eq!(out.trim(), "/local");
}

#[tokio::test]
async fn a_task_past_its_memory_limit_is_oom_killed() {
    if !can_isolate() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The shell keeps a command substitution's whole output in memory: 200 MB against 32.
    let mut s = spec(
        dir.path(),
        shell("a=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived"),
    );
    s.resources.memory_mb = 32;
    let (res, out) = run(&s).await;
    assert_eq!(res.signal, i64::from(libc::SIGKILL), "{res:?}: {out}");
    assert!(res.oom_killed, "{res:?}");
    assert!(!out.contains("survived"));

    // Within its limit the same kind of task runs to the end, not OOM-killed.
    let mut s = spec(
        dir.path(),
        shell("a=$(head -c 2000000 /dev/zero | tr '\\0' x); echo survived"),
    );
    s.resources.memory_mb = 32;
    let (res, out) = run(&s).await;
    assert!(res.successful() && !res.oom_killed, "{res:?}");
    assert_eq!(out.trim(), "survived");
}

#[tokio::test]
async fn the_cgroup_holds_the_limits_and_is_removed_after() {
    if !can_isolate() {
        return;
    }
    let Ok(mode) = ExecDriver::new().mode else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (out, path) = to_file(dir.path(), "o");
    let mut s = spec(dir.path(), shell("echo started; sleep 100"));
    s.resources = crate::TaskResources {
        cpu_mhz: 700,
        memory_mb: 64,
        memory_max_mb: 0,
    };
    let d = ExecDriver::new();
    let mut h = d.start(&s, out).await.unwrap();
    crate::suite::poll_until("the task to start", || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .contains("started")
    })
    .await;
    let cg_dir = match &mode {
        Mode::V2(root) => root.join("caravan").join(format!("{}.t", s.alloc_id)),
        Mode::V1(root) => root
            .join("memory/caravan")
            .join(format!("{}.t", s.alloc_id)),
    };
    let limit_file = match &mode {
        Mode::V2(_) => "memory.max",
        Mode::V1(_) => "memory.limit_in_bytes",
    };
    let limit = std::fs::read_to_string(cg_dir.join(limit_file)).unwrap();
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    let procs = std::fs::read_to_string(cg_dir.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().count() >= 3,
        "supervisor, init, task: {procs}"
    );
    let u = h.usage().await;
    assert!(u.usage > 0 && u.rss > 0, "{u:?}");
    assert!(u.cpu_measured);
    let res = h.stop(libc::SIGTERM, Duration::from_secs(10)).await;
    assert_eq!(res.signal, i64::from(libc::SIGTERM), "{res:?}");
    assert!(!cg_dir.exists(), "{} left behind", cg_dir.display());
}

#[tokio::test]
async fn bad_tasks_fail_to_start_with_the_reason() {
    if !can_isolate() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = ExecDriver::new();
    let start = |config: Map<String, Value>, user: &str| {
        let mut s = spec(dir.path(), config);
        s.user = user.into();
        s
    };
    // A task directory whose `local` is a symlink (an artifact could leave one) is refused
    // before anything is changed through it.
    let linked = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(target.path(), linked.path().join("local")).unwrap();
    let (out, _) = to_file(linked.path(), "o");
    let err = d
        .start(&spec(linked.path(), shell("true")), out)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("is a symlink"), "{err}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(target.path()).unwrap().uid(), 0);
    for (s, want) in [
        (
            start(obj(json!({"command": "/no/such/binary"})), ""),
            "No such file or directory",
        ),
        (start(shell("true"), "no-such-user-here"), "does not exist"),
        (
            start(obj(json!({"args": ["x"]})), ""),
            "missing \"command\"",
        ),
    ] {
        let (out, _) = to_file(dir.path(), "o");
        let err = d.start(&s, out).await.err().unwrap().to_string();
        assert!(err.contains(want), "{err}");
    }
}

//! The conformance suite every driver passes: exit codes, captured output, stop honouring the
//! kill signal, and stop leaving nothing of the task's process group behind.

use crate::{Driver, MockDriver, RawExecDriver, Recovered, TaskOutput, TaskResources, TaskSpec};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// What a suite task should do; each driver translates it into its own config.
pub(crate) enum Behaviour {
    /// Exit at once with this code.
    Exit(i64),
    /// Print this text (no newline) and exit 0.
    Print(&'static str),
    /// Run for a long time with at least one more process in its group than the leader.
    RunLong,
    /// Print `ready\n`, then on SIGTERM print `received SIGTERM` and exit 0.
    TrapTerm,
    /// Exit after a second with this code.
    ExitLater(i64),
}

pub(crate) fn spec(dir: &Path, config: Map<String, Value>) -> TaskSpec {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    TaskSpec {
        // Unique per task started: isolating drivers name cgroups after it.
        alloc_id: format!("suite-{}-{n}", std::process::id()),
        task_name: "t".into(),
        config,
        env: BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]),
        task_dir: dir.to_path_buf(),
        alloc_dir: dir.join("alloc"),
        user: String::new(),
        resources: TaskResources::default(),
        ports: Vec::new(),
        state_dir: dir.join(format!(".state-{n}")),
    }
}

/// Output to a fresh file; stderr discarded.
pub(crate) fn to_file(dir: &Path, name: &str) -> (TaskOutput, PathBuf) {
    let path = dir.join(name);
    let f = std::fs::File::create(&path).unwrap();
    let out = TaskOutput {
        stdout: f.into(),
        stderr: TaskOutput::discard().unwrap().stderr,
        fifos: Vec::new(),
    };
    (out, path)
}

/// Live (non-zombie) processes whose process group is `pgid`.
pub(crate) fn group_members(pgid: u32) -> Vec<u32> {
    crate::process::group_members(pgid)
        .into_iter()
        .map(|m| m.pid)
        .collect()
}

pub(crate) async fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What kind of task a driver runs, which decides what it can report.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignalReport {
    /// A process: its pid from the start, a death by signal reported as the signal.
    Signal,
    /// A container: a pid only while it runs (one that exits at once may have none), a death
    /// by signal as exit code 128 + the signal (the engine reports only a code).
    ExitCode,
}

/// Runs every conformance check against the driver `factory` makes; `config` translates a
/// behaviour into that driver's task config.
pub(crate) async fn conformance(
    factory: impl Fn() -> Box<dyn Driver>,
    config: impl Fn(Behaviour) -> Map<String, Value>,
    report: SignalReport,
) {
    let driver = factory();
    let name = driver.name();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    // Exit codes come back from wait, and wait can be asked again.
    for code in [0, 3] {
        let (out, _) = to_file(dir, "exit");
        let mut h = driver
            .start(&spec(dir, config(Behaviour::Exit(code))), out)
            .await
            .unwrap();
        if report == SignalReport::Signal {
            assert!(h.pid() > 0, "{name}: no pid");
        }
        assert_eq!(h.wait().await.exit_code, code, "{name}");
        assert_eq!(h.wait().await.exit_code, code, "{name}: second wait");
    }

    // Output reaches the sink the client gave.
    let (out, path) = to_file(dir, "print");
    let mut h = driver
        .start(&spec(dir, config(Behaviour::Print("hello"))), out)
        .await
        .unwrap();
    assert!(h.wait().await.successful(), "{name}");
    assert_eq!(std::fs::read_to_string(path).unwrap(), "hello", "{name}");

    // Stop sends the kill signal (not SIGKILL) to the whole group, and nothing survives.
    let (out, _) = to_file(dir, "long");
    let mut h = driver
        .start(&spec(dir, config(Behaviour::RunLong)), out)
        .await
        .unwrap();
    let pgid = h.pid();
    assert!(pgid > 0, "{name}: a running task has a pid");
    poll_until("a second process in the task's group", || {
        group_members(pgid).len() >= 2
    })
    .await;
    let res = h.stop(libc::SIGHUP, Duration::from_secs(30)).await;
    let died_of_hup = match report {
        SignalReport::Signal => res.signal == i64::from(libc::SIGHUP),
        SignalReport::ExitCode => res.exit_code == 128 + i64::from(libc::SIGHUP),
    };
    assert!(died_of_hup, "{name}: died of {res:?}");
    poll_until("the task's group to be empty", || {
        group_members(pgid).is_empty()
    })
    .await;
    assert_eq!(h.wait().await, res, "{name}: wait after stop");

    // A task that handles its kill signal exits cleanly, in its own time.
    let (out, path) = to_file(dir, "trap");
    let mut h = driver
        .start(&spec(dir, config(Behaviour::TrapTerm)), out)
        .await
        .unwrap();
    let pgid = h.pid();
    poll_until("the task to set its trap", || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .contains("ready")
    })
    .await;
    let res = h.stop(libc::SIGTERM, Duration::from_secs(30)).await;
    assert!(res.successful(), "{name}: {res:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("received SIGTERM"), "{name}: {text:?}");
    poll_until("the task's group to be empty", || {
        group_members(pgid).is_empty()
    })
    .await;
}

/// The checks for drivers whose tasks outlive the client: a task is found again from its
/// handle's record (running: controlled as before; ended while away: how it ended), and a
/// record of nothing, or not a record, says so.
pub(crate) async fn recovery(
    driver: &dyn Driver,
    config: impl Fn(Behaviour) -> Map<String, Value>,
    report: SignalReport,
) {
    let name = driver.name();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    // Running: the same task, signalled and stopped through the new handle.
    let s = spec(dir, config(Behaviour::TrapTerm));
    let (out, path) = to_file(dir, "recover-running");
    let h = driver.start(&s, out).await.unwrap();
    let pid = h.pid();
    let record = h.record().expect("a record of the running task");
    poll_until("the task to set its trap", || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .contains("ready")
    })
    .await;
    // The client goes away: its handle is dropped, the task is left running.
    drop(h);
    let (out, after) = to_file(dir, "recover-running-after");
    let mut h = match driver.recover(&s, &record, out).await.unwrap() {
        Recovered::Running(h) => h,
        other => panic!("{name}: {other:?}"),
    };
    assert!(h.reattached(), "{name}");
    if report == SignalReport::Signal {
        assert_eq!(h.pid(), pid, "{name}: the same process");
    }
    let res = h.stop(libc::SIGTERM, Duration::from_secs(30)).await;
    assert!(res.successful(), "{name}: {res:?}");
    // A process keeps writing where it did; a container's output from now on goes to the
    // sink the recovery gave.
    let text = std::fs::read_to_string(&path).unwrap() + &std::fs::read_to_string(&after).unwrap();
    assert!(text.contains("received SIGTERM"), "{name}: {text:?}");

    // Ended while the client was away: its exit code.
    let s = spec(dir, config(Behaviour::ExitLater(7)));
    let (out, _) = to_file(dir, "recover-ended");
    let h = driver.start(&s, out).await.unwrap();
    let record = h.record().expect("a record");
    drop(h);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (out, _) = to_file(dir, "recover-ended-after");
    match driver.recover(&s, &record, out).await.unwrap() {
        Recovered::Exited(e) => assert_eq!(e.exit_code, 7, "{name}: {e:?}"),
        other => panic!("{name}: {other:?}"),
    }
    // Not a record at all: an error, not a guess.
    let (out, _) = to_file(dir, "recover-garbage");
    let garbage = json!({"pid": "twelve", "container": 12});
    assert!(driver.recover(&s, &garbage, out).await.is_err(), "{name}");
}

pub(crate) fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

pub(crate) fn shell(script: &str) -> Map<String, Value> {
    obj(json!({"command": "/bin/sh", "args": ["-c", script]}))
}

/// The suite's behaviours as `/bin/sh` scripts, for the drivers that run commands.
fn shell_behaviour(b: Behaviour) -> Map<String, Value> {
    match b {
        Behaviour::Exit(c) => shell(&format!("exit {c}")),
        Behaviour::Print(t) => shell(&format!("printf {t}")),
        Behaviour::RunLong => shell("sleep 100 & sleep 100"),
        Behaviour::TrapTerm => shell(
            "trap 'echo received SIGTERM; exit 0' TERM; echo ready; \
             while true; do sleep 0.05; done",
        ),
        Behaviour::ExitLater(c) => shell(&format!("sleep 1; exit {c}")),
    }
}

#[tokio::test]
async fn raw_exec_passes_the_suite() {
    conformance(
        || Box::new(RawExecDriver::new(true)),
        shell_behaviour,
        SignalReport::Signal,
    )
    .await;
}

#[tokio::test]
async fn raw_exec_tasks_are_found_again_after_a_client_restart() {
    recovery(
        &RawExecDriver::new(true),
        shell_behaviour,
        SignalReport::Signal,
    )
    .await;
    // A record of a process that is gone and left no status.
    let dir = tempfile::tempdir().unwrap();
    let gone = json!({"pid": u32::MAX - 1, "start_ticks": 1, "state_dir": dir.path()});
    let s = spec(dir.path(), shell_behaviour(Behaviour::Exit(0)));
    let found = RawExecDriver::new(true)
        .recover(&s, &gone, TaskOutput::discard().unwrap())
        .await
        .unwrap();
    assert!(matches!(found, Recovered::Gone(_)), "{found:?}");
}

#[tokio::test]
async fn a_supervised_task_writing_to_a_fifo_waits_for_a_new_reader() {
    // The client's log pipes are FIFOs; while no client reads them, the supervisor's reader
    // keeps the task from dying of SIGPIPE, and nothing written meanwhile is lost.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let out = TaskOutput {
        stdout: writer.into(),
        stderr: TaskOutput::discard().unwrap().stderr,
        fifos: vec![fifo.clone()],
    };
    let s = spec(
        dir.path(),
        shell("i=0; while [ $i -lt 40 ]; do echo line$i; i=$((i+1)); sleep 0.02; done"),
    );
    let mut h = RawExecDriver::new(true).start(&s, out).await.unwrap();
    // The reader goes away at once; the task writes on.
    drop(reader);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = std::fs::File::open(&fifo).unwrap();
    let exit = h.wait().await;
    assert!(exit.successful(), "{exit:?}");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut again, &mut text).unwrap();
    let expected: String = (0..40).map(|i| format!("line{i}\n")).collect();
    assert_eq!(text, expected);
}

#[tokio::test]
async fn exec_passes_the_suite() {
    if !crate::exec::tests::can_isolate() {
        return;
    }
    conformance(
        || Box::new(crate::ExecDriver::new()),
        shell_behaviour,
        SignalReport::Signal,
    )
    .await;
}

#[tokio::test]
async fn exec_tasks_are_found_again_after_a_client_restart() {
    if !crate::exec::tests::can_isolate() {
        return;
    }
    recovery(
        &crate::ExecDriver::new(),
        shell_behaviour,
        SignalReport::Signal,
    )
    .await;
}

#[tokio::test]
async fn mock_passes_the_suite() {
    conformance(
        || Box::new(MockDriver),
        |b| match b {
            Behaviour::Exit(c) => obj(json!({"exit_code": c})),
            Behaviour::Print(t) => obj(json!({"stdout_string": t})),
            Behaviour::RunLong => obj(json!({"run_for": "100s"})),
            Behaviour::TrapTerm => {
                obj(json!({"run_for": "100s", "kill_after": "0s", "stdout_string": "ready\n"}))
            }
            Behaviour::ExitLater(c) => obj(json!({"run_for": "1s", "exit_code": c})),
        },
        SignalReport::Signal,
    )
    .await;
}

#[tokio::test]
async fn raw_exec_uses_task_dir_work_dir_and_the_given_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let d = RawExecDriver::new(true);
    let mut s = spec(
        dir.path(),
        shell("pwd; echo $GREETING; echo ${HOME:-unset}"),
    );
    s.env.insert("GREETING".into(), "hi there".into());
    let (out, path) = to_file(dir.path(), "o1");
    assert!(d.start(&s, out).await.unwrap().wait().await.successful());
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let canonical = dir.path().canonicalize().unwrap();
    assert_eq!(lines[0], canonical.display().to_string());
    // Only the env the client computed: nothing leaks in from the agent.
    assert_eq!(lines[1..], ["hi there", "unset"]);

    s.config.insert("work_dir".into(), json!("sub"));
    let (out, path) = to_file(dir.path(), "o2");
    assert!(d.start(&s, out).await.unwrap().wait().await.successful());
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        canonical.join("sub").display().to_string()
    );

    // `denied_envvars` keeps names (or `PREFIX*`) out; a valid `oom_score_adj` is accepted.
    s.config.insert("denied_envvars".into(), json!(["GREET*"]));
    s.config.insert("oom_score_adj".into(), json!(500));
    s.config
        .insert("args".into(), json!(["-c", "echo ${GREETING:-gone}"]));
    let (out, path) = to_file(dir.path(), "o3");
    assert!(d.start(&s, out).await.unwrap().wait().await.successful());
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(text.lines().next(), Some("gone"));
}

#[tokio::test]
async fn a_task_exiting_takes_its_leftovers_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (out, path) = to_file(dir.path(), "o");
    let mut h = RawExecDriver::new(true)
        .start(&spec(dir.path(), shell("sleep 100 & echo $!; exit 4")), out)
        .await
        .unwrap();
    let pgid = h.pid();
    assert_eq!(h.wait().await.exit_code, 4);
    let orphan: u32 = std::fs::read_to_string(&path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(orphan > 0);
    poll_until("the orphan to be killed", || group_members(pgid).is_empty()).await;
}

#[tokio::test]
async fn start_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = to_file(dir.path(), "o");
    let err = RawExecDriver::new(false)
        .start(&spec(dir.path(), shell("true")), out)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("not enabled"), "{err}");
    for (config, want) in [
        (
            json!({"command": "/bin/true", "args": "x"}),
            "\"args\" must be a list",
        ),
        (json!({"args": ["x"]}), "missing \"command\""),
        (
            json!({"command": "/no/such/binary"}),
            "failed to start task",
        ),
    ] {
        let (out, _) = to_file(dir.path(), "o");
        let err = RawExecDriver::new(true)
            .start(&spec(dir.path(), obj(config)), out)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains(want), "{err}");
    }
    let (out, _) = to_file(dir.path(), "o");
    let err = MockDriver
        .start(&spec(dir.path(), obj(json!({"start_error": "boom"}))), out)
        .await
        .err()
        .unwrap();
    assert_eq!(err.to_string(), "failed to start task: boom");
}

#[tokio::test]
async fn tasks_run_under_the_hosts_huge_page_policy() {
    // The agent turns transparent huge pages off for itself (src/main.rs); the setting is
    // inherited across exec, so a task would run without them unless the driver restores it.
    let thp_of_task = |name: &'static str| async move {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), shell("grep THP_enabled /proc/self/status"));
        let (out, path) = to_file(dir.path(), name);
        let d = RawExecDriver::new(true);
        assert!(d.start(&s, out).await.unwrap().wait().await.successful());
        std::fs::read_to_string(path)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .map(str::to_string)
    };
    // SAFETY: prctl(PR_SET_THP_DISABLE) changes only this test process's memory policy.
    let disabled = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    assert_eq!(disabled, 0);
    assert_eq!(thp_of_task("inherited").await.as_deref(), Some("0"));
    crate::agent_disabled_thp();
    assert_eq!(thp_of_task("restored").await.as_deref(), Some("1"));
}

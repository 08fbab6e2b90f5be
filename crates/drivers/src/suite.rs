//! The conformance suite every driver passes: exit codes, captured output, and stop killing the
//! whole process group.

use crate::{Driver, MockDriver, RawExecDriver, TaskOutput, TaskSpec};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a test task should do, translated into each driver's config.
enum Behaviour {
    Exit(i64),
    Print(&'static str),
    RunLong,
}

fn spec(dir: &std::path::Path, config: Map<String, Value>) -> TaskSpec {
    TaskSpec {
        alloc_id: "alloc-1".into(),
        task_name: "t".into(),
        config,
        env: BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]),
        task_dir: dir.to_path_buf(),
    }
}

fn files(dir: &std::path::Path) -> (TaskOutput, std::path::PathBuf) {
    let out = dir.join("stdout");
    let f = std::fs::File::create(&out).unwrap();
    (
        TaskOutput {
            stdout: f.into(),
            stderr: std::process::Stdio::null(),
        },
        out,
    )
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

async fn run_suite(driver: &dyn Driver, config: impl Fn(Behaviour) -> Map<String, Value>) {
    let dir = tempfile::tempdir().unwrap();
    // Exit codes.
    for code in [0, 3] {
        let (out, _) = files(dir.path());
        let mut h = driver
            .start(&spec(dir.path(), config(Behaviour::Exit(code))), out)
            .await
            .unwrap();
        assert_eq!(h.wait().await.exit_code, code, "{}", driver.name());
    }
    // Output is captured.
    let (out, path) = files(dir.path());
    let mut h = driver
        .start(&spec(dir.path(), config(Behaviour::Print("hello"))), out)
        .await
        .unwrap();
    assert!(h.wait().await.successful());
    assert_eq!(std::fs::read_to_string(path).unwrap(), "hello");
    // Stop ends a long task, well before it would finish.
    let (out, _) = files(dir.path());
    let mut h = driver
        .start(&spec(dir.path(), config(Behaviour::RunLong)), out)
        .await
        .unwrap();
    let pid = h.pid() as i32;
    let res = tokio::time::timeout(
        Duration::from_secs(20),
        h.stop(libc::SIGTERM, Duration::from_secs(5)),
    )
    .await
    .expect("stop finishes");
    assert!(!res.successful());
    assert!(!pid_alive(pid));
}

fn raw(cmd: &str) -> Map<String, Value> {
    let v = json!({"command": "/bin/sh", "args": ["-c", cmd]});
    v.as_object().cloned().unwrap()
}

#[tokio::test]
async fn raw_exec_passes_the_suite() {
    let d = RawExecDriver::new(true);
    run_suite(&d, |b| match b {
        Behaviour::Exit(c) => raw(&format!("exit {c}")),
        Behaviour::Print(t) => raw(&format!("printf {t}")),
        Behaviour::RunLong => raw("sleep 100"),
    })
    .await;
}

#[tokio::test]
async fn mock_passes_the_suite() {
    run_suite(&MockDriver, |b| {
        let v = match b {
            Behaviour::Exit(c) => json!({"exit_code": c}),
            Behaviour::Print(t) => json!({"stdout_string": t}),
            Behaviour::RunLong => json!({"run_for": "100s"}),
        };
        v.as_object().cloned().unwrap()
    })
    .await;
}

#[tokio::test]
async fn stop_kills_grandchildren_and_honours_the_kill_signal() {
    let dir = tempfile::tempdir().unwrap();
    let d = RawExecDriver::new(true);
    // A grandchild in the background: stop must take the whole group.
    let (out, path) = files(dir.path());
    let mut h = d
        .start(&spec(dir.path(), raw("sleep 100 & echo $!; wait")), out)
        .await
        .unwrap();
    let grandchild = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if let Ok(pid) = text.trim().parse::<i32>() {
                break pid;
            }
            assert!(tokio::time::Instant::now() < deadline, "no grandchild pid");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert!(pid_alive(grandchild));
    h.stop(libc::SIGINT, Duration::from_secs(5)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while pid_alive(grandchild) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!pid_alive(grandchild), "grandchild survived stop");

    // A trap on SIGTERM: the task sees the signal and exits cleanly before the timeout.
    let (out, path) = files(dir.path());
    let mut h = d
        .start(
            &spec(dir.path(), raw("trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.05; done")),
            out,
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&path)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let res = h.stop(libc::SIGTERM, Duration::from_secs(10)).await;
    assert_eq!(res.exit_code, 0, "{res:?}");
    assert!(std::fs::read_to_string(&path).unwrap().contains("got-term"));
}

#[tokio::test]
async fn disabled_raw_exec_refuses_and_bad_config_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = files(dir.path());
    assert!(RawExecDriver::new(false)
        .start(&spec(dir.path(), raw("true")), out)
        .await
        .is_err());
    let (out, _) = files(dir.path());
    let bad = json!({"command": "/bin/true", "args": "not-a-list"})
        .as_object()
        .cloned()
        .unwrap();
    let err = RawExecDriver::new(true)
        .start(&spec(dir.path(), bad), out)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("\"args\" must be a list"));
}

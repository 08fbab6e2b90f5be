//! Client tests against an in-memory fake of the servers: real processes through `raw_exec`
//! and `mock`, status and events as the servers would receive them.

mod control;
mod driver_health;
mod fake;
mod lifecycle;
mod prepare;
mod restore;

use crate::{Client, ClientConfig, ClientHandle};
use fake::Fake;
use rpc::AllocClientUpdate;
use std::sync::Arc;
use std::time::Duration;
use structs::*;
use tokio_util::sync::CancellationToken;

/// Polls `f` until it returns something, failing after a generous deadline.
async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn shell_task(name: &str, script: &str) -> Task {
    let mut task = mock::job("j", 1).task_groups[0].tasks[0].clone();
    task.name = name.into();
    task.driver = "raw_exec".into();
    task.kill_timeout = 5_000_000_000;
    task.config = serde_json::json!({"command": "/bin/sh", "args": ["-c", script]})
        .as_object()
        .cloned()
        .unwrap();
    task
}

fn alloc_of(
    id: &str,
    job_type: &str,
    tasks: Vec<Task>,
    restart: Option<RestartPolicy>,
) -> Allocation {
    let mut job = mock::job("j", 1);
    job.job_type = job_type.into();
    let group = &mut job.task_groups[0];
    group.restart_policy = restart.or(group.restart_policy.take());
    group.tasks = tasks;
    Allocation {
        id: id.into(),
        namespace: "default".into(),
        name: "j.web[0]".into(),
        job_id: "j".into(),
        task_group: group.name.clone(),
        desired_status: "run".into(),
        client_status: "pending".into(),
        job: Some(Arc::new(job)),
        ..Default::default()
    }
}

/// An allocation of job `j`, group `web`, one raw_exec task `web` running `script`.
fn alloc(id: &str, job_type: &str, script: &str, restart: Option<RestartPolicy>) -> Allocation {
    alloc_of(id, job_type, vec![shell_task("web", script)], restart)
}

fn fail_fast(attempts: i64) -> RestartPolicy {
    RestartPolicy {
        attempts,
        interval: 60_000_000_000,
        delay: 10_000_000,
        mode: "fail".into(),
        render_templates: false,
    }
}

async fn start_with(
    fake: Arc<Fake>,
    tweak: impl FnOnce(&mut ClientConfig),
) -> (ClientHandle, tempfile::TempDir, CancellationToken) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ClientConfig {
        node_name: "node-a".into(),
        data_dir: dir.path().to_path_buf(),
        options: [("driver.raw_exec.enable".to_string(), "1".to_string())].into(),
        meta: [("rack".to_string(), "r7".to_string())].into(),
        heartbeat_retry: Duration::from_millis(50),
        // Tests leave nothing running behind them.
        stop_tasks_on_shutdown: true,
        ..Default::default()
    };
    tweak(&mut config);
    let token = CancellationToken::new();
    let handle = Client::start(config, fake, token.clone()).await.unwrap();
    (handle, dir, token)
}

async fn start(fake: Arc<Fake>) -> (ClientHandle, tempfile::TempDir) {
    let (handle, dir, _) = start_with(fake, |_| {}).await;
    (handle, dir)
}

fn event_types(report: &AllocClientUpdate, task: &str) -> Vec<String> {
    report.task_states[task]
        .events
        .iter()
        .map(|e| e.event_type.clone())
        .collect()
}

/// Whether `pid` is a live process (zombies waiting for a reaper count as gone).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn batch_task_runs_with_nomad_env_and_completes() {
    let fake = Fake::new();
    let (client, dir) = start(fake.clone()).await;
    assert_eq!(fake.node_id().as_deref(), Some(client.node_id()));
    let mut task = shell_task(
        "web",
        "echo $GREETING $NOMAD_ALLOC_INDEX $NOMAD_TASK_NAME $NOMAD_JOB_ID $NOMAD_ALLOC_ID; \
         echo \"$1\"; pwd",
    );
    task.env
        .insert("GREETING".into(), "hi from ${NOMAD_JOB_NAME}".into());
    // Runtime interpolation reaches the driver config too.
    task.config.insert(
        "args".into(),
        serde_json::json!([
            "-c",
            task.config["args"][1],
            "sh",
            "${node.unique.name}/${meta.rack}/${attr.kernel.name}/${node.unique.id}"
        ]),
    );
    fake.place(alloc_of("a1", "batch", vec![task], None));
    let done = eventually("complete", || {
        fake.report("a1").filter(|r| r.client_status == "complete")
    })
    .await;
    assert_eq!(
        event_types(&done, "web"),
        ["Received", "Task Setup", "Started", "Terminated"]
    );
    let state = &done.task_states["web"];
    assert_eq!((state.state.as_str(), state.failed), ("dead", false));
    assert!(state.started_at.is_some() && state.finished_at.is_some());
    assert_eq!(state.events[3].display_message, "Exit Code: 0");
    let log = dir.path().join("alloc/a1/alloc/logs/web.stdout.0");
    let text = eventually("log", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.lines().count() == 3)
    })
    .await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "hi from j 0 web j a1");
    assert_eq!(lines[1], format!("node-a/r7/linux/{}", client.node_id()));
    assert!(lines[2].ends_with("alloc/a1/web"), "{}", lines[2]);
    assert!(dir.path().join("alloc/a1/web/secrets").is_dir());
    assert!(dir.path().join("alloc/a1/alloc/data").is_dir());
    client.shutdown().await;
}

#[tokio::test]
async fn failing_task_restarts_attempts_times_then_fails() {
    let fake = Fake::new();
    let (client, _dir) = start(fake.clone()).await;
    fake.place(alloc("a2", "batch", "exit 3", Some(fail_fast(2))));
    let failed = eventually("failed", || {
        fake.report("a2").filter(|r| r.client_status == "failed")
    })
    .await;
    let state = &failed.task_states["web"];
    assert_eq!(state.restarts, 2);
    assert!(state.failed);
    assert_eq!(state.state, "dead");
    // 11 events happened; Nomad keeps the newest 10.
    assert_eq!(
        event_types(&failed, "web"),
        [
            "Task Setup",
            "Started",
            "Terminated",
            "Restarting",
            "Started",
            "Terminated",
            "Restarting",
            "Started",
            "Terminated",
            "Not Restarting"
        ]
    );
    let ev = &state.events;
    assert_eq!(ev[2].display_message, "Exit Code: 3");
    assert_eq!(ev[2].exit_code, 3);
    assert_eq!(ev[3].display_message, "Task restarting in 10ms");
    assert_eq!(ev[3].start_delay, 10_000_000);
    assert_eq!(
        ev[9].display_message,
        "Exceeded allowed attempts 2 in interval 1m0s and mode is \"fail\""
    );
    assert!(ev[9].fails_task);
    assert_eq!(failed.client_description, "Failed tasks");
    client.shutdown().await;
}

#[tokio::test]
async fn stopping_an_allocation_sends_sigint_then_kills_the_group() {
    let fake = Fake::new();
    let (client, dir) = start(fake.clone()).await;
    // The background sleep ignores SIGINT (as async commands of sh do): only the group kill
    // after the leader exits takes it down.
    fake.place(alloc(
        "a3",
        "service",
        "trap 'echo got-int > $NOMAD_TASK_DIR/signal; exit 0' INT; \
         sleep 300 & echo $! > $NOMAD_TASK_DIR/child; wait",
        None,
    ));
    eventually("running", || {
        fake.report("a3").filter(|r| r.client_status == "running")
    })
    .await;
    let local = dir.path().join("alloc/a3/web/local");
    let child: i32 = eventually("child pid", || {
        std::fs::read_to_string(local.join("child"))
            .ok()?
            .trim()
            .parse()
            .ok()
    })
    .await;
    assert!(alive(child));
    fake.stop("a3");
    let done = eventually("complete", || {
        fake.report("a3").filter(|r| r.client_status == "complete")
    })
    .await;
    let types = event_types(&done, "web");
    assert!(
        types.ends_with(&["Killing".into(), "Killed".into()]),
        "{types:?}"
    );
    let killing = &done.task_states["web"].events[types.len() - 2];
    assert_eq!(
        killing.display_message,
        "Sent interrupt. Waiting 5s before force killing"
    );
    assert_eq!(
        std::fs::read_to_string(local.join("signal"))
            .unwrap()
            .trim(),
        "got-int"
    );
    assert!(!done.task_states["web"].failed);
    eventually("grandchild gone", || (!alive(child)).then_some(())).await;
    client.shutdown().await;
}

#[tokio::test]
async fn service_tasks_restart_even_after_exit_zero() {
    let fake = Fake::new();
    let (client, _dir) = start(fake.clone()).await;
    fake.place(alloc("a5", "service", "exit 0", Some(fail_fast(1))));
    let failed = eventually("failed", || {
        fake.report("a5").filter(|r| r.client_status == "failed")
    })
    .await;
    assert_eq!(failed.task_states["web"].restarts, 1);
    client.shutdown().await;
}

#[tokio::test]
async fn logs_rotate_and_keep_max_files() {
    let fake = Fake::new();
    let (client, dir, _) = start_with(fake.clone(), |c| c.max_log_file_bytes = Some(100)).await;
    let mut task = shell_task(
        "web",
        // 1000 bytes without a newline, then 5 on stderr.
        "i=0; while [ $i -lt 100 ]; do printf 0123456789; i=$((i+1)); done; printf oops >&2",
    );
    task.log_config = Some(LogConfig {
        max_files: 3,
        max_file_size_mb: 1,
        disabled: false,
    });
    fake.place(alloc_of("a6", "batch", vec![task], None));
    eventually("complete", || {
        fake.report("a6").filter(|r| r.client_status == "complete")
    })
    .await;
    let logs = dir.path().join("alloc/a6/alloc/logs");
    let names = eventually("rotation to settle", || {
        let mut names: Vec<String> = std::fs::read_dir(&logs)
            .ok()?
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let last = std::fs::read(logs.join("web.stdout.9")).ok()?;
        (names.len() == 4 && last.len() == 100).then_some(names)
    })
    .await;
    assert_eq!(
        names,
        [
            "web.stderr.0",
            "web.stdout.7",
            "web.stdout.8",
            "web.stdout.9"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(logs.join("web.stdout.8")).unwrap(),
        "0123456789".repeat(10)
    );
    assert_eq!(
        std::fs::read_to_string(logs.join("web.stderr.0")).unwrap(),
        "oops"
    );
    client.shutdown().await;
}

#[tokio::test]
async fn a_failed_task_takes_its_siblings_down() {
    let fake = Fake::new();
    let (client, _dir) = start(fake.clone()).await;
    fake.place(alloc_of(
        "a7",
        "service",
        vec![
            shell_task("bad", "exit 1"),
            shell_task("good", "exec sleep 300"),
        ],
        Some(fail_fast(0)),
    ));
    let failed = eventually("failed with every task dead", || {
        fake.report("a7").filter(|r| {
            r.client_status == "failed" && r.task_states.values().all(|s| s.state == "dead")
        })
    })
    .await;
    assert_eq!(
        failed.task_states["bad"]
            .events
            .last()
            .unwrap()
            .display_message,
        "Policy allows no restarts"
    );
    let good = event_types(&failed, "good");
    assert!(
        good.ends_with(&[
            "Sibling Task Failed".into(),
            "Killing".into(),
            "Killed".into()
        ]),
        "{good:?}"
    );
    assert!(!failed.task_states["good"].failed);
    client.shutdown().await;
}

#[tokio::test]
async fn missing_driver_and_mock_driver() {
    let fake = Fake::new();
    let (client, _dir) = start(fake.clone()).await;
    let mut absent = shell_task("web", "true");
    absent.driver = "podman".into();
    fake.place(alloc_of("a4", "batch", vec![absent], None));
    let mut mock_task = shell_task("web", "");
    mock_task.driver = "mock".into();
    mock_task.config = serde_json::json!({"run_for": "50ms", "exit_code": 0})
        .as_object()
        .cloned()
        .unwrap();
    fake.place(alloc_of("a8", "batch", vec![mock_task], None));
    let failed = eventually("failed", || {
        fake.report("a4").filter(|r| r.client_status == "failed")
    })
    .await;
    let last = failed.task_states["web"].events.last().unwrap();
    assert_eq!(last.event_type, "Driver Failure");
    assert_eq!(
        last.display_message,
        "driver \"podman\" is not available on this client"
    );
    eventually("mock complete", || {
        fake.report("a8").filter(|r| r.client_status == "complete")
    })
    .await;
    client.shutdown().await;
}

#[tokio::test]
async fn heartbeats_and_re_registers_when_the_servers_forget_the_node() {
    let fake = Fake::with_ttl(Duration::from_millis(200));
    fake.state.lock().unwrap().forget_node = 1;
    let (client, dir, _) = start_with(fake.clone(), |_| {}).await;
    eventually("a re-registration and more heartbeats", || {
        let s = fake.state.lock().unwrap();
        (s.registrations >= 2 && s.heartbeats >= 3).then_some(())
    })
    .await;
    let id = client.node_id().to_string();
    client.shutdown().await;
    // A restarted client keeps its node ID.
    let again = Client::start(
        ClientConfig {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        },
        fake.clone(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(again.node_id(), id);
    again.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_tasks_without_reporting_them_finished() {
    let fake = Fake::new();
    let (client, dir, token) = start_with(fake.clone(), |_| {}).await;
    fake.place(alloc(
        "a9",
        "service",
        "echo $$ > $NOMAD_TASK_DIR/pid; exec sleep 300",
        None,
    ));
    eventually("running", || {
        fake.report("a9").filter(|r| r.client_status == "running")
    })
    .await;
    let pid_file = dir.path().join("alloc/a9/web/local/pid");
    let pid: i32 = eventually("pid", || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    })
    .await;
    token.cancel();
    client.shutdown().await;
    assert!(!alive(pid), "task survived the client's shutdown");
    // The servers still see it running: a restarted client runs it again.
    assert_eq!(fake.report("a9").unwrap().client_status, "running");
}

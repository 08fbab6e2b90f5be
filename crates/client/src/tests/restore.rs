//! A client that shuts down leaves its tasks running (unless told to stop them); started again
//! on the same data dir it takes them over, output included, and learns how the ones that
//! ended while it was away ended.

use super::*;

async fn client_in(fake: &Arc<Fake>, dir: &std::path::Path, stop_tasks: bool) -> ClientHandle {
    let config = ClientConfig {
        node_name: "node-a".into(),
        data_dir: dir.to_path_buf(),
        options: [("driver.raw_exec.enable".to_string(), "1".to_string())].into(),
        heartbeat_retry: Duration::from_millis(50),
        stop_tasks_on_shutdown: stop_tasks,
        ..Default::default()
    };
    Client::start(config, fake.clone(), CancellationToken::new())
        .await
        .unwrap()
}

fn has_event(report: &AllocClientUpdate, message: &str) -> bool {
    report.task_states["web"]
        .events
        .iter()
        .any(|e| e.display_message == message)
}

/// The tick numbers in the task's stdout log, in order.
fn ticks(dir: &std::path::Path, alloc: &str) -> Vec<u64> {
    std::fs::read_to_string(dir.join(format!("alloc/{alloc}/alloc/logs/web.stdout.0")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("tick")?.parse().ok())
        .collect()
}

/// Places service allocation `id` running `script` after writing its PID to
/// `local/pid`; waits until it runs and returns the PID.
async fn run_service(fake: &Arc<Fake>, dir: &std::path::Path, id: &str, script: &str) -> i32 {
    fake.place(alloc(
        id,
        "service",
        &format!("echo $$ > $NOMAD_TASK_DIR/pid; {script}"),
        None,
    ));
    let pid_file = dir.join(format!("alloc/{id}/web/local/pid"));
    let pid = eventually("pid", || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    })
    .await;
    eventually("running", || {
        fake.report(id).filter(|r| r.client_status == "running")
    })
    .await;
    pid
}

#[tokio::test]
async fn a_restarted_client_takes_over_its_running_task_and_its_output() {
    let fake = Fake::new();
    let dir = tempfile::tempdir().unwrap();
    let client = client_in(&fake, dir.path(), false).await;
    let pid = run_service(
        &fake,
        dir.path(),
        "r1",
        "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.02; done",
    )
    .await;
    let pid_file = dir.path().join("alloc/r1/web/local/pid");
    client.shutdown().await;
    assert!(alive(pid), "the task ended with the client");
    let before = ticks(dir.path(), "r1").len();
    // The task writes on while no client reads its output.
    tokio::time::sleep(Duration::from_millis(400)).await;

    let client = client_in(&fake, dir.path(), true).await;
    let report = eventually("the task taken over", || {
        fake.report("r1")
            .filter(|r| has_event(r, "Task re-attached by client"))
    })
    .await;
    let web = &report.task_states["web"];
    assert_eq!(web.state, "running");
    assert_eq!(web.restarts, 0);
    // Its events go on from those reported before.
    assert!(has_event(&report, "Task started by client"), "{web:?}");
    assert!(alive(pid));
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string(),
        "not started again"
    );
    // Every line it wrote, the ones written while no client ran among them, in order.
    let seen = eventually("output after the takeover", || {
        let t = ticks(dir.path(), "r1");
        (t.len() > before + 20).then_some(t)
    })
    .await;
    let expected: Vec<u64> = (0..seen.len() as u64).collect();
    assert_eq!(seen, expected, "output lost or out of order");

    // Stopped through the new client.
    fake.stop("r1");
    eventually("the task killed", || (!alive(pid)).then_some(())).await;
    eventually("reported dead", || {
        fake.report("r1")
            .filter(|r| r.task_states["web"].state == "dead")
    })
    .await;
    client.shutdown().await;
    // Nothing left recorded.
    let state = crate::state::ClientState::open(&dir.path().join("client")).unwrap();
    assert_eq!(state.all().unwrap(), vec![]);
}

#[tokio::test]
async fn a_task_that_ended_while_the_client_was_away_is_not_run_again() {
    let fake = Fake::new();
    let dir = tempfile::tempdir().unwrap();
    let client = client_in(&fake, dir.path(), false).await;
    fake.place(alloc(
        "r2",
        "batch",
        "echo run >> $NOMAD_TASK_DIR/runs; sleep 1; exit 3",
        Some(fail_fast(0)),
    ));
    eventually("running", || {
        fake.report("r2").filter(|r| r.client_status == "running")
    })
    .await;
    client.shutdown().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let client = client_in(&fake, dir.path(), true).await;
    let report = eventually("the end reported", || {
        fake.report("r2").filter(|r| r.client_status == "failed")
    })
    .await;
    let web = &report.task_states["web"];
    let terminated = web
        .events
        .iter()
        .find(|e| e.event_type == "Terminated")
        .expect("a Terminated event");
    assert_eq!(terminated.exit_code, 3, "{web:?}");
    assert!(web.failed);
    let runs = std::fs::read_to_string(dir.path().join("alloc/r2/web/local/runs")).unwrap();
    assert_eq!(runs.lines().count(), 1, "run once: {runs:?}");
    client.shutdown().await;
}

#[tokio::test]
async fn tasks_of_allocations_gone_while_the_client_was_away_are_stopped() {
    let fake = Fake::new();
    let dir = tempfile::tempdir().unwrap();
    let client = client_in(&fake, dir.path(), false).await;
    let pid = run_service(&fake, dir.path(), "r3", "exec sleep 300").await;
    client.shutdown().await;
    assert!(alive(pid));
    // The servers stopped it meanwhile (say its node was down too long).
    fake.stop("r3");
    let client = client_in(&fake, dir.path(), true).await;
    eventually("the leftover task stopped", || (!alive(pid)).then_some(())).await;
    client.shutdown().await;
}

#[tokio::test]
async fn a_state_file_that_is_not_a_store_stops_the_client_with_its_path() {
    let fake = Fake::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("client")).unwrap();
    std::fs::write(dir.path().join("client/state.redb"), b"garbage").unwrap();
    let config = ClientConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let err = Client::start(config, fake, CancellationToken::new())
        .await
        .err()
        .expect("an error");
    assert!(err.to_string().contains("state.redb"), "{err}");
}

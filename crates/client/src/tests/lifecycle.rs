//! Lifecycle hooks: prestart (ephemeral and sidecar), poststart, poststop, in Nomad's order.

use super::fake::Fake;
use super::*;

fn hooked(name: &str, hook: &str, sidecar: bool, script: &str) -> Task {
    let mut t = shell_task(name, script);
    t.lifecycle = Some(TaskLifecycle {
        hook: hook.into(),
        sidecar,
    });
    t
}

/// Appends `word` to the allocation's shared `order` file.
fn note(word: &str) -> String {
    format!("echo {word} >> \"$NOMAD_ALLOC_DIR/order\"")
}

fn order(dir: &std::path::Path, alloc: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join("alloc").join(alloc).join("alloc/order"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn tasks_run_in_lifecycle_order() {
    let fake = Fake::new();
    let (client, dir) = start(fake.clone()).await;
    let tasks = vec![
        hooked("cleanup", "poststop", false, &note("cleanup")),
        shell_task(
            "main",
            &format!(
                "grep -q init \"$NOMAD_ALLOC_DIR/order\" && {}; sleep 0.6; {}",
                note("main-saw-init"),
                note("main-done")
            ),
        ),
        hooked("post", "poststart", false, &note("post")),
        hooked(
            "side",
            "prestart",
            true,
            &format!(
                "trap '{}; exit 0' INT TERM; {}; while true; do sleep 0.05; done",
                note("side-killed"),
                note("side-up")
            ),
        ),
        hooked(
            "init",
            "prestart",
            false,
            &format!("sleep 0.2; {}", note("init")),
        ),
    ];
    fake.place(alloc_of("lc1", "batch", tasks, None));
    let done = eventually("the allocation complete", || {
        fake.report("lc1").filter(|r| r.client_status == "complete")
    })
    .await;
    let o = order(dir.path(), "lc1");
    let at = |w: &str| {
        o.iter()
            .position(|x| x == w)
            .unwrap_or_else(|| panic!("{w} missing from {o:?}"))
    };
    assert!(at("init") < at("main-saw-init"), "{o:?}");
    assert!(at("side-up") < at("main-saw-init"), "{o:?}");
    assert!(at("post") < at("main-done"), "{o:?}");
    assert!(at("main-done") < at("side-killed"), "{o:?}");
    assert!(at("side-killed") < at("cleanup"), "{o:?}");
    for t in ["init", "side", "main", "post", "cleanup"] {
        let s = &done.task_states[t];
        assert_eq!(s.state, "dead", "{t}");
        assert!(!s.failed, "{t}");
    }
    client.shutdown().await;
}

#[tokio::test]
async fn a_failed_prestart_task_keeps_the_main_task_from_running() {
    let fake = Fake::new();
    let (client, _dir) = start(fake.clone()).await;
    let tasks = vec![
        hooked("init", "prestart", false, "exit 3"),
        shell_task("main", "sleep 30"),
    ];
    let no_restarts = RestartPolicy {
        attempts: 0,
        mode: "fail".into(),
        ..Default::default()
    };
    fake.place(alloc_of("lc2", "batch", tasks, Some(no_restarts)));
    let failed = eventually("the allocation failed", || {
        fake.report("lc2")
            .filter(|r| r.client_status == "failed" && r.task_states["main"].state == "dead")
    })
    .await;
    assert!(failed.task_states["init"].failed);
    assert!(
        !event_types(&failed, "main").contains(&"Started".to_string()),
        "{:?}",
        event_types(&failed, "main")
    );
    assert!(failed.task_states["main"].started_at.is_none());
    client.shutdown().await;
}

#[tokio::test]
async fn poststop_tasks_run_when_the_allocation_is_stopped() {
    let fake = Fake::new();
    let (client, dir) = start(fake.clone()).await;
    let tasks = vec![
        shell_task("main", &format!("{}; sleep 30", note("main-up"))),
        hooked("cleanup", "poststop", false, &note("cleanup")),
    ];
    fake.place(alloc_of("lc3", "service", tasks, None));
    eventually("main running", || {
        fake.report("lc3").filter(|r| r.client_status == "running")
    })
    .await;
    fake.stop("lc3");
    eventually("cleanup ran after the stop", || {
        fake.report("lc3").filter(|r| {
            r.task_states["cleanup"].state == "dead" && r.task_states["main"].state == "dead"
        })
    })
    .await;
    assert_eq!(order(dir.path(), "lc3"), ["main-up", "cleanup"]);
    client.shutdown().await;
}

#[tokio::test]
async fn shutdown_delay_comes_before_the_kill_signal() {
    let fake = Fake::new();
    let (client, _dir) = start(fake.clone()).await;
    let mut t = shell_task("main", "sleep 30");
    t.shutdown_delay = 300_000_000;
    fake.place(alloc_of("sd1", "service", vec![t], None));
    eventually("main running", || {
        fake.report("sd1").filter(|r| r.client_status == "running")
    })
    .await;
    fake.stop("sd1");
    let done = eventually("main killed", || {
        fake.report("sd1")
            .filter(|r| event_types(r, "main").contains(&"Killed".to_string()))
    })
    .await;
    let events = &done.task_states["main"].events;
    let at = |kind: &str| {
        events
            .iter()
            .find(|e| e.event_type == kind)
            .unwrap_or_else(|| panic!("no {kind}: {events:?}"))
    };
    let wait = at("Waiting for shutdown delay");
    assert_eq!(
        wait.display_message,
        "Waiting for shutdown_delay of 300ms before killing the task."
    );
    // The signal went out no sooner than the delay after the wait began.
    assert!(at("Killing").time - wait.time >= 300_000_000);
    client.shutdown().await;
}

#[tokio::test]
async fn a_sidecar_failing_for_good_fails_the_allocation() {
    let fake = Fake::new();
    let (client, _dir) = start(fake.clone()).await;
    let tasks = vec![
        hooked("side", "prestart", true, "sleep 0.3; exit 7"),
        shell_task("main", "sleep 30"),
    ];
    let no_restarts = RestartPolicy {
        attempts: 0,
        mode: "fail".into(),
        ..Default::default()
    };
    fake.place(alloc_of("lc4", "service", tasks, Some(no_restarts)));
    let failed = eventually("the allocation failed", || {
        fake.report("lc4")
            .filter(|r| r.client_status == "failed" && r.task_states["main"].state == "dead")
    })
    .await;
    assert!(failed.task_states["side"].failed);
    let main = event_types(&failed, "main");
    assert!(main.contains(&"Started".to_string()), "{main:?}");
    assert!(
        main.contains(&"Sibling Task Failed".to_string()),
        "{main:?}"
    );
    client.shutdown().await;
}

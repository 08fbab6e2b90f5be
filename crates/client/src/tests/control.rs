//! `alloc signal` and `alloc restart` through the client's control interface.

use super::fake::Fake;
use super::*;
use rpc::{ClientFs, TaskControlError};

#[tokio::test]
async fn a_running_task_is_signalled_and_restarted_outside_its_policy() {
    let fake = Fake::new();
    let (client, dir) = start(fake.clone()).await;
    let t = shell_task(
        "web",
        "trap 'echo got-usr1' USR1; echo started; while true; do sleep 0.05; done",
    );
    // No restarts allowed by the policy: a user's restart still happens.
    let never = RestartPolicy {
        attempts: 0,
        mode: "fail".into(),
        ..Default::default()
    };
    fake.place(alloc_of("ct1", "service", vec![t], Some(never)));
    let log = dir.path().join("alloc/ct1/alloc/logs/web.stdout.0");
    eventually("the task started", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("started"))
    })
    .await;

    client
        .signal_tasks("ct1", Some("web"), "SIGUSR1")
        .await
        .unwrap();
    eventually("the trap ran", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("got-usr1"))
    })
    .await;
    let r = fake.report("ct1").unwrap();
    assert!(event_types(&r, "web").contains(&"Signaling".to_string()));

    client.restart_tasks("ct1", None).await.unwrap();
    let r = eventually("the task running again", || {
        fake.report("ct1").filter(|r| {
            r.task_states["web"].restarts == 1 && r.task_states["web"].state == "running"
        })
    })
    .await;
    let types = event_types(&r, "web");
    let tail: Vec<&str> = types
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        ["Restart Signaled", "Terminated", "Restarting", "Started"],
        "{types:?}"
    );
    assert_eq!(r.client_status, "running");

    // Usage: the running task's memory and CPU.
    let stats = client.alloc_stats("ct1").await.unwrap();
    let web = &stats.tasks["web"].resource_usage;
    assert!(web.memory_stats.rss > 0, "{stats:?}");
    assert_eq!(web.memory_stats.measured, ["RSS"]);
    assert!(web.cpu_stats.percent >= 0.0);
    assert!(web.cpu_stats.measured.contains(&"Percent".to_string()));
    assert_eq!(stats.resource_usage.memory_stats.rss, web.memory_stats.rss);
    assert!(matches!(
        client.alloc_stats("nope").await,
        Err(TaskControlError::UnknownAlloc(_))
    ));

    // What cannot be reached says why.
    assert_eq!(
        client.signal_tasks("ct1", Some("db"), "SIGUSR1").await,
        Err(TaskControlError::NotRunning("db".into()))
    );
    assert_eq!(
        client.signal_tasks("ct1", None, "SIGNOPE").await,
        Err(TaskControlError::BadSignal("SIGNOPE".into()))
    );
    assert_eq!(
        client.restart_tasks("nope", None).await,
        Err(TaskControlError::UnknownAlloc("nope".into()))
    );
    client.shutdown().await;
}

//! `alloc signal` and `alloc restart` from the CLI, through the dev agent's client.

use crate::harness::{eventually, Agent};
use crate::{allocs, count_status};
use serde_json::Value;

const JOB: &str = r#"
job "trap" {
  datacenters = ["dc1"]
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "trap 'echo got-usr1' USR1; echo started; while true; do sleep 0.05; done"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
"#;

#[test]
fn tasks_are_signalled_and_restarted_from_the_cli() {
    let agent = Agent::dev();
    let file = agent.write("trap.nomad.hcl", JOB);
    agent.ok(&["job", "run", file.to_str().unwrap()]);
    let running = eventually(30, "the task running", || {
        let a = allocs(&agent, "trap");
        (count_status(&a, "run", "running") == 1).then_some(a)
    });
    let id = running[0]["ID"].as_str().unwrap().to_string();
    let short = &id[..8];
    eventually(10, "the task's first line", || {
        agent
            .ok(&["alloc", "logs", short])
            .contains("started")
            .then_some(())
    });
    agent.ok(&["alloc", "signal", "-s", "SIGUSR1", short, "t"]);
    eventually(10, "the trap's output", || {
        agent
            .ok(&["alloc", "logs", short])
            .contains("got-usr1")
            .then_some(())
    });
    let (status, stats) = agent.get(&format!("/v1/client/allocation/{id}/stats"));
    assert_eq!(status, 200, "{stats}");
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert!(
        stats["Tasks"]["t"]["ResourceUsage"]["MemoryStats"]["RSS"]
            .as_u64()
            .is_some_and(|r| r > 0),
        "{stats}"
    );
    agent.ok(&["alloc", "restart", short]);
    eventually(30, "the task restarted", || {
        let (_, a) = agent.get(&format!("/v1/allocation/{id}"));
        let a: Value = serde_json::from_str(&a).ok()?;
        let s = &a["TaskStates"]["t"];
        (s["Restarts"] == 1 && s["State"] == "running").then_some(())
    });
    let status = agent.ok(&["alloc", "status", short]);
    assert!(status.contains("Restart Signaled"), "{status}");
    let bad = agent.cli(&["alloc", "signal", "-s", "SIGNOPE", short]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid signal"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let both = agent.cli(&["alloc", "restart", "-all-tasks", short, "t"]);
    assert_eq!(both.status.code(), Some(1));

    // alloc stop: this allocation stops as migrated and a replacement runs.
    let out = agent.ok(&["alloc", "stop", short]);
    assert!(out.contains("Monitoring evaluation"), "{out}");
    let after = eventually(30, "a replacement running", || {
        let a = allocs(&agent, "trap");
        let old_stopped = a.iter().any(|x| {
            x["ID"] == id.as_str()
                && x["DesiredStatus"] == "stop"
                && x["ClientStatus"] == "complete"
        });
        (old_stopped && count_status(&a, "run", "running") == 1).then_some(a)
    });
    let old = after.iter().find(|x| x["ID"] == id.as_str()).unwrap();
    assert_eq!(
        old["DesiredDescription"], "alloc is being migrated",
        "{old}"
    );
    let (_, eval) = agent.get("/v1/job/trap/evaluations");
    assert!(eval.contains("\"alloc-stop\""), "{eval}");
    let missing = agent.cli(&["alloc", "stop", "ffffffff"]);
    assert_eq!(missing.status.code(), Some(1));
}

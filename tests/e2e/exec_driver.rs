//! The exec driver through the dev agent: an isolated task's view of the machine, and a task
//! killed for its memory reported as OOM-killed.

use crate::harness::{eventually, Agent};
use crate::{allocs, count_status};
use serde_json::Value;

/// A batch job whose exec task reports what it sees; `memory` MB; `script` is its shell.
fn exec_job(id: &str, memory: u32, script: &str) -> String {
    format!(
        r#"
job "{id}" {{
  datacenters = ["dc1"]
  type        = "batch"
  group "g" {{
    restart {{
      attempts = 0
      mode     = "fail"
    }}
    reschedule {{
      attempts  = 0
      unlimited = false
    }}
    task "t" {{
      driver = "exec"
      config {{
        command = "/bin/sh"
        args    = ["-c", "{script}"]
      }}
      resources {{
        cpu    = 100
        memory = {memory}
      }}
    }}
  }}
}}
"#
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("exec driver end-to-end test not run: needs root");
    }
    root
}

#[test]
fn exec_tasks_are_isolated_and_oom_kills_are_reported() {
    if !is_root() {
        return;
    }
    let agent = Agent::dev();
    let (_, node_json) = agent.get("/v1/nodes");
    let nodes: Value = serde_json::from_str(&node_json).unwrap();
    let node_id = nodes[0]["ID"].as_str().unwrap().to_string();
    let (_, node_json) = agent.get(&format!("/v1/node/{node_id}"));
    let node: Value = serde_json::from_str(&node_json).unwrap();
    assert_eq!(node["Attributes"]["driver.exec"], "1", "{node_json}");
    assert_eq!(node["Drivers"]["exec"]["Healthy"], true, "{node_json}");

    let job = agent.write(
        "look.nomad.hcl",
        &exec_job(
            "look",
            64,
            "id -un; for p in /proc/[0-9]*; do echo pid $${p#/proc/}; done; \
             echo dir $NOMAD_TASK_DIR; ls -d /local /alloc /secrets",
        ),
    );
    agent.ok(&["job", "run", job.to_str().unwrap()]);
    let done = eventually(30, "the look task to complete", || {
        let a = allocs(&agent, "look");
        (count_status(&a, "run", "complete") == 1).then_some(a)
    });
    let id = done[0]["ID"].as_str().unwrap();
    let text = agent.ok(&["alloc", "logs", id, "t"]);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "nobody",
            "pid 1",
            "pid 2",
            "dir /local",
            "/alloc",
            "/local",
            "/secrets"
        ],
        "{text}"
    );

    // The allocation's directory through `alloc fs`: listed, a file printed, a path described.
    let root = agent.ok(&["alloc", "fs", id]);
    assert!(root.starts_with("Mode"), "{root}");
    assert!(root.lines().any(|l| l.ends_with("  alloc/")), "{root}");
    assert!(root.lines().any(|l| l.ends_with("  t/")), "{root}");
    let log = agent.ok(&["alloc", "fs", id, "alloc/logs/t.stdout.0"]);
    assert_eq!(log, text);
    let stat = agent.ok(&["alloc", "fs", "-stat", "-H", id, "alloc/logs/t.stdout.0"]);
    assert!(
        stat.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("-rw") && l.contains(&format!("  {}  ", text.len()))),
        "{stat}"
    );
    let escape = agent.cli(&["alloc", "fs", id, "../../etc"]);
    assert_eq!(escape.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&escape.stderr).contains("leaves the allocation directory"),
        "{}",
        String::from_utf8_lossy(&escape.stderr)
    );

    let job = agent.write(
        "hog.nomad.hcl",
        &exec_job(
            "hog",
            32,
            "a=$(head -c 300000000 /dev/zero | tr '\\\\0' x); echo survived",
        ),
    );
    agent.ok(&["job", "run", job.to_str().unwrap()]);
    let failed = eventually(30, "the hog task to fail", || {
        let a = allocs(&agent, "hog");
        (count_status(&a, "run", "failed") == 1).then_some(a)
    });
    let id = failed[0]["ID"].as_str().unwrap();
    let status = agent.ok(&["alloc", "status", id]);
    assert!(
        status.contains("Exit Code: 0, Signal: 9, Exit Message: \"OOM Killed\""),
        "{status}"
    );
    let (_, alloc_json) = agent.get(&format!("/v1/allocation/{id}"));
    let alloc: Value = serde_json::from_str(&alloc_json).unwrap();
    let events = alloc["TaskStates"]["t"]["Events"].as_array().unwrap();
    let terminated = events
        .iter()
        .find(|e| e["Type"] == "Terminated")
        .expect("a Terminated event");
    assert_eq!(terminated["Details"]["oom_killed"], "true", "{terminated}");
    assert_eq!(terminated["Message"], "OOM Killed");
}

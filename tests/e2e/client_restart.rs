//! A client agent that is `kill -9`'d, or stopped as an operator stops it, and started again
//! takes over the tasks still running (raw_exec and exec, by their supervisors' PID and start
//! time) without restarting them, keeps their output, and learns how the tasks that ended
//! while it was away ended.

use crate::harness::{eventually, Agent};
use crate::{allocs, count_status};
use serde_json::Value;

/// A task that counts its starts in the alloc's data dir, then ticks on stdout.
fn ticker(name: &str, driver: &str) -> String {
    format!(
        r#"
    task "{name}" {{
      driver = "{driver}"
      config {{
        command = "/bin/sh"
        args    = ["-c", "echo start >> $${{NOMAD_ALLOC_DIR}}/data/{name}.starts; i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.05; done"]
      }}
      resources {{
        cpu    = 20
        memory = 32
      }}
    }}"#
    )
}

fn job(tasks: &[(&str, &str)]) -> String {
    let tasks: String = tasks.iter().map(|(n, d)| ticker(n, d)).collect();
    format!(
        r#"job "tick" {{
  datacenters = ["dc1"]
  group "g" {{
{tasks}
  }}
}}
"#
    )
}

fn alloc_json(server: &Agent, id: &str) -> Option<Value> {
    let (_, a) = server.get(&format!("/v1/allocation/{id}"));
    serde_json::from_str(&a).ok()
}

/// How many times the task started, from the file it appends to.
fn starts(client: &Agent, id: &str, task: &str) -> usize {
    let path = client
        .data_dir()
        .join(format!("alloc/{id}/alloc/data/{task}.starts"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

/// The tick numbers of the task's log, through `alloc logs`.
fn ticks(server: &Agent, id: &str, task: &str) -> Vec<u64> {
    server
        .ok(&["alloc", "logs", id, task])
        .lines()
        .filter_map(|l| l.strip_prefix("tick")?.parse().ok())
        .collect()
}

/// Waits until every task has been re-attached `times` times in all, runs, and never
/// restarted.
fn wait_reattached(server: &Agent, id: &str, tasks: &[&str], times: usize) {
    eventually(30, "the tasks taken over", || {
        let a = alloc_json(server, id)?;
        tasks
            .iter()
            .all(|t| {
                let s = &a["TaskStates"][t];
                let takeovers = s["Events"].as_array().map_or(0, |evs| {
                    evs.iter()
                        .filter(|e| e["DisplayMessage"] == "Task re-attached by client")
                        .count()
                });
                takeovers == times && s["State"] == "running" && s["Restarts"] == 0
            })
            .then_some(())
    });
}

#[test]
fn a_restarted_client_takes_over_its_running_tasks() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut tasks = vec![("raw", "raw_exec")];
    if root {
        tasks.push(("iso", "exec"));
    }
    let names: Vec<&str> = tasks.iter().map(|(n, _)| *n).collect();
    let server = Agent::dev();
    let mut client = Agent::client_of(&server, "");
    let dev_node = server.node_id_at(&server.ip);
    server.ok(&["node", "eligibility", "-disable", &dev_node]);
    let file = server.write("tick.nomad.hcl", &job(&tasks));
    server.ok(&["job", "run", file.to_str().unwrap()]);
    let running = eventually(60, "the allocation running", || {
        let a = allocs(&server, "tick");
        (count_status(&a, "run", "running") == 1).then_some(a)
    });
    let id = running[0]["ID"].as_str().unwrap().to_string();
    for t in &names {
        eventually(10, "some output", || {
            (ticks(&server, &id, t).len() > 3).then_some(())
        });
    }

    // kill -9: no chance to say goodbye.
    client.kill9_and_restart();
    wait_reattached(&server, &id, &names, 1);
    // Stopped as an operator stops it: outside -dev the tasks keep running.
    client.stop_and_restart();
    wait_reattached(&server, &id, &names, 2);

    for t in &names {
        assert_eq!(starts(&client, &id, t), 1, "{t} started again");
        let before = ticks(&server, &id, t).len();
        // Every line, those written while no client ran included, in order, and more coming.
        let seen = eventually(10, "output after the takeovers", || {
            let seen = ticks(&server, &id, t);
            (seen.len() > before + 5).then_some(seen)
        });
        let expected: Vec<u64> = (0..seen.len() as u64).collect();
        assert_eq!(seen, expected, "{t}: output lost or out of order");
    }

    // The client that took them over stops them.
    server.ok(&["job", "stop", "tick"]);
    eventually(30, "the allocation stopped", || {
        let a = alloc_json(&server, &id)?;
        names
            .iter()
            .all(|t| a["TaskStates"][t]["State"] == "dead")
            .then_some(())
    });
    let left = client.processes_under_data_dir();
    assert!(left.is_empty(), "processes left: {left:?}");
}

#[test]
fn a_batch_task_that_ends_while_its_client_is_down_completes_once() {
    let server = Agent::dev();
    let mut client = Agent::client_of(&server, "");
    let dev_node = server.node_id_at(&server.ip);
    server.ok(&["node", "eligibility", "-disable", &dev_node]);
    let job = r#"job "once" {
  datacenters = ["dc1"]
  type        = "batch"
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo start >> $${NOMAD_ALLOC_DIR}/data/t.starts; sleep 2; echo done"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
"#;
    let file = server.write("once.nomad.hcl", job);
    server.ok(&["job", "run", file.to_str().unwrap()]);
    let running = eventually(60, "the allocation running", || {
        let a = allocs(&server, "once");
        (count_status(&a, "run", "running") == 1).then_some(a)
    });
    let id = running[0]["ID"].as_str().unwrap().to_string();
    client.kill9_and_restart_after(std::time::Duration::from_secs(3));
    eventually(30, "the allocation complete", || {
        let a = allocs(&server, "once");
        (count_status(&a, "run", "complete") == 1).then_some(())
    });
    assert_eq!(starts(&client, &id, "t"), 1, "run again");
    let a = alloc_json(&server, &id).unwrap();
    let events = a["TaskStates"]["t"]["Events"].as_array().unwrap().clone();
    let terminated = events
        .iter()
        .find(|e| e["Type"] == "Terminated")
        .expect("a Terminated event");
    assert_eq!(terminated["ExitCode"], 0, "{events:?}");
}

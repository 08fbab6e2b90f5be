//! `caravan node drain`: a drained node's allocations move to another node one at a time
//! (the group's `migrate` block), the monitor prints Nomad's lines, the drain completes and
//! leaves the node ineligible; `-disable` makes it eligible again; `-force` moves everything
//! at once.

use crate::harness::{eventually, Agent};
use serde_json::Value;

const JOB: &str = r#"job "web" {
  datacenters = ["dc1"]
  migrate {
    max_parallel     = 1
    min_healthy_time = "1s"
  }
  group "g" {
    count = 3
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["600"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
"#;

/// The job's allocations the server wants running and that run, by node.
fn running_on(agent: &Agent) -> Vec<String> {
    let (_, body) = agent.get("/v1/job/web/allocations");
    let allocs: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    allocs.as_array().map_or(Vec::new(), |a| {
        a.iter()
            .filter(|a| a["ClientStatus"] == "running" && a["DesiredStatus"] == "run")
            .filter_map(|a| a["NodeID"].as_str().map(str::to_string))
            .collect()
    })
}

fn node(agent: &Agent, id: &str) -> Value {
    let (_, body) = agent.get(&format!("/v1/node/{id}"));
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Positions of the lines containing `needle`.
fn lines_with(text: &str, needle: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_drained_node_hands_its_allocations_over_one_at_a_time() {
    let server = Agent::dev();
    let job = server.write("web.nomad.hcl", JOB);
    server.ok(&["job", "run", job.to_str().unwrap()]);
    let first = eventually(30, "three allocations run on the dev node", || {
        let on = running_on(&server);
        (on.len() == 3).then(|| on[0].clone())
    });
    let client = Agent::client_of(&server, "");
    let other = eventually(30, "the second node is ready", || {
        let (_, body) = server.get("/v1/nodes");
        let nodes: Value = serde_json::from_str(&body).ok()?;
        nodes.as_array()?.iter().find_map(|n| {
            let id = n["ID"].as_str()?;
            (id != first && n["Status"] == "ready").then(|| id.to_string())
        })
    });

    let t0 = std::time::Instant::now();
    let out = server.cli_within(
        120,
        &[
            "node",
            "drain",
            "-enable",
            "-yes",
            "-deadline",
            "5m",
            &first[..8],
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(0), "{text}");
    // Each of the second and third waited for the one before's replacement to be healthy
    // for min_healthy_time (1s): a lower bound from the semantics, not a speed check.
    assert!(
        took >= std::time::Duration::from_secs(2),
        "the drain took {took:?}: it did not wait for healthy replacements\n{text}"
    );
    assert!(
        text.contains(&format!("Node {first:?} drain strategy set")),
        "{text}"
    );
    let marked = lines_with(&text, "marked for migration");
    let stopped = lines_with(&text, "status running -> complete");
    assert_eq!((marked.len(), stopped.len()), (3, 3), "{text}");
    // One at a time: each allocation is marked only after the one before it stopped.
    for i in 1..3 {
        assert!(
            stopped[i - 1] < marked[i],
            "max_parallel = 1 was not kept:\n{text}"
        );
    }
    let done = lines_with(&text, &format!("Drain complete for node {first}"));
    let all = lines_with(
        &text,
        &format!("All allocations on node {first:?} have stopped."),
    );
    assert_eq!((done.len(), all.len()), (1, 1), "{text}");
    assert!(
        lines_with(&text, "has marked all allocations for migration")
            .first()
            .is_some_and(|l| *l > marked[2] && *l < all[0]),
        "{text}"
    );

    assert_eq!(running_on(&server), vec![other.clone(); 3]);
    let n = node(&server, &first);
    assert_eq!(n["Drain"], false);
    assert_eq!(n["DrainStrategy"], Value::Null);
    assert_eq!(
        n["SchedulingEligibility"], "ineligible",
        "a drained node stays ineligible"
    );
    assert_eq!(n["LastDrain"]["Status"], "complete");
    let events: Vec<&str> = n["Events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["Message"].as_str())
        .collect();
    assert!(events.contains(&"Node drain strategy set"), "{events:?}");
    assert!(events.contains(&"Node drain complete"), "{events:?}");

    // -disable makes it eligible again (-self: the dev agent's own node).
    let status = server.ok(&["node", "status", "-self"]);
    assert!(status.contains(&first[..8]), "{status}");
    let out = server.ok(&["node", "drain", "-disable", "-self"]);
    assert_eq!(out.trim(), format!("Node {first:?} drain strategy unset"));
    assert_eq!(node(&server, &first)["SchedulingEligibility"], "eligible");

    // -force moves everything at once (back to the first node).
    let out = server.ok(&[
        "node", "drain", "-enable", "-force", "-detach", "-yes", &other,
    ]);
    assert_eq!(out.trim(), format!("Node {other:?} drain strategy set"));
    eventually(60, "the forced drain moved all three back", || {
        (running_on(&server) == vec![first.clone(); 3]).then_some(())
    });
    eventually(30, "the forced drain completes", || {
        let n = node(&server, &other);
        (n["LastDrain"]["Status"] == "complete").then_some(())
    });

    // Bad input: neither flag; two deadlines; a deadline that is not a duration.
    for (args, want) in [
        (vec!["node", "drain", &first[..]], "-enable"),
        (
            vec![
                "node",
                "drain",
                "-enable",
                "-force",
                "-no-deadline",
                &first[..],
            ],
            "only one of",
        ),
        (
            vec!["node", "drain", "-enable", "-deadline", "soon", &first[..]],
            "soon",
        ),
    ] {
        let out = server.cli(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    drop(client);
}

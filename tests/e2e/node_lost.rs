//! A client that stops heartbeating for longer than its TTL: its node goes down, its
//! allocation is lost and replaced on the other client; when it comes back, the stale
//! allocation is stopped there.

use crate::harness::{eventually, sleep_job, Agent};
use serde_json::Value;

fn allocs(agent: &Agent) -> Vec<Value> {
    let (_, body) = agent.get("/v1/job/web/allocations");
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// Live processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<i64> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 1 && fields[0] != "Z" && fields[1] == pid.to_string() {
            out.push(child);
        }
    }
    out
}

/// Whether `pid` is a live process (zombies count as gone).
fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim().to_string()))
        .is_some_and(|rest| !rest.starts_with('Z'))
}

#[test]
fn a_silent_client_loses_its_allocations_to_another_and_stops_them_when_back() {
    let server =
        Agent::dev_with("server {\n  min_heartbeat_ttl = \"1s\"\n  heartbeat_grace = \"1s\"\n}\n");
    let client = Agent::client_of(&server, "");
    let dev_node = server.node_id_at(&server.ip);
    let other = server.node_id_at(&client.ip);
    // The job lands on the client-only agent.
    server.ok(&["node", "eligibility", "-disable", &dev_node]);
    let job = server.write("web.nomad.hcl", &sleep_job("web", 1));
    server.ok(&["job", "run", job.to_str().unwrap()]);
    let first = eventually(30, "the allocation running on the client", || {
        allocs(&server)
            .into_iter()
            .find(|a| a["ClientStatus"] == "running" && a["NodeID"] == other.as_str())
    });
    let first_id = first["ID"].as_str().unwrap().to_string();
    let task_pid = eventually(10, "the task's pid", || {
        let (_, a) = server.get(&format!("/v1/allocation/{first_id}"));
        let a: Value = serde_json::from_str(&a).ok()?;
        a["TaskStates"]["t"]["Events"]
            .as_array()?
            .iter()
            .any(|e| e["Type"] == "Started")
            .then_some(())?;
        // The task is the client's child: find it by its parent.
        children_of(client.pid()).first().copied()
    });
    server.ok(&["node", "eligibility", "-enable", &dev_node]);

    // The client stops answering (SIGSTOP): its node goes down, the allocation is lost and
    // replaced on the dev agent's node.
    // SAFETY: kill(2) on the client agent this test started.
    unsafe { libc::kill(client.pid() as i32, libc::SIGSTOP) };
    let replaced = eventually(30, "a replacement running on the other node", || {
        let all = allocs(&server);
        let lost = all
            .iter()
            .any(|a| a["ID"] == first_id.as_str() && a["ClientStatus"] == "lost");
        let replacement = all
            .iter()
            .find(|a| a["ClientStatus"] == "running" && a["NodeID"] == dev_node.as_str());
        lost.then(|| replacement.cloned()).flatten()
    });
    assert_ne!(replaced["ID"], first_id.as_str());
    let (_, node) = server.get(&format!("/v1/node/{other}"));
    let node: Value = serde_json::from_str(&node).unwrap();
    assert_eq!(node["Status"], "down", "{node}");
    assert!(
        alive(task_pid),
        "the silent client's task still runs until it is back"
    );

    // Back: the node is ready again and the client stops its stale allocation.
    // SAFETY: as above.
    unsafe { libc::kill(client.pid() as i32, libc::SIGCONT) };
    eventually(30, "the node ready again", || {
        let (_, node) = server.get(&format!("/v1/node/{other}"));
        let node: Value = serde_json::from_str(&node).ok()?;
        (node["Status"] == "ready").then_some(())
    });
    eventually(30, "the stale task stopped", || {
        (!alive(task_pid)).then_some(())
    });
    let running: Vec<Value> = allocs(&server)
        .into_iter()
        .filter(|a| a["ClientStatus"] == "running")
        .collect();
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0]["NodeID"], dev_node.as_str());
}

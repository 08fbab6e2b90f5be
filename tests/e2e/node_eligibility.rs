//! `caravan node eligibility`: an ineligible node keeps its allocations but gets no new
//! ones; marked eligible again, the placements that waited for it are made.

use crate::harness::{eventually, sleep_job, Agent};
use serde_json::Value;

fn running(agent: &Agent) -> usize {
    let (_, body) = agent.get("/v1/job/web/allocations");
    let allocs: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    allocs.as_array().map_or(0, |a| {
        a.iter()
            .filter(|a| a["ClientStatus"] == "running" && a["DesiredStatus"] == "run")
            .count()
    })
}

#[test]
fn an_ineligible_node_keeps_its_work_and_gets_no_more() {
    let agent = Agent::dev();
    let one = agent.write("one.nomad.hcl", &sleep_job("web", 1));
    agent.ok(&["job", "run", one.to_str().unwrap()]);
    eventually(20, "one allocation runs", || {
        (running(&agent) == 1).then_some(())
    });

    let (_, nodes) = agent.get("/v1/nodes");
    let nodes: Value = serde_json::from_str(&nodes).unwrap();
    let node_id = nodes[0]["ID"].as_str().unwrap().to_string();
    let out = agent.ok(&["node", "eligibility", "-disable", &node_id[..8]]);
    assert_eq!(
        out.trim(),
        format!("Node {node_id:?} scheduling eligibility set: ineligible for scheduling")
    );
    let (_, node) = agent.get(&format!("/v1/node/{node_id}"));
    let node: Value = serde_json::from_str(&node).unwrap();
    assert_eq!(node["SchedulingEligibility"], "ineligible");

    // Scaling up cannot place on the only node; the running allocation stays.
    let two = agent.write("two.nomad.hcl", &sleep_job("web", 2));
    let out = agent.cli(&["job", "run", two.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "placement failure exits 2");
    assert_eq!(running(&agent), 1);

    agent.ok(&["node", "eligibility", "-enable", &node_id]);
    eventually(20, "the waiting placement is made", || {
        (running(&agent) == 2).then_some(())
    });

    // Bad input: neither flag, an unknown node, a bad value over HTTP.
    let out = agent.cli(&["node", "eligibility", &node_id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-enable"));
    let out = agent.cli(&["node", "eligibility", "-enable", "ffffffff"]);
    assert_eq!(out.status.code(), Some(1));
    let url = format!("{}/v1/node/{node_id}/eligibility", agent.addr());
    let (status, body) = crate::harness::http(&url, "POST", Some(r#"{"Eligibility":"maybe"}"#));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("maybe"), "{body}");
}

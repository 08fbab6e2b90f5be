//! The docker driver through the dev agent, with the image the tests build (never pulled):
//! the seed example's shape — a small HTTP server on a dynamic port mapped to its `to` port —
//! reachable on the host, its logs readable, restarted by the client when the container is
//! killed, and removed when the job stops.

use crate::harness::{eventually, Agent};
use crate::test_image;
use crate::{allocs, count_status};
use serde_json::Value;
use std::io::{Read, Write};
use std::process::Command;

fn job(image: &str) -> String {
    format!(
        r#"
job "web" {{
  datacenters = ["dc1"]
  group "web" {{
    network {{
      port "http" {{
        to = 8080
      }}
    }}
    restart {{
      attempts = 3
      delay    = "1s"
      interval = "5m"
      mode     = "fail"
    }}
    task "server" {{
      driver = "docker"
      config {{
        image    = "{image}"
        args     = ["http", "8080"]
        ports    = ["http"]
        hostname = "${{NOMAD_ALLOC_INDEX}}.web"
      }}
      resources {{
        cpu    = 100
        memory = 64
      }}
    }}
  }}
}}
"#
    )
}

fn get(addr: &str) -> Option<String> {
    let mut conn = std::net::TcpStream::connect(addr).ok()?;
    conn.write_all(b"GET /hello HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    text.contains("200 OK").then_some(text)
}

#[test]
fn a_docker_server_is_reachable_logged_restarted_and_removed() {
    if !test_image::engine_available() {
        return;
    }
    let image = test_image::ensure().expect("building the test image");
    let agent = Agent::dev();
    let (_, nodes) = agent.get("/v1/nodes");
    let nodes: Value = serde_json::from_str(&nodes).unwrap();
    let node_id = nodes[0]["ID"].as_str().unwrap();
    let (_, node) = agent.get(&format!("/v1/node/{node_id}"));
    let node: Value = serde_json::from_str(&node).unwrap();
    assert_eq!(node["Attributes"]["driver.docker"], "1", "{node}");
    assert_eq!(node["Drivers"]["docker"]["Healthy"], true, "{node}");

    let file = agent.write("web.nomad.hcl", &job(&image));
    agent.ok(&["job", "run", file.to_str().unwrap()]);
    let running = eventually(60, "the web allocation running", || {
        let a = allocs(&agent, "web");
        (count_status(&a, "run", "running") == 1).then_some(a)
    });
    let id = running[0]["ID"].as_str().unwrap().to_string();
    let (_, alloc) = agent.get(&format!("/v1/allocation/{id}"));
    let alloc: Value = serde_json::from_str(&alloc).unwrap();
    let port = &alloc["AllocatedResources"]["Shared"]["Ports"][0];
    assert_eq!(port["To"], 8080, "{port}");
    let addr = format!(
        "{}:{}",
        port["HostIP"].as_str().unwrap(),
        port["Value"].as_i64().unwrap()
    );
    let body = eventually(30, "an answer on the mapped host port", || get(&addr));
    assert!(body.ends_with("hello from 0.web\n"), "{body}");
    let logs = eventually(10, "the request in the task's log", || {
        let text = agent.ok(&["alloc", "logs", &id, "server"]);
        text.contains("GET /hello").then_some(text)
    });
    assert!(logs.starts_with("listening on 8080\n"), "{logs}");
    let stderr = agent.ok(&["alloc", "logs", "-stderr", &id, "server"]);
    assert_eq!(stderr, "stderr works\n");

    // Killing the container: the client restarts the task per its restart policy.
    let before = test_image::containers_of(&id, false);
    assert_eq!(before.len(), 1, "{before:?}");
    let killed = Command::new("docker")
        .args(["kill", &before[0]])
        .output()
        .unwrap();
    assert!(killed.status.success());
    eventually(30, "the task restarted and answering again", || {
        let (_, a) = agent.get(&format!("/v1/allocation/{id}"));
        let a: Value = serde_json::from_str(&a).ok()?;
        let state = &a["TaskStates"]["server"];
        (state["Restarts"].as_i64() == Some(1) && state["State"] == "running")
            .then_some(())
            .and_then(|()| get(&addr))
    });
    let after = test_image::containers_of(&id, false);
    assert_eq!(after.len(), 1);
    assert_ne!(after, before, "a new container");
    let status = agent.ok(&["alloc", "status", &id]);
    assert!(status.contains("Restarting"), "{status}");
    assert!(status.contains("Exit Code: 137"), "{status}");

    agent.ok(&["job", "stop", "web"]);
    eventually(30, "the container removed", || {
        test_image::containers_of(&id, false)
            .is_empty()
            .then_some(())
    });
}

#[test]
fn a_client_killed_and_restarted_takes_over_its_running_container() {
    if !test_image::engine_available() {
        return;
    }
    let image = test_image::ensure().expect("building the test image");
    let server = Agent::dev();
    let mut client = Agent::client_of(&server, "");
    // Only the client-only agent takes the job.
    let dev_node = server.node_id_at(&server.ip);
    server.ok(&["node", "eligibility", "-disable", &dev_node]);
    let file = server.write("web.nomad.hcl", &job(&image));
    server.ok(&["job", "run", file.to_str().unwrap()]);
    let running = eventually(60, "the web allocation running", || {
        let a = allocs(&server, "web");
        (count_status(&a, "run", "running") == 1).then_some(a)
    });
    let id = running[0]["ID"].as_str().unwrap().to_string();
    let before = test_image::containers_of(&id, false);
    assert_eq!(before.len(), 1, "{before:?}");

    client.kill9_and_restart();
    eventually(30, "the task re-attached", || {
        let (_, a) = server.get(&format!("/v1/allocation/{id}"));
        let a: Value = serde_json::from_str(&a).ok()?;
        let state = &a["TaskStates"]["server"];
        let events = state["Events"].as_array()?;
        events
            .iter()
            .any(|e| e["DisplayMessage"] == "Task re-attached by client")
            .then_some(())
            .filter(|()| state["State"] == "running" && state["Restarts"] == 0)
    });
    // The same container, never restarted, and still answering.
    assert_eq!(test_image::containers_of(&id, true), before);
    let (_, alloc) = server.get(&format!("/v1/allocation/{id}"));
    let alloc: Value = serde_json::from_str(&alloc).unwrap();
    let port = &alloc["AllocatedResources"]["Shared"]["Ports"][0];
    let addr = format!(
        "{}:{}",
        port["HostIP"].as_str().unwrap(),
        port["Value"].as_i64().unwrap()
    );
    let body = eventually(10, "an answer after the takeover", || get(&addr));
    assert!(body.contains("hello from"), "{body}");
    server.ok(&["job", "stop", "web"]);
    eventually(30, "the container removed", || {
        test_image::containers_of(&id, true)
            .is_empty()
            .then_some(())
    });
}

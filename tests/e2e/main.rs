//! End-to-end tests: the real `caravan` binary, driven through its CLI and HTTP API as a Nomad
//! user would.

// A benchmark or test binary outside any async runtime: it measures wall-clock time with
// std's Instant and fails loudly (expect/panic) on broken setup.
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

mod alloc_control;
mod client_restart;
mod docker_driver;
mod exec_driver;
mod harness;
mod node_drain;
mod node_eligibility;
mod node_lost;
mod reschedule;
mod scheduler_config;
// The drivers crate's loading helpers are not needed here.
#[allow(dead_code)]
#[path = "../../crates/drivers/src/docker/test_image.rs"]
mod test_image;

use harness::{eventually, http, Agent};
use serde_json::Value;

fn service_job(count: u32) -> String {
    format!(
        r#"job "web" {{
  datacenters = ["dc1"]
  type        = "service"

  group "web" {{
    count = {count}

    network {{
      port "http" {{}}
    }}

    task "server" {{
      driver = "raw_exec"

      config {{
        command = "/bin/sh"
        args    = ["-c", "echo web $${{NOMAD_ALLOC_INDEX}} port $${{NOMAD_PORT_http}}; echo oops >&2; exec sleep 600"]
      }}

      resources {{
        cpu    = 50
        memory = 32
      }}
    }}
  }}
}}
"#
    )
}

const BATCH_JOB: &str = r#"
variable "word" {
  type    = string
  default = "hello"
}

job "hello" {
  type        = "batch"
  datacenters = ["*"]

  group "say" {
    count = 2

    task "echo" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["-c", "echo ${var.word} from $${NOMAD_JOB_NAME}/$${NOMAD_GROUP_NAME}[$${NOMAD_ALLOC_INDEX}]"]
      }

      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
"#;

/// Allocation list of a job through the HTTP API.
fn allocs(agent: &Agent, job: &str) -> Vec<Value> {
    let (status, body) = agent.get(&format!("/v1/job/{job}/allocations"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn count_status(allocs: &[Value], desired: &str, client: &str) -> usize {
    allocs
        .iter()
        .filter(|a| a["DesiredStatus"] == desired && a["ClientStatus"] == client)
        .count()
}

#[test]
fn service_and_batch_jobs_run_log_scale_and_stop() {
    let agent = Agent::dev();
    let web = agent.write("web.nomad.hcl", &service_job(3));

    let out = agent.ok(&["job", "run", web.to_str().unwrap()]);
    assert!(out.contains("Monitoring evaluation"), "{out}");
    assert!(out.contains("finished with status \"complete\""), "{out}");
    let running = eventually(30, "3 running web allocations", || {
        let a = allocs(&agent, "web");
        (count_status(&a, "run", "running") == 3).then_some(a)
    });

    // Logs of one allocation, by short ID prefix, stdout and stderr.
    let id = running[0]["ID"].as_str().unwrap().to_string();
    let short = &id[..8];
    let stdout = eventually(10, "stdout", || {
        let out = agent.cli(&["alloc", "logs", short]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.contains("web ")).then_some(text)
    });
    assert!(
        stdout.contains(" port 2") || stdout.contains(" port 3"),
        "dynamic port in range: {stdout}"
    );
    let stderr = agent.ok(&["alloc", "logs", "-stderr", short, "server"]);
    assert_eq!(stderr.trim(), "oops");

    let status = agent.ok(&["job", "status", "web"]);
    for needle in ["ID            = web", "Summary", "Allocations", "running"] {
        assert!(status.contains(needle), "missing {needle:?} in:\n{status}");
    }
    let alloc_status = agent.ok(&["alloc", "status", short]);
    assert!(alloc_status.contains("Started"), "{alloc_status}");
    let list = agent.ok(&["status"]);
    assert!(list.contains("web") && list.contains("service"), "{list}");

    // Batch job: both allocations complete and print the HCL2 variable.
    let hello = agent.write("hello.nomad.hcl", BATCH_JOB);
    agent.ok(&[
        "job",
        "run",
        "-var",
        "word=bonjour",
        hello.to_str().unwrap(),
    ]);
    let done = eventually(30, "2 complete batch allocations", || {
        let a = allocs(&agent, "hello");
        (count_status(&a, "run", "complete") == 2).then_some(a)
    });
    let batch_id = done[0]["ID"].as_str().unwrap();
    let text = agent.ok(&["alloc", "logs", batch_id, "echo"]);
    assert!(text.starts_with("bonjour from hello/say["), "{text}");
    let (_, job_json) = agent.get("/v1/job/hello");
    let job: Value = serde_json::from_str(&job_json).unwrap();
    assert_eq!(job["Status"], "dead", "batch job is dead once complete");

    // Plan a scale-down, then apply it with the plan's check index.
    std::fs::write(&web, service_job(1)).unwrap();
    let plan = agent.cli(&["job", "plan", web.to_str().unwrap()]);
    let plan_text = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert_eq!(
        plan.status.code(),
        Some(1),
        "plan that destroys allocs exits 1:\n{plan_text}"
    );
    assert!(plan_text.contains("Count: \"3\" => \"1\""), "{plan_text}");
    let index = plan_text
        .lines()
        .find_map(|l| l.strip_prefix("Job Modify Index: "))
        .expect("Job Modify Index line")
        .trim()
        .to_string();
    // A stale index is refused.
    let stale = agent.cli(&["job", "run", "-check-index", "999", web.to_str().unwrap()]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&stale.stderr).contains("conflicting job modify index")
            || String::from_utf8_lossy(&stale.stdout).contains("conflicting job modify index")
    );
    agent.ok(&["job", "run", "-check-index", &index, web.to_str().unwrap()]);
    eventually(30, "1 running web allocation", || {
        let a = allocs(&agent, "web");
        (count_status(&a, "run", "running") == 1 && count_status(&a, "stop", "complete") == 2)
            .then_some(())
    });

    // Stop: every allocation stops and its processes are gone.
    agent.ok(&["job", "stop", "web"]);
    eventually(30, "web stopped", || {
        let a = allocs(&agent, "web");
        (count_status(&a, "run", "running") == 0 && count_status(&a, "stop", "complete") == 3)
            .then_some(())
    });
    let (_, job_json) = agent.get("/v1/job/web");
    let job: Value = serde_json::from_str(&job_json).unwrap();
    assert_eq!(job["Stop"], true);
}

#[test]
fn bad_job_files_and_bad_json_get_clear_errors() {
    let agent = Agent::dev();
    let broken = agent.write(
        "broken.nomad.hcl",
        "job \"x\" {\n  group \"g\" {\n    count = \n  }\n}\n",
    );
    let out = agent.cli(&["job", "run", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.nomad.hcl:3:"),
        "error names file:line:col: {err}"
    );

    let invalid = agent.write(
        "invalid.nomad.hcl",
        "job \"x\" {\n  type = \"nope\"\n  group \"g\" {\n    count = -1\n  }\n}\n",
    );
    let out = agent.cli(&["job", "validate", invalid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in ["nope", "count", "task"] {
        assert!(
            text.to_lowercase().contains(needle),
            "all problems listed; missing {needle}: {text}"
        );
    }

    let (status, body) = http(
        &format!("{}/v1/jobs", agent.addr()),
        "PUT",
        Some("{\"Job\": {"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(!body.is_empty());
    let (status, body) = http(
        &format!("{}/v1/jobs", agent.addr()),
        "PUT",
        Some(r#"{"Job": {"ID": "x", "Type": "service", "TaskGroups": []}}"#),
    );
    assert_eq!(status, 400, "{body}");
    let (status, _) = agent.get("/v1/job/does-not-exist");
    assert_eq!(status, 404);
    // Nothing was half-written.
    let (_, jobs) = agent.get("/v1/jobs");
    assert_eq!(jobs.trim(), "[]");
}

#[test]
fn unplaceable_job_blocks_then_places_when_a_matching_node_joins() {
    let server = Agent::dev();
    let job = r#"job "picky" {
  datacenters = ["dc1"]
  constraint {
    attribute = "${meta.rack}"
    value     = "r2"
  }
  group "g" {
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
    let file = server.write("picky.nomad.hcl", job);
    let out = server.cli(&["job", "run", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "placement failure exits 2:\n{text}"
    );
    assert!(
        text.contains("${meta.rack} = r2"),
        "names the constraint:\n{text}"
    );
    let status = server.ok(&["job", "status", "picky"]);
    assert!(status.contains("Placement Failure"), "{status}");
    assert!(status.contains("${meta.rack} = r2"), "{status}");

    let client = Agent::client_of(&server, "meta {\n    rack = \"r2\"\n  }");
    let placed = eventually(30, "picky placed on the new node", || {
        let a = allocs(&server, "picky");
        a.iter()
            .find(|a| a["ClientStatus"] == "running")
            .and_then(|a| a["NodeID"].as_str().map(str::to_string))
    });
    let (_, node) = server.get(&format!("/v1/node/{placed}"));
    let node: Value = serde_json::from_str(&node).unwrap();
    assert_eq!(node["Meta"]["rack"], "r2");
    drop(client);
}

//! A failing service task is rescheduled per its `reschedule` block, after its delay, through
//! a follow-up evaluation.

use crate::harness::{eventually, Agent};
use serde_json::Value;

const FAILING_JOB: &str = r#"job "flaky" {
  datacenters = ["dc1"]
  type        = "service"

  group "g" {
    count = 1

    restart {
      attempts = 0
      mode     = "fail"
    }

    reschedule {
      delay          = "6s"
      delay_function = "constant"
      unlimited      = true
    }

    task "t" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["-c", "exit 3"]
      }

      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
"#;

fn get_json(agent: &Agent, path: &str) -> Value {
    let (status, body) = agent.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

#[test]
fn a_failed_allocation_is_rescheduled_after_its_delay() {
    let agent = Agent::dev();
    let file = agent.write("flaky.nomad.hcl", FAILING_JOB);
    agent.ok(&["job", "run", "-detach", file.to_str().unwrap()]);

    // The first allocation fails; a follow-up evaluation waits out the 6 s delay.
    let first = eventually(20, "the first allocation fails", || {
        let allocs = get_json(&agent, "/v1/job/flaky/allocations");
        allocs
            .as_array()?
            .iter()
            .find(|a| a["ClientStatus"] == "failed")
            .cloned()
    });
    let first_id = first["ID"].as_str().unwrap().to_string();
    let followup = eventually(20, "a follow-up evaluation is created", || {
        let evals = get_json(&agent, "/v1/job/flaky/evaluations");
        evals
            .as_array()?
            .iter()
            .find(|e| e["TriggeredBy"] == "alloc-failure" && e["WaitUntil"].is_string())
            .cloned()
    });
    let full = get_json(&agent, &format!("/v1/allocation/{first_id}"));
    assert_eq!(full["FollowupEvalID"], followup["ID"], "{full}");

    // After the delay a replacement is placed, pointing back at the failed allocation.
    let replacement = eventually(30, "the replacement is placed", || {
        let allocs = get_json(&agent, "/v1/job/flaky/allocations");
        let id = allocs
            .as_array()?
            .iter()
            .find(|a| a["ID"] != first_id.as_str())?["ID"]
            .as_str()?
            .to_string();
        Some(get_json(&agent, &format!("/v1/allocation/{id}")))
    });
    assert_eq!(replacement["PreviousAllocation"], first_id.as_str());
    let created = replacement["CreateTime"].as_i64().unwrap();
    let failed_at = full["ModifyTime"].as_i64().unwrap();
    assert!(
        created - failed_at >= 5_000_000_000,
        "not before the delay: created {created}, failed {failed_at}"
    );
}

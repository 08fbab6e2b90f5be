//! `caravan operator scheduler get-config / set-config` and
//! `/v1/operator/scheduler/configuration` against a dev agent.

use crate::harness::{http, Agent};
use serde_json::Value;

#[test]
fn scheduler_configuration_is_read_and_set_through_cli_and_http() {
    let agent = Agent::dev();
    let out = agent.ok(&["operator", "scheduler", "get-config"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("Scheduler Algorithm") && l.ends_with("= binpack")),
        "{out}"
    );

    let out = agent.ok(&[
        "operator",
        "scheduler",
        "set-config",
        "-scheduler-algorithm=spread",
        "-memory-oversubscription=true",
    ]);
    assert!(out.contains("Scheduler configuration updated!"), "{out}");
    let (status, body) = agent.get("/v1/operator/scheduler/configuration");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    let c = &v["SchedulerConfig"];
    assert_eq!(c["SchedulerAlgorithm"], "spread");
    assert_eq!(c["MemoryOversubscriptionEnabled"], true);
    assert_eq!(c["PreemptionConfig"]["SystemSchedulerEnabled"], true);
    let index = c["ModifyIndex"].as_u64().expect("ModifyIndex");
    assert!(index > 0);
    assert_eq!(v["Index"].as_u64(), Some(index));

    // A stale check-and-set changes nothing.
    let stale = (index - 1).to_string();
    let out = agent.cli(&[
        "operator",
        "scheduler",
        "set-config",
        "-scheduler-algorithm=binpack",
        &format!("-check-index={stale}"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("could not be atomically updated"));
    let out = agent.ok(&["operator", "scheduler", "get-config", "-json"]);
    let json: Value = serde_json::from_str(&out).expect("get-config -json prints JSON");
    assert_eq!(json["SchedulerAlgorithm"], "spread");

    // Bad input: an unknown algorithm over HTTP, and bad JSON.
    let url = format!("{}/v1/operator/scheduler/configuration", agent.addr());
    let (status, body) = http(&url, "PUT", Some(r#"{"SchedulerAlgorithm":"fill"}"#));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"fill\""), "{body}");
    let (status, body) = http(&url, "PUT", Some("{"));
    assert_eq!(status, 400, "{body}");
    let out = agent.cli(&[
        "operator",
        "scheduler",
        "set-config",
        "-scheduler-algorithm=x",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_new_region_starts_with_the_agents_default_scheduler_config() {
    let agent = Agent::dev_with(
        "server {\n  default_scheduler_config {\n    scheduler_algorithm = \"spread\"\n    preemption_config {\n      batch_scheduler_enabled = true\n    }\n  }\n}\n",
    );
    // Applied by the leader when it takes office, which may be just after the agent answers.
    let v = crate::harness::eventually(10, "the default configuration is applied", || {
        let (status, body) = agent.get("/v1/operator/scheduler/configuration");
        let v: Value = serde_json::from_str(&body).ok()?;
        (status == 200 && v["SchedulerConfig"]["SchedulerAlgorithm"] == "spread").then_some(v)
    });
    let c = &v["SchedulerConfig"];
    assert_eq!(c["PreemptionConfig"]["BatchSchedulerEnabled"], true);
    assert!(c["ModifyIndex"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn a_bad_default_scheduler_config_stops_the_agent_with_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("agent.hcl");
    std::fs::write(
        &config,
        "server {\n  default_scheduler_config {\n    scheduler_algorithm = \"fill\"\n  }\n}\n",
    )
    .expect("write");
    let out = std::process::Command::new(crate::harness::caravan_bin())
        .args(["agent", "-dev", &format!("-config={}", config.display())])
        .output()
        .expect("run caravan");
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("default_scheduler_config") && err.contains("\"fill\""),
        "{err}"
    );
}

#[test]
fn reject_job_registration_and_pause_eval_broker_take_effect() {
    let agent = Agent::dev();
    let file = agent.write("brake.nomad.hcl", &crate::harness::sleep_job("brake", 1));
    let file = file.to_str().unwrap();
    let set = |flag: &str| agent.ok(&["operator", "scheduler", "set-config", flag]);

    set("-reject-job-registration=true");
    let out = agent.cli(&["job", "run", "-detach", file]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("disabled by the scheduler configuration"),
        "{err}"
    );
    set("-reject-job-registration=false");

    // Paused: the job is registered and its evaluation waits, unscheduled.
    set("-pause-eval-broker=true");
    agent.ok(&["job", "run", "-detach", file]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (_, body) = agent.get("/v1/job/brake/allocations");
    assert_eq!(body.trim(), "[]", "nothing scheduled while paused");
    let (_, evals) = agent.get("/v1/job/brake/evaluations");
    let evals: Value = serde_json::from_str(&evals).unwrap();
    assert_eq!(evals[0]["Status"], "pending", "{evals}");
    set("-pause-eval-broker=false");
    crate::harness::eventually(20, "the paused evaluation runs", || {
        let (_, body) = agent.get("/v1/job/brake/allocations");
        let allocs: Value = serde_json::from_str(&body).ok()?;
        (allocs.as_array()?.len() == 1).then_some(())
    });
}

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

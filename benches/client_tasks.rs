//! Client benchmarks (issue 5), on the real release binary: a server (the dev agent, made
//! ineligible) and one client-only agent on loopback.
//! - Allocation placed to task running, per driver (`raw_exec`, `exec` when root, `docker` when
//!   an engine answers, with the test image already in it): the allocation's `CreateTime`
//!   (set when the plan commits) to its task's `Started` event (set by the client), both from
//!   this machine's clock.
//! - One job of `COUNT` (default 100) raw_exec allocations: allocations started per second on
//!   the one client (first placed to last started), and the client agent's RSS once all run.
//!
//! Run: `cargo bench --bench client_tasks` (`RUNS=20` jobs per driver, `COUNT=100`).

#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    dead_code
)]

#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "../crates/drivers/src/docker/test_image.rs"]
mod test_image;

use harness::{eventually, Agent};
use serde_json::Value;
use std::time::Duration;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn job(id: &str, count: usize, driver: &str, config: &str) -> String {
    format!(
        "job \"{id}\" {{\n  datacenters = [\"dc1\"]\n  group \"g\" {{\n    count = {count}\n    \
         task \"t\" {{\n      driver = \"{driver}\"\n      config {{\n{config}\n      }}\n      \
         resources {{\n        cpu = 10\n        memory = 16\n      }}\n    }}\n  }}\n}}\n"
    )
}

fn allocs(agent: &Agent, job: &str) -> Vec<Value> {
    let (_, body) = agent.get(&format!("/v1/job/{job}/allocations"));
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// (CreateTime, Started event time) in ns of every running allocation of `job`.
fn started(agent: &Agent, job: &str) -> Vec<(i64, i64)> {
    allocs(agent, job)
        .iter()
        .filter(|a| a["ClientStatus"] == "running")
        .filter_map(|a| {
            let id = a["ID"].as_str()?;
            let (_, body) = agent.get(&format!("/v1/allocation/{id}"));
            let full: Value = serde_json::from_str(&body).ok()?;
            let created = full["CreateTime"].as_i64()?;
            let started = full["TaskStates"]["t"]["Events"]
                .as_array()?
                .iter()
                .find(|e| e["Type"] == "Started")?["Time"]
                .as_i64()?;
            Some((created, started))
        })
        .collect()
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let runs = env_num("RUNS", 20);
    let count = env_num("COUNT", 100);
    let server = Agent::dev();
    let client = Agent::client_of(&server, "");
    // Only the client-only agent takes work.
    let client_pid = client.pid();
    let dev_node = server.node_id_at(&server.ip);
    server.ok(&["node", "eligibility", "-disable", &dev_node]);
    let idle_rss = rss_mb(client_pid);

    let mut drivers: Vec<(&str, String)> = vec![(
        "raw_exec",
        "        command = \"/bin/sleep\"\n        args = [\"600\"]".into(),
    )];
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        drivers.push((
            "exec",
            "        command = \"/bin/sleep\"\n        args = [\"600\"]".into(),
        ));
    }
    if test_image::engine_available() {
        let image = test_image::ensure().expect("test image");
        drivers.push((
            "docker",
            format!("        image = \"{image}\"\n        args = [\"sleep\", \"600\"]"),
        ));
    }
    println!("| driver | placed -> running p50 | p99 | max | runs |");
    println!("|---|---|---|---|---|");
    for (driver, config) in &drivers {
        let mut ms = Vec::new();
        for i in 0..runs {
            let id = format!("{driver}-{i}");
            let file = server.write(&format!("{id}.nomad.hcl"), &job(&id, 1, driver, config));
            server.ok(&["job", "run", "-detach", file.to_str().unwrap()]);
            let times = eventually(60, "the task running", || {
                let t = started(&server, &id);
                (t.len() == 1).then_some(t)
            });
            ms.push((times[0].1 - times[0].0) as f64 / 1e6);
            server.ok(&["job", "stop", "-detach", "-purge", &id]);
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "| {driver} | {:.1} ms | {:.1} ms | {:.1} ms | {runs} |",
            pct(&ms, 0.5),
            pct(&ms, 0.99),
            ms[ms.len() - 1]
        );
    }
    // Let the stopped tasks go before counting memory.
    std::thread::sleep(Duration::from_secs(3));

    let file = server.write(
        "many.nomad.hcl",
        &job(
            "many",
            count,
            "raw_exec",
            "        command = \"/bin/sleep\"\n        args = [\"600\"]",
        ),
    );
    server.ok(&["job", "run", "-detach", file.to_str().unwrap()]);
    let times = eventually(120, "every allocation running", || {
        let t = started(&server, "many");
        (t.len() == count).then_some(t)
    });
    let first_created = times.iter().map(|t| t.0).min().unwrap();
    let last_started = times.iter().map(|t| t.1).max().unwrap();
    let secs = (last_started - first_created) as f64 / 1e9;
    std::thread::sleep(Duration::from_secs(5));
    println!();
    println!("| figure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| {count} raw_exec allocations on one client: first placed to last started | {:.2} s ({:.0} allocations/s) | |",
        secs,
        count as f64 / secs
    );
    println!("| client agent RSS, idle | {idle_rss:.1} MB | |");
    println!(
        "| client agent RSS with {count} allocations running | {:.1} MB | < 60 MB |",
        rss_mb(client_pid)
    );
}

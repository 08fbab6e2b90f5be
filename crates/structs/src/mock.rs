//! Fixtures for tests in every crate: a ready node and a small service job.

use crate::*;
use std::collections::BTreeMap;

/// A ready linux node with 4000 MHz, 8192 MB and the `raw_exec` and `mock` drivers.
pub fn node(id: &str) -> Node {
    let mut attributes = BTreeMap::new();
    for (k, v) in [
        ("kernel.name", "linux"),
        ("kernel.version", "6.1.0"),
        ("os.name", "debian"),
        ("cpu.arch", "amd64"),
        ("cpu.numcores", "4"),
        ("unique.hostname", id),
        ("unique.network.ip-address", "127.0.0.1"),
        ("driver.raw_exec", "1"),
        ("driver.mock", "1"),
        ("nomad.version", VERSION),
    ] {
        attributes.insert(k.to_string(), v.to_string());
    }
    let drivers = ["raw_exec", "mock"]
        .iter()
        .map(|d| {
            (
                d.to_string(),
                DriverInfo {
                    detected: true,
                    healthy: true,
                    health_description: "Healthy".into(),
                    ..Default::default()
                },
            )
        })
        .collect();
    Node {
        id: id.to_string(),
        secret_id: format!("secret-{id}"),
        datacenter: "dc1".into(),
        name: id.to_string(),
        http_addr: "127.0.0.1:4646".into(),
        attributes,
        node_resources: NodeResources {
            cpu: NodeCpuResources {
                cpu_shares: 4000,
                total_cpu_cores: 4,
                reservable_cpu_cores: vec![0, 1, 2, 3],
            },
            memory: NodeMemoryResources { memory_mb: 8192 },
            disk: NodeDiskResources { disk_mb: 100_000 },
            networks: vec![NodeNetworkResource {
                mode: "host".into(),
                device: "lo".into(),
                cidr: "127.0.0.1/32".into(),
                ip: "127.0.0.1".into(),
            }],
            min_dynamic_port: 20000,
            max_dynamic_port: 32000,
        },
        node_class: String::new(),
        node_pool: "default".into(),
        drivers,
        status: NODE_STATUS_READY.into(),
        scheduling_eligibility: NODE_ELIGIBLE.into(),
        ..Default::default()
    }
}

/// A service job `id` with one group `web` of `count` mock tasks (cpu 500, memory 256).
pub fn job(id: &str, count: i64) -> Job {
    let task = Task {
        name: "web".into(),
        driver: "mock".into(),
        resources: Resources {
            cpu: 500,
            memory_mb: 256,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut job = Job {
        id: id.to_string(),
        name: id.to_string(),
        job_type: JOB_TYPE_SERVICE.into(),
        task_groups: vec![TaskGroup {
            name: "web".into(),
            count,
            tasks: vec![task],
            ..Default::default()
        }],
        ..Default::default()
    };
    canonicalize::canonicalize(&mut job);
    job
}

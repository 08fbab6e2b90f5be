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

/// Allocation `k` of `job`'s group `web`, running on `node-<k % 1000>`: the shape of a large
/// state (C1M-like) for snapshot and restart benchmarks.
pub fn running_alloc(job: &std::sync::Arc<Job>, k: usize) -> Allocation {
    let mut tasks = VecMap::new();
    tasks.insert(
        "web".to_string(),
        AllocatedTaskResources {
            cpu: AllocatedCpuResources { cpu_shares: 500 },
            memory: AllocatedMemoryResources {
                memory_mb: 256,
                memory_max_mb: 0,
            },
        },
    );
    let mut task_states = VecMap::new();
    task_states.insert(
        "web".to_string(),
        TaskState {
            state: "running".into(),
            started_at: Some("2026-11-22T10:00:00Z".into()),
            events: ["Received", "Task Setup", "Started"]
                .iter()
                .map(|t| TaskEvent {
                    event_type: t.to_string(),
                    time: 1_700_000_000_000_000_000,
                    display_message: format!("{t} event"),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
    );
    Allocation {
        id: derive_uuid(&job.id, k as u64),
        namespace: "default".into(),
        eval_id: derive_uuid("eval", 0),
        name: format!("{}.web[{k}]", job.id),
        node_id: format!("node-{:04}", k % 1000),
        node_name: format!("node-{:04}", k % 1000),
        job_id: job.id.clone(),
        job: Some(job.clone()),
        task_group: "web".into(),
        allocated_resources: AllocatedResources {
            tasks,
            ..Default::default()
        },
        desired_status: "run".into(),
        client_status: "running".into(),
        task_states,
        ..Default::default()
    }
}

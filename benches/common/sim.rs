//! The simulated region of the C1M shape, shared by `c1m` (a real 3-server region) and
//! `scheduler` (in process): nodes and jobs.

use structs::{mock, Node, NodeNetworkResource};

/// Prefix of every job ID (`c1m-000042`); the poller lists jobs by it.
pub(crate) const JOB_PREFIX: &str = "c1m-";
const DATACENTERS: [&str; 4] = ["dc1", "dc2", "dc3", "dc4"];
const NODE_CLASSES: [&str; 3] = ["general", "compute", "storage"];

/// A simulated client node: 4-16 cores of 2.6 GHz, 4 GiB per core, 25 GB of disk per core, a
/// host network with Nomad's dynamic port range, the mock and raw_exec drivers, spread over
/// four datacenters and three node classes.
pub(crate) fn sim_node(i: usize) -> Node {
    let mut node = mock::node(&sim_node_id(i));
    let cores: i64 = [4, 8, 12, 16, 6][i % 5];
    node.name = format!("sim-{i:05}");
    node.secret_id = format!("secret-{i}");
    node.datacenter = DATACENTERS[i % DATACENTERS.len()].into();
    node.node_class = NODE_CLASSES[(i / DATACENTERS.len()) % NODE_CLASSES.len()].into();
    node.node_resources.cpu.cpu_shares = cores * 2600;
    node.node_resources.cpu.total_cpu_cores = cores;
    node.node_resources.cpu.reservable_cpu_cores = (0..cores).collect();
    node.node_resources.memory.memory_mb = cores * 4096;
    node.node_resources.disk.disk_mb = cores * 25_000;
    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    node.node_resources.networks = vec![NodeNetworkResource {
        mode: "host".into(),
        device: "eth0".into(),
        cidr: format!("{ip}/32"),
        ip: ip.clone(),
    }];
    node.node_resources.min_dynamic_port = 20000;
    node.node_resources.max_dynamic_port = 32000;
    node.http_addr = format!("{ip}:4646");
    for (k, v) in [
        ("cpu.numcores", cores.to_string()),
        ("unique.hostname", node.name.clone()),
        ("unique.network.ip-address", ip),
        ("node.class", node.node_class.clone()),
    ] {
        node.attributes.insert(k.to_string(), v);
    }
    node
}

/// Job `j`: one group of `count` mock tasks of 100 MHz / 128 MB, in every datacenter.
pub(crate) fn sim_job(j: usize, count: i64) -> structs::Job {
    let mut job = mock::job(&format!("{JOB_PREFIX}{j:06}"), count);
    job.datacenters = DATACENTERS.iter().map(|d| d.to_string()).collect();
    let task = &mut job.task_groups[0].tasks[0];
    task.resources.cpu = 100;
    task.resources.memory_mb = 128;
    job
}

/// The ID of simulated node `i`: a UUID as random-looking as a real node's (derived, so runs
/// repeat). IDs sharing a 24-character prefix made every comparison of node IDs in the state's
/// maps scan that prefix, which no real region pays.
pub(crate) fn sim_node_id(i: usize) -> String {
    structs::derive_uuid("c1m-sim-node", i as u64)
}

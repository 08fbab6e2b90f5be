//! Capacity accounting: what a node has, what its allocations use, and whether a set of
//! allocations fits. Shared by placement and by the leader's plan applier.

use state::StateStore;
use std::collections::BTreeSet;
use structs::{Allocation, Node};

/// Resources in use on a node: the state's per-node usage type (`state::AllocUsage`).
pub use state::AllocUsage as NodeUsage;

/// A node's usage in `snap` (kept per node as allocations change) with its reserved ports,
/// less the live allocations named in `without` that are on it (those a plan stops or replaces
/// in place; each counted once however often it is named).
pub fn usage_without<'a>(
    snap: &StateStore,
    node: &Node,
    without: impl IntoIterator<Item = &'a String>,
) -> NodeUsage {
    usage_from(snap, node, snap.node_usage(&node.id), without)
}

/// The same, from the node's usage in `snap` already looked up ([`StateStore::usage_along`]).
pub fn usage_from<'a>(
    snap: &StateStore,
    node: &Node,
    mut usage: NodeUsage,
    without: impl IntoIterator<Item = &'a String>,
) -> NodeUsage {
    usage.ports.extend(reserved_ports(node));
    let mut seen = BTreeSet::new();
    for id in without {
        if !seen.insert(id) {
            continue;
        }
        if let Some(old) = snap
            .alloc_by_id(id)
            .filter(|a| !a.terminal() && a.node_id == node.id)
        {
            usage.remove(old);
        }
    }
    usage
}

/// The host ports the operator reserved on a node.
pub fn reserved_ports(node: &Node) -> BTreeSet<i64> {
    parse_port_list(&node.reserved_resources.networks.reserved_host_ports)
}

/// What a node offers to allocations: its resources minus what the operator reserved.
pub fn capacity(node: &Node) -> (i64, i64, i64) {
    let r = &node.node_resources;
    let res = &node.reserved_resources;
    (
        r.cpu.cpu_shares - res.cpu.cpu_shares,
        r.memory.memory_mb - res.memory.memory_mb,
        r.disk.disk_mb - res.disk.disk_mb,
    )
}

/// Checks that `allocs` (every non-terminal allocation meant to be on the node) fit. The error
/// names the exhausted dimension, as Nomad's `DimensionExhausted` keys do.
pub fn node_fits<'a>(
    node: &Node,
    allocs: impl IntoIterator<Item = &'a Allocation>,
) -> Result<(), String> {
    let mut base = NodeUsage::default();
    base.ports.extend(reserved_ports(node));
    fits_on(node, base, allocs)
}

/// Checks that `allocs` fit on a node already using `base` (its other allocations and
/// reserved ports): no port taken twice, and cpu, memory and disk within the node's capacity.
pub fn fits_on<'a>(
    node: &Node,
    base: NodeUsage,
    allocs: impl IntoIterator<Item = &'a Allocation>,
) -> Result<(), String> {
    let (cpu, mem, disk) = capacity(node);
    let mut usage = base;
    for alloc in allocs {
        if alloc.terminal() {
            continue;
        }
        for p in &alloc.allocated_resources.shared.ports {
            if usage.ports.contains(&p.value) {
                return Err(format!("network: port collision {}={}", p.label, p.value));
            }
        }
        usage.add(alloc);
    }
    if usage.cpu > cpu {
        return Err("cpu".into());
    }
    if usage.memory_mb > mem {
        return Err("memory".into());
    }
    if usage.disk_mb > disk {
        return Err("disk".into());
    }
    Ok(())
}

/// Parses Nomad's port list syntax: `"22,80,8000-8010"`. Malformed parts are skipped.
pub fn parse_port_list(list: &str) -> BTreeSet<i64> {
    let mut ports = BTreeSet::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
                    if b >= a && b - a <= 65_535 {
                        ports.extend(a..=b);
                    }
                }
            }
            None => {
                if let Ok(p) = part.parse() {
                    ports.insert(p);
                }
            }
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;
    use structs::{mock, AllocatedPortMapping, AllocatedTaskResources};

    fn alloc(cpu: i64, mem: i64, port: Option<i64>) -> Allocation {
        let mut a = Allocation {
            desired_status: "run".into(),
            client_status: "running".into(),
            ..Default::default()
        };
        let mut t = AllocatedTaskResources::default();
        t.cpu.cpu_shares = cpu;
        t.memory.memory_mb = mem;
        a.allocated_resources.tasks.insert("t".into(), t);
        if let Some(p) = port {
            a.allocated_resources
                .shared
                .ports
                .push(AllocatedPortMapping {
                    label: "http".into(),
                    value: p,
                    ..Default::default()
                });
        }
        a
    }

    #[test]
    fn fits_and_exhausts() {
        let node = mock::node("n1");
        assert!(node_fits(&node, [&alloc(2000, 4000, None), &alloc(2000, 4000, None)]).is_ok());
        assert_eq!(
            node_fits(&node, [&alloc(3000, 1, None), &alloc(2000, 1, None)]).unwrap_err(),
            "cpu"
        );
        assert_eq!(
            node_fits(&node, [&alloc(1, 8000, None), &alloc(1, 500, None)]).unwrap_err(),
            "memory"
        );
        assert!(
            node_fits(&node, [&alloc(1, 1, Some(8080)), &alloc(1, 1, Some(8080))])
                .unwrap_err()
                .starts_with("network: port collision")
        );
        let mut stopped = alloc(4000, 8192, None);
        stopped.desired_status = "stop".into();
        assert!(node_fits(&node, [&stopped, &alloc(4000, 8192, None)]).is_ok());
    }

    #[test]
    fn reserved_ports_collide() {
        let mut node = mock::node("n1");
        node.reserved_resources.networks.reserved_host_ports = "22,8000-8002".into();
        assert!(node_fits(&node, [&alloc(1, 1, Some(8001))]).is_err());
        assert_eq!(parse_port_list("22, 80,bad,90-88").len(), 2);
    }
}

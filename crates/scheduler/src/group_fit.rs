//! Whether a task group fits on a node, and the resources it gets there (cpu, memory, disk,
//! reserved and dynamic ports). Placement checks many candidates per allocation, so the check
//! is split from building the result: a group without ports gets the same resources on every
//! node, built once ([`GroupNeeds::base`]).

use crate::fit::{capacity, NodeUsage};
use crate::rank::SeededRng;
use std::collections::BTreeSet;
use structs::{AllocatedPortMapping, AllocatedResources, AllocatedTaskResources, Node, TaskGroup};

/// What a group asks of every node, summed over its tasks, and its resources without ports.
#[derive(Debug, Clone)]
pub(crate) struct GroupNeeds {
    pub(crate) cpu: i64,
    pub(crate) memory_mb: i64,
    pub(crate) disk_mb: i64,
    /// The group's resources before ports are chosen.
    base: AllocatedResources,
    /// `base`'s cpu and memory (what scoring adds to a node's usage).
    pub(crate) alloc_cpu: i64,
    pub(crate) alloc_memory_mb: i64,
    /// The group asks for ports, so its resources depend on the node.
    ports: bool,
}

impl GroupNeeds {
    /// `oversubscribe`: the region allows `memory_max` (Nomad ignores it otherwise).
    pub(crate) fn of(group: &TaskGroup, oversubscribe: bool) -> Self {
        let base = task_resources(group, oversubscribe);
        Self {
            cpu: group.tasks.iter().map(|t| t.resources.cpu).sum(),
            memory_mb: group.tasks.iter().map(|t| t.resources.memory_mb).sum(),
            disk_mb: base.shared.disk_mb,
            alloc_cpu: base.cpu(),
            alloc_memory_mb: base.memory_mb(),
            ports: group.all_networks().next().is_some(),
            base,
        }
    }

    /// True when the group's resources depend on the node (it asks for ports).
    pub(crate) fn asks_ports(&self) -> bool {
        self.ports
    }

    /// The group's resources before ports are chosen: all of them, for a group without
    /// ports, on any node that fits its totals.
    pub(crate) fn base(&self) -> AllocatedResources {
        self.base.clone()
    }

    /// `Err` names the first dimension the node has too little of.
    pub(crate) fn check_totals(&self, node: &Node, usage: &NodeUsage) -> Result<(), &'static str> {
        let (cpu, mem, disk) = capacity(node);
        if usage.cpu + self.cpu > cpu {
            Err("cpu")
        } else if usage.memory_mb + self.memory_mb > mem {
            Err("memory")
        } else if usage.disk_mb + self.disk_mb > disk {
            Err("disk")
        } else {
            Ok(())
        }
    }
}

/// The group's per-task cpu and memory and its disk (no ports).
fn task_resources(group: &TaskGroup, oversubscribe: bool) -> AllocatedResources {
    let mut res = AllocatedResources::default();
    for task in &group.tasks {
        let mut t = AllocatedTaskResources::default();
        t.cpu.cpu_shares = task.resources.cpu;
        t.memory.memory_mb = task.resources.memory_mb;
        if oversubscribe {
            t.memory.memory_max_mb = task.resources.memory_max_mb;
        }
        res.tasks.insert(task.name.clone(), t);
    }
    res.shared.disk_mb = group
        .ephemeral_disk
        .as_ref()
        .map(|d| d.size_mb)
        .unwrap_or(0);
    res
}

/// Computes the group's resources on this node, choosing ports; `Err` names the exhausted
/// dimension.
/// `oversubscribe`: the region allows `memory_max` (Nomad ignores it otherwise).
pub(crate) fn fit_group(
    node: &Node,
    usage: &NodeUsage,
    group: &TaskGroup,
    port_seed: u64,
    oversubscribe: bool,
) -> Result<AllocatedResources, String> {
    let needs = GroupNeeds::of(group, oversubscribe);
    needs.check_totals(node, usage).map_err(String::from)?;
    fit_ports(node, usage, group, port_seed, &needs)
}

/// [`fit_group`] for a group whose totals are known to fit.
pub(crate) fn fit_ports(
    node: &Node,
    usage: &NodeUsage,
    group: &TaskGroup,
    port_seed: u64,
    needs: &GroupNeeds,
) -> Result<AllocatedResources, String> {
    let mut res = needs.base.clone();
    if !needs.ports {
        return Ok(res);
    }
    let ip = node.ip();
    // Ports this group takes, checked alongside the node's.
    let mut chosen = BTreeSet::new();
    let free = |v: &i64, chosen: &BTreeSet<i64>| !usage.ports.contains(v) && !chosen.contains(v);
    for net in group.all_networks() {
        for p in &net.reserved_ports {
            if !free(&p.value, &chosen) {
                return Err(format!(
                    "network: reserved port collision {}={}",
                    p.label, p.value
                ));
            }
            chosen.insert(p.value);
            res.shared.ports.push(AllocatedPortMapping {
                label: p.label.clone(),
                value: p.value,
                to: p.to,
                host_ip: ip.clone(),
            });
        }
    }
    let (lo, hi) = match (
        node.node_resources.min_dynamic_port,
        node.node_resources.max_dynamic_port,
    ) {
        (lo, hi) if lo > 0 && hi >= lo => (lo, hi),
        _ => (20000, 32000),
    };
    let span = (hi - lo + 1) as u64;
    let mut rng = SeededRng(port_seed);
    for net in group.all_networks() {
        for p in &net.dynamic_ports {
            let start = rng.below(span) as i64;
            let value = (0..span as i64)
                .map(|k| lo + (start + k) % span as i64)
                .find(|v| free(v, &chosen))
                .ok_or_else(|| "network: dynamic port selection failed".to_string())?;
            chosen.insert(value);
            res.shared.ports.push(AllocatedPortMapping {
                label: p.label.clone(),
                value,
                to: p.to,
                host_ip: ip.clone(),
            });
        }
    }
    Ok(res)
}

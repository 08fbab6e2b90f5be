//! Harness cases for which nodes a job may use: node pools, datacenter globs, node classes,
//! drivers that are missing or unhealthy, draining nodes, and the operator's reserved
//! resources.

use crate::harness::Harness;
use std::collections::BTreeSet;
use structs::{mock, Constraint, Job, Node};

fn node(id: &str, f: impl FnOnce(&mut Node)) -> Node {
    let mut n = mock::node(id);
    f(&mut n);
    n
}

fn placed_nodes(h: &Harness, job: &str) -> BTreeSet<String> {
    h.live(job).iter().map(|a| a.node_id.clone()).collect()
}

fn job(id: &str, count: i64, f: impl FnOnce(&mut Job)) -> Job {
    let mut j = mock::job(id, count);
    j.datacenters = vec!["*".into()];
    f(&mut j);
    j
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn node_pools_keep_jobs_apart() {
    let mut h = Harness::new(0);
    h.add_node(node("plain", |_| {}));
    h.add_node(node("gpu-1", |n| n.node_pool = "gpu".into()));
    h.add_node(node("gpu-2", |n| n.node_pool = "gpu".into()));
    h.run(job("default-pool", 4, |_| {}));
    assert_eq!(placed_nodes(&h, "default-pool"), set(&["plain"]));
    h.run(job("gpu-job", 4, |j| j.node_pool = "gpu".into()));
    assert_eq!(placed_nodes(&h, "gpu-job"), set(&["gpu-1", "gpu-2"]));
    h.run(job("anywhere", 3, |j| j.node_pool = "all".into()));
    assert_eq!(placed_nodes(&h, "anywhere").len(), 3);
}

#[test]
fn datacenter_globs_select_nodes() {
    let mut h = Harness::new(0);
    h.add_node(node("e1", |n| n.datacenter = "eu-west-1".into()));
    h.add_node(node("e2", |n| n.datacenter = "eu-east-1".into()));
    h.add_node(node("u1", |n| n.datacenter = "us-east-1".into()));
    h.run(job("eu", 4, |j| j.datacenters = vec!["eu-*".into()]));
    assert_eq!(placed_nodes(&h, "eu"), set(&["e1", "e2"]));
    let out = h.run(job("ap", 1, |j| j.datacenters = vec!["ap-*".into()]));
    assert_eq!(out.queued.get("web"), Some(&1), "no node in scope");
}

#[test]
fn node_class_constraints_and_driver_health_filter_nodes() {
    let mut h = Harness::new(0);
    h.add_node(node("compute", |n| n.node_class = "compute".into()));
    h.add_node(node("storage", |n| n.node_class = "storage".into()));
    h.add_node(node("sick", |n| {
        n.node_class = "compute".into();
        if let Some(d) = n.drivers.get_mut("mock") {
            d.healthy = false;
        }
    }));
    let out = h.run(job("c", 3, |j| {
        j.constraints.push(Constraint {
            l_target: "${node.class}".into(),
            operand: "=".into(),
            r_target: "compute".into(),
        })
    }));
    assert_eq!(placed_nodes(&h, "c"), set(&["compute"]));
    assert!(out.failed_tg_allocs.is_empty(), "three fit on one node");
    let metric = &h.live("c")[0].metrics;
    assert_eq!(
        metric.constraint_filtered.get("missing drivers"),
        Some(&1),
        "the unhealthy driver's node: {metric:?}"
    );
    assert_eq!(
        metric.constraint_filtered.get("${node.class} = compute"),
        Some(&1)
    );
}

#[test]
fn draining_and_down_nodes_get_nothing() {
    let mut h = Harness::new(0);
    h.add_node(node("ok", |_| {}));
    h.add_node(node("draining", |n| n.drain = true));
    h.add_node(node("down", |n| n.status = "down".into()));
    h.run(job("web", 4, |_| {}));
    assert_eq!(placed_nodes(&h, "web"), set(&["ok"]));
}

#[test]
fn reserved_resources_are_not_offered() {
    // mock nodes have 4000 MHz; tasks take 500. With 3000 reserved, two fit.
    let mut h = Harness::new(0);
    h.add_node(node("n", |n| n.reserved_resources.cpu.cpu_shares = 3000));
    let out = h.run(job("web", 3, |_| {}));
    assert_eq!(h.live("web").len(), 2);
    let metric = &out.failed_tg_allocs["web"];
    assert_eq!(
        metric.dimension_exhausted.get("cpu"),
        Some(&1),
        "{metric:?}"
    );
}

#[test]
fn memory_max_counts_only_when_the_region_allows_oversubscription() {
    let mut h = Harness::new(1);
    let with_max = |id: &str| {
        job(id, 1, |j| {
            j.task_groups[0].tasks[0].resources.memory_max_mb = 1024;
        })
    };
    h.run(with_max("off"));
    let a = &h.live("off")[0];
    assert_eq!(a.allocated_resources.tasks["web"].memory.memory_max_mb, 0);
    h.apply(state::Command::SchedulerSetConfig {
        config: structs::SchedulerConfiguration {
            memory_oversubscription_enabled: true,
            ..Default::default()
        },
        cas: None,
    });
    h.run(with_max("on"));
    let a = &h.live("on")[0];
    assert_eq!(
        a.allocated_resources.tasks["web"].memory.memory_max_mb,
        1024
    );
}

/// The views of the node table the harness keeps between evaluations (as a server does) must
/// follow every change to it: a job with the same scope and constraints as an earlier one
/// sees nodes that registered, changed or left since.
#[test]
fn node_changes_between_evaluations_reach_the_next_placement() {
    let mut h = Harness::new(0);
    let tagged = |id: &str, rack: &str| {
        node(id, |n| {
            n.meta.insert("rack".into(), rack.into());
        })
    };
    let on_rack_a = |id: &str| {
        job(id, 3, |j| {
            j.constraints.push(Constraint {
                l_target: "${meta.rack}".into(),
                operand: "=".into(),
                r_target: "a".into(),
            })
        })
    };
    h.add_node(tagged("n1", "a"));
    h.add_node(tagged("n2", "b"));
    h.run(on_rack_a("first"));
    assert_eq!(placed_nodes(&h, "first"), set(&["n1"]));
    // n2 moves to rack a and n3 joins it: the same constraints now hold on all three.
    h.add_node(tagged("n2", "a"));
    h.add_node(tagged("n3", "a"));
    h.run(on_rack_a("second"));
    assert_eq!(placed_nodes(&h, "second"), set(&["n1", "n2", "n3"]));
    // n1 leaves rack a: nothing of the next job goes there.
    h.add_node(tagged("n1", "c"));
    h.run(on_rack_a("third"));
    assert_eq!(placed_nodes(&h, "third"), set(&["n2", "n3"]));
}

/// A node found full for a group stays full for the rest of the evaluation, and every later
/// placement that walks past it counts it in its metric, as the first did.
#[test]
fn a_node_that_fills_up_is_counted_as_exhausted_by_every_later_placement() {
    // Tasks take 500 MHz of 4000: "small" (3000 reserved) holds two, "big" the rest.
    let mut h = Harness::new(0);
    h.add_node(node("small", |n| {
        n.reserved_resources.cpu.cpu_shares = 3000
    }));
    h.add_node(node("big", |_| {}));
    let out = h.run(job("web", 6, |_| {}));
    assert_eq!(h.live("web").len(), 6);
    // In placement order (the allocations' indexes), with the node each went to.
    let mut placed: Vec<_> = out.plan.node_allocation.values().flatten().collect();
    placed.sort_by_key(|a| a.index());
    let filled = placed
        .iter()
        .enumerate()
        .filter(|(_, a)| a.node_id == "small")
        .map(|(k, _)| k)
        .nth(1)
        .expect("two placements on small");
    assert!(
        filled < 5,
        "some placements came after small filled: {placed:?}"
    );
    for (k, a) in placed.iter().enumerate() {
        let m = &a.metrics;
        assert_eq!(m.nodes_evaluated, 2, "{m:?}");
        if k <= filled {
            assert_eq!(m.nodes_exhausted, 0, "placement {k}: {m:?}");
        } else {
            assert_eq!(m.nodes_exhausted, 1, "placement {k}: {m:?}");
            assert_eq!(m.dimension_exhausted.get("cpu"), Some(&1), "{m:?}");
        }
    }
}

//! Harness cases for ranking beyond bin-packing (affinities, spread blocks, the spread
//! scheduler algorithm) and for `distinct_property`, which also counts per property value.

use crate::harness::Harness;
use state::Command;
use std::collections::BTreeMap;
use structs::{mock, Affinity, Node, SchedulerConfiguration, Spread, SpreadTarget};

fn node(id: &str, dc: &str, rack: &str) -> Node {
    let mut n = mock::node(id);
    n.datacenter = dc.into();
    n.meta.insert("rack".into(), rack.into());
    n
}

fn harness(nodes: &[(&str, &str, &str)]) -> Harness {
    let mut h = Harness::new(0);
    for (id, dc, rack) in nodes {
        h.add_node(node(id, dc, rack));
    }
    h
}

/// Live allocations of a job per value of a node property.
fn placed_by(h: &Harness, job: &str, prop: impl Fn(&Node) -> String) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for a in h.live(job) {
        let n = h
            .state
            .node_by_id(&a.node_id)
            .expect("placed on a known node");
        *out.entry(prop(n)).or_insert(0) += 1;
    }
    out
}

fn by_dc(h: &Harness, job: &str) -> BTreeMap<String, usize> {
    placed_by(h, job, |n| n.datacenter.clone())
}

fn dc_affinity(dc: &str, weight: i64) -> Affinity {
    Affinity {
        l_target: "${node.datacenter}".into(),
        operand: "=".into(),
        r_target: dc.into(),
        weight,
    }
}

fn multi_dc_job(id: &str, count: i64) -> structs::Job {
    let mut job = mock::job(id, count);
    job.datacenters = vec!["*".into()];
    job
}

const SIX: [(&str, &str, &str); 6] = [
    ("a1", "dc1", "r1"),
    ("a2", "dc1", "r2"),
    ("a3", "dc1", "r3"),
    ("b1", "dc2", "r1"),
    ("b2", "dc2", "r2"),
    ("b3", "dc2", "r3"),
];

#[test]
fn affinity_draws_allocations_to_matching_nodes() {
    let mut h = harness(&SIX);
    let mut job = multi_dc_job("web", 3);
    job.affinities.push(dc_affinity("dc2", 100));
    h.run(job);
    assert_eq!(by_dc(&h, "web"), BTreeMap::from([("dc2".into(), 3)]));
    let a = &h.live("web")[0];
    let scored: Vec<f64> = a
        .metrics
        .score_meta_data
        .iter()
        .filter_map(|m| m.scores.node_affinity)
        .collect();
    assert!(!scored.is_empty(), "the metric shows the affinity term");
}

#[test]
fn negative_affinity_keeps_allocations_away() {
    let mut h = harness(&SIX);
    let mut job = multi_dc_job("web", 3);
    job.task_groups[0].tasks[0]
        .affinities
        .push(dc_affinity("dc1", -100));
    h.run(job);
    assert_eq!(by_dc(&h, "web"), BTreeMap::from([("dc2".into(), 3)]));
}

#[test]
fn spread_targets_split_a_group_by_percentage() {
    let nodes: Vec<(String, &str)> = (0..5)
        .map(|i| (format!("a{i}"), "dc1"))
        .chain((0..5).map(|i| (format!("b{i}"), "dc2")))
        .collect();
    let mut h = Harness::new(0);
    for (id, dc) in &nodes {
        h.add_node(node(id, dc, "r"));
    }
    let mut job = multi_dc_job("web", 10);
    job.task_groups[0].spreads.push(Spread {
        attribute: "${node.datacenter}".into(),
        weight: 100,
        spread_target: vec![
            SpreadTarget {
                value: "dc1".into(),
                percent: 80,
            },
            SpreadTarget {
                value: "dc2".into(),
                percent: 20,
            },
        ],
    });
    h.run(job);
    assert_eq!(
        by_dc(&h, "web"),
        BTreeMap::from([("dc1".into(), 8), ("dc2".into(), 2)])
    );
}

#[test]
fn even_spread_balances_a_group_over_an_attribute() {
    // Four nodes in r1, one each in r2 and r3: spreading over nodes alone would put four of
    // six allocations in r1.
    let mut h = harness(&[
        ("a1", "dc1", "r1"),
        ("a2", "dc1", "r1"),
        ("a3", "dc1", "r1"),
        ("a4", "dc1", "r1"),
        ("b1", "dc1", "r2"),
        ("c1", "dc1", "r3"),
    ]);
    let mut job = multi_dc_job("web", 6);
    job.spreads.push(Spread {
        attribute: "${meta.rack}".into(),
        weight: 100,
        spread_target: vec![],
    });
    h.run(job);
    let racks = placed_by(&h, "web", |n| {
        n.meta.get("rack").cloned().unwrap_or_default()
    });
    assert_eq!(
        racks,
        BTreeMap::from([("r1".into(), 2), ("r2".into(), 2), ("r3".into(), 2)])
    );
}

#[test]
fn the_spread_algorithm_prefers_empty_nodes() {
    // Binpack: a second job joins the first one's node (bin_packs_onto_fuller_nodes); with
    // the region's algorithm set to spread, it takes the empty node.
    let mut h = Harness::new(2);
    h.apply(Command::SchedulerSetConfig {
        config: SchedulerConfiguration {
            scheduler_algorithm: "spread".into(),
            ..Default::default()
        },
        cas: None,
    });
    h.run(mock::job("a", 1));
    h.run(mock::job("b", 1));
    assert_ne!(h.live("a")[0].node_id, h.live("b")[0].node_id);
    let scores = &h.live("b")[0].metrics.score_meta_data;
    assert!(scores.iter().any(|m| m.scores.get("binpack").is_some()));
}

fn distinct_rack(limit: &str) -> structs::Constraint {
    structs::Constraint {
        l_target: "${meta.rack}".into(),
        operand: "distinct_property".into(),
        r_target: limit.into(),
    }
}

#[test]
fn distinct_property_limits_allocations_per_value() {
    let mut h = harness(&SIX);
    let mut job = multi_dc_job("web", 5);
    job.task_groups[0].constraints.push(distinct_rack("1"));
    let out = h.run(job);
    let racks = placed_by(&h, "web", |n| {
        n.meta.get("rack").cloned().unwrap_or_default()
    });
    assert_eq!(
        racks,
        BTreeMap::from([("r1".into(), 1), ("r2".into(), 1), ("r3".into(), 1)])
    );
    assert_eq!(out.queued.get("web"), Some(&2), "two cannot be placed");
    let metric = &out.failed_tg_allocs["web"];
    assert!(
        metric
            .constraint_filtered
            .keys()
            .any(|k| k.starts_with("distinct_property")),
        "{metric:?}"
    );
}

#[test]
fn job_level_distinct_property_counts_every_group() {
    let mut h = harness(&SIX);
    let mut job = multi_dc_job("web", 2);
    let mut other = job.task_groups[0].clone();
    other.name = "other".into();
    job.task_groups.push(other);
    job.constraints.push(distinct_rack("1"));
    h.run(job);
    // Four allocations asked over three racks, one per rack across both groups: three fit.
    let racks = placed_by(&h, "web", |n| {
        n.meta.get("rack").cloned().unwrap_or_default()
    });
    assert_eq!(
        racks,
        BTreeMap::from([("r1".into(), 1), ("r2".into(), 1), ("r3".into(), 1)])
    );
}

//! Property tests of the scheduler's safety rules over random clusters and jobs: system jobs
//! run exactly once on every eligible node, a stopped job creates nothing, the same inputs
//! give the same plan, and no node ends over capacity or with a port collision.

use crate::harness::Harness;
use proptest::prelude::*;
use structs::{mock, Job, NetworkResource, Port, NODE_INELIGIBLE};

fn with_ports(mut job: Job, static_port: Option<i64>, dynamic: usize) -> Job {
    let reserved_ports = static_port
        .map(|p| {
            vec![Port {
                label: "fixed".into(),
                value: p,
                ..Default::default()
            }]
        })
        .unwrap_or_default();
    let dynamic_ports = (0..dynamic)
        .map(|i| Port {
            label: format!("d{i}"),
            ..Default::default()
        })
        .collect();
    job.task_groups[0].networks = vec![NetworkResource {
        reserved_ports,
        dynamic_ports,
        ..Default::default()
    }];
    job
}

/// A harness whose nodes `ineligible` (by position) are marked ineligible.
fn cluster(nodes: usize, ineligible: &[bool]) -> Harness {
    let mut h = Harness::new(0);
    for i in 0..nodes {
        let mut n = mock::node(&format!("node-{i}"));
        if ineligible.get(i).copied().unwrap_or(false) {
            n.scheduling_eligibility = NODE_INELIGIBLE.into();
        }
        h.add_node(n);
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn system_jobs_run_once_on_every_eligible_node(
        nodes in 1usize..9,
        ineligible in proptest::collection::vec(any::<bool>(), 9),
        late in 0usize..3,
    ) {
        let mut h = cluster(nodes, &ineligible);
        let mut job = mock::job("sys", 1);
        job.job_type = "system".into();
        h.run(job);
        for i in 0..late {
            h.add_node(mock::node(&format!("late-{i}")));
        }
        h.eval("sys");
        h.eval("sys");
        for node in h.state.nodes() {
            let live = h.state.allocs_by_node(&node.id).iter().filter(|a| !a.terminal()).count();
            let want = usize::from(node.ready_for_work());
            prop_assert_eq!(live, want, "node {}", node.id);
        }
    }

    #[test]
    fn a_stopped_job_creates_nothing(nodes in 1usize..6, count in 0i64..12) {
        let mut h = cluster(nodes, &[]);
        let job = mock::job("web", count);
        h.run(job.clone());
        let before = h.state.allocs_by_job("default", "web").len();
        let mut stopped = job;
        stopped.stop = true;
        let out = h.run(stopped);
        prop_assert!(out.plan.node_allocation.is_empty(), "{:?}", out.plan.node_allocation);
        let all = h.state.allocs_by_job("default", "web");
        prop_assert_eq!(all.len(), before, "nothing new was created");
        prop_assert!(all.iter().all(|a| a.desired_status == "stop"));
        prop_assert!(h.eval("web").plan.node_allocation.is_empty());
    }

    #[test]
    fn the_same_inputs_give_the_same_plan(
        nodes in 1usize..8,
        counts in proptest::collection::vec(1i64..8, 1..4),
        dynamic in 0usize..3,
    ) {
        let run = || {
            let mut h = cluster(nodes, &[]);
            counts
                .iter()
                .enumerate()
                .map(|(i, c)| h.run(with_ports(mock::job(&format!("j{i}"), *c), None, dynamic)))
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(run(), run());
    }

    #[test]
    fn no_node_is_overfilled_or_has_a_port_collision(
        nodes in 1usize..5,
        counts in proptest::collection::vec(1i64..6, 1..4),
        static_port in proptest::option::of(20_000i64..20_003),
        dynamic in 0usize..4,
    ) {
        let mut h = cluster(nodes, &[]);
        for (i, c) in counts.iter().enumerate() {
            h.run(with_ports(mock::job(&format!("j{i}"), *c), static_port, dynamic));
        }
        for node in h.state.nodes() {
            let allocs = h.state.allocs_by_node(&node.id);
            let live: Vec<_> = allocs.iter().filter(|a| !a.terminal()).collect();
            let mut ports: Vec<i64> = live
                .iter()
                .flat_map(|a| a.allocated_resources.shared.ports.iter().map(|p| p.value))
                .collect();
            let n = ports.len();
            ports.sort_unstable();
            ports.dedup();
            prop_assert_eq!(ports.len(), n, "a port is taken twice on {}", node.id);
            prop_assert!(crate::fit::node_fits(node, live.iter().map(|a| a.as_ref())).is_ok());
        }
    }
}

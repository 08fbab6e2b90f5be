//! Test harness: a real state store, fake nodes, and a planner that commits every plan (as the
//! plan applier would when nothing raced it).

use crate::{compute, fit, SchedCtx, SchedOutcome};
use proptest::prelude::*;
use state::{Command, PlanResult, StateStore};
use structs::{mock, Constraint, Evaluation, Job, NetworkResource, Port};

pub(crate) struct Harness {
    pub(crate) state: StateStore,
    /// The clock every evaluation runs at (Unix ns).
    pub(crate) now: i64,
    index: u64,
    evals: u64,
    /// Shared by every evaluation, as a server's workers share theirs.
    nodes: crate::NodeCache,
}

impl Harness {
    pub(crate) fn new(nodes: usize) -> Self {
        let mut h = Harness {
            state: StateStore::new(),
            now: 10,
            nodes: crate::NodeCache::default(),
            index: 0,
            evals: 0,
        };
        for i in 0..nodes {
            h.add_node(mock::node(&format!("node-{i}")));
        }
        h
    }

    fn next(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    /// Commits one command.
    pub(crate) fn apply(&mut self, cmd: Command) {
        let i = self.next();
        self.state.apply(i, cmd).unwrap();
    }

    pub(crate) fn add_node(&mut self, node: structs::Node) {
        let i = self.next();
        self.state
            .apply(
                i,
                Command::NodeRegister {
                    node: Box::new(node),
                    now: 0,
                },
            )
            .unwrap();
    }

    /// Registers the job and runs its evaluation; returns the outcome.
    pub(crate) fn run(&mut self, job: Job) -> SchedOutcome {
        let i = self.next();
        self.state
            .apply(
                i,
                Command::JobRegister {
                    job: Box::new(job.clone()),
                    eval: None,
                    enforce_index: None,
                    now: 1,
                },
            )
            .unwrap();
        self.eval(&job.id)
    }

    pub(crate) fn eval(&mut self, job_id: &str) -> SchedOutcome {
        self.evals += 1;
        let eval = Evaluation {
            id: format!("eval-{}", self.evals),
            namespace: "default".into(),
            job_id: job_id.into(),
            status: "pending".into(),
            ..Default::default()
        };
        self.run_eval(eval)
    }

    /// Runs one evaluation and commits its plan and follow-up evaluations.
    pub(crate) fn run_eval(&mut self, eval: Evaluation) -> SchedOutcome {
        let ctx = SchedCtx {
            now: self.now,
            seed: eval.id.clone(),
            nodes: self.nodes.clone(),
        };
        let out = compute(&self.state, &eval, &ctx);
        let result = PlanResult {
            allocs_upserted: out
                .plan
                .node_allocation
                .values()
                .flatten()
                .cloned()
                .collect(),
            allocs_stopped: out.plan.node_update.values().flatten().cloned().collect(),
            evals: out.followup_evals.clone(),
            now: self.now,
            ..Default::default()
        };
        // Every committed plan must fit on its nodes.
        for (node_id, new) in &out.plan.node_allocation {
            let node = self.state.node_by_id(node_id).unwrap().clone();
            let stopping: Vec<&String> = out
                .plan
                .node_update
                .values()
                .flatten()
                .map(|(id, _)| id)
                .collect();
            let existing = self.state.allocs_by_node(node_id);
            let new_ids: Vec<&String> = new.iter().map(|a| &a.id).collect();
            let all: Vec<&structs::Allocation> = existing
                .iter()
                .map(|a| a.as_ref())
                .filter(|a| !stopping.contains(&&a.id) && !new_ids.contains(&&a.id))
                .chain(new.iter())
                .collect();
            fit::node_fits(&node, all).unwrap();
        }
        let i = self.next();
        self.state.apply(i, Command::PlanApply(result)).unwrap();
        out
    }

    pub(crate) fn live(&self, job_id: &str) -> Vec<std::sync::Arc<structs::Allocation>> {
        self.state
            .allocs_by_job("default", job_id)
            .into_iter()
            .filter(|a| !a.terminal())
            .collect()
    }
}

#[test]
fn places_count_allocations_with_names() {
    let mut h = Harness::new(3);
    let out = h.run(mock::job("web", 3));
    assert_eq!(out.plan.placed(), 3);
    assert!(out.failed_tg_allocs.is_empty());
    let mut names: Vec<String> = h.live("web").iter().map(|a| a.name.clone()).collect();
    names.sort();
    assert_eq!(names, vec!["web.web[0]", "web.web[1]", "web.web[2]"]);
    assert_eq!(out.annotations.desired_tg_updates["web"].place, 3);
}

#[test]
fn rerun_with_no_change_is_a_no_op() {
    let mut h = Harness::new(2);
    h.run(mock::job("web", 2));
    let out = h.eval("web");
    assert!(out.plan.is_empty());
    assert_eq!(out.annotations.desired_tg_updates["web"].ignore, 2);
}

#[test]
fn bin_packs_onto_fuller_nodes() {
    // Two nodes, both scored (limit 2): a second job joins the node the first one uses.
    let mut h = Harness::new(2);
    h.run(mock::job("a", 1));
    h.run(mock::job("b", 1));
    assert_eq!(h.live("a")[0].node_id, h.live("b")[0].node_id);
}

#[test]
fn job_anti_affinity_spreads_a_jobs_allocations() {
    let mut h = Harness::new(2);
    h.run(mock::job("web", 2));
    let live = h.live("web");
    assert_ne!(live[0].node_id, live[1].node_id);
}

#[test]
fn scale_down_stops_highest_indexes_and_stop_stops_all() {
    let mut h = Harness::new(2);
    h.run(mock::job("web", 3));
    let out = h.run(mock::job("web", 1));
    assert_eq!(out.annotations.desired_tg_updates["web"].stop, 2);
    let live = h.live("web");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].name, "web.web[0]");
    let mut stopped = mock::job("web", 1);
    stopped.stop = true;
    h.run(stopped);
    assert!(h.live("web").is_empty());
}

#[test]
fn unplaceable_constraint_reports_filter_and_blocks() {
    let mut h = Harness::new(2);
    let mut job = mock::job("web", 1);
    job.constraints.push(Constraint {
        l_target: "${attr.kernel.name}".into(),
        operand: "=".into(),
        r_target: "windows".into(),
    });
    let out = h.run(job);
    let m = &out.failed_tg_allocs["web"];
    assert_eq!(m.constraint_filtered["${attr.kernel.name} = windows"], 2);
    assert_eq!(m.nodes_filtered, 2);
    assert_eq!(out.queued["web"], 1);
    let blocked = out.blocked_eval.unwrap();
    assert_eq!(blocked.status, "blocked");
    // A matching node appears: the blocked eval now places.
    let mut win = mock::node("win");
    win.attributes
        .insert("kernel.name".into(), "windows".into());
    h.add_node(win);
    let out = h.eval("web");
    assert_eq!(out.plan.placed(), 1);
    assert_eq!(h.live("web")[0].node_id, "win");
}

#[test]
fn resources_exhausted_are_reported_by_dimension() {
    let mut h = Harness::new(1);
    let mut job = mock::job("big", 3);
    job.task_groups[0].tasks[0].resources.memory_mb = 3000;
    let out = h.run(job);
    assert_eq!(out.plan.placed(), 2);
    let m = &out.failed_tg_allocs["web"];
    assert_eq!(m.dimension_exhausted.get("memory"), Some(&1), "{m:?}");
    assert_eq!(out.queued["web"], 1);
}

#[test]
fn static_ports_do_not_collide_and_dynamic_ports_are_in_range() {
    let mut h = Harness::new(2);
    let mut job = mock::job("web", 3);
    job.task_groups[0].networks.push(NetworkResource {
        reserved_ports: vec![Port {
            label: "http".into(),
            value: 8080,
            ..Default::default()
        }],
        dynamic_ports: vec![Port {
            label: "admin".into(),
            to: 9000,
            ..Default::default()
        }],
        ..Default::default()
    });
    let out = h.run(job);
    // Two nodes, one static port each: the third cannot be placed.
    assert_eq!(out.plan.placed(), 2);
    assert!(out.failed_tg_allocs["web"]
        .dimension_exhausted
        .keys()
        .any(|k| k.contains("reserved port collision http=8080")));
    for a in h.live("web") {
        let ports = &a.allocated_resources.shared.ports;
        let admin = ports.iter().find(|p| p.label == "admin").unwrap();
        assert!((20000..=32000).contains(&admin.value));
        assert_eq!(admin.to, 9000);
    }
}

/// A job of `count` whose group must not share a node.
fn distinct_hosts_job(count: i64) -> Job {
    let mut job = mock::job("web", count);
    job.task_groups[0].constraints.push(Constraint {
        operand: "distinct_hosts".into(),
        r_target: "true".into(),
        ..Default::default()
    });
    job
}

#[test]
fn distinct_hosts_spreads_one_per_node() {
    let mut h = Harness::new(2);
    let out = h.run(distinct_hosts_job(3));
    assert_eq!(out.plan.placed(), 2);
    assert_eq!(
        out.failed_tg_allocs["web"].constraint_filtered["distinct_hosts"],
        2
    );
}

#[test]
fn distinct_hosts_counts_the_allocations_of_earlier_runs() {
    let mut h = Harness::new(2);
    let mut job = distinct_hosts_job(1);
    h.run(job.clone());
    let first = h.live("web")[0].node_id.clone();
    // Scaled to three: only the other node is free of the group.
    job.task_groups[0].count = 3;
    let out = h.run(job);
    let names = |node: &str| -> Vec<String> {
        out.plan.node_allocation[node]
            .iter()
            .map(|a| a.name.clone())
            .collect()
    };
    // The first allocation is only updated in place (the count changed); the one new
    // placement that fits goes to the other node, the third fails.
    assert_eq!(out.plan.node_allocation.len(), 2);
    assert_eq!(names(&first), ["web.web[0]"]);
    let other = out
        .plan
        .node_allocation
        .keys()
        .find(|n| **n != first)
        .unwrap();
    assert_eq!(names(other), ["web.web[1]"]);
    assert_eq!(
        out.failed_tg_allocs["web"].constraint_filtered["distinct_hosts"],
        2
    );
}

#[test]
fn config_change_is_destructive_and_meta_change_in_place() {
    let mut h = Harness::new(1);
    let job = mock::job("web", 1);
    h.run(job.clone());
    let first = h.live("web")[0].id.clone();
    let mut meta = job.clone();
    meta.meta.insert("owner".into(), "team".into());
    let out = h.run(meta.clone());
    assert_eq!(out.annotations.desired_tg_updates["web"].in_place_update, 1);
    assert_eq!(h.live("web")[0].id, first);
    let mut cfg = meta;
    cfg.task_groups[0].tasks[0]
        .env
        .insert("X".into(), "1".into());
    let out = h.run(cfg);
    assert_eq!(
        out.annotations.desired_tg_updates["web"].destructive_update,
        1
    );
    let live = h.live("web");
    assert_eq!(live.len(), 1);
    assert_ne!(live[0].id, first);
    assert_eq!(live[0].previous_allocation, first);
}

#[test]
fn completed_batch_allocations_are_not_replaced() {
    let mut h = Harness::new(1);
    let mut job = mock::job("b", 2);
    job.job_type = "batch".into();
    h.run(job);
    let ids: Vec<String> = h.live("b").iter().map(|a| a.id.clone()).collect();
    let i = 1000;
    h.state
        .apply(
            i,
            Command::AllocClientUpdate {
                updates: ids
                    .iter()
                    .map(|id| state::ClientAllocUpdate {
                        alloc_id: id.clone(),
                        client_status: "complete".into(),
                        ..Default::default()
                    })
                    .collect(),
                evals: vec![],
                now: 20,
            },
        )
        .unwrap();
    h.index = i;
    let out = h.eval("b");
    assert!(out.plan.is_empty(), "{:?}", out.plan);
}

#[test]
fn system_jobs_run_on_every_node() {
    let mut h = Harness::new(3);
    let mut job = mock::job("sys", 1);
    job.job_type = "system".into();
    let out = h.run(job);
    assert_eq!(out.plan.placed(), 3);
    h.add_node(mock::node("late"));
    let out = h.eval("sys");
    assert_eq!(out.plan.placed(), 1);
    assert_eq!(out.plan.node_allocation.keys().next().unwrap(), "late");
}

#[test]
fn compute_is_deterministic() {
    let mut a = Harness::new(5);
    let mut b = Harness::new(5);
    let oa = a.run(mock::job("web", 4));
    let ob = b.run(mock::job("web", 4));
    assert_eq!(oa, ob);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn never_overplaces_or_overfills(nodes in 1usize..6, counts in proptest::collection::vec(0i64..12, 1..4), mem in 100i64..3000) {
        let mut h = Harness::new(nodes);
        for (i, count) in counts.iter().enumerate() {
            let mut job = mock::job(&format!("j{i}"), *count);
            job.task_groups[0].tasks[0].resources.memory_mb = mem;
            h.run(job);
            let live = h.live(&format!("j{i}")).len() as i64;
            prop_assert!(live <= *count);
        }
        for node in h.state.nodes() {
            let allocs = h.state.allocs_by_node(&node.id);
            prop_assert!(fit::node_fits(node, allocs.iter().map(|a| a.as_ref())).is_ok());
        }
    }
}

//! The drainer's decisions against a real state store.

use super::decide;
use state::{Command, PlanResult, StateStore};
use std::collections::BTreeMap;
use std::sync::Arc;
use structs::{
    mock, Allocation, DesiredTransition, DrainSpec, DrainStrategy, Job, MigrateStrategy,
    JOB_TYPE_BATCH, JOB_TYPE_SYSTEM,
};

/// When the mock allocations' tasks started.
fn started() -> i64 {
    structs::time::parse_rfc3339("2026-11-22T10:00:00Z").unwrap()
}

const SEC: i64 = 1_000_000_000;

struct World {
    state: StateStore,
    index: u64,
}

impl World {
    fn new(nodes: usize) -> Self {
        let mut w = World {
            state: StateStore::new(),
            index: 0,
        };
        for i in 0..nodes {
            w.apply(Command::NodeRegister {
                node: Box::new(mock::node(&format!("node-{i:04}"))),
                now: 0,
            });
        }
        w
    }

    fn apply(&mut self, cmd: Command) {
        self.index += 1;
        self.state.apply(self.index, cmd).unwrap();
    }

    /// Registers `job` and places `per_node[i]` running allocations on node `i`.
    fn job(&mut self, mut job: Job, per_node: &[usize]) -> Arc<Job> {
        job.task_groups[0].count = per_node.iter().sum::<usize>() as i64;
        self.apply(Command::JobRegister {
            job: Box::new(job.clone()),
            eval: None,
            enforce_index: None,
            now: 0,
        });
        let job = self.state.job_by_id("default", &job.id).unwrap().clone();
        let mut k = 0;
        let mut allocs = Vec::new();
        for (node, n) in per_node.iter().enumerate() {
            for _ in 0..*n {
                let mut a = mock::running_alloc(&job, k);
                a.node_id = format!("node-{node:04}");
                allocs.push(a);
                k += 1;
            }
        }
        self.plan(allocs);
        job
    }

    fn plan(&mut self, allocs: Vec<Allocation>) {
        self.apply(Command::PlanApply(PlanResult {
            allocs_upserted: allocs,
            ..Default::default()
        }));
    }

    fn drain(&mut self, node: &str, deadline: i64, ignore_system_jobs: bool) {
        let spec = DrainSpec {
            deadline,
            ignore_system_jobs,
        };
        self.apply(Command::NodeUpdateDrain {
            node_id: node.into(),
            strategy: Some(DrainStrategy::new(spec, started())),
            mark_eligible: false,
            meta: BTreeMap::new(),
            complete: false,
            evals: vec![],
            now: started(),
        });
    }

    fn mark(&mut self, ids: &[String]) {
        self.apply(Command::AllocUpdateDesiredTransition {
            alloc_ids: ids.to_vec(),
            transition: DesiredTransition {
                migrate: Some(true),
                ..Default::default()
            },
            evals: vec![],
            now: 0,
        });
    }

    fn stop(&mut self, ids: &[String]) {
        self.apply(Command::PlanApply(PlanResult {
            allocs_stopped: ids
                .iter()
                .map(|id| (id.clone(), "alloc is being migrated".into()))
                .collect(),
            ..Default::default()
        }));
    }

    /// A running replacement on `node` whose task started at `at`.
    fn replacement(&mut self, job: &Arc<Job>, k: usize, node: &str, at: i64) {
        let mut a = mock::running_alloc(job, 100 + k);
        a.node_id = node.into();
        for t in a.task_states.values_mut() {
            t.started_at = Some(structs::time::rfc3339_nano(at));
        }
        self.plan(vec![a]);
    }
}

/// A one-allocation mock job of another type.
fn of_type(id: &str, job_type: &str) -> Job {
    let mut job = mock::job(id, 1);
    job.job_type = job_type.into();
    job
}

fn with_migrate(mut job: Job, max_parallel: i64) -> Job {
    job.task_groups[0].migrate = Some(MigrateStrategy {
        max_parallel,
        health_check: "task_states".into(),
        min_healthy_time: 10 * SEC,
        healthy_deadline: 300 * SEC,
    });
    job
}

#[test]
fn service_allocations_move_max_parallel_at_a_time_and_wait_for_healthy_replacements() {
    let mut w = World::new(2);
    let job = w.job(with_migrate(mock::job("web", 3), 1), &[3, 0]);
    w.drain("node-0000", 0, false);
    let now = started() + 3600 * SEC;

    let first = decide(&w.state, now);
    assert_eq!(first.migrate.len(), 1, "{first:?}");
    assert_eq!(
        first.jobs.iter().collect::<Vec<_>>(),
        [&("default".to_string(), "web".to_string())]
    );
    assert!(first.complete.is_empty());
    let first: Vec<String> = first.migrate.into_iter().collect();
    w.mark(&first);
    assert!(
        decide(&w.state, now).migrate.is_empty(),
        "one migration is in flight: nothing more moves"
    );

    // The scheduler stops it and places a replacement that just started.
    w.stop(&first);
    w.replacement(&job, 0, "node-0001", now);
    assert!(
        decide(&w.state, now + 5 * SEC).migrate.is_empty(),
        "the replacement is not healthy for min_healthy_time yet"
    );
    let second = decide(&w.state, now + 11 * SEC);
    assert_eq!(second.migrate.len(), 1, "healthy again: the next one moves");
    assert!(!second.migrate.contains(&first[0]));
}

#[test]
fn allocations_that_started_moments_ago_on_the_draining_node_still_wait_their_turn() {
    let mut w = World::new(2);
    w.job(with_migrate(mock::job("web", 3), 1), &[3, 0]);
    w.drain("node-0000", 0, false);
    // A second after the tasks started: younger than min_healthy_time, but serving.
    let d = decide(&w.state, started() + SEC);
    assert_eq!(d.migrate.len(), 1, "{d:?}");
}

#[test]
fn max_parallel_counts_over_every_draining_node() {
    let mut w = World::new(3);
    w.job(with_migrate(mock::job("web", 4), 2), &[2, 2, 0]);
    w.drain("node-0000", 0, false);
    w.drain("node-0001", 0, false);
    let d = decide(&w.state, started() + 3600 * SEC);
    assert_eq!(d.migrate.len(), 2, "two at a time across both nodes: {d:?}");
}

#[test]
fn allocations_that_do_not_run_move_without_waiting() {
    let mut w = World::new(2);
    w.job(with_migrate(mock::job("web", 2), 1), &[2, 0]);
    let pending = w.state.allocs_by_job("default", "web")[0].id.clone();
    w.apply(Command::AllocClientUpdate {
        updates: vec![state::ClientAllocUpdate {
            alloc_id: pending.clone(),
            client_status: "pending".into(),
            ..Default::default()
        }],
        evals: vec![],
        now: 0,
    });
    w.drain("node-0000", 0, false);
    let d = decide(&w.state, started() + 3600 * SEC);
    // The pending one serves nobody and moves at once; of the running ones, one healthy
    // allocation is all the group has, so count - max_parallel = 1 must stay: none moves.
    assert_eq!(d.migrate.iter().collect::<Vec<_>>(), [&pending], "{d:?}");
}

#[test]
fn batch_allocations_wait_for_the_deadline() {
    let mut w = World::new(2);
    w.job(of_type("report", JOB_TYPE_BATCH), &[1, 0]);
    w.drain("node-0000", 600 * SEC, false);
    assert!(decide(&w.state, started() + 599 * SEC).migrate.is_empty());
    assert_eq!(decide(&w.state, started() + 600 * SEC).migrate.len(), 1);
}

#[test]
fn force_marks_everything_at_once() {
    let mut w = World::new(2);
    w.job(with_migrate(mock::job("web", 5), 1), &[5, 0]);
    w.drain("node-0000", -1, false);
    assert_eq!(decide(&w.state, started()).migrate.len(), 5);
}

#[test]
fn system_allocations_go_last_and_ignore_system_leaves_them() {
    let mut w = World::new(2);
    w.job(of_type("agent", JOB_TYPE_SYSTEM), &[1, 0]);
    let web = w.job(with_migrate(mock::job("web", 1), 1), &[1, 0]);
    w.drain("node-0000", 0, false);
    let now = started() + 3600 * SEC;
    let d = decide(&w.state, now);
    let web_alloc = w.state.allocs_by_job("default", "web")[0].id.clone();
    assert_eq!(d.migrate.iter().collect::<Vec<_>>(), [&web_alloc], "{d:?}");
    w.mark(std::slice::from_ref(&web_alloc));
    w.stop(&[web_alloc]);
    w.replacement(&web, 0, "node-0001", now);
    let d = decide(&w.state, now);
    let sys_alloc = w.state.allocs_by_job("default", "agent")[0].id.clone();
    assert_eq!(d.migrate.iter().collect::<Vec<_>>(), [&sys_alloc]);
    assert!(d.complete.is_empty(), "the system allocation still runs");
    w.stop(&[sys_alloc]);
    assert_eq!(decide(&w.state, now).complete, ["node-0000"]);

    // With -ignore-system the system allocation stays and the drain completes around it.
    let mut w = World::new(1);
    w.job(of_type("agent", JOB_TYPE_SYSTEM), &[1]);
    w.drain("node-0000", 0, true);
    let d = decide(&w.state, started());
    assert!(d.migrate.is_empty());
    assert_eq!(d.complete, ["node-0000"]);
}

#[test]
fn nodes_not_draining_are_left_alone() {
    let mut w = World::new(2);
    w.job(with_migrate(mock::job("web", 2), 1), &[1, 1]);
    assert_eq!(decide(&w.state, started()), super::Decision::default());
    w.drain("node-0000", 0, false);
    w.apply(Command::NodeUpdateDrain {
        node_id: "node-0000".into(),
        strategy: None,
        mark_eligible: true,
        meta: BTreeMap::new(),
        complete: false,
        evals: vec![],
        now: started(),
    });
    let n = w.state.node_by_id("node-0000").unwrap();
    assert!(!n.drain && n.drain_strategy.is_none());
    assert_eq!(n.scheduling_eligibility, "eligible");
    let last = n.last_drain.as_ref().unwrap();
    assert_eq!(last.status, "canceled");
    assert_eq!(n.events.last().unwrap().message, "Node drain disabled");
    assert_eq!(decide(&w.state, started()), super::Decision::default());
}

//! In-process scheduler throughput: placements per second of `scheduler::compute` plus state
//! apply (no network, no Raft), on simulated nodes. A baseline for the C1M work.
//!
//! Run: `cargo bench --bench scheduler`.

// A benchmark or test binary outside any async runtime: it measures wall-clock time with
// std's Instant and fails loudly (expect/panic) on broken setup.
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

use state::{Command, PlanResult, StateStore};
use std::time::Instant;
use structs::{mock, Evaluation};

fn main() {
    for (nodes, jobs, count) in [(100usize, 10usize, 100i64), (1000, 20, 500)] {
        let mut state = StateStore::new();
        let mut index = 0;
        for i in 0..nodes {
            index += 1;
            let node = mock::node(&format!("node-{i:05}"));
            state
                .apply(
                    index,
                    Command::NodeRegister {
                        node: Box::new(node),
                        now: 0,
                    },
                )
                .expect("register node");
        }
        let t0 = Instant::now();
        let mut placed = 0usize;
        for j in 0..jobs {
            let mut job = mock::job(&format!("job-{j}"), count);
            job.task_groups[0].tasks[0].resources.cpu = 20;
            job.task_groups[0].tasks[0].resources.memory_mb = 20;
            index += 1;
            state
                .apply(
                    index,
                    Command::JobRegister {
                        job: Box::new(job.clone()),
                        eval: None,
                        enforce_index: None,
                        now: 0,
                    },
                )
                .expect("register job");
            let eval = Evaluation {
                id: format!("eval-{j}"),
                namespace: "default".into(),
                job_id: job.id.clone(),
                ..Default::default()
            };
            let ctx = scheduler::SchedCtx {
                now: 0,
                seed: eval.id.clone(),
            };
            let out = scheduler::compute(&state, &eval, &ctx);
            placed += out.plan.placed();
            index += 1;
            state
                .apply(
                    index,
                    Command::PlanApply(PlanResult {
                        allocs_upserted: out.plan.node_allocation.into_values().flatten().collect(),
                        ..Default::default()
                    }),
                )
                .expect("apply plan");
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "| {nodes} nodes, {jobs} jobs x {count} | {placed} placed | {:.2} s | {:.0} placements/s |",
            secs,
            placed as f64 / secs
        );
    }
}

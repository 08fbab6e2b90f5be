//! In-process scheduler throughput: placements per second of `scheduler::compute` plus state
//! apply (no network, no Raft), on simulated nodes. A baseline for the C1M work.
//!
//! Then the C1M shape in process (`sim.rs`'s 5,000 nodes, `C1M_JOBS` jobs of 1,000, default
//! 100): microseconds per placement in `scheduler::compute` and in applying the plan to the
//! state (what every server does per committed plan), kept apart so a change to either shows.
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

#[path = "common/sim.rs"]
mod sim;

use state::{Command, PlanResult, StateStore};
use std::sync::Arc;
use std::time::{Duration, Instant};
use structs::{mock, Evaluation};

/// Registers `job` at `index` and returns evaluation `j` of it with its scheduler context.
fn register(
    state: &mut StateStore,
    index: u64,
    job: &structs::Job,
    j: usize,
) -> (Evaluation, scheduler::SchedCtx) {
    let register = Command::JobRegister {
        job: Box::new(job.clone()),
        eval: None,
        enforce_index: None,
        now: 0,
    };
    state.apply(index, register).expect("register job");
    let eval = Evaluation {
        id: format!("eval-{j}"),
        namespace: "default".into(),
        job_id: job.id.clone(),
        ..Default::default()
    };
    let ctx = scheduler::SchedCtx {
        now: 1,
        seed: eval.id.clone(),
        ..Default::default()
    };
    (eval, ctx)
}

/// The C1M shape in process: compute and apply timed apart.
fn c1m_shape(nodes: usize, jobs: usize, count: i64) {
    let mut state = StateStore::new();
    let mut index = 0;
    for i in 0..nodes {
        index += 1;
        let node = Box::new(sim::sim_node(i));
        state
            .apply(index, Command::NodeRegister { node, now: 0 })
            .expect("register node");
    }
    let (mut compute, mut apply) = (Duration::ZERO, Duration::ZERO);
    let mut placed = 0usize;
    for j in 0..jobs {
        let job = sim::sim_job(j, count);
        index += 1;
        let (eval, ctx) = register(&mut state, index, &job, j);
        let t0 = Instant::now();
        let out = scheduler::compute(&state, &eval, &ctx);
        compute += t0.elapsed();
        placed += out.plan.placed();
        // As a server applies it: the job shared by every allocation (one Arc, as decoded).
        let job = out.plan.job.clone().map(|j| Arc::clone(&j));
        let allocs = out
            .plan
            .node_allocation
            .into_values()
            .flatten()
            .map(|mut a| {
                a.job = job.clone();
                a
            })
            .collect();
        // A snapshot held across the apply, as workers and readers hold them.
        let held = state.clone();
        index += 1;
        let t0 = Instant::now();
        state
            .apply(
                index,
                Command::PlanApply(PlanResult {
                    allocs_upserted: allocs,
                    now: 1,
                    ..Default::default()
                }),
            )
            .expect("apply plan");
        apply += t0.elapsed();
        let t0 = Instant::now();
        drop(held);
        apply += t0.elapsed();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / placed.max(1) as f64;
    println!(
        "| C1M shape: {nodes} nodes, {jobs} jobs x {count} | {placed} placed | compute {:.1} us/placement | apply {:.1} us/placement |",
        per(compute),
        per(apply)
    );
}

fn main() {
    let jobs = std::env::var("C1M_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    c1m_shape(5000, jobs, 1000);
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
            let (eval, ctx) = register(&mut state, index, &job, j);
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

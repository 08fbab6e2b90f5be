//! A profiling harness for snapshot encode, decode and state rebuild (ignored; run by hand,
//! e.g. under `perf record` or `perf stat`):
//! `ALLOCS=1000000 cargo test --release -p consensus profile_decode -- --ignored --nocapture`.
//! `SNAP=<file>` decodes that file if it exists (else builds the state and writes it there),
//! so a run can time a cold decode in a fresh process; `REPEAT=n` decodes n times. The test
//! binary uses the system allocator, the agent mimalloc: preload one to compare.

use super::*;
use state::StateStore;
use structs::{mock, AllocatedResources, AllocatedTaskResources, Allocation, TaskEvent, TaskState};
use tokio::time::Instant;

/// CPU seconds (user, system) this process has used (clock ticks taken as 100 Hz).
fn cpu() -> (f64, f64) {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (t(11), t(12))
}

/// "wall (user+system CPU-s)" since `start`.
fn since(start: (Instant, (f64, f64))) -> String {
    let (u, s) = cpu();
    format!(
        "{:.2?} ({:.2}+{:.2} cpu-s)",
        start.0.elapsed(),
        u - start.1 .0,
        s - start.1 .1
    )
}

fn now() -> (Instant, (f64, f64)) {
    (Instant::now(), cpu())
}

fn alloc(job: &Arc<Job>, k: usize) -> Allocation {
    let index = 2000 + k as u64 / 10_000;
    Allocation {
        create_index: index,
        modify_index: index,
        alloc_modify_index: index,
        create_time: 2,
        modify_time: 2,
        ..mock::running_alloc(job, k)
    }
}

/// Like the region_restart bench's state, built directly as an image (fast).
pub(crate) fn big_state(allocs: usize) -> StateStore {
    let mut image = StateImage {
        latest_index: 10_000,
        ..Default::default()
    };
    for i in 0..1000 {
        image
            .nodes
            .push(Arc::new(mock::node(&format!("node-{i:04}"))));
    }
    let jobs = 100;
    let per_job = allocs / jobs;
    for j in 0..jobs {
        let mut job = mock::job(&format!("job-{j}"), per_job as i64);
        job.namespace = "default".into();
        let job = Arc::new(job);
        image.jobs.push(job.clone());
        image
            .job_versions
            .push((("default".to_string(), job.id.clone()), vec![job.clone()]));
        image.summaries.push(Arc::new(JobSummary {
            job_id: job.id.clone(),
            namespace: "default".into(),
            ..Default::default()
        }));
        for k in 0..per_job {
            image.allocs.push((Some(0), Arc::new(alloc(&job, k))));
        }
    }
    image.allocs.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    StateStore::from_image(image).unwrap()
}

#[test]
#[ignore]
fn profile_decode() {
    let n = std::env::var("ALLOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let repeat = std::env::var("REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // `SNAP=path`: decode that file if it exists, else build the state and write it there.
    let file = std::env::var("SNAP").ok();
    let bytes = match file.as_deref().map(fs::read) {
        Some(Ok(bytes)) => bytes,
        _ => {
            let t = now();
            let state = big_state(n);
            eprintln!("built {n} allocations in {}", since(t));
            let t = now();
            let image = state.to_image();
            eprintln!("to_image: {}", since(t));
            let t = now();
            let bytes = encode(&Meta::default(), &image).unwrap();
            eprintln!("encode: {}, {:.1} MB", since(t), bytes.len() as f64 / 1e6);
            if let Some(f) = &file {
                fs::write(f, &bytes).unwrap();
            }
            bytes
        }
    };
    for _ in 0..repeat {
        let t = now();
        let (_, image) = decode(&bytes).unwrap();
        let decoded = since(t);
        let t = now();
        let back = StateStore::from_image(image).unwrap();
        let rebuilt = since(t);
        assert!(back.allocs().count() > 0);
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let t = now();
        drop(back);
        eprintln!(
            "decode {decoded}; rebuild {rebuilt}; RSS {rss}; drop {}",
            since(t)
        );
    }
}

#[test]
#[ignore]
fn sizes() {
    use std::mem::size_of;
    eprintln!(
        "Allocation {} TaskState {} TaskEvent {} AllocMetric {} AllocatedResources {} AllocatedTaskResources {}",
        size_of::<Allocation>(),
        size_of::<TaskState>(),
        size_of::<TaskEvent>(),
        size_of::<structs::AllocMetric>(),
        size_of::<AllocatedResources>(),
        size_of::<AllocatedTaskResources>()
    );
}

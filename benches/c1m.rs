//! The C1M shape (issue 4) against a real 3-server region: real `caravan agent` server
//! processes on loopback with the durable Raft store; `NODES` simulated client nodes registered
//! over gRPC (`Rpc::node_register`) and kept alive with heartbeats; `JOBS` service jobs of
//! `COUNT` small mock tasks each submitted by `SUBMITTERS` concurrent clients
//! (`Rpc::job_register`). It measures the time from the first job registration until every
//! allocation is placed and committed (the leader's job summaries, polled every `POLL_MS`),
//! placements per second, per-job latency from its registration returning to all its
//! allocations being committed, and each server's peak RSS and CPU time.
//!
//! Run: `cargo bench --bench c1m` (defaults: `NODES=5000 JOBS=1000 COUNT=1000 SUBMITTERS=4
//! ALGORITHM=binpack POLL_MS=100 TIMEOUT=600`; `SCHEDULERS=n` sets each server's
//! `num_schedulers`, by default its CPU cores). `ALGORITHM=spread` sets the region's scheduler
//! algorithm through `PUT /v1/operator/scheduler/configuration` first (skipped, with a message,
//! where that endpoint does not exist). `LOGS=1` prints the servers' logs at the end.

#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    dead_code
)]

#[path = "../tests/region/cluster.rs"]
mod cluster;
#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "common/measure.rs"]
mod measure;
#[path = "common/sim.rs"]
mod sim;

use measure::{cpu_time, percentile};
use sim::{sim_job, sim_node, sim_node_id, JOB_PREFIX};

use rpc::remote::RemoteRpc;
use rpc::{QueryOptions, Rpc};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use structs::JobRegisterRequest;

/// Connections the simulated nodes share (a real region has one per client agent).
const NODE_CONNECTIONS: usize = 8;
/// Node registrations in flight at once.
const REGISTER_CONCURRENCY: usize = 64;
/// Tasks heartbeating the nodes (each owns a slice and heartbeats it in turn).
const HEARTBEATERS: usize = 16;

fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM`, `VmRSS`), in MiB.
fn status_mib(pid: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Allocations of a job summary that have been placed (any client status).
fn placed(sum: &structs::JobSummary) -> i64 {
    sum.summary
        .values()
        .map(|g| g.starting + g.running + g.complete + g.failed + g.lost + g.unknown)
        .sum()
}

struct Server {
    name: String,
    pid: String,
}

fn cpu_of(servers: &[Server]) -> Vec<Duration> {
    servers.iter().map(|s| cpu_time(&s.pid)).collect()
}

fn secs_list(now: &[Duration], before: &[Duration]) -> String {
    now.iter()
        .zip(before)
        .map(|(n, b)| format!("{:.1}", n.saturating_sub(*b).as_secs_f64()))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn main() {
    let nodes: usize = knob("NODES", 5000);
    let jobs: usize = knob("JOBS", 1000);
    let count: i64 = knob("COUNT", 1000);
    let submitters: usize = knob("SUBMITTERS", 4).max(1);
    let algorithm: String = knob("ALGORITHM", "binpack".to_string());
    let poll = Duration::from_millis(knob("POLL_MS", 100));
    let timeout = Duration::from_secs(knob("TIMEOUT", 600));
    let total = jobs as i64 * count;
    // SCHEDULERS=n: each server's `num_schedulers` (default: its CPU cores).
    let schedulers: usize = knob("SCHEDULERS", 0);
    let extra = if schedulers > 0 {
        format!("num_schedulers = {schedulers}")
    } else {
        String::new()
    };

    let c = cluster::Cluster::start(3, 3, &extra);
    let leader = c.wait_leader(30);
    let servers: Vec<Server> = c
        .servers
        .iter()
        .map(|s| Server {
            name: s.name.clone(),
            pid: s.pid().expect("running").to_string(),
        })
        .collect();
    // The leader first; the others are there for failover (a follower forwards to the leader).
    let mut addrs = vec![c.servers[leader].rpc_addr()];
    addrs.extend(
        c.servers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != leader)
            .map(|(_, s)| s.rpc_addr()),
    );
    println!(
        "C1M shape: 3-server region over loopback, durable store; {nodes} nodes, {jobs} jobs x {count} = {total} allocations, {submitters} submitters, algorithm {algorithm}"
    );
    println!("leader: {}", servers[leader].name);

    if algorithm != "binpack" {
        let body = format!("{{\"SchedulerAlgorithm\":\"{algorithm}\"}}");
        match c.servers[leader].request("PUT", "/v1/operator/scheduler/configuration", Some(&body))
        {
            Ok((200, _)) => println!("scheduler algorithm set to {algorithm}"),
            Ok((status, text)) => {
                println!(
                    "ALGORITHM={algorithm}: PUT /v1/operator/scheduler/configuration answered {status} ({}); the endpoint is not there yet, skipping the run",
                    text.trim()
                );
                return;
            }
            Err(e) => panic!("PUT /v1/operator/scheduler/configuration: {e}"),
        }
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _entered = rt.enter();
    // SIGINT / SIGTERM: kill the servers (their own process groups) before exiting, since
    // exiting on a signal runs no destructors.
    {
        let pgids: Vec<i32> = servers.iter().filter_map(|s| s.pid.parse().ok()).collect();
        rt.spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            for pgid in pgids {
                // SAFETY: kill(2) on our own child's process group has no memory-safety
                // preconditions.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
            eprintln!("interrupted; servers killed");
            std::process::exit(130);
        });
    }
    let conns: Vec<Arc<RemoteRpc>> = (0..NODE_CONNECTIONS)
        .map(|_| Arc::new(RemoteRpc::new(addrs.clone(), "global".into())))
        .collect();
    let poller = RemoteRpc::new(addrs.clone(), "global".into());

    // ---- nodes ----
    let cpu_start = cpu_of(&servers);
    let t_nodes = Instant::now();
    // Per node: when it must heartbeat next (as ms since t_nodes).
    let due: Arc<Vec<AtomicU64>> = Arc::new((0..nodes).map(|_| AtomicU64::new(0)).collect());
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..REGISTER_CONCURRENCY.min(nodes.max(1)) {
            let rpc = conns[t % conns.len()].clone();
            let due = due.clone();
            tasks.spawn(async move {
                for i in (t..nodes).step_by(REGISTER_CONCURRENCY) {
                    let resp = rpc.node_register(sim_node(i)).await.expect("node register");
                    let next = t_nodes.elapsed() + resp.heartbeat_ttl / 3;
                    due[i].store(next.as_millis() as u64, Ordering::Relaxed);
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    });
    let node_secs = t_nodes.elapsed().as_secs_f64();
    println!(
        "registered {nodes} nodes in {node_secs:.2} s ({:.0}/s); servers used {} CPU s",
        nodes as f64 / node_secs,
        secs_list(&cpu_of(&servers), &cpu_start)
    );

    // Heartbeats: each node again within a third of the TTL it was handed.
    let stop = Arc::new(AtomicBool::new(false));
    let heartbeat_failures = Arc::new(AtomicU64::new(0));
    let heartbeats_sent = Arc::new(AtomicU64::new(0));
    let mut heartbeaters = Vec::new();
    for t in 0..HEARTBEATERS {
        let rpc = conns[t % conns.len()].clone();
        let (due, stop) = (due.clone(), stop.clone());
        let (failures, sent) = (heartbeat_failures.clone(), heartbeats_sent.clone());
        heartbeaters.push(rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for i in (t..nodes).step_by(HEARTBEATERS) {
                    if t_nodes.elapsed().as_millis() as u64 >= due[i].load(Ordering::Relaxed) {
                        let id = sim_node_id(i);
                        sent.fetch_add(1, Ordering::Relaxed);
                        match rpc.node_heartbeat(&id).await {
                            Ok(resp) => {
                                let next = t_nodes.elapsed() + resp.heartbeat_ttl / 3;
                                due[i].store(next.as_millis() as u64, Ordering::Relaxed);
                            }
                            Err(_) => {
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }

    // ---- jobs ----
    let cpu_before = cpu_of(&servers);
    let self_before = cpu_time("self");
    let t0 = Instant::now();
    // Per job: when its registration returned.
    let registered: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; jobs]));
    let submit_done = Arc::new(Mutex::new(None::<Instant>));
    let retries = Arc::new(AtomicU64::new(0));
    let submit = {
        let (registered, submit_done) = (registered.clone(), submit_done.clone());
        let retries = retries.clone();
        let addrs = addrs.clone();
        rt.spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for s in 0..submitters {
                let rpc = RemoteRpc::new(addrs.clone(), "global".into());
                let registered = registered.clone();
                let retries = retries.clone();
                tasks.spawn(async move {
                    for j in (s..jobs).step_by(submitters) {
                        // A real submitter retries while the region has no leader.
                        let mut tries = 0;
                        loop {
                            let req = JobRegisterRequest {
                                job: Some(sim_job(j, count)),
                                ..Default::default()
                            };
                            match rpc.job_register(req).await {
                                Ok(_) => break,
                                Err(e) if tries < 100 => {
                                    tries += 1;
                                    retries.fetch_add(1, Ordering::Relaxed);
                                    if tries == 1 {
                                        eprintln!("job register {j}: {e}; retrying");
                                    }
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                }
                                Err(e) => panic!("job register {j}: {e}"),
                            }
                        }
                        registered.lock().unwrap()[j] = Some(Instant::now());
                    }
                });
            }
            while let Some(r) = tasks.join_next().await {
                r.unwrap();
            }
            *submit_done.lock().unwrap() = Some(Instant::now());
        })
    };

    // Poll the leader's job summaries (one list call) until everything is placed.
    let mut committed: Vec<Option<Instant>> = vec![None; jobs];
    let mut placed_total: i64 = 0;
    let mut polls = 0u64;
    let mut last_report = Instant::now();
    let timed_out = rt.block_on(async {
        let q = QueryOptions {
            prefix: JOB_PREFIX.into(),
            ..Default::default()
        };
        loop {
            tokio::time::sleep(poll).await;
            polls += 1;
            let list = match poller.job_list(&q).await {
                Ok(l) => l.value,
                Err(e) => {
                    eprintln!("job list: {e}");
                    continue;
                }
            };
            let now = Instant::now();
            placed_total = 0;
            for stub in &list {
                let Some(sum) = &stub.job_summary else {
                    continue;
                };
                let n = placed(sum);
                placed_total += n;
                let Some(j) = stub
                    .id
                    .strip_prefix(JOB_PREFIX)
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                if n >= count && j < jobs && committed[j].is_none() {
                    committed[j] = Some(now);
                }
            }
            if last_report.elapsed() >= Duration::from_secs(5) {
                last_report = Instant::now();
                let regs = registered.lock().unwrap().iter().flatten().count();
                let secs = t0.elapsed().as_secs_f64();
                println!(
                    "  {secs:6.1} s: {regs} jobs registered, {placed_total} placed ({:.0}/s), {} jobs complete; servers CPU s {}; heartbeats {} ({} failed)",
                    placed_total as f64 / secs,
                    committed.iter().flatten().count(),
                    secs_list(&cpu_of(&servers), &cpu_before),
                    heartbeats_sent.load(Ordering::Relaxed),
                    heartbeat_failures.load(Ordering::Relaxed),
                );
            }
            if placed_total >= total && committed.iter().all(Option::is_some) {
                return false;
            }
            if t0.elapsed() > timeout {
                return true;
            }
        }
    });
    let elapsed = t0.elapsed();
    let cpu_after = cpu_of(&servers);
    let self_cpu = cpu_time("self").saturating_sub(self_before);
    if !timed_out {
        rt.block_on(submit).unwrap();
    }

    // ---- report ----
    let registered = registered.lock().unwrap().clone();
    let submit_secs = submit_done
        .lock()
        .unwrap()
        .map(|t| format!("{:.2} s", t.duration_since(t0).as_secs_f64()))
        .unwrap_or_else(|| "not finished".into());
    let mut lat: Vec<Duration> = registered
        .iter()
        .zip(&committed)
        .filter_map(|(r, c)| Some(c.as_ref()?.saturating_duration_since(*r.as_ref()?)))
        .collect();
    lat.sort();
    let secs = elapsed.as_secs_f64();
    println!();
    if timed_out {
        println!(
            "TIMED OUT after {secs:.1} s: {placed_total} of {total} placed, {} of {jobs} jobs complete",
            committed.iter().flatten().count()
        );
    } else {
        println!("all {total} allocations placed and committed in {secs:.2} s");
    }
    println!(
        "placements/s: {:.0}  (registering the {jobs} jobs took {submit_secs}; {} registrations retried)",
        placed_total as f64 / secs,
        retries.load(Ordering::Relaxed)
    );
    println!(
        "job registration returned -> all its allocations committed: p50 {:.2} s  p99 {:.2} s  max {:.2} s  ({} jobs; polled every {} ms, {polls} polls)",
        percentile(&lat, 0.50).as_secs_f64(),
        percentile(&lat, 0.99).as_secs_f64(),
        lat.last().copied().unwrap_or_default().as_secs_f64(),
        lat.len(),
        poll.as_millis(),
    );
    let server_cpu: Vec<f64> = cpu_after
        .iter()
        .zip(&cpu_before)
        .map(|(a, b)| a.saturating_sub(*b).as_secs_f64())
        .collect();
    for (i, s) in servers.iter().enumerate() {
        println!(
            "  {}{}: CPU {:.1} s during the run ({:.1} s since start), peak RSS (VmHWM) {:.0} MiB, RSS now {:.0} MiB",
            s.name,
            if i == leader { " (leader)" } else { "" },
            server_cpu[i],
            cpu_after[i].saturating_sub(cpu_start[i]).as_secs_f64(),
            status_mib(&s.pid, "VmHWM"),
            status_mib(&s.pid, "VmRSS"),
        );
    }
    let all_cpu: f64 = server_cpu.iter().sum();
    println!(
        "servers: {all_cpu:.1} CPU s in all, {:.0} placements per server CPU second; load generator {:.1} CPU s",
        placed_total as f64 / all_cpu.max(1e-9),
        self_cpu.as_secs_f64()
    );

    // What the region says at the end: nodes down, evaluations by status, the leader.
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        let q = QueryOptions::default();
        if let Ok(list) = poller.node_list(&q).await {
            let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
            for n in &list.value {
                *by_status.entry(n.status.clone()).or_default() += 1;
            }
            println!("nodes by status: {by_status:?}");
        }
        if let Ok(list) = poller.eval_list(&q).await {
            let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
            for e in &list.value {
                *by_status.entry(e.status.clone()).or_default() += 1;
            }
            println!("evaluations by status: {by_status:?}");
        }
        if let Ok(l) = poller.status_leader("global").await {
            let name = c
                .servers
                .iter()
                .find(|s| s.rpc_addr() == l)
                .map(|s| s.name.clone())
                .unwrap_or(l);
            println!("leader at the end: {name}");
        }
    });
    println!(
        "heartbeats: {} sent, {} failed",
        heartbeats_sent.load(Ordering::Relaxed),
        heartbeat_failures.load(Ordering::Relaxed)
    );
    for h in heartbeaters {
        h.abort();
    }
    if std::env::var_os("LOGS").is_some() {
        eprintln!("{}", c.logs());
    }
}

//! Committed writes per second on a 3-server region (real processes on loopback, durable redb
//! log, fsync per commit): `N` concurrent clients each send allocation status updates (the most
//! frequent write a Nomad region takes) over gRPC to the leader, which commits each through
//! Raft before answering.
//!
//! Run: `cargo bench --bench region_writes` (`SECS=5` per concurrency level by default;
//! `NULL=1` sends calls the leader answers without Raft (`regions`), to show what the call
//! transport alone costs).

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

use measure::{cpu_time, percentile};

use rpc::remote::RemoteRpc;
use rpc::{AllocClientUpdate, Rpc};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The process IDs of the running servers.
fn server_pids(c: &cluster::Cluster) -> Vec<String> {
    c.servers
        .iter()
        .filter_map(|s| s.pid())
        .map(|p| p.to_string())
        .collect()
}

fn main() {
    let secs: u64 = std::env::var("SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let servers: usize = std::env::var("SERVERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let c = cluster::Cluster::start(servers, servers, "");
    let leader = c.wait_leader(30);
    let leader_rpc = c.servers[leader].rpc_addr();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // gRPC channels are created in the runtime's context.
    let _entered = rt.enter();
    println!(
        "{servers}-server region over loopback, durable store; writes to the leader over gRPC"
    );
    // What the region costs with no writes at all (heartbeats, timers), over 3 s.
    {
        let pids = server_pids(&c);
        let before: Vec<Duration> = pids.iter().map(|p| cpu_time(p)).collect();
        std::thread::sleep(Duration::from_secs(3));
        let idle: Vec<String> = pids
            .iter()
            .zip(&before)
            .map(|(p, b)| {
                format!(
                    "{:.1}%",
                    cpu_time(p).saturating_sub(*b).as_secs_f64() * 100.0 / 3.0
                )
            })
            .collect();
        println!("idle region: servers use {} of a core", idle.join(" + "));
    }
    // UNARY=1: one gRPC call per write instead of the shared call stream (for comparison).
    let unary = std::env::var("UNARY").is_ok_and(|v| !v.is_empty() && v != "0");
    if unary {
        println!("(one unary gRPC call per write)");
    }
    let null = std::env::var("NULL").is_ok_and(|v| !v.is_empty() && v != "0");
    if null {
        println!("(null calls: `regions`, answered by the leader without Raft)");
    }
    // LEVELS=1,256: the concurrency levels to run.
    let levels: Vec<usize> = std::env::var("LEVELS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 16, 256]);
    for clients in levels {
        // Clients are separate agents in a real region: one connection per 32 clients.
        let conns: Vec<Arc<RemoteRpc>> = (0..clients.div_ceil(32))
            .map(|_| {
                let rpc = RemoteRpc::new(vec![leader_rpc.clone()], "global".into());
                Arc::new(if unary {
                    rpc.without_call_stream()
                } else {
                    rpc
                })
            })
            .collect();
        let pids = server_pids(&c);
        let cpu_before: Vec<Duration> = pids.iter().map(|p| cpu_time(p)).collect();
        let self_before = cpu_time("self");
        let mut entries = 0;
        let (count, mut lat) = rt.block_on(async {
            // Warm up connections.
            for rpc in &conns {
                let _ = rpc.alloc_client_update(vec![update(0, 0)]).await;
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
            let mut tasks = Vec::new();
            for t in 0..clients {
                let rpc = conns[t % conns.len()].clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut n = 0;
                    // The Raft indexes this client's writes applied at (one per entry).
                    let (mut first, mut last) = (u64::MAX, 0);
                    while tokio::time::Instant::now() < deadline {
                        n += 1;
                        let start = Instant::now();
                        if null {
                            rpc.regions().await.expect("call");
                        } else {
                            let index = rpc
                                .alloc_client_update(vec![update(t, n)])
                                .await
                                .expect("write");
                            first = first.min(index);
                            last = last.max(index);
                        }
                        lat.push(start.elapsed());
                    }
                    (lat, first, last)
                }));
            }
            let mut all = Vec::new();
            let (mut first, mut last) = (u64::MAX, 0);
            for t in tasks {
                let (lat, f, l) = t.await.unwrap();
                all.extend(lat);
                first = first.min(f);
                last = last.max(l);
            }
            entries = last.saturating_sub(first) + 1;
            (all.len(), all)
        });
        let per_write = |d: Duration| d.as_secs_f64() * 1e6 / count.max(1) as f64;
        let server_cpu: Vec<f64> = pids
            .iter()
            .zip(&cpu_before)
            .map(|(p, before)| per_write(cpu_time(p).saturating_sub(*before)))
            .collect();
        let client_cpu = per_write(cpu_time("self").saturating_sub(self_before));
        lat.sort();
        let rate = count as f64 / secs as f64;
        let (one, what) = if null {
            ("call", "calls")
        } else {
            ("write", "writes")
        };
        println!(
            "{clients:>4} clients: {rate:>9.0} {what}/s  p50 {:>8.2} ms  p99 {:>8.2} ms  ({count} {what} in {secs} s)",
            percentile(&lat, 0.50).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
        );
        println!(
            "              tail: p90 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
            percentile(&lat, 0.90).as_secs_f64() * 1e3,
            percentile(&lat, 0.999).as_secs_f64() * 1e3,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
        if !null {
            println!(
                "              {entries} Raft entries, {:.1} writes per entry",
                count as f64 / entries.max(1) as f64
            );
        }
        // CPU per write is what bounds throughput on a shared 2-core machine, and unlike the
        // rate it does not move when other work competes for the cores.
        println!(
            "              CPU per {one}: servers {} us (leader first), load generator {client_cpu:.1} us",
            {
                let mut v: Vec<(usize, f64)> = server_cpu.iter().copied().enumerate().collect();
                v.sort_by_key(|(i, _)| usize::from(*i != leader));
                v.iter()
                    .map(|(_, c)| format!("{c:.1}"))
                    .collect::<Vec<_>>()
                    .join(" + ")
            }
        );
    }
    if std::env::var_os("LOGS").is_some() {
        eprintln!("{}", c.logs());
    }
}

/// A status report for an allocation the state does not hold: applied (and ignored) by every
/// server like any other committed entry.
fn update(client: usize, n: usize) -> AllocClientUpdate {
    AllocClientUpdate {
        alloc_id: format!("bench-{client}-{n}"),
        client_status: "running".into(),
        client_description: "Tasks are running".into(),
        task_states: Default::default(),
    }
}

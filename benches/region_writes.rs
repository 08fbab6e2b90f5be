//! Committed writes per second on a 3-server region (real processes on loopback, durable redb
//! log, fsync per commit): `N` concurrent clients each send allocation status updates (the most
//! frequent write a Nomad region takes) over gRPC to the leader, which commits each through
//! Raft before answering.
//!
//! Run: `cargo bench --bench region_writes` (`SECS=5` per concurrency level by default).

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

use rpc::remote::RemoteRpc;
use rpc::{AllocClientUpdate, Rpc};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
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
    for clients in [1usize, 16, 256] {
        // Clients are separate agents in a real region: one connection per 32 clients.
        let conns: Vec<Arc<RemoteRpc>> = (0..clients.div_ceil(32))
            .map(|_| Arc::new(RemoteRpc::new(vec![leader_rpc.clone()], "global".into())))
            .collect();
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
                    while tokio::time::Instant::now() < deadline {
                        n += 1;
                        let start = Instant::now();
                        rpc.alloc_client_update(vec![update(t, n)])
                            .await
                            .expect("write");
                        lat.push(start.elapsed());
                    }
                    lat
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            (all.len(), all)
        });
        lat.sort();
        let rate = count as f64 / secs as f64;
        println!(
            "{clients:>4} clients: {rate:>9.0} writes/s  p50 {:>8.2} ms  p99 {:>8.2} ms  ({count} writes in {secs} s)",
            percentile(&lat, 0.50).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
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

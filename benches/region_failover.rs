//! Leader failover under write load on a 3-server region (real processes on loopback, durable
//! store): `kill -9` of the leader while clients keep writing, and the time from the kill until
//! a write succeeds again. The killed server is restarted and rejoins before the next run.
//!
//! Run: `cargo bench --bench region_failover` (`RUNS=50` by default).

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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn update(n: u64) -> AllocClientUpdate {
    AllocClientUpdate {
        alloc_id: format!("failover-{n}"),
        client_status: "running".into(),
        ..Default::default()
    }
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut c = cluster::Cluster::start(3, 3, "");
    c.wait_leader(30);
    let addrs: Vec<String> = c.servers.iter().map(|s| s.rpc_addr()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // gRPC channels are created in the runtime's context.
    let _entered = rt.enter();

    // Background load: 8 writers through any server (followers forward to the leader).
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    for w in 0..8u64 {
        let stop = stop.clone();
        let written = written.clone();
        let mut servers = addrs.clone();
        servers.rotate_left(w as usize % 3);
        rt.spawn(async move {
            let rpc = RemoteRpc::new(servers, "global".into());
            let mut n = w << 40;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if rpc.alloc_client_update(vec![update(n)]).await.is_ok() {
                    written.fetch_add(1, Ordering::Relaxed);
                } else {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        });
    }

    let mut times = Vec::new();
    for run in 0..runs {
        let leader = c.wait_leader(30);
        let survivors: Vec<String> = (0..3)
            .filter(|i| *i != leader)
            .map(|i| addrs[i].clone())
            .collect();
        // Load is flowing.
        let before = written.load(Ordering::Relaxed);
        while written.load(Ordering::Relaxed) < before + 50 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let killed_at = Instant::now();
        c.servers[leader].kill9();
        // Separately, when the survivors first agree on a new leader (HTTP status polling).
        let watchers: Vec<String> = (0..3)
            .filter(|i| *i != leader)
            .map(|i| c.servers[i].url("/v1/status/leader"))
            .collect();
        let old = addrs[leader].clone();
        let elected = std::thread::spawn(move || loop {
            let views: Vec<String> = watchers
                .iter()
                .map(|u| {
                    harness::try_http(u, "GET", None, Duration::from_secs(2))
                        .map(|(_, b)| b)
                        .unwrap_or_default()
                })
                .collect();
            if views
                .iter()
                .all(|v| v == &views[0] && !v.contains(&old) && v.len() > 4)
            {
                return killed_at.elapsed();
            }
            std::thread::sleep(Duration::from_millis(2));
        });
        // The first write that succeeds after the kill, tried through the survivors.
        let took = rt.block_on(async {
            let rpc = RemoteRpc::new(survivors, "global".into());
            let mut n = (run as u64) << 50;
            loop {
                n += 1;
                if rpc.alloc_client_update(vec![update(n)]).await.is_ok() {
                    return killed_at.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let elected = elected.join().unwrap();
        eprintln!(
            "run {run}: new leader agreed after {:.0} ms; writes succeed again {:.0} ms after kill -9",
            elected.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e3
        );
        times.push(took);
        c.servers[leader].start();
        // Wait until the restarted server follows the new leader again.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let l = c.servers[leader].leader();
            if l.is_some() && l == c.servers[(leader + 1) % 3].leader() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server did not rejoin:\n{}",
                c.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    stop.store(true, Ordering::Relaxed);
    if std::env::var_os("LOGS").is_some() {
        eprintln!("{}", c.logs());
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "leader failover under write load ({runs} runs): p50 {:.0} ms, p99 {:.0} ms, min {:.0} ms, max {:.0} ms",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
}

//! Cold restart of a 3-server region with a large state: time from starting the three server
//! processes to serving a consistent read of the full state.
//!
//! Setup (not timed): a state of `ALLOCS` allocations (default 1,000,000) on 1,000 nodes and
//! 100 jobs is built in process and written into each server's data dir exactly as a region
//! leaves it: the snapshot file, a Raft log purged up to it and `TAIL` (default 1,000) committed
//! entries after it, which each server re-applies on start. Then, `RUNS`
//! times (default 3): start the servers, wait until a leader answers a consistent read of an
//! allocation and the job summaries, report the time and each agent's CPU time and RSS so far,
//! stop the servers (SIGINT).
//!
//! Run: `cargo bench --bench region_restart` (`ALLOCS=100000` for a quick run; `RUNS=0` for the
//! in-process encode/decode/rebuild figures only; `PROFILE=n` decodes and rebuilds `n` more
//! times in process, for `perf record`; `LOGS=1` prints the agents' logs).

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

use consensus::openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use consensus::openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, StoredMembership, Vote,
};
use consensus::{snapshot, Payload, ServerNode, SnapshotStore, TypeConfig, WalLogStore};
use state::{ClientAllocUpdate, Command, PlanResult, StateStore};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use structs::{mock, Allocation};

// The same allocator as the `caravan` binary, so in-process decode figures match the agent's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A state with `allocs` running allocations, built through `StateStore::apply` as a region
/// would have built it.
fn build_state(allocs: usize) -> StateStore {
    let mut s = StateStore::new();
    let mut index = 0;
    let nodes = 1000;
    for i in 0..nodes {
        index += 1;
        s.apply(
            index,
            Command::NodeRegister {
                node: Box::new(mock::node(&format!("node-{i:04}"))),
                now: 1,
            },
        )
        .unwrap();
    }
    let jobs = 100;
    let per_job = allocs / jobs;
    for j in 0..jobs {
        index += 1;
        let job = mock::job(&format!("job-{j}"), per_job as i64);
        s.apply(
            index,
            Command::JobRegister {
                job: Box::new(job),
                eval: None,
                enforce_index: None,
                now: 1,
            },
        )
        .unwrap();
        let job = s.job_by_id("default", &format!("job-{j}")).unwrap().clone();
        for chunk in (0..per_job).collect::<Vec<_>>().chunks(10_000) {
            let batch: Vec<Allocation> = chunk
                .iter()
                .map(|k| mock::running_alloc(&job, *k))
                .collect();
            index += 1;
            s.apply(
                index,
                Command::PlanApply(PlanResult {
                    allocs_upserted: batch,
                    now: 2,
                    ..Default::default()
                }),
            )
            .unwrap();
        }
    }
    s
}

/// CPU seconds (user, system) the agent process of `s` has used so far and its resident
/// memory in MB, found in /proc by its config path (Linux; clock ticks taken as 100 Hz).
fn agent_usage(s: &cluster::Node) -> Option<(f64, f64, f64)> {
    let dir = format!("{}/", s.data_dir.parent()?.display());
    for entry in std::fs::read_dir("/proc").ok()? {
        let Ok(entry) = entry else { continue };
        let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if !(cmd.contains("agent") && cmd.contains(&dir)) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok().map(|t| t / 100.0);
        let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
        let rss_kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        return Some((ticks(11)?, ticks(12)?, rss_kb / 1000.0));
    }
    None
}

/// Writes each server's data dir as a running region leaves it: the snapshot, a log purged up
/// to the snapshot's last entry, and `tail` committed entries after it (each a client update of
/// 10 of `allocs`), which every server re-applies on start.
fn seed(
    c: &cluster::Cluster,
    allocs: &[String],
    tail: usize,
    mut bytes_for: impl FnMut(&snapshot::Meta) -> Vec<u8>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut stores = Vec::new();
    let mut members = BTreeMap::new();
    for s in &c.servers {
        let dir = s.data_dir.join("server");
        std::fs::create_dir_all(&dir).unwrap();
        let (log, id) = WalLogStore::open(&dir.join("raft"), "global").unwrap();
        members.insert(
            id,
            ServerNode {
                name: s.name.clone(),
                rpc_addr: s.rpc_addr(),
            },
        );
        stores.push((log, dir));
    }
    let first = *members.keys().next().unwrap();
    let voters: BTreeSet<u64> = members.keys().copied().collect();
    let log_id = LogId::new(CommittedLeaderId::new(1, first), 10_000);
    let meta = snapshot::Meta {
        last_log_id: Some(log_id),
        last_membership: StoredMembership::new(
            Some(LogId::new(CommittedLeaderId::new(1, first), 1)),
            Membership::new(vec![voters], members.clone()),
        ),
        snapshot_id: "seeded".into(),
    };
    let bytes = bytes_for(&meta);
    for (mut log, dir) in stores {
        SnapshotStore::dir(&dir.join("snapshots"))
            .unwrap()
            .save(&meta, &bytes)
            .unwrap();
        let entries: Vec<Entry<TypeConfig>> = (1..=tail as u64)
            .map(|i| {
                let updates = (0..10)
                    .map(|k| ClientAllocUpdate {
                        alloc_id: allocs[(i as usize * 10 + k) % allocs.len()].clone(),
                        client_status: "running".into(),
                        client_description: "Tasks are running".into(),
                        ..ClientAllocUpdate::default()
                    })
                    .collect();
                let cmd = Command::AllocClientUpdate {
                    updates,
                    evals: vec![],
                    now: i as i64,
                };
                Entry {
                    log_id: LogId::new(CommittedLeaderId::new(1, first), 10_000 + i),
                    payload: EntryPayload::Normal(Payload::Commands(vec![
                        serde_bytes::ByteBuf::from(serde_json::to_vec(&cmd).unwrap()),
                    ])),
                }
            })
            .collect();
        let last = entries.last().map_or(log_id, |e| e.log_id);
        rt.block_on(async {
            log.save_vote(&Vote::new_committed(1, first)).await.unwrap();
            log.purge(log_id).await.unwrap();
            log.blocking_append(entries).await.unwrap();
            log.save_committed(Some(last)).await.unwrap();
            // The committed id is made durable with the next synced write.
            log.save_vote(&Vote::new_committed(1, first)).await.unwrap();
        });
    }
}

fn main() {
    let allocs = env("ALLOCS", 1_000_000);
    let runs = env("RUNS", 3);
    let t = Instant::now();
    let state = build_state(allocs);
    eprintln!("built a state of {allocs} allocations in {:?}", t.elapsed());
    let probe = state.allocs().next().unwrap().id.clone();

    let mut c = cluster::Cluster::configure(3, 3, "");
    let mut size = 0;
    let mut encode = Duration::ZERO;
    let tail = env("TAIL", 1000);
    let ids: Vec<String> = state.allocs().take(10_000).map(|a| a.id.clone()).collect();
    seed(&c, &ids, tail, |meta| {
        let t = Instant::now();
        let bytes = snapshot::encode(meta, &state.to_image()).unwrap();
        encode = t.elapsed();
        size = bytes.len();
        bytes
    });
    let t = Instant::now();
    let bytes = SnapshotStore::dir(&c.servers[0].data_dir.join("server/snapshots"))
        .unwrap()
        .load()
        .unwrap()
        .unwrap();
    let (_, image) = snapshot::decode(&bytes).unwrap();
    let decoded = t.elapsed();
    let t = Instant::now();
    let back = StateStore::from_image(image).unwrap();
    let rebuilt = t.elapsed();
    assert_eq!(back.allocs().count(), allocs);
    drop(back);
    // `PROFILE=n`: decode and rebuild n more times (for `perf record`).
    for _ in 0..env("PROFILE", 0) {
        let (_, image) = snapshot::decode(&bytes).unwrap();
        drop(StateStore::from_image(image).unwrap());
    }
    drop((bytes, state));
    eprintln!(
        "snapshot: {:.1} MB; encode {encode:?}; read+decode {decoded:?}; rebuild {rebuilt:?}",
        size as f64 / 1e6
    );
    if runs == 0 {
        return;
    }

    let mut times = Vec::new();
    for run in 0..runs {
        let t = Instant::now();
        for s in &mut c.servers {
            s.start();
        }
        let path = format!("/v1/allocation/{probe}");
        loop {
            let served = c.servers.iter().any(|s| {
                s.get_json(&path).is_some()
                    && s.get_json("/v1/job/job-99/summary").is_some_and(|v| {
                        v["Summary"]["web"]["Running"].as_u64() == Some((allocs / 100) as u64)
                    })
            });
            if served {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(300),
                "not serving after 300 s:\n{}",
                c.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = t.elapsed();
        let usage: Vec<String> = c
            .servers
            .iter()
            .filter_map(agent_usage)
            .map(|(user, sys, rss)| format!("{user:.1}+{sys:.1} CPU-s, {rss:.0} MB"))
            .collect();
        eprintln!(
            "run {run}: serving after {took:?}; each agent so far (user+system CPU, RSS): {}",
            usage.join("; ")
        );
        times.push(took);
        for s in &mut c.servers {
            s.stop();
        }
    }
    if std::env::var_os("LOGS").is_some() {
        eprintln!("{}", c.logs());
    }
    if std::env::var_os("KEEP").is_some() {
        eprintln!("keeping {}", c.servers[0].data_dir.display());
        std::mem::forget(c);
    }
    times.sort();
    println!(
        "cold restart of 3 servers with {allocs} allocations: serving after p50 {:?} (min {:?}, max {:?}) over {runs} runs; snapshot {:.1} MB, decode {decoded:?}, rebuild {rebuilt:?}",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        size as f64 / 1e6
    );
}

//! Region tests: 3-server regions of real `caravan` processes on 127.X.Y.n addresses, with
//! `kill -9`, restarts, forwarding, snapshot catch-up, and bad input.

#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    dead_code
)]

#[path = "../e2e/harness.rs"]
mod harness;

mod cluster;

use cluster::{job_json, Cluster};
use harness::eventually;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Job IDs the server at `i` lists (a stale read: what that server has applied).
fn jobs_on(c: &Cluster, i: usize) -> BTreeMap<String, u64> {
    c.servers[i]
        .get_json("/v1/jobs?stale=true")
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .map(|j| {
            (
                j["ID"].as_str().unwrap_or_default().to_string(),
                j["JobModifyIndex"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn register(c: &Cluster, i: usize, id: &str) -> Result<u64, String> {
    match c.servers[i].request("PUT", "/v1/jobs", Some(&job_json(id, 1))) {
        Ok((200, body)) => {
            let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            v["JobModifyIndex"]
                .as_u64()
                .filter(|i| *i > 0)
                .ok_or_else(|| format!("no JobModifyIndex in {body}"))
        }
        Ok((status, body)) => Err(format!("{status}: {body}")),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn three_servers_bootstrap_once_elect_one_leader_and_forward_writes() {
    let c = Cluster::start(3, 3, "");
    let leader = c.wait_leader(30);
    // Every server lists the same three voters.
    for s in &c.servers {
        let peers = s.get_json("/v1/status/peers").expect("peers");
        let mut want: Vec<String> = c.servers.iter().map(|s| s.rpc_addr()).collect();
        want.sort();
        assert_eq!(peers, serde_json::json!(want), "{}", s.name);
    }
    let config = c.servers[0]
        .get_json("/v1/operator/raft/configuration")
        .expect("raft configuration");
    let servers = config["Servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 3);
    assert_eq!(servers.iter().filter(|s| s["Leader"] == true).count(), 1);
    assert!(servers.iter().all(|s| s["Voter"] == true));
    // Exactly one server bootstrapped the region's configuration... and each logged it once.
    for s in &c.servers {
        let n = s.log_text().matches("bootstrapping the region").count();
        assert!(n <= 1, "{} bootstrapped {n} times", s.name);
    }

    // A write to a follower is forwarded to the leader and visible everywhere.
    let follower = (leader + 1) % 3;
    let index = register(&c, follower, "forwarded").expect("register via a follower");
    for i in 0..3 {
        eventually(10, "the job on every server", || {
            (jobs_on(&c, i).get("forwarded") == Some(&index)).then_some(())
        });
    }
    // A consistent read through a follower answers with the leader's view and index headers.
    let (status, body) = c.servers[follower]
        .request("GET", "/v1/job/forwarded", None)
        .expect("read via follower");
    assert_eq!(status, 200, "{body}");
    let raw = harness::try_http(
        &c.servers[follower].url("/v1/jobs?stale=true"),
        "GET",
        None,
        Duration::from_secs(5),
    );
    assert!(raw.is_ok());

    // Reads through a follower carry the leader metadata, stale or not.
    for path in ["/v1/jobs", "/v1/jobs?stale=true"] {
        let head = head_of(&c.servers[follower].url(path));
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("x-nomad-knownleader: true"), "{head}");
        assert!(head.contains("x-nomad-lastcontact: "), "{head}");
        assert!(head.contains("x-nomad-index: "), "{head}");
    }

    // operator raft list-peers: three voters, one leader.
    let out = c.servers[follower].cli(&["operator", "raft", "list-peers"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("Node "), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains(" leader ")).count(),
        1,
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains(" follower ")).count(),
        2,
        "{text}"
    );
    assert!(text.contains(&c.servers[leader].rpc_addr()), "{text}");

    // server members: three alive servers, one leader.
    let out = c.servers[follower].cli(&["server", "members"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.contains(" alive ")).count(),
        3,
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains(" true ")).count(),
        1,
        "{text}"
    );
}

#[test]
fn leader_kill9_under_writes_loses_no_acknowledged_registration() {
    let mut c = Cluster::start(3, 3, "");
    let first_leader = c.wait_leader(30);
    // Writers register unique jobs through every server, recording what was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let urls: Vec<String> = c.servers.iter().map(|s| s.url("/v1/jobs")).collect();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let stop = stop.clone();
            let acked = acked.clone();
            let urls = urls.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let id = format!("w{w}-{n}");
                    let url = &urls[(n as usize + w) % urls.len()];
                    if let Ok((200, body)) = harness::try_http(
                        url,
                        "PUT",
                        Some(&job_json(&id, 1)),
                        Duration::from_secs(10),
                    ) {
                        let v: Value = serde_json::from_str(&body).expect("json");
                        let index = v["JobModifyIndex"].as_u64().expect("index");
                        acked.lock().unwrap().push((id, index));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let before = acked.lock().unwrap().len();
    c.servers[first_leader].kill9();
    let new_leader = c.wait_leader(20);
    assert_ne!(new_leader, first_leader);
    // Writes succeed again after the failover.
    let after_kill = acked.lock().unwrap().len();
    eventually(20, "writes after failover", || {
        (acked.lock().unwrap().len() > after_kill + 20).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(before > 10, "too few writes before the kill: {before}");

    // History check: every acknowledged registration is present with exactly the index it was
    // acknowledged at (each job is written once, so a lost, re-applied or forked write would
    // show as a missing job or another index), and each writer's writes, issued one after the
    // other, were committed at strictly increasing indexes (concurrent writes may share one).
    let present = jobs_on(&c, new_leader);
    let mut last_by_writer: BTreeMap<String, u64> = BTreeMap::new();
    for (id, index) in &acked {
        let writer = id.split('-').next().unwrap_or_default().to_string();
        if let Some(prev) = last_by_writer.insert(writer, *index) {
            assert!(prev < *index, "{id} committed at {index}, not after {prev}");
        }
        assert_eq!(
            present.get(id),
            Some(index),
            "acknowledged job {id} (index {index}) is missing or changed after failover"
        );
    }
    // The surviving follower converges to the same state.
    let other = (0..3)
        .find(|i| *i != first_leader && *i != new_leader)
        .expect("a follower");
    eventually(10, "the follower to converge", || {
        (jobs_on(&c, other) == present).then_some(())
    });
    // Evaluations that were pending when the leader died were re-queued by the new leader:
    // none stays pending (with no client they end blocked).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let evals = c.servers[new_leader]
            .get_json("/v1/evaluations")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        let pending: Vec<&Value> = evals.iter().filter(|e| e["Status"] == "pending").collect();
        if evals.len() >= acked.len() && pending.is_empty() {
            break;
        }
        // Said in full when it fails: which evaluations stayed pending, and the servers' logs.
        assert!(
            std::time::Instant::now() < deadline,
            "{} evaluations ({} acknowledged), {} still pending after 60 s: {:?}\n{}",
            evals.len(),
            acked.len(),
            pending.len(),
            pending
                .iter()
                .take(5)
                .map(|e| (&e["ID"], &e["TriggeredBy"], &e["WaitUntil"]))
                .collect::<Vec<_>>(),
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "acknowledged writes: {} ({} before the kill)",
        acked.len(),
        before
    );
}

#[test]
fn follower_restarted_catches_up_by_log_and_by_snapshot_install() {
    let mut c = Cluster::start(
        3,
        3,
        "raft_snapshot_threshold = 16\n  raft_trailing_logs = 4",
    );
    let leader = c.wait_leader(30);
    let follower = (leader + 1) % 3;

    // Catch-up from the log: a short outage.
    c.servers[follower].kill9();
    for n in 0..5 {
        register(&c, leader, &format!("a{n}")).expect("register");
    }
    c.servers[follower].start();
    eventually(20, "catch-up by log", || {
        (jobs_on(&c, follower).len() == 5).then_some(())
    });

    // Catch-up by snapshot: a long outage, during which the leader compacts its log.
    c.servers[follower].kill9();
    for n in 0..80 {
        register(&c, leader, &format!("b{n}")).expect("register");
    }
    c.servers[follower].start();
    let want = jobs_on(&c, leader);
    assert_eq!(want.len(), 85);
    eventually(30, "catch-up by snapshot", || {
        (jobs_on(&c, follower) == want).then_some(())
    });
    let log = c.servers[follower].log_text();
    assert!(
        log.contains("installed a snapshot from the leader"),
        "the follower did not install a snapshot:\n{log}"
    );
    assert!(c.servers[follower]
        .data_dir
        .join("server/snapshots/snapshot.bin")
        .exists());
}

#[test]
fn whole_region_restart_recovers_state_and_scheduling_continues() {
    let mut c = Cluster::start(3, 3, "raft_snapshot_threshold = 32");
    let leader = c.wait_leader(30);
    // A region setting, written through a follower: it must survive like the jobs.
    let follower = (leader + 1) % 3;
    let (status, body) = c.servers[follower]
        .request(
            "PUT",
            "/v1/operator/scheduler/configuration",
            Some(r#"{"SchedulerAlgorithm":"spread"}"#),
        )
        .expect("reach the follower");
    assert_eq!(status, 200, "{body}");
    // Enough writes that part of the state is in a snapshot and part only in the log.
    let mut acked = BTreeMap::new();
    for n in 0..50 {
        let id = format!("j{n}");
        let index = register(&c, (leader + n) % 3, &id).expect("register");
        acked.insert(id, index);
    }
    let evals_before = c.servers[leader]
        .get_json("/v1/evaluations")
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0);
    assert!(evals_before >= 50);

    // kill -9 all three, then a clean stop/start of the same data.
    for s in &mut c.servers {
        s.kill9();
    }
    for s in &mut c.servers {
        s.start();
    }
    let leader = c.wait_leader(30);
    let present = jobs_on(&c, leader);
    for (id, index) in &acked {
        assert_eq!(
            present.get(id),
            Some(index),
            "{id} lost after kill -9 of every server"
        );
    }
    let evals_after = c.servers[leader]
        .get_json("/v1/evaluations")
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0);
    assert!(
        evals_after >= evals_before,
        "{evals_after} < {evals_before}"
    );
    for s in &c.servers {
        let n = s.log_text().matches("bootstrapping the region").count();
        assert!(n <= 1, "{} bootstrapped again after restart", s.name);
    }
    for s in &c.servers {
        let algorithm = eventually(30, "every server has the scheduler configuration", || {
            let v = s.get_json("/v1/operator/scheduler/configuration?stale=true")?;
            let a = v["SchedulerConfig"]["SchedulerAlgorithm"]
                .as_str()?
                .to_string();
            (a == "spread").then_some(a)
        });
        assert_eq!(algorithm, "spread", "{}", s.name);
    }

    for s in &mut c.servers {
        s.stop();
    }
    for s in &mut c.servers {
        s.start();
    }
    let leader = c.wait_leader(30);
    assert_eq!(jobs_on(&c, leader).len(), 50);

    // Scheduling continues: a client joins and the blocked jobs are placed on it.
    c.add_client();
    eventually(60, "allocations running after the restart", || {
        let allocs = c.servers[leader].get_json("/v1/allocations")?;
        let running = allocs
            .as_array()?
            .iter()
            .filter(|a| a["ClientStatus"] == "running")
            .count();
        (running >= 10).then_some(())
    });
}

#[test]
fn client_keeps_its_allocations_across_a_leader_change() {
    let mut c = Cluster::start(3, 3, "");
    let leader = c.wait_leader(30);
    c.add_client();
    eventually(30, "the client node", || {
        let nodes = c.servers[leader].get_json("/v1/nodes")?;
        (nodes.as_array()?.iter().any(|n| n["Status"] == "ready")).then_some(())
    });
    register(&c, leader, "steady").expect("register");
    let alloc_id = eventually(30, "the allocation running", || {
        let allocs = c.servers[leader].get_json("/v1/job/steady/allocations")?;
        allocs
            .as_array()?
            .iter()
            .find(|a| a["ClientStatus"] == "running")
            .and_then(|a| a["ID"].as_str().map(str::to_string))
    });
    c.servers[leader].kill9();
    let leader = c.wait_leader(20);
    // Past a heartbeat TTL (10 s) plus grace: the node stays ready, the allocation keeps
    // running, and nothing was replaced.
    std::thread::sleep(Duration::from_secs(12));
    let node = c.servers[leader].get_json("/v1/nodes").expect("nodes");
    assert_eq!(node[0]["Status"], "ready", "{}", c.logs());
    let allocs = c.servers[leader]
        .get_json("/v1/job/steady/allocations")
        .expect("allocs");
    let allocs = allocs.as_array().expect("array");
    assert_eq!(allocs.len(), 1, "{allocs:?}");
    assert_eq!(allocs[0]["ID"], alloc_id.as_str());
    assert_eq!(allocs[0]["ClientStatus"], "running");
    // And the new leader schedules onto it.
    register(&c, leader, "after").expect("register after failover");
    eventually(30, "a new allocation after failover", || {
        let allocs = c.servers[leader].get_json("/v1/job/after/allocations")?;
        (allocs
            .as_array()?
            .iter()
            .any(|a| a["ClientStatus"] == "running"))
        .then_some(())
    });
}

#[test]
fn snapshot_save_and_restore_through_the_api() {
    let c = Cluster::start(3, 3, "");
    let leader = c.wait_leader(30);
    register(&c, leader, "kept").expect("register");
    let follower = (leader + 1) % 3;
    let (status, snapshot) = c.servers[follower]
        .request("GET", "/v1/operator/snapshot", None)
        .expect("save");
    assert_eq!(status, 200);
    assert!(snapshot.starts_with("CRVNSNP5"));
    register(&c, leader, "dropped").expect("register");
    assert_eq!(jobs_on(&c, leader).len(), 2);
    // Save and restore through the CLI, as an operator would.
    let file = tempfile::NamedTempFile::new().expect("tmp");
    let out = c.servers[follower].cli(&[
        "operator",
        "snapshot",
        "save",
        file.path().to_str().expect("path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    register(&c, leader, "after-save").expect("register");
    let out = c.servers[follower].cli(&[
        "operator",
        "snapshot",
        "restore",
        file.path().to_str().expect("path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..3 {
        eventually(10, "the restored state everywhere", || {
            let jobs = jobs_on(&c, i);
            (jobs.contains_key("kept")
                && jobs.contains_key("dropped")
                && !jobs.contains_key("after-save"))
            .then_some(())
        });
    }
    // A corrupt file is refused and changes nothing.
    let bad = tempfile::NamedTempFile::new().expect("tmp");
    let mut bytes = std::fs::read(file.path()).expect("read");
    let n = bytes.len();
    bytes[n - 3] ^= 0x5a;
    std::fs::write(bad.path(), &bytes).expect("write");
    let out = c.servers[leader].cli(&[
        "operator",
        "snapshot",
        "restore",
        bad.path().to_str().expect("path"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("checksum") || err.contains("corrupt"), "{err}");
    assert!(jobs_on(&c, leader).contains_key("kept"));
}

#[test]
fn mismatched_bootstrap_expect_refuses_to_bootstrap() {
    let mut c = Cluster::start(2, 2, "");
    // Rewrite s2 to expect 3 and restart it before anything bootstraps.
    c.servers[1].kill9();
    let _ = std::fs::remove_dir_all(&c.servers[1].data_dir);
    let text = std::fs::read_to_string(c.servers[1].data_dir.parent().unwrap().join("agent.hcl"))
        .expect("config");
    c.servers[1].configure(
        &text
            .split_once("server {")
            .map(|(_, rest)| {
                format!(
                    "server {{{}",
                    rest.replace("bootstrap_expect = 2", "bootstrap_expect = 3")
                )
            })
            .expect("server block"),
    );
    c.servers[1].start();
    let expected = "every server of a region must expect the same number";
    eventually(20, "the mismatch reported", || {
        (c.servers.iter().any(|s| s.log_text().contains(expected))).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    for s in &c.servers {
        assert!(
            s.leader().is_none(),
            "{} elected a leader: {}",
            s.name,
            c.logs()
        );
    }
}

#[test]
fn data_dir_of_another_region_and_corrupt_log_are_refused() {
    let mut c = Cluster::start(1, 1, "");
    c.wait_leader(30);
    register(&c, 0, "j").expect("register");
    c.servers[0].stop();

    // The same data dir under another region name.
    let config = c.servers[0].data_dir.parent().unwrap().join("agent.hcl");
    let original = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("region = \"eu\"\n{original}")).expect("write");
    c.servers[0].start();
    let code = eventually(20, "the agent to exit", || c.servers[0].exited());
    assert_ne!(code, Some(0));
    let log = c.servers[0].log_text();
    assert!(
        log.contains("belongs to region \"global\"") && log.contains("\"eu\""),
        "{log}"
    );
    c.servers[0].kill9();
    std::fs::write(&config, &original).expect("restore config");

    // The log is segment files in server/raft/; the newest one is where writes go.
    let log_dir = c.servers[0].data_dir.join("server/raft");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&log_dir)
        .expect("raft dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segs.sort();
    let seg = segs.last().expect("a segment").clone();
    let seg_name = seg.file_name().unwrap().to_string_lossy().into_owned();
    let original_seg = std::fs::read(&seg).expect("read segment");

    // A record damaged in the middle of the log (intact records after it).
    let mut damaged = original_seg.clone();
    damaged[48] ^= 0xff;
    std::fs::write(&seg, &damaged).expect("write");
    c.servers[0].start();
    let code = eventually(20, "the agent to exit", || c.servers[0].exited());
    assert_ne!(code, Some(0));
    let log = c.servers[0].log_text();
    assert!(
        log.contains(&seg_name) && log.contains("is corrupt"),
        "the error does not name the file and the damage:\n{log}"
    );
    c.servers[0].kill9();

    // A truncated log file.
    std::fs::write(&seg, &original_seg[..original_seg.len() / 3]).expect("truncate");
    c.servers[0].start();
    let code = eventually(20, "the agent to exit", || c.servers[0].exited());
    assert_ne!(code, Some(0));
    let log = c.servers[0].log_text();
    assert!(
        log.contains(&seg_name) && log.contains("is truncated"),
        "the error does not name the file:\n{log}"
    );
    c.servers[0].kill9();

    // Garbage instead of a log segment.
    std::fs::write(&seg, b"this is not a log, just some garbage bytes").expect("write");
    c.servers[0].start();
    let code = eventually(20, "the agent to exit", || c.servers[0].exited());
    assert_ne!(code, Some(0));
    assert!(c.servers[0]
        .log_text()
        .contains("not a Caravan Raft log segment"));
    c.servers[0].kill9();
}

#[test]
fn a_corrupt_snapshot_on_disk_is_refused_with_its_path() {
    let mut c = Cluster::start(1, 1, "raft_snapshot_threshold = 8");
    c.wait_leader(30);
    for n in 0..20 {
        register(&c, 0, &format!("j{n}")).expect("register");
    }
    let snap = c.servers[0].data_dir.join("server/snapshots/snapshot.bin");
    eventually(20, "a snapshot on disk", || snap.exists().then_some(()));
    c.servers[0].stop();
    let mut bytes = std::fs::read(&snap).expect("snapshot");
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    std::fs::write(&snap, &bytes).expect("corrupt it");
    c.servers[0].start();
    let code = eventually(20, "the agent to exit", || c.servers[0].exited());
    assert_ne!(code, Some(0));
    let log = c.servers[0].log_text();
    assert!(
        log.contains("cannot load the snapshot in") && log.contains("checksum"),
        "{log}"
    );
    c.servers[0].kill9();
    // Truncated: cut in the middle.
    std::fs::write(&snap, &bytes[..n / 2]).expect("truncate it");
    c.servers[0].start();
    eventually(20, "the agent to exit", || c.servers[0].exited());
    assert!(
        c.servers[0]
            .log_text()
            .matches("cannot load the snapshot in")
            .count()
            >= 2
    );
}

/// The response head of a GET (status line and headers).
fn head_of(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("url");
    let (host, path) = rest.split_once('/').expect("path");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    raw.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[test]
fn a_new_server_joins_catches_up_by_snapshot_and_a_dead_one_is_removed() {
    let extra = "raft_snapshot_threshold = 16\n  raft_trailing_logs = 4";
    let mut c = Cluster::start(3, 3, extra);
    let leader = c.wait_leader(30);
    for n in 0..60 {
        register(&c, leader, &format!("j{n}")).expect("register");
    }
    // A fourth server finds the region through retry_join and is added by the leader; the log
    // it would need was compacted, so it catches up from a snapshot.
    // Every acknowledged registration is there. Read on whoever leads now: on a loaded machine
    // leadership can move during the writes (they are then forwarded), and a stale read on a
    // server that became a follower may trail the leader for a moment.
    let want = eventually(30, "the leader to list all 60 jobs", || {
        let jobs = jobs_on(&c, c.wait_leader(30));
        (jobs.len() == 60).then_some(jobs)
    });
    let new = c.add_server(3, extra);
    eventually(30, "the new server to catch up", || {
        (jobs_on(&c, new) == want).then_some(())
    });
    assert!(
        c.servers[new]
            .log_text()
            .contains("installed a snapshot from the leader"),
        "{}",
        c.servers[new].log_text()
    );
    assert!(!c.servers[new]
        .log_text()
        .contains("bootstrapping the region"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let voters = c.servers[leader]
            .get_json("/v1/operator/raft/configuration")
            .and_then(|config| {
                let servers = config["Servers"].as_array()?.clone();
                Some(servers.iter().filter(|s| s["Voter"] == true).count())
            });
        if voters == Some(4) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not four voters ({voters:?}):\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A dead follower is removed with the CLI; the region keeps its quorum and takes writes.
    let leader = c.wait_leader(30);
    let victim = (0..3).find(|i| *i != leader).expect("a follower");
    let victim_addr = c.servers[victim].rpc_addr();
    c.servers[victim].kill9();
    let out = c.servers[leader].cli(&[
        "operator",
        "raft",
        "remove-peer",
        &format!("-peer-address={victim_addr}"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Removed peer with address"), "{text}");
    let peers = c.servers[leader]
        .get_json("/v1/status/peers")
        .expect("peers");
    assert_eq!(peers.as_array().map(Vec::len), Some(3), "{peers}");
    assert!(!peers.to_string().contains(&victim_addr));
    register(&c, leader, "after-removal").expect("write after removal");
    // Removing it again is a clear error.
    let out = c.servers[leader].cli(&[
        "operator",
        "raft",
        "remove-peer",
        &format!("-peer-address={victim_addr}"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Failed to remove raft peer") && err.contains("no server"),
        "{err}"
    );
}

#[test]
fn a_drain_carries_on_under_a_new_leader() {
    let mut c = Cluster::start(3, 3, "");
    let leader = c.wait_leader(30);
    c.add_client();
    c.add_client();
    eventually(30, "both client nodes", || {
        let nodes = c.servers[leader].get_json("/v1/nodes")?;
        let ready = nodes.as_array()?.iter().filter(|n| n["Status"] == "ready");
        (ready.count() == 2).then_some(())
    });
    // A batch allocation waits for the drain's deadline, so the drain is still running when
    // the leader dies; the next leader's drainer must finish it.
    let mut job: Value = serde_json::from_str(&job_json("report", 1)).expect("job json");
    job["Job"]["Type"] = "batch".into();
    let (status, body) = c.servers[leader]
        .request("PUT", "/v1/jobs", Some(&job.to_string()))
        .expect("register");
    assert_eq!(status, 200, "{body}");
    let running_on = |c: &Cluster, i: usize| -> Option<String> {
        let allocs = c.servers[i].get_json("/v1/job/report/allocations")?;
        allocs
            .as_array()?
            .iter()
            .find(|a| a["ClientStatus"] == "running" && a["DesiredStatus"] == "run")
            .and_then(|a| a["NodeID"].as_str().map(str::to_string))
    };
    let first = eventually(30, "the batch allocation running", || {
        running_on(&c, leader)
    });
    let follower = (leader + 1) % 3;
    let drain = r#"{"DrainSpec":{"Deadline":15000000000}}"#;
    let (status, body) = c.servers[follower]
        .request("POST", &format!("/v1/node/{first}/drain"), Some(drain))
        .expect("drain through a follower");
    assert_eq!(status, 200, "{body}");
    let node = c.servers[leader]
        .get_json(&format!("/v1/node/{first}"))
        .expect("node");
    assert_eq!(node["Drain"], true);
    assert_eq!(node["LastDrain"]["Status"], "draining");

    c.servers[leader].kill9();
    let leader = c.wait_leader(20);
    let second = eventually(60, "the allocation moved at the deadline", || {
        running_on(&c, leader).filter(|n| *n != first)
    });
    eventually(30, "the drain completed under the new leader", || {
        let node = c.servers[leader].get_json(&format!("/v1/node/{first}"))?;
        (node["LastDrain"]["Status"] == "complete" && node["Drain"] == false).then_some(())
    });
    assert_ne!(second, first);
}

//! Tests of the background state rebuild (load.rs).

use crate::load::{set_priority, HELD};
use crate::snapshot::{encode, Meta, SnapshotError, SnapshotStore};
use crate::{StateMachine, TypeConfig};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use state::Command;
use state::StateStore;
use structs::mock;

fn state_with_nodes(n: usize) -> StateStore {
    let mut s = StateStore::new();
    for i in 0..n {
        let node = Box::new(mock::node(&format!("n{i}")));
        s.apply(i as u64 + 1, Command::NodeRegister { node, now: 1 })
            .unwrap();
    }
    s
}

fn meta_at(index: u64) -> Meta {
    Meta {
        last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
        snapshot_id: format!("1-{index}-0"),
        ..Meta::default()
    }
}

fn blank(index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Blank,
    }
}

#[tokio::test]
async fn a_snapshot_on_disk_is_rebuilt_in_the_background_and_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::dir(dir.path()).unwrap();
    let state = state_with_nodes(50);
    store
        .save(
            &meta_at(50),
            &encode(&meta_at(50), &state.to_image()).unwrap(),
        )
        .unwrap();
    let mut sm = StateMachine::open(SnapshotStore::dir(dir.path()).unwrap()).unwrap();
    // Raft learns where the state is from the metadata alone.
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(50));
    let handle = sm.handle();
    // As once `Raft::new` has returned: applying waits for the rebuild, then applies on top.
    sm.starting_flag()
        .store(false, std::sync::atomic::Ordering::Release);
    sm.apply([blank(51)]).await.unwrap();
    assert!(handle.is_loaded());
    handle.wait_loaded().await.unwrap();
    let snap = handle.snapshot();
    assert_eq!(snap.node_count(), 50);
    assert_eq!(snap.latest_index(), 50);
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(51));
}

#[tokio::test]
async fn entries_apply_on_top_of_the_rebuilt_state_never_before_it() {
    let mut sm = StateMachine::loading_for_test();
    let handle = sm.handle();
    let node = Box::new(mock::node("late"));
    let cmd = serde_json::to_vec(&Command::NodeRegister { node, now: 2 }).unwrap();
    let entry = Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), 51),
        payload: EntryPayload::Normal(crate::Payload::Commands(vec![serde_bytes::ByteBuf::from(
            cmd,
        )])),
    };
    let apply = tokio::spawn(async move { sm.apply([entry]).await.map(|_| sm) });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        !apply.is_finished(),
        "an entry applied before the state was there"
    );
    handle.finish_load(Ok(state_with_nodes(50)));
    let sm = apply.await.unwrap().unwrap();
    let snap = sm.handle().snapshot();
    assert_eq!(snap.node_count(), 51);
    assert_eq!(snap.latest_index(), 51);
}

#[tokio::test]
async fn entries_raft_re_applies_while_starting_are_applied_by_the_rebuild() {
    let mut sm = StateMachine::loading_for_test();
    sm.starting_flag()
        .store(true, std::sync::atomic::Ordering::Release);
    let handle = sm.handle();
    let node = Box::new(mock::node("late"));
    let entry = Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), 51),
        payload: EntryPayload::Normal(crate::Payload::Commands(vec![serde_bytes::ByteBuf::from(
            crate::command_codec::encode(Command::NodeRegister { node, now: 2 }).unwrap(),
        )])),
    };
    // Inside `Raft::new` nothing waits for the rebuild.
    let replies = tokio::time::timeout(std::time::Duration::from_secs(5), sm.apply([entry]))
        .await
        .expect("the startup re-apply does not wait for the rebuild")
        .unwrap();
    assert_eq!(replies.len(), 1);
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(51));
    assert_eq!(handle.snapshot().node_count(), 0);
    handle.finish_load(Ok(state_with_nodes(50)));
    let snap = handle.snapshot();
    assert_eq!(snap.node_count(), 51);
    assert_eq!(snap.latest_index(), 51);
}

#[tokio::test]
async fn a_rebuild_that_fails_names_the_file_and_stops_applies_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::dir(dir.path()).unwrap();
    let good = encode(&meta_at(9), &state_with_nodes(3).to_image()).unwrap();
    // A body cut short behind a matching checksum (a crafted or buggy file): the start
    // accepts it, the rebuild cannot read it.
    let body_at = good.len() - snapshot_body_len(&good);
    let mut bad = good[..body_at + (good.len() - body_at) / 2].to_vec();
    let crc = crc32fast::hash(&bad[body_at..]);
    bad[body_at - 4..body_at].copy_from_slice(&crc.to_le_bytes());
    store.save(&meta_at(9), &bad).unwrap();
    let mut sm = StateMachine::open(SnapshotStore::dir(dir.path()).unwrap()).unwrap();
    let handle = sm.handle();
    let err = handle.wait_loaded().await.unwrap_err();
    assert!(
        err.contains("cannot rebuild the state from")
            && err.contains(&*dir.path().to_string_lossy()),
        "{err}"
    );
    // Nothing is applied on top of an empty state, and no empty snapshot replaces the file.
    assert!(sm.apply([blank(10)]).await.is_err());
    let mut builder = sm.get_snapshot_builder().await;
    assert!(builder.build_snapshot().await.is_err());
    assert_eq!(store.load().unwrap().unwrap(), bad);
}

#[test]
fn a_corrupt_snapshot_still_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::dir(dir.path()).unwrap();
    let mut bytes = encode(&meta_at(3), &state_with_nodes(3).to_image()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    store.save(&meta_at(3), &bytes).unwrap();
    let err = StateMachine::open(SnapshotStore::dir(dir.path()).unwrap())
        .err()
        .expect("a checksum mismatch is refused at once");
    assert!(matches!(err, SnapshotError::Checksum { .. }), "{err}");
}

#[test]
fn only_the_rebuild_threads_change_priority() {
    let (tx, rx) = std::sync::mpsc::channel();
    let start = |name: &str| {
        let tx = tx.clone();
        let name = name.to_string();
        std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                // SAFETY: gettid(2) has no preconditions.
                tx.send((name, unsafe { libc::gettid() })).unwrap();
                std::thread::park();
            })
            .unwrap()
    };
    let threads = [start("state-test"), start("other-test")];
    let tids: std::collections::BTreeMap<String, i32> = rx.iter().take(2).collect();
    let nice = |name: &str| {
        // SAFETY: getpriority(2) has no memory-safety preconditions.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, tids[name] as u32) }
    };
    let other_before = nice("other-test");
    set_priority(19);
    assert_eq!(nice("state-test"), 19);
    assert_eq!(nice("other-test"), other_before);
    for t in threads {
        t.thread().unpark();
        t.join().unwrap();
    }
}

/// openraft restarts a server whose committed vote is its own as the leader at once, and
/// counts the entries behind the snapshot on disk as applied: the leader barrier must wait
/// for the rebuilt state too, or leader duties start from an empty one. And openraft
/// re-applies the committed entries after the snapshot inside `Raft::new`: those must not hold
/// Raft's start until the rebuild is done, and must be in the state once it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarting_as_leader_starts_raft_at_once_and_serves_only_with_its_state() {
    use crate::{RaftNode, RaftSettings, ServerNode, Storage};
    use openraft::storage::RaftLogStorage;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let storage = || Storage::Durable {
        dir: dir.path().to_path_buf(),
        region: "global".into(),
    };
    let settings = RaftSettings {
        snapshot_threshold: 8,
        trailing_logs: 0,
        ..RaftSettings::default()
    };
    let node = ServerNode {
        name: "s1".into(),
        rpc_addr: "127.0.0.1:1".into(),
    };
    let start = || {
        RaftNode::start(
            storage(),
            node.clone(),
            &settings,
            rpc::peer::PeerClient::new(),
        )
    };
    let raft = start().await.unwrap();
    raft.initialize(std::collections::BTreeMap::from([(
        raft.id(),
        node.clone(),
    )]))
    .await
    .unwrap();
    leads(&raft).await;
    let register = |i: usize| Command::NodeRegister {
        node: Box::new(mock::node(&format!("n{i}"))),
        now: 1,
    };
    for i in 0..8 {
        raft.write(register(i)).await.unwrap();
    }
    let snapshot_at = |raft: &RaftNode| raft.raft().metrics().borrow().snapshot.map(|s| s.index);
    for _ in 0..1000 {
        if snapshot_at(&raft).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let snapshot = snapshot_at(&raft).expect("a snapshot after 8 entries");
    // Committed entries after the snapshot, so the restart re-applies some (the last write
    // makes the committed id of the one before it durable).
    for i in 8..12 {
        raft.write(register(i)).await.unwrap();
    }
    assert_eq!(snapshot_at(&raft), Some(snapshot), "no second snapshot yet");
    raft.shutdown().await;
    drop(raft);
    {
        let (mut log, _) = crate::WalLogStore::open(&dir.path().join("raft"), "global").unwrap();
        let committed = log.read_committed().await.unwrap().map(|c| c.index);
        assert!(
            committed > Some(snapshot),
            "the setup must leave committed entries after the snapshot ({committed:?} vs {snapshot})"
        );
    }

    let (release, held) = std::sync::mpsc::channel();
    let snapshots = SnapshotStore::dir(&dir.path().join("snapshots")).unwrap();
    *HELD.lock().unwrap() = Some((snapshots.describe(), held));
    let raft = tokio::time::timeout(Duration::from_secs(10), start())
        .await
        .expect("Raft starts while the state is still being rebuilt")
        .unwrap();
    leads(&raft).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), raft.barrier())
            .await
            .is_err(),
        "the barrier passed before the state was rebuilt"
    );
    assert_eq!(raft.state().snapshot().node_count(), 0);
    release.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), raft.barrier())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raft.state().snapshot().node_count(), 12);
    raft.shutdown().await;
}

async fn leads(raft: &crate::RaftNode) {
    for _ in 0..500 {
        if raft.current_leadership().is_self {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no leadership after 5 s");
}

/// The length of a snapshot's body (behind its header, metadata and checksum).
fn snapshot_body_len(bytes: &[u8]) -> usize {
    let meta_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    bytes.len() - (12 + meta_len + 4)
}

//! Tests of applying committed entries to the state (state_machine.rs): in place, with every
//! snapshot a reader took before unchanged.

use crate::snapshot::SnapshotStore;
use crate::{Payload, StateMachine, TypeConfig};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use state::{Command, PlanResult};
use std::sync::Arc;
use structs::{mock, Evaluation};

fn entry(index: u64, commands: &[Command]) -> Entry<TypeConfig> {
    let encoded = commands
        .iter()
        .map(|c| serde_bytes::ByteBuf::from(crate::command_codec::encode(c.clone()).unwrap()))
        .collect();
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Payload::Commands(encoded)),
    }
}

fn register_node(id: &str) -> Command {
    Command::NodeRegister {
        node: Box::new(mock::node(id)),
        now: 1,
    }
}

/// Allocation `k` of job `web`, on `node-<k % 1000>` (mock::running_alloc).
fn alloc_id(k: usize) -> String {
    structs::derive_uuid("web", k as u64)
}

fn place(job: &Arc<structs::Job>, k: usize) -> Command {
    Command::PlanApply(PlanResult {
        allocs_upserted: vec![mock::running_alloc(job, k)],
        ..PlanResult::default()
    })
}

/// An empty in-memory state machine, as once `Raft::new` has returned.
fn running_state_machine() -> StateMachine {
    let sm = StateMachine::open(SnapshotStore::memory()).unwrap();
    sm.starting_flag()
        .store(false, std::sync::atomic::Ordering::Release);
    sm
}

fn node_name(i: usize) -> String {
    format!("node-{i:04}")
}

#[tokio::test]
async fn snapshots_taken_before_an_entry_applies_keep_what_they_saw() {
    let mut sm = running_state_machine();
    let handle = sm.handle();
    let job = Arc::new(mock::job("web", 600));
    let nodes: Vec<Command> = (0..300).map(|i| register_node(&node_name(i))).collect();
    sm.apply([entry(1, &nodes)]).await.unwrap();
    let allocs: Vec<Command> = (0..300).map(|k| place(&job, k)).collect();
    sm.apply([entry(2, &allocs)]).await.unwrap();
    let before = handle.snapshot();

    // Changes to what the snapshot holds: new nodes and allocations, client updates of
    // existing allocations (all through the in-place path), in one entry and several.
    let more: Vec<Command> = (300..600).map(|k| place(&job, k)).collect();
    let updates = Command::AllocClientUpdate {
        updates: (0..300)
            .map(|k| state::ClientAllocUpdate {
                alloc_id: alloc_id(k),
                client_status: "failed".into(),
                client_description: String::new(),
                task_states: Default::default(),
            })
            .collect(),
        evals: Vec::new(),
        now: 5,
    };
    sm.apply([entry(3, &more), entry(4, &[updates, register_node("late")])])
        .await
        .unwrap();

    assert_eq!(before.latest_index(), 2);
    assert_eq!(before.node_count(), 300);
    assert!(before.alloc_by_id(&alloc_id(450)).is_none());
    assert!(before
        .alloc_by_id(&alloc_id(7))
        .is_some_and(|a| a.client_status == "running"));
    let after = handle.snapshot();
    assert_eq!(after.latest_index(), 4);
    assert_eq!(after.node_count(), 301);
    assert!(after.alloc_by_id(&alloc_id(450)).is_some());
    assert!(after
        .alloc_by_id(&alloc_id(7))
        .is_some_and(|a| a.client_status == "failed"));
}

#[tokio::test]
async fn a_failing_command_leaves_no_partial_change_beside_in_place_ones() {
    let mut sm = running_state_machine();
    let handle = sm.handle();
    let status_of_missing = Command::NodeUpdateStatus {
        node_id: "missing".into(),
        status: "down".into(),
        evals: vec![Evaluation {
            id: "e1".into(),
            ..Evaluation::default()
        }],
        now: 2,
    };
    let replies = sm
        .apply([entry(
            1,
            &[
                register_node(&node_name(0)),
                status_of_missing,
                place(&Arc::new(mock::job("web", 1)), 0),
            ],
        )])
        .await
        .unwrap();
    let results = &replies[0].results;
    assert_eq!(results.len(), 3);
    assert!(results[0].error.is_none());
    assert_eq!(
        results[1].error.as_ref().map(|e| e.kind),
        Some(crate::ApplyErrorKind::NotFound)
    );
    assert!(results[2].error.is_none());
    let snap = handle.snapshot();
    assert!(snap.alloc_by_id(&alloc_id(0)).is_some());
    // The failed command's evaluation was not written.
    assert!(snap.eval_by_id("e1").is_none());
}

#[test]
fn a_reader_waiting_for_an_apply_does_not_hold_up_other_tasks() {
    let sm = StateMachine::open(SnapshotStore::memory()).unwrap();
    let handle = sm.handle();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    // An apply in progress: it holds the state until another task on the runtime says so.
    let holder = {
        let handle = handle.clone();
        std::thread::spawn(move || {
            handle.update(|_| {
                locked_tx.send(()).unwrap();
                release_rx
                    .recv_timeout(std::time::Duration::from_secs(20))
                    .is_ok()
            })
        })
    };
    locked_rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let reader = handle.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            // Queued behind the reader on the runtime's one worker thread.
            tokio::spawn(async move {
                let _ = release_tx.send(());
            });
            reader.snapshot().latest_index()
        })
        .await
        .unwrap()
    });
    assert!(
        holder.join().unwrap(),
        "the task that ends the apply never ran while a reader waited for the state"
    );
}

//! Rebuilding the state from the snapshot on disk in the background, so Raft starts at once.
//!
//! A server restarting with a large state (a million allocations) spends seconds of CPU
//! rebuilding its store, but Raft needs only the snapshot's metadata. So the state machine
//! starts with the metadata (the whole file's checksum verified first, so a corrupt snapshot
//! still stops the start), a thread rebuilds the store, and whatever reads or changes the
//! state waits for it: applying entries, building or installing snapshots, the leader barrier,
//! and (through [`StateHandle::wait_loaded`]) the server's endpoints that read local state;
//! what they forward to the leader goes at once. Committed entries openraft re-applies inside
//! `Raft::new` are kept and applied by the rebuild (state_machine.rs).
//! The region elects meanwhile. A server that learns it is a follower lowers the rebuild's CPU
//! priority, so the leader's rebuild, which the region waits for before it serves, gets the
//! cores; the followers finish after it.

use crate::node::Leadership;
use crate::snapshot;
use crate::StateHandle;
use state::StateStore;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::Instant;

/// Names of the rebuild's threads start with this (the state crate's helpers too), so their
/// priority can be changed together.
const THREAD_PREFIX: &str = "state-";

/// Tests hold the rebuild of the snapshot named here until the sender is used or dropped.
#[cfg(test)]
pub(crate) static HELD: std::sync::Mutex<Option<(String, std::sync::mpsc::Receiver<()>)>> =
    std::sync::Mutex::new(None);

/// Rebuilds the store from a verified snapshot's `bytes` on a thread of its own and hands it
/// to `handle`; `what` names the snapshot in messages.
pub(crate) fn spawn(handle: Arc<StateHandle>, bytes: Vec<u8>, what: String) {
    let target = handle.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("{THREAD_PREFIX}load"))
        .spawn(move || {
            #[cfg(test)]
            {
                let mut held = HELD
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if held.as_ref().is_some_and(|(name, _)| *name == what) {
                    if let Some((_, rx)) = held.take() {
                        drop(held);
                        let _ = rx.recv();
                    }
                }
            }
            let started = Instant::now();
            let size = bytes.len();
            let rebuilt = snapshot::decode_verified(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|image| {
                    let decoded = started.elapsed();
                    StateStore::from_image(image).map(|s| (s, decoded))
                });
            drop(bytes);
            match rebuilt {
                Ok((state, decoded)) => {
                    tracing::info!(
                        bytes = size,
                        allocs = state.alloc_count(),
                        latest_index = state.latest_index(),
                        decode_ms = decoded.as_millis() as u64,
                        total_ms = started.elapsed().as_millis() as u64,
                        "state restored from the snapshot on disk"
                    );
                    target.finish_load(Ok(state));
                }
                Err(e) => {
                    let message = format!("cannot rebuild the state from {what}: {e}");
                    tracing::error!("{message}");
                    target.finish_load(Err(message));
                }
            }
        });
    if let Err(e) = spawned {
        handle.finish_load(Err(format!("cannot start the state rebuild thread: {e}")));
    }
}

/// While `handle` is loading, keeps the rebuild's priority low when another server leads and
/// normal when this one does.
pub(crate) fn follow_leadership(
    handle: Arc<StateHandle>,
    mut leadership: watch::Receiver<Leadership>,
) {
    if handle.is_loaded() {
        return;
    }
    tokio::spawn(async move {
        let mut niced = false;
        loop {
            // While no leader is known (an election), the priority stays as it is.
            let follower = {
                let l = leadership.borrow_and_update();
                l.leader.is_some().then_some(!l.is_self)
            };
            if let Some(follower) = follower.filter(|f| *f != niced) {
                set_priority(if follower { 19 } else { 0 });
                niced = follower;
            }
            tokio::select! {
                _ = handle.wait_loaded() => return,
                changed = leadership.changed() => if changed.is_err() { return },
            }
        }
    });
}

/// Sets the nice value of every rebuild thread of this process. Raising it always works;
/// lowering it again needs CAP_SYS_NICE, and without it the rebuild just stays slower.
pub(crate) fn set_priority(nice: i32) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(THREAD_PREFIX) {
            continue;
        }
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue;
        };
        // SAFETY: setpriority(2) on a thread of this process has no memory-safety
        // preconditions; a thread that has exited meanwhile is just an ESRCH.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
        if rc != 0 {
            tracing::debug!(
                tid,
                nice,
                error = %std::io::Error::last_os_error(),
                "cannot change the state rebuild's priority"
            );
        }
    }
    if nice > 0 {
        tracing::info!(
            nice,
            "another server leads: the state rebuild runs at low priority"
        );
    } else {
        tracing::info!(
            nice,
            "this server leads: the state rebuild runs at normal priority"
        );
    }
}

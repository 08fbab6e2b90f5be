//! Leader duties: on gaining leadership, wait for every committed entry to be applied, then
//! enable the eval broker with the pending evaluations from state and re-arm heartbeat timers
//! (with a grace period) for every live node; on losing it, disable both.

use crate::Shared;
use std::sync::Arc;
use std::time::Duration;
use structs::{EVAL_STATUS_PENDING, NODE_STATUS_DOWN};
use tracing::{info, warn};

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut leadership = shared.raft.leadership();
    let mut leading = false;
    loop {
        let is_self = leadership.borrow_and_update().is_self;
        if is_self && !leading {
            match shared.raft.barrier().await {
                Ok(()) => {
                    establish(&shared).await;
                    leading = true;
                }
                Err(e) => {
                    warn!(error = %e, "leadership barrier failed; retrying");
                    tokio::select! {
                        _ = shared.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                    continue;
                }
            }
        } else if !is_self && leading {
            revoke(&shared).await;
            leading = false;
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            changed = leadership.changed() => if changed.is_err() { return },
        }
    }
}

/// Starts the leader duties from the current state: the broker holds the pending evaluations
/// (oldest first), every live node gets a heartbeat deadline of TTL + grace, and blocked
/// evaluations are retried. Used on gaining leadership and (with `flush`, dropping what an
/// earlier state queued) after a snapshot restore.
///
/// The broker is enabled before the state is read: an evaluation committed before the read is
/// in it, and one committed after is enqueued by its writer after the broker was enabled (the
/// broker drops duplicates), so none is left pending without being queued.
pub(crate) async fn start_duties(shared: &Shared, flush: bool) {
    if flush {
        shared.broker.set_enabled(false).await;
    }
    shared.broker.set_enabled(true).await;
    let snap = shared.log.snapshot();
    shared
        .broker
        .set_paused(snap.scheduler_config().pause_eval_broker)
        .await;
    let grace = shared.heartbeat_ttl() + shared.config.heartbeat_grace;
    let nodes: Vec<(String, Duration)> = snap
        .nodes()
        .filter(|n| n.status != NODE_STATUS_DOWN)
        .map(|n| (n.id.clone(), grace))
        .collect();
    let mut pending: Vec<_> = snap
        .evals()
        .filter(|e| e.status == EVAL_STATUS_PENDING)
        .cloned()
        .collect();
    pending.sort_by_key(|e| e.create_index);
    info!(
        pending_evals = pending.len(),
        nodes = nodes.len(),
        index = snap.latest_index(),
        "leader duties started"
    );
    for eval in pending {
        shared.broker.enqueue((*eval).clone()).await;
    }
    shared.heartbeats.enable(nodes).await;
    shared.unblock_evals().await;
    shared
        .duties_active
        .store(true, std::sync::atomic::Ordering::Release);
}

async fn establish(shared: &Shared) {
    info!("cluster leadership acquired");
    initial_scheduler_config(shared).await;
    start_duties(shared, false).await;
}

/// A region whose scheduler configuration was never set takes the agent's
/// `default_scheduler_config` (check-and-set on index 0, so a configuration an operator set,
/// or another leader wrote first, is kept).
async fn initial_scheduler_config(shared: &Shared) {
    let Some(config) = shared.config.default_scheduler_config.clone() else {
        return;
    };
    if shared.log.snapshot().scheduler_config().modify_index != 0 {
        return;
    }
    let cmd = state::Command::SchedulerSetConfig {
        config,
        cas: Some(0),
    };
    match shared.log.apply(cmd).await {
        Ok(_) => info!("scheduler configuration initialised from default_scheduler_config"),
        Err(e) if e.code == rpc::ErrorCode::Conflict => {}
        Err(e) => warn!(error = %e, "could not apply default_scheduler_config"),
    }
}

async fn revoke(shared: &Shared) {
    info!("cluster leadership lost; leader duties stopped");
    shared
        .duties_active
        .store(false, std::sync::atomic::Ordering::Release);
    shared.broker.set_enabled(false).await;
    shared.heartbeats.disable().await;
}

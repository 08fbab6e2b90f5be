//! Scheduler workers: dequeue an evaluation, run the pure scheduler on a snapshot, submit the
//! plan, retry on a fresh snapshot when the applier rejected part of it, then record the
//! evaluation's outcome (complete, blocked for capacity, or failed).

use crate::{now_ns, Shared};
use rpc::RpcError;
use scheduler::{compute, SchedCtx, SchedOutcome};
use state::Command;
use std::sync::Arc;
use structs::{
    Evaluation, EVAL_STATUS_BLOCKED, EVAL_STATUS_CANCELED, EVAL_STATUS_COMPLETE, EVAL_STATUS_FAILED,
};
use tracing::{debug, warn};

pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        let delivery = tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => return,
            d = shared.broker.dequeue() => match d {
                Some(d) => d,
                None => return,
            },
        };
        let eval = &delivery.eval;
        match process(&shared, eval).await {
            Ok(()) => shared.broker.ack(&delivery).await,
            Err(err) => {
                // Given back: delivered again, and recorded as failed past the delivery limit
                // (reaper.rs).
                warn!(eval_id = %eval.id, job_id = %eval.job_id, error = %err, "evaluation failed; giving it back to the broker");
                shared.broker.nack(&delivery).await;
            }
        }
    }
}

/// The scheduler's seed for one run: new allocation IDs derive from it. It names the state the
/// run sees as well as the attempt: an evaluation delivered again (after a nack, or to a new
/// leader) starts its attempts over, and with the attempt alone its first new IDs would be
/// those an earlier delivery already committed, so its placements would overwrite them.
fn seed(eval_id: &str, snapshot_index: u64, attempt: usize) -> String {
    format!("{eval_id}/{snapshot_index}/{attempt}")
}

/// Nomad's plan attempts before giving up: service/system 5, batch 2.
fn max_attempts(eval: &Evaluation) -> usize {
    if eval.eval_type == "batch" || eval.eval_type == "sysbatch" {
        2
    } else {
        5
    }
}

async fn process(shared: &Shared, eval: &Evaluation) -> Result<(), RpcError> {
    let mut outcome = SchedOutcome::default();
    let mut snapshot_index = 0;
    let mut exhausted = true;
    for attempt in 0..max_attempts(eval) {
        let snap = shared.log.snapshot();
        if snap
            .eval_by_id(&eval.id)
            .is_some_and(|e| e.status == EVAL_STATUS_CANCELED)
        {
            return Ok(());
        }
        snapshot_index = snap.latest_index();
        let ctx = SchedCtx {
            now: now_ns(),
            seed: seed(&eval.id, snapshot_index, attempt),
            nodes: shared.node_cache.clone(),
        };
        // The scheduler is pure CPU work (tens of milliseconds for a large job): run it off
        // the async threads, which must stay free for Raft heartbeats and RPCs, or a busy
        // leader starves its followers of heartbeats and they call elections.
        let job_eval = eval.clone();
        outcome = tokio::task::spawn_blocking(move || compute(&snap, &job_eval, &ctx))
            .await
            .map_err(|e| RpcError::internal(format!("scheduler task failed: {e}")))?;
        debug!(eval_id = %eval.id, placed = outcome.plan.placed(), "scheduler ran");
        if outcome.plan.is_empty() {
            exhausted = false;
            break;
        }
        let placed = outcome.plan.placed();
        let applied = shared
            .plans
            .submit(std::mem::take(&mut outcome.plan))
            .await?;
        if !applied.refresh {
            exhausted = false;
            break;
        }
        // Optimistic concurrency at work: another plan took room this one counted on (debug:
        // under load most large plans see this once).
        debug!(
            eval_id = %eval.id,
            attempt,
            placed,
            "plan partly rejected; scheduling the rest on a fresh snapshot"
        );
    }

    let snap = shared.log.snapshot();
    let mut updated = eval.clone();
    updated.snapshot_index = snapshot_index;
    updated.modify_time = now_ns();
    updated.failed_tg_allocs = outcome.failed_tg_allocs.clone();
    if let Some(job) = snap.job_by_id(&eval.namespace, &eval.job_id) {
        updated.queued_allocations = job
            .task_groups
            .iter()
            .map(|g| {
                (
                    g.name.clone(),
                    outcome.queued.get(&g.name).copied().unwrap_or(0),
                )
            })
            .collect();
    }
    let mut evals = Vec::new();
    if exhausted {
        updated.status = EVAL_STATUS_FAILED.into();
        updated.status_description = format!("maximum attempts reached ({})", max_attempts(eval));
    } else if eval.status == EVAL_STATUS_BLOCKED && !outcome.failed_tg_allocs.is_empty() {
        // Still no room: stay blocked (Nomad re-blocks the same evaluation).
        updated.status = EVAL_STATUS_BLOCKED.into();
    } else {
        updated.status = EVAL_STATUS_COMPLETE.into();
        // Only one blocked evaluation per job is kept: this run supersedes older ones.
        for old in snap.evals_by_job(&eval.namespace, &eval.job_id) {
            if old.status == EVAL_STATUS_BLOCKED && old.id != eval.id {
                let mut canceled = (*old).clone();
                canceled.status = EVAL_STATUS_CANCELED.into();
                canceled.status_description = "superseded by a newer evaluation".into();
                evals.push(canceled);
            }
        }
        if eval.status != EVAL_STATUS_BLOCKED {
            if let Some(blocked) = outcome.blocked_eval.take() {
                updated.blocked_eval = blocked.id.clone();
                evals.push(blocked);
            }
        }
    }
    // Follow-ups that reschedule failed allocations later: stored with this evaluation, then
    // held by the broker until their `WaitUntil`.
    let followups = std::mem::take(&mut outcome.followup_evals);
    evals.extend(followups.iter().cloned());
    evals.push(updated);
    shared.log.apply(Command::EvalUpsert { evals }).await?;
    for followup in followups {
        shared.broker.enqueue(followup).await;
    }
    Ok(())
}

impl Shared {
    /// Capacity changed (a node joined, allocations stopped): re-run blocked evaluations.
    pub(crate) async fn unblock_evals(&self) {
        for eval in self.log.snapshot().blocked_evals() {
            self.broker.enqueue((*eval).clone()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::seed;

    #[test]
    fn a_run_on_newer_state_never_reuses_an_earlier_runs_ids() {
        // The first delivery committed part of its plan (the state moved on); a second
        // delivery starts at attempt 0 again and must derive other allocation IDs.
        let first = seed("e1", 100, 0);
        let again = seed("e1", 131, 0);
        assert_ne!(first, again);
        assert_ne!(
            structs::derive_uuid(&first, 0),
            structs::derive_uuid(&again, 0)
        );
        assert_eq!(
            seed("e1", 100, 0),
            first,
            "deterministic for the same inputs"
        );
        assert_ne!(seed("e1", 100, 1), first);
    }
}

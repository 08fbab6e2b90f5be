//! The leader's failed-evaluation reaper: an evaluation the broker delivered up to its limit
//! without an ack is recorded as failed, with a `failed-follow-up` evaluation that retries it
//! after a delay (Nomad waits at least a minute, so a scheduler bug or an overloaded leader
//! does not spin).

use crate::broker::DELIVERY_LIMIT;
use crate::{new_id, now_ns, Shared};
use state::Command;
use std::sync::Arc;
use structs::{Evaluation, EVAL_STATUS_FAILED, EVAL_STATUS_PENDING, TRIGGER_FAILED_FOLLOW_UP};
use tokio::sync::mpsc;
use tracing::warn;

/// The follow-up waits this long, plus up to as much again of jitter.
const FOLLOW_UP_DELAY_NS: i64 = 60_000_000_000;

pub(crate) async fn run(shared: Arc<Shared>, mut failed: mpsc::UnboundedReceiver<Evaluation>) {
    loop {
        let eval = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            e = failed.recv() => match e {
                Some(e) => e,
                None => return,
            },
        };
        warn!(eval_id = %eval.id, job_id = %eval.job_id, "evaluation reached its delivery limit; marking it failed");
        let (failed_eval, followup) = failure_records(&eval, now_ns(), jitter());
        match shared
            .log
            .apply(Command::EvalUpsert {
                evals: vec![failed_eval, followup.clone()],
            })
            .await
        {
            Ok(_) => shared.broker.enqueue(followup).await,
            // Leadership moved: the evaluation is still pending in state, and the next
            // leader's broker delivers it again.
            Err(e) => {
                warn!(eval_id = %eval.id, error = %e, "could not record the failed evaluation")
            }
        }
        shared.broker.reaped(&eval).await;
    }
}

fn jitter() -> i64 {
    i64::from(uuid::Uuid::new_v4().as_u128() as u32) % FOLLOW_UP_DELAY_NS.max(1)
}

/// The failed evaluation and its follow-up, at `now` (Unix ns).
fn failure_records(eval: &Evaluation, now: i64, jitter: i64) -> (Evaluation, Evaluation) {
    let followup = Evaluation {
        id: new_id(),
        namespace: eval.namespace.clone(),
        priority: eval.priority,
        eval_type: eval.eval_type.clone(),
        triggered_by: TRIGGER_FAILED_FOLLOW_UP.into(),
        job_id: eval.job_id.clone(),
        job_modify_index: eval.job_modify_index,
        status: EVAL_STATUS_PENDING.into(),
        wait_until: Some(structs::time::rfc3339_nano(
            now + FOLLOW_UP_DELAY_NS + jitter,
        )),
        previous_eval: eval.id.clone(),
        create_time: now,
        modify_time: now,
        ..Default::default()
    };
    let mut failed = eval.clone();
    failed.status = EVAL_STATUS_FAILED.into();
    failed.status_description = format!("evaluation reached delivery limit ({DELIVERY_LIMIT})");
    failed.next_eval = followup.id.clone();
    failed.modify_time = now;
    (failed, followup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_evaluation_gets_a_delayed_follow_up() {
        let eval = Evaluation {
            id: "e1".into(),
            job_id: "web".into(),
            namespace: "default".into(),
            priority: 70,
            status: EVAL_STATUS_PENDING.into(),
            ..Default::default()
        };
        let (failed, follow) = failure_records(&eval, 1_000, 5);
        assert_eq!(failed.status, "failed");
        assert!(failed.status_description.contains("delivery limit (3)"));
        assert_eq!(failed.next_eval, follow.id);
        assert_eq!(follow.triggered_by, "failed-follow-up");
        assert_eq!((follow.priority, follow.previous_eval.as_str()), (70, "e1"));
        let wait = structs::time::parse_rfc3339(follow.wait_until.as_deref().unwrap()).unwrap();
        assert_eq!(wait, 1_000 + FOLLOW_UP_DELAY_NS + 5);
    }
}

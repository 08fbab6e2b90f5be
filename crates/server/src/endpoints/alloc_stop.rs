//! `alloc stop`: the allocation is marked to migrate and an evaluation of its job is created;
//! the scheduler stops it ("alloc is being migrated") and places a replacement, as Nomad does.

use crate::{job_eval, now_ns, Shared};
use rpc::{AllocStopResponse, RpcError};
use state::Command;
use structs::{DesiredTransition, TRIGGER_ALLOC_STOP};

pub(super) async fn alloc_stop(
    shared: &Shared,
    alloc_id: &str,
) -> Result<AllocStopResponse, RpcError> {
    let snap = shared.log.snapshot();
    let alloc = snap
        .alloc_by_id(alloc_id)
        .ok_or_else(|| RpcError::not_found("alloc not found"))?;
    let job = snap
        .job_by_id(&alloc.namespace, &alloc.job_id)
        .or(alloc.job.as_ref())
        .ok_or_else(|| RpcError::not_found(format!("job {:?} not found", alloc.job_id)))?;
    let now = now_ns();
    let eval = structs::Evaluation {
        job_modify_index: job.job_modify_index,
        ..job_eval(job, TRIGGER_ALLOC_STOP, now)
    };
    let (index, _) = shared
        .log
        .apply(Command::AllocUpdateDesiredTransition {
            alloc_ids: vec![alloc.id.clone()],
            transition: DesiredTransition {
                migrate: Some(true),
                ..Default::default()
            },
            evals: vec![eval.clone()],
            now,
        })
        .await?;
    let eval_id = eval.id.clone();
    shared.broker.enqueue(eval).await;
    Ok(AllocStopResponse { eval_id, index })
}

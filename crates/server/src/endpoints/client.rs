//! Endpoints the client agent uses: register, heartbeat, watch allocations, report status.

use crate::{now_ns, Shared};
use rpc::{AllocClientUpdate, NodeUpdateResponse, QueryOptions, QueryResponse, RpcError};
use state::{ClientAllocUpdate, Command};
use structs::{
    Allocation, Evaluation, Node, ALLOC_CLIENT_FAILED, ALLOC_DESIRED_RUN, JOB_TYPE_SYSBATCH,
    JOB_TYPE_SYSTEM, NODE_ELIGIBLE, NODE_INELIGIBLE, NODE_STATUS_READY, TRIGGER_ALLOC_FAILURE,
    TRIGGER_NODE_UPDATE,
};

/// Evaluations for every system job, so they place on a node that joined or came back.
fn system_job_evals(shared: &Shared, node_id: &str) -> Vec<Evaluation> {
    let now = now_ns();
    shared
        .log
        .snapshot()
        .jobs()
        .filter(|j| !j.stop && (j.job_type == JOB_TYPE_SYSTEM || j.job_type == JOB_TYPE_SYSBATCH))
        .map(|j| Evaluation {
            node_id: node_id.to_string(),
            ..crate::job_eval(j, TRIGGER_NODE_UPDATE, now)
        })
        .collect()
}

/// One evaluation per job of the allocations that newly failed, so the scheduler can
/// reschedule them (Nomad's `alloc-failure` trigger). System jobs are not rescheduled.
fn failure_evals(snap: &state::StateStore, updates: &[AllocClientUpdate]) -> Vec<Evaluation> {
    let now = now_ns();
    let mut jobs = std::collections::BTreeSet::new();
    let mut evals = Vec::new();
    for u in updates
        .iter()
        .filter(|u| u.client_status == ALLOC_CLIENT_FAILED)
    {
        let Some(alloc) = snap.alloc_by_id(&u.alloc_id) else {
            continue;
        };
        if alloc.client_terminal() || alloc.desired_status != ALLOC_DESIRED_RUN {
            continue;
        }
        let Some(job) = snap.job_by_id(&alloc.namespace, &alloc.job_id) else {
            continue;
        };
        if job.stop || job.job_type == JOB_TYPE_SYSTEM || job.job_type == JOB_TYPE_SYSBATCH {
            continue;
        }
        if !jobs.insert((job.namespace.clone(), job.id.clone())) {
            continue;
        }
        evals.push(Evaluation {
            job_modify_index: job.job_modify_index,
            ..crate::job_eval(job, TRIGGER_ALLOC_FAILURE, now)
        });
    }
    evals
}

pub(super) async fn node_update_eligibility(
    shared: &Shared,
    node_id: &str,
    eligibility: &str,
) -> Result<u64, RpcError> {
    if eligibility != NODE_ELIGIBLE && eligibility != NODE_INELIGIBLE {
        return Err(RpcError::bad_request(format!(
            "invalid scheduling eligibility {eligibility:?}: must be \"eligible\" or \"ineligible\""
        )));
    }
    let snap = shared.log.snapshot();
    let node = snap
        .node_by_id(node_id)
        .ok_or_else(|| RpcError::not_found(format!("node {node_id:?} not found")))?;
    if eligibility == NODE_ELIGIBLE && node.draining() {
        return Err(RpcError::bad_request(
            "can not set node's scheduling eligibility to eligible while it is draining",
        ));
    }
    let reopens = eligibility == NODE_ELIGIBLE && reopens(node);
    let (index, _) = commit_node_change(shared, node_id, reopens, |evals| {
        Command::NodeUpdateEligibility {
            node_id: node_id.to_string(),
            eligibility: eligibility.to_string(),
            evals,
            now: now_ns(),
        }
    })
    .await?;
    Ok(index)
}

/// True when making `node` eligible opens it to new work (it is ready and was not eligible).
fn reopens(node: &Node) -> bool {
    node.scheduling_eligibility != NODE_ELIGIBLE && node.status == NODE_STATUS_READY
}

/// Commits an operator's change to a node. When the change `reopens` it for new work, the
/// command (built by `command` around them) carries evaluations for every system job, which are
/// queued once committed, and evaluations that wait for capacity are retried. Returns the index
/// and the evaluations' IDs.
async fn commit_node_change(
    shared: &Shared,
    node_id: &str,
    reopens: bool,
    command: impl FnOnce(Vec<Evaluation>) -> Command,
) -> Result<(u64, Vec<String>), RpcError> {
    let evals = if reopens {
        system_job_evals(shared, node_id)
    } else {
        Vec::new()
    };
    let ids = evals.iter().map(|e| e.id.clone()).collect();
    let (index, _) = shared.log.apply(command(evals.clone())).await?;
    for eval in evals {
        shared.broker.enqueue(eval).await;
    }
    if reopens {
        shared.unblock_evals().await;
    }
    Ok((index, ids))
}

pub(super) async fn node_update_drain(
    shared: &Shared,
    node_id: &str,
    req: rpc::NodeDrainRequest,
) -> Result<rpc::NodeDrainResponse, RpcError> {
    let snap = shared.log.snapshot();
    let node = snap
        .node_by_id(node_id)
        .ok_or_else(|| RpcError::not_found(format!("node {node_id:?} not found")))?;
    let now = now_ns();
    let strategy = req.drain_spec.map(|spec| {
        let mut s = structs::DrainStrategy::new(spec, now);
        // Changing a running drain keeps when it started.
        if let Some(current) = &node.drain_strategy {
            s.started_at = current.started_at;
        }
        s
    });
    let reopens = strategy.is_none() && req.mark_eligible && reopens(node);
    let (index, eval_ids) =
        commit_node_change(shared, node_id, reopens, |evals| Command::NodeUpdateDrain {
            node_id: node_id.to_string(),
            strategy,
            mark_eligible: req.mark_eligible,
            meta: req.meta,
            complete: false,
            evals,
            now,
        })
        .await?;
    let eval_create_index = if eval_ids.is_empty() { 0 } else { index };
    Ok(rpc::NodeDrainResponse {
        eval_ids,
        eval_create_index,
        node_modify_index: index,
    })
}

async fn node_became_ready(shared: &Shared, node_id: &str) -> Result<(), RpcError> {
    let evals = system_job_evals(shared, node_id);
    if !evals.is_empty() {
        shared
            .log
            .apply(Command::EvalUpsert {
                evals: evals.clone(),
            })
            .await?;
        for eval in evals {
            shared.broker.enqueue(eval).await;
        }
    }
    shared.unblock_evals().await;
    Ok(())
}

pub(super) async fn node_register(
    shared: &Shared,
    mut node: Node,
) -> Result<NodeUpdateResponse, RpcError> {
    if node.id.is_empty() {
        return Err(RpcError::bad_request(
            "missing node ID for client registration",
        ));
    }
    if node.datacenter.is_empty() {
        return Err(RpcError::bad_request(
            "missing datacenter for client registration",
        ));
    }
    let snap = shared.log.snapshot();
    let was_ready = snap
        .node_by_id(&node.id)
        .is_some_and(|n| n.status == NODE_STATUS_READY);
    if let Some(existing) = snap.node_by_id(&node.id) {
        if !existing.secret_id.is_empty() && existing.secret_id != node.secret_id {
            return Err(RpcError::bad_request("node secret ID does not match"));
        }
    }
    node.status = NODE_STATUS_READY.into();
    let (index, _) = shared
        .log
        .apply(Command::NodeRegister {
            node: Box::new(node.clone()),
            now: now_ns(),
        })
        .await?;
    let ttl = shared.heartbeat_ttl();
    shared.heartbeats.reset(&node.id, ttl);
    if !was_ready {
        node_became_ready(shared, &node.id).await?;
    }
    Ok(NodeUpdateResponse {
        heartbeat_ttl: ttl,
        index,
    })
}

pub(super) async fn node_heartbeat(
    shared: &Shared,
    node_id: &str,
) -> Result<NodeUpdateResponse, RpcError> {
    let snap = shared.log.snapshot();
    let node = snap
        .node_by_id(node_id)
        .ok_or_else(|| RpcError::not_found(format!("node {node_id} not found")))?;
    let mut index = snap.latest_index();
    if node.status != NODE_STATUS_READY {
        index = shared
            .log
            .apply(Command::NodeUpdateStatus {
                node_id: node_id.to_string(),
                status: NODE_STATUS_READY.into(),
                evals: vec![],
                now: now_ns(),
            })
            .await?
            .0;
        node_became_ready(shared, node_id).await?;
    }
    let ttl = shared.heartbeat_ttl();
    shared.heartbeats.reset(node_id, ttl);
    Ok(NodeUpdateResponse {
        heartbeat_ttl: ttl,
        index,
    })
}

pub(super) async fn node_client_allocs(
    shared: &Shared,
    node_id: &str,
    q: &QueryOptions,
) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
    shared
        .blocking(q, |s| {
            let allocs = s.allocs_by_node(node_id);
            // Only server-side changes (placement, stop) wake the client, not its own reports.
            let index = allocs
                .iter()
                .map(|a| a.alloc_modify_index)
                .max()
                .unwrap_or(0);
            Ok((allocs.iter().map(|a| (**a).clone()).collect(), index))
        })
        .await
}

pub(super) async fn alloc_client_update(
    shared: &Shared,
    updates: Vec<AllocClientUpdate>,
) -> Result<u64, RpcError> {
    if updates.is_empty() {
        return Ok(shared.log.snapshot().latest_index());
    }
    let snap = shared.log.snapshot();
    let freed = updates.iter().any(|u| {
        matches!(u.client_status.as_str(), "complete" | "failed" | "lost")
            && snap
                .alloc_by_id(&u.alloc_id)
                .is_some_and(|a| !a.client_terminal())
    });
    let evals = failure_evals(&snap, &updates);
    let (index, _) = shared
        .log
        .apply(Command::AllocClientUpdate {
            updates: updates
                .into_iter()
                .map(|u| ClientAllocUpdate {
                    alloc_id: u.alloc_id,
                    client_status: u.client_status,
                    client_description: u.client_description,
                    task_states: u.task_states,
                })
                .collect(),
            evals: evals.clone(),
            now: now_ns(),
        })
        .await?;
    for eval in evals {
        shared.broker.enqueue(eval).await;
    }
    if freed {
        shared.unblock_evals().await;
    }
    Ok(index)
}

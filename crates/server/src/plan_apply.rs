//! The plan applier: one task takes plans in order, re-checks every node against the latest
//! state (optimistic concurrency: a worker planned on an older snapshot), and commits what still
//! fits. Rejected nodes make the worker refresh its snapshot and retry.

use crate::{now_ns, Shared};
use rpc::RpcError;
use scheduler::{fit, Plan};
use state::{Command, PlanResult, StateStore};
use std::collections::BTreeSet;
use std::sync::Arc;
use structs::Allocation;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

/// What happened to a submitted plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlanApplied {
    /// Index of the commit (0 if nothing was committed).
    pub(crate) index: u64,
    /// True when some nodes were rejected and the worker must retry on a fresh snapshot.
    pub(crate) refresh: bool,
}

type PlanRequest = (Box<Plan>, oneshot::Sender<Result<PlanApplied, RpcError>>);

/// The handle workers submit plans through.
#[derive(Clone)]
pub(crate) struct PlanQueueHandle {
    tx: mpsc::Sender<PlanRequest>,
}

impl PlanQueueHandle {
    pub(crate) fn new() -> (Self, mpsc::Receiver<PlanRequest>) {
        let (tx, rx) = mpsc::channel(256);
        (Self { tx }, rx)
    }

    /// Submits a plan and waits for the applier's verdict.
    pub(crate) async fn submit(&self, plan: Plan) -> Result<PlanApplied, RpcError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((Box::new(plan), tx))
            .await
            .map_err(|_| RpcError::internal("plan queue closed"))?;
        rx.await
            .map_err(|_| RpcError::internal("plan applier stopped"))?
    }
}

pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<PlanRequest>) {
    loop {
        let (plan, reply) = tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => return,
            req = rx.recv() => match req {
                Some(r) => r,
                None => return,
            },
        };
        let result = apply_plan(&shared, *plan).await;
        let _ = reply.send(result);
    }
}

/// Verifies a plan against the latest state and commits the parts that fit.
async fn apply_plan(shared: &Shared, plan: Plan) -> Result<PlanApplied, RpcError> {
    let snap = shared.log.snapshot();
    // Checking every node of a large plan against its allocations is CPU work (milliseconds
    // for a thousand placements): keep it off the async threads Raft and the RPCs run on.
    let verified = tokio::task::spawn_blocking(move || verify(&snap, plan))
        .await
        .map_err(|e| RpcError::internal(format!("plan verification failed: {e}")))?;
    let Verified {
        accepted,
        stops,
        rejected,
    } = verified;
    if accepted.is_empty() && stops.is_empty() {
        return Ok(PlanApplied {
            index: 0,
            refresh: rejected,
        });
    }
    let freed = !stops.is_empty();
    let (index, _) = shared
        .log
        .apply(Command::PlanApply(PlanResult {
            allocs_upserted: accepted,
            allocs_stopped: stops,
            now: now_ns(),
            ..Default::default()
        }))
        .await?;
    if freed {
        shared.unblock_evals().await;
    }
    Ok(PlanApplied {
        index,
        refresh: rejected,
    })
}

/// What of a plan still fits the latest state.
#[derive(Debug)]
struct Verified {
    /// Allocations on nodes that still fit them.
    accepted: Vec<Allocation>,
    /// Allocations to stop: (alloc ID, desired description).
    stops: Vec<(String, String)>,
    /// True when some node no longer fits (the worker must refresh and retry).
    rejected: bool,
}

/// Re-checks each node of the plan against `snap`; the allocations are moved, not copied.
fn verify(snap: &StateStore, plan: Plan) -> Verified {
    let mut accepted = Vec::new();
    let mut rejected = false;
    for (node_id, allocs) in &plan.node_allocation {
        let fits = match snap.node_by_id(node_id) {
            None => false,
            Some(node) => {
                // The node's usage in the latest state (kept per node), its reserved ports,
                // less the allocations this plan stops or replaces in place.
                let stops: BTreeSet<&String> = plan
                    .node_update
                    .get(node_id)
                    .into_iter()
                    .flatten()
                    .map(|(id, _)| id)
                    .collect();
                let mut base = fit::usage_without(snap, node, stops.iter().copied());
                // New placements and in-place updates told apart by their create index; only
                // updates are looked up.
                let mut placing_new = false;
                let mut replaced: BTreeSet<&String> = BTreeSet::new();
                for alloc in allocs {
                    // A new placement has never been stored (no create index) and needs no
                    // lookup. Were its ID taken after all (an evaluation delivered twice and
                    // planned twice from one snapshot), its usage is counted twice here, which
                    // can reject a node that fits, never accept one that does not.
                    if alloc.create_index == 0 {
                        placing_new = true;
                        continue;
                    }
                    match snap.alloc_by_id(&alloc.id) {
                        None => placing_new = true,
                        Some(old) => {
                            let counted = !old.terminal() && old.node_id == *node_id;
                            if counted && !stops.contains(&alloc.id) && replaced.insert(&alloc.id) {
                                base.remove(old);
                            }
                        }
                    }
                }
                // New placements need a node that is still usable; in-place updates do not.
                (!placing_new || node.ready_for_work())
                    && fit::fits_on(node, base, allocs.iter()).is_ok()
            }
        };
        if fits {
            accepted.push(node_id.clone());
        } else {
            debug!(node_id = %node_id, eval_id = %plan.eval_id, "plan rejected for node");
            rejected = true;
        }
    }
    let mut node_allocation = plan.node_allocation;
    let accepted = if rejected && plan.all_at_once {
        Vec::new()
    } else {
        accepted
            .iter()
            .filter_map(|node_id| node_allocation.remove(node_id))
            .flatten()
            .collect()
    };
    Verified {
        accepted,
        stops: plan.node_update.into_values().flatten().collect(),
        rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::Command;
    use structs::mock;

    /// A state with node `n1` (4000 MHz) and one running allocation of 3000 MHz on it.
    fn state_with_one_alloc(eligible: bool) -> (StateStore, Allocation) {
        let mut s = StateStore::new();
        let mut node = mock::node("n1");
        if !eligible {
            node.scheduling_eligibility = structs::NODE_INELIGIBLE.into();
        }
        s.apply(
            1,
            Command::NodeRegister {
                node: Box::new(node),
                now: 0,
            },
        )
        .unwrap();
        let job = Arc::new(mock::job("web", 2));
        let mut a = mock::running_alloc(&job, 0);
        a.node_id = "n1".into();
        a.allocated_resources
            .tasks
            .get_mut("web")
            .unwrap()
            .cpu
            .cpu_shares = 3000;
        s.apply(
            2,
            Command::PlanApply(PlanResult {
                allocs_upserted: vec![a.clone()],
                now: 1,
                ..Default::default()
            }),
        )
        .unwrap();
        // As the scheduler sees it: stored, with its create index.
        let stored = (**s.alloc_by_id(&a.id).unwrap()).clone();
        assert_ne!(stored.create_index, 0);
        (s, stored)
    }

    fn new_alloc(from: &Allocation, k: u64, cpu: i64) -> Allocation {
        let mut b = from.clone();
        b.create_index = 0;
        b.id = structs::derive_uuid("new", k);
        b.name = format!("web.web[{}]", k + 1);
        b.allocated_resources
            .tasks
            .get_mut("web")
            .unwrap()
            .cpu
            .cpu_shares = cpu;
        b
    }

    fn plan(place: Vec<Allocation>, stop: Vec<String>) -> Plan {
        let mut p = Plan {
            eval_id: "e".into(),
            ..Default::default()
        };
        if !place.is_empty() {
            p.node_allocation.insert("n1".into(), place);
        }
        if !stop.is_empty() {
            p.node_update.insert(
                "n1".into(),
                stop.into_iter().map(|id| (id, "stop".into())).collect(),
            );
        }
        p
    }

    #[test]
    fn an_in_place_update_replaces_the_version_the_state_counts() {
        let (s, a) = state_with_one_alloc(true);
        // Counted beside the version in the state it would need 6000 of 4000 MHz.
        let v = verify(&s, plan(vec![a.clone()], vec![]));
        assert!(!v.rejected, "{v:?}");
        assert_eq!(v.accepted.len(), 1);
        // Bigger than what is left beside it: rejected.
        let mut bigger = a.clone();
        bigger
            .allocated_resources
            .tasks
            .get_mut("web")
            .unwrap()
            .cpu
            .cpu_shares = 4500;
        assert!(verify(&s, plan(vec![bigger], vec![])).rejected);
    }

    #[test]
    fn new_placements_need_room_and_a_usable_node() {
        let (s, a) = state_with_one_alloc(true);
        assert!(verify(&s, plan(vec![new_alloc(&a, 0, 2000)], vec![])).rejected);
        let fits = verify(&s, plan(vec![new_alloc(&a, 0, 1000)], vec![]));
        assert!(!fits.rejected && fits.accepted.len() == 1);
        // Stopping the running one makes room, also when the plan names it again.
        let v = verify(
            &s,
            plan(
                vec![new_alloc(&a, 0, 2000)],
                vec![a.id.clone(), a.id.clone()],
            ),
        );
        assert!(!v.rejected, "{v:?}");
        assert_eq!(v.stops.len(), 2);

        let (s, a) = state_with_one_alloc(false);
        assert!(verify(&s, plan(vec![new_alloc(&a, 0, 100)], vec![])).rejected);
        // An ineligible node keeps what runs there: in-place updates are still accepted.
        assert!(!verify(&s, plan(vec![a], vec![])).rejected);
    }

    #[test]
    fn a_new_placement_that_reuses_a_stored_id_is_counted_beside_it() {
        // An evaluation planned twice from one snapshot (a redelivery) places the same IDs
        // again as new placements: each is counted beside the stored one, so a node without
        // room for both rejects it (the worker refreshes and sees them placed), and one with
        // room accepts it as the same allocation (the state replaces it by ID).
        let (s, a) = state_with_one_alloc(true);
        let mut again = a.clone();
        again.create_index = 0;
        assert!(verify(&s, plan(vec![again.clone()], vec![])).rejected);
        again
            .allocated_resources
            .tasks
            .get_mut("web")
            .unwrap()
            .cpu
            .cpu_shares = 1000;
        let v = verify(&s, plan(vec![again], vec![]));
        assert!(!v.rejected && v.accepted.len() == 1, "{v:?}");
    }
}

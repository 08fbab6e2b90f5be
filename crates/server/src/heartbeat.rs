//! Node liveness: each heartbeat pushes a node's deadline out; a node that misses it is marked
//! down, its allocations lost, and its jobs re-evaluated.

use crate::{now_ns, Shared};
use state::{Command, PlanResult};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use structs::{Evaluation, ALLOC_CLIENT_LOST, NODE_STATUS_DOWN, TRIGGER_NODE_UPDATE};
use tokio::sync::mpsc;
use tokio::time::{interval, Instant};
use tracing::{info, warn};

/// Inputs of the heartbeat task.
pub(crate) enum HeartbeatInput {
    /// The node heartbeated; it must do so again within the TTL.
    Reset { node_id: String, ttl: Duration },
    /// Leadership gained: track these nodes with these deadlines from now.
    Enable(Vec<(String, Duration)>),
    /// Leadership lost: track nothing.
    Disable,
}

/// The handle endpoints use.
#[derive(Clone)]
pub(crate) struct HeartbeatHandle {
    tx: mpsc::Sender<HeartbeatInput>,
}

impl HeartbeatHandle {
    pub(crate) fn new() -> (Self, mpsc::Receiver<HeartbeatInput>) {
        let (tx, rx) = mpsc::channel(4096);
        (Self { tx }, rx)
    }

    /// Starts tracking on the leader: each node must heartbeat within its duration.
    pub(crate) async fn enable(&self, nodes: Vec<(String, Duration)>) {
        let _ = self.tx.send(HeartbeatInput::Enable(nodes)).await;
    }

    /// Stops tracking (leadership lost).
    pub(crate) async fn disable(&self) {
        let _ = self.tx.send(HeartbeatInput::Disable).await;
    }

    /// Records a heartbeat. Never blocks: a full channel drops it (the next one will land).
    pub(crate) fn reset(&self, node_id: &str, ttl: Duration) {
        if self
            .tx
            .try_send(HeartbeatInput::Reset {
                node_id: node_id.to_string(),
                ttl,
            })
            .is_err()
        {
            warn!(node_id, "heartbeat queue full; dropping heartbeat");
        }
    }
}

impl Shared {
    /// The TTL to hand a client: Nomad's `max(min_ttl, nodes / max_per_second)`.
    pub(crate) fn heartbeat_ttl(&self) -> Duration {
        let nodes = self.log.snapshot().node_count() as f64;
        let rate_ttl =
            Duration::from_secs_f64(nodes / self.config.max_heartbeats_per_second.max(1.0));
        rate_ttl.max(self.config.min_heartbeat_ttl)
    }
}

pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<HeartbeatInput>) {
    let mut deadlines: BTreeMap<String, Instant> = BTreeMap::new();
    let mut enabled = false;
    let mut tick = interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => return,
            input = rx.recv() => match input {
                Some(HeartbeatInput::Reset { node_id, ttl }) => {
                    if enabled {
                        deadlines.insert(node_id, Instant::now() + ttl + shared.config.heartbeat_grace);
                    }
                }
                Some(HeartbeatInput::Enable(nodes)) => {
                    enabled = true;
                    let now = Instant::now();
                    deadlines = nodes.into_iter().map(|(id, d)| (id, now + d)).collect();
                }
                Some(HeartbeatInput::Disable) => {
                    enabled = false;
                    deadlines.clear();
                }
                None => return,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let expired: Vec<String> = deadlines
                    .iter()
                    .filter(|(_, d)| **d <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                for node_id in expired {
                    deadlines.remove(&node_id);
                    if let Err(err) = mark_down(&shared, &node_id).await {
                        warn!(node_id = %node_id, error = %err, "could not mark node down");
                    }
                }
            }
        }
    }
}

/// Marks a node down, its live allocations lost, and evaluates the affected jobs.
async fn mark_down(shared: &Shared, node_id: &str) -> Result<(), rpc::RpcError> {
    info!(node_id, "node missed its heartbeat; marking it down");
    let snap = shared.log.snapshot();
    let now = now_ns();
    let lost: Vec<_> = snap
        .allocs_by_node(node_id)
        .into_iter()
        .filter(|a| !a.terminal())
        .collect();
    let jobs: BTreeSet<(String, String)> = lost
        .iter()
        .map(|a| (a.namespace.clone(), a.job_id.clone()))
        .collect();
    let evals: Vec<Evaluation> = jobs
        .into_iter()
        .filter_map(|(ns, job_id)| {
            let job = snap.job_by_id(&ns, &job_id)?;
            Some(Evaluation {
                node_id: node_id.to_string(),
                ..crate::job_eval(job, TRIGGER_NODE_UPDATE, now)
            })
        })
        .collect();
    if !lost.is_empty() {
        shared
            .log
            .apply(Command::PlanApply(PlanResult {
                allocs_stopped: lost
                    .iter()
                    .map(|a| (a.id.clone(), "alloc is lost since its node is down".into()))
                    .collect(),
                allocs_client_status: lost
                    .iter()
                    .map(|a| {
                        (
                            a.id.clone(),
                            ALLOC_CLIENT_LOST.into(),
                            "alloc is lost since its node is down".into(),
                        )
                    })
                    .collect(),
                now,
                ..Default::default()
            }))
            .await?;
    }
    shared
        .log
        .apply(Command::NodeUpdateStatus {
            node_id: node_id.to_string(),
            status: NODE_STATUS_DOWN.into(),
            evals: evals.clone(),
            now,
        })
        .await?;
    for eval in evals {
        shared.broker.enqueue(eval).await;
    }
    Ok(())
}

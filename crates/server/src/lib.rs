//! The region server: RPC endpoints over the state store, the eval broker, scheduler workers,
//! the plan applier, heartbeat tracking and blocked-eval unblocking.
//!
//! Every change to region state goes through [`log::StateLog::apply`] as a `state::Command`:
//! today a local, serial log; with Raft (a later issue) the same commands are replicated and the
//! leader runs the broker, workers and applier. The scheduler itself is the pure `scheduler`
//! crate; this crate owns the submit-and-retry loop around it.
//!
//! Tasks: one owns the broker (`broker.rs`), one the plan queue (`plan_apply.rs`), one the
//! heartbeat timers (`heartbeat.rs`), and `num_schedulers` workers (`worker.rs`). All obey one
//! shutdown token.

mod blocking;
mod broker;
mod endpoints;
mod heartbeat;
mod log;
mod plan_apply;
mod worker;

use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use endpoints::ServerRpc;

/// Server settings (Nomad's names in comments).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Region this server belongs to.
    pub region: String,
    /// Datacenter of this server.
    pub datacenter: String,
    /// Node name (`name`).
    pub node_name: String,
    /// Advertised RPC address, reported by `/v1/status/leader`.
    pub rpc_addr: String,
    /// Scheduler workers (`num_schedulers`, default: CPU cores).
    pub num_schedulers: usize,
    /// Lowest heartbeat TTL handed to clients (`min_heartbeat_ttl`, 10s).
    pub min_heartbeat_ttl: Duration,
    /// Heartbeats per second the servers aim for (`max_heartbeats_per_second`, 50).
    pub max_heartbeats_per_second: f64,
    /// Extra time past the TTL before a node is marked down (`heartbeat_grace`, 10s).
    pub heartbeat_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            region: "global".into(),
            datacenter: "dc1".into(),
            node_name: "caravan".into(),
            rpc_addr: "127.0.0.1:4647".into(),
            num_schedulers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            min_heartbeat_ttl: Duration::from_secs(10),
            max_heartbeats_per_second: 50.0,
            heartbeat_grace: Duration::from_secs(10),
        }
    }
}

/// Everything the endpoints and background tasks share.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) log: log::StateLog,
    pub(crate) broker: broker::BrokerHandle,
    pub(crate) plans: plan_apply::PlanQueueHandle,
    pub(crate) heartbeats: heartbeat::HeartbeatHandle,
    pub(crate) shutdown: CancellationToken,
}

/// A running server: its RPC surface and its tasks.
pub struct ServerHandle {
    rpc: Arc<ServerRpc>,
    tasks: JoinSet<()>,
}

impl ServerHandle {
    /// Starts the server's tasks. They stop when `shutdown` is cancelled.
    pub fn start(config: ServerConfig, shutdown: CancellationToken) -> Self {
        let mut tasks = JoinSet::new();
        let (broker, broker_task) = broker::Broker::new(shutdown.clone());
        tasks.spawn(broker_task.run());
        let (plans, plan_rx) = plan_apply::PlanQueueHandle::new();
        let (heartbeats, hb_rx) = heartbeat::HeartbeatHandle::new();
        let workers = config.num_schedulers.max(1);
        let shared = Arc::new(Shared {
            config,
            log: log::StateLog::new(),
            broker,
            plans,
            heartbeats,
            shutdown: shutdown.clone(),
        });
        tasks.spawn(plan_apply::run(shared.clone(), plan_rx));
        tasks.spawn(heartbeat::run(shared.clone(), hb_rx));
        for _ in 0..workers {
            tasks.spawn(worker::run(shared.clone()));
        }
        Self {
            rpc: Arc::new(ServerRpc::new(shared)),
            tasks,
        }
    }

    /// The RPC endpoints, for the HTTP API and a local client.
    pub fn rpc(&self) -> Arc<ServerRpc> {
        self.rpc.clone()
    }

    /// Waits for every task to finish (after the shutdown token is cancelled).
    pub async fn join(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Unix nanoseconds now. The server stamps time into commands; state and scheduler never read
/// the clock.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A fresh random UUID for evaluations and nodes.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests;

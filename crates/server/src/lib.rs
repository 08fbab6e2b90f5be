//! The region server: RPC endpoints over the replicated state, forwarding to the leader, region
//! bootstrap and join, and the leader's duties: the eval broker, scheduler workers, the plan
//! applier, heartbeat tracking, blocked-eval unblocking and the node drainer.
//!
//! Every change to region state is a `state::Command` committed through Raft
//! ([`log::StateLog::apply`] over `consensus::RaftNode`). Writes and consistent reads run on
//! the leader (`forward.rs`); `?stale` reads run anywhere. The scheduler itself is the pure
//! `scheduler` crate; this crate owns the submit-and-retry loop around it.
//!
//! Tasks: one owns the broker (`broker.rs`), one the plan queue (`plan_apply.rs`), one the
//! heartbeat timers (`heartbeat.rs`), one drains nodes (`drainer.rs`, acting only while this
//! server's leader duties run), `num_schedulers` workers (`worker.rs`), one follows
//! leadership and starts or stops the leader duties (`leader.rs`), and one forms or joins the
//! region (`bootstrap.rs`). All obey one shutdown token.

mod blocking;
mod bootstrap;
mod broker;
mod drainer;
mod endpoints;
mod forward;
mod heartbeat;
mod leader;
mod log;
mod peer;
mod plan_apply;
mod reaper;
mod worker;

use consensus::{RaftNode, ServerNode, Storage};
use rpc::peer::{PeerClient, PeerHandler};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use consensus::{RaftSettings, StartError};
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
    /// The server directory for the Raft log and snapshots (`<data_dir>/server`); None keeps
    /// them in memory.
    pub data_dir: Option<PathBuf>,
    /// Servers expected before the region bootstraps (`bootstrap_expect`).
    pub bootstrap_expect: u32,
    /// RPC addresses of other servers to form or join the region with
    /// (`server_join { retry_join }`).
    pub retry_join: Vec<String>,
    /// Pause between join attempts (`server_join { retry_interval }`, 30s in Nomad; 1s here).
    pub retry_interval: Duration,
    /// Raft timing and compaction.
    pub raft: RaftSettings,
    /// The scheduler configuration a new region starts with (`default_scheduler_config`).
    pub default_scheduler_config: Option<structs::SchedulerConfiguration>,
    /// Gossip port, reported in `server members`.
    pub serf_port: u16,
    /// Version reported in `server members`.
    pub build: String,
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
            data_dir: None,
            bootstrap_expect: 1,
            retry_join: Vec::new(),
            retry_interval: Duration::from_secs(1),
            raft: RaftSettings::default(),
            default_scheduler_config: None,
            serf_port: 4648,
            build: String::new(),
        }
    }
}

/// Everything the endpoints and background tasks share.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) raft: Arc<RaftNode>,
    pub(crate) peers: PeerClient,
    pub(crate) forwarders: Mutex<HashMap<String, Arc<rpc::remote::RemoteRpc>>>,
    pub(crate) log: log::StateLog,
    pub(crate) broker: broker::BrokerHandle,
    pub(crate) plans: plan_apply::PlanQueueHandle,
    pub(crate) heartbeats: heartbeat::HeartbeatHandle,
    /// Views of the node table the scheduler keeps between evaluations.
    pub(crate) node_cache: scheduler::NodeCache,
    /// True while this server leads and its leader duties run (the drainer acts only then).
    pub(crate) duties_active: std::sync::atomic::AtomicBool,
    pub(crate) shutdown: CancellationToken,
}

/// A running server: its RPC surface and its tasks.
pub struct ServerHandle {
    rpc: Arc<ServerRpc>,
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
}

impl ServerHandle {
    /// Opens the Raft store and starts the server's tasks. They stop when `shutdown` is
    /// cancelled. Fails when the stored data cannot be used (corrupt, another region's).
    pub async fn start(
        config: ServerConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        let storage = match &config.data_dir {
            Some(dir) => Storage::Durable {
                dir: dir.clone(),
                region: config.region.clone(),
            },
            None => Storage::Memory,
        };
        let peers = PeerClient::new();
        let node = ServerNode {
            name: config.node_name.clone(),
            rpc_addr: config.rpc_addr.clone(),
        };
        let raft = Arc::new(RaftNode::start(storage, node, &config.raft, peers.clone()).await?);
        let mut tasks = JoinSet::new();
        let (broker, broker_task, failed_evals) = broker::Broker::new(shutdown.clone());
        tasks.spawn(broker_task.run());
        let (plans, plan_rx) = plan_apply::PlanQueueHandle::new();
        let (heartbeats, hb_rx) = heartbeat::HeartbeatHandle::new();
        let workers = config.num_schedulers.max(1);
        let shared = Arc::new(Shared {
            config,
            log: log::StateLog::new(raft.clone()),
            raft,
            peers,
            forwarders: Mutex::default(),
            broker,
            plans,
            heartbeats,
            node_cache: scheduler::NodeCache::default(),
            duties_active: std::sync::atomic::AtomicBool::new(false),
            shutdown: shutdown.clone(),
        });
        tasks.spawn(plan_apply::run(shared.clone(), plan_rx));
        tasks.spawn(reaper::run(shared.clone(), failed_evals));
        tasks.spawn(heartbeat::run(shared.clone(), hb_rx));
        tasks.spawn(drainer::run(shared.clone()));
        for _ in 0..workers {
            tasks.spawn(worker::run(shared.clone()));
        }
        tasks.spawn(leader::run(shared.clone()));
        tasks.spawn(bootstrap::run(shared.clone()));
        Ok(Self {
            rpc: Arc::new(ServerRpc::new(shared.clone())),
            shared,
            tasks,
        })
    }

    /// Waits until the region state is there: a restarted server rebuilds it from the
    /// snapshot on disk in the background while Raft and forwarding already run. Fails when
    /// the rebuild did (the agent then stops).
    pub async fn ready(&self) -> Result<(), StartError> {
        self.shared
            .raft
            .state()
            .wait_loaded()
            .await
            .map_err(StartError::Load)
    }

    /// The RPC endpoints, for the HTTP API and a local client.
    pub fn rpc(&self) -> Arc<ServerRpc> {
        self.rpc.clone()
    }

    /// The receiving end of server-to-server calls (Raft, join), for the gRPC listener.
    pub fn peer_handler(&self) -> Arc<dyn PeerHandler> {
        Arc::new(peer::ServerPeer {
            shared: self.shared.clone(),
        })
    }

    /// This server's Raft member (benchmarks and tools drive it directly).
    pub fn raft(&self) -> Arc<RaftNode> {
        self.shared.raft.clone()
    }

    /// Waits for every task to finish (after the shutdown token is cancelled), then stops Raft.
    pub async fn join(mut self) {
        while self.tasks.join_next().await.is_some() {}
        self.shared.raft.shutdown().await;
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

/// A new pending evaluation of `job` (a fresh ID), triggered by `triggered_by` at `now`.
/// Callers set what else they know (`node_id`, `job_modify_index`) with struct update.
pub(crate) fn job_eval(job: &structs::Job, triggered_by: &str, now: i64) -> structs::Evaluation {
    structs::Evaluation {
        id: new_id(),
        namespace: job.namespace.clone(),
        priority: job.priority,
        eval_type: job.job_type.clone(),
        triggered_by: triggered_by.into(),
        job_id: job.id.clone(),
        status: structs::EVAL_STATUS_PENDING.into(),
        create_time: now,
        modify_time: now,
        ..Default::default()
    }
}

/// A fresh random UUID for evaluations and nodes.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests;

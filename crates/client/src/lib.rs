//! The client agent: fingerprints the node, registers and heartbeats with the servers, watches
//! its allocations, and runs them (alloc dir, task environment, driver, logs, restart policy),
//! reporting task states back.
//!
//! Map: `node` (identity in `<data_dir>/client/node-id`, register, heartbeat) ->
//! `watcher` (blocking `node_client_allocs`, one alloc runner per allocation) ->
//! `alloc_runner` (alloc dir, task states, client status, sibling kills) -> `task_runner`
//! (`env` + interpolation, driver start, `logs`, `restart` policy, kill) -> `reporter`
//! (coalesced `alloc_client_update` batches). `fingerprint` builds the registered `Node`.
//!
//! `state` (`<data_dir>/client/state.redb`) records every started task's driver handle, so a
//! restarted client takes its running tasks over (and learns how the others ended).
//!
//! Owns: everything that happens on a worker node. Must not: depend on server crates; it
//! reaches the servers only through `Arc<dyn rpc::Rpc>`. On shutdown tasks keep running (as
//! Nomad's clients leave them) unless `stop_tasks_on_shutdown` (`-dev`); their reported status
//! stays as it was.

mod alloc_dir;
mod alloc_runner;
mod artifact;
mod control;
mod env;
mod fingerprint;
mod lifecycle;
mod logs;
mod node;
mod reporter;
mod restart;
mod state;
mod task_runner;
mod template;
mod watcher;

use rpc::Rpc;
pub use state::StateError;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Why the client could not start.
#[derive(Debug, Error)]
pub enum ClientError {
    /// A data directory problem.
    #[error("client data dir {path}: {source}")]
    DataDir {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The durable state cannot be opened.
    #[error(transparent)]
    State(#[from] StateError),
    /// `network_interface` names an interface without an IPv4 address (or none at all).
    #[error("network_interface {0:?}: no such interface with an IPv4 address")]
    NetworkInterface(String),
}

/// Client settings (Nomad's `client {}` block plus agent identity).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Node name.
    pub node_name: String,
    /// Datacenter.
    pub datacenter: String,
    /// Region.
    pub region: String,
    /// `node_class`.
    pub node_class: String,
    /// `node_pool`.
    pub node_pool: String,
    /// Client `meta`.
    pub meta: BTreeMap<String, String>,
    /// Data dir: `client/` holds the node identity, `alloc/<id>/` the allocations.
    pub data_dir: PathBuf,
    /// `options` (`driver.raw_exec.enable` = "1").
    pub options: BTreeMap<String, String>,
    /// Reserved cpu MHz.
    pub reserved_cpu: i64,
    /// Reserved memory MB.
    pub reserved_memory_mb: i64,
    /// Reserved disk MB.
    pub reserved_disk_mb: i64,
    /// Reserved host ports (`"22,80,8000-8010"`).
    pub reserved_ports: String,
    /// Override of the fingerprinted total cpu MHz.
    pub cpu_total_compute: Option<i64>,
    /// Override of the fingerprinted memory MB.
    pub memory_total_mb: Option<i64>,
    /// The IP tasks' ports are bound to and advertised on (default: the address the agent
    /// advertises); `network_interface` overrides it.
    pub network_ip: String,
    /// `network_interface`: take the node's IP from this interface's first IPv4 address.
    pub network_interface: Option<String>,
    /// This agent's HTTP address, registered so others can reach the client (logs).
    pub http_addr: String,
    /// `max_kill_timeout`: the cap on any task's `kill_timeout` (Nomad: 30s).
    pub max_kill_timeout: Duration,
    /// How long to wait before retrying a failed heartbeat or registration.
    pub heartbeat_retry: Duration,
    /// Overrides every task's `logs.max_file_size` with this many bytes (tests rotate small).
    pub max_log_file_bytes: Option<u64>,
    /// Stop every task when the client shuts down (`-dev`, as Nomad's dev mode), instead of
    /// leaving them running for the next start of the client to take over.
    pub stop_tasks_on_shutdown: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            node_name: "caravan".into(),
            datacenter: "dc1".into(),
            region: "global".into(),
            node_class: String::new(),
            node_pool: "default".into(),
            meta: BTreeMap::new(),
            data_dir: PathBuf::from("/var/lib/caravan"),
            options: BTreeMap::new(),
            reserved_cpu: 0,
            reserved_memory_mb: 0,
            reserved_disk_mb: 0,
            reserved_ports: String::new(),
            cpu_total_compute: None,
            memory_total_mb: None,
            network_ip: "127.0.0.1".into(),
            network_interface: None,
            http_addr: "127.0.0.1:4646".into(),
            max_kill_timeout: Duration::from_secs(30),
            heartbeat_retry: Duration::from_secs(1),
            max_log_file_bytes: None,
            stop_tasks_on_shutdown: false,
        }
    }
}

/// The running client: its node ID, the alloc dirs it serves, and its tasks.
pub struct ClientHandle {
    node_id: String,
    alloc_root: PathBuf,
    controls: Arc<control::Controls>,
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
}

/// The client agent.
pub struct Client;

impl Client {
    /// Fingerprints the node, registers it (retrying until the servers answer or `shutdown` is
    /// cancelled), then heartbeats, watches the node's allocations and runs them until
    /// `shutdown` is cancelled, when every task is stopped with its kill signal and timeout.
    pub async fn start(
        mut config: ClientConfig,
        rpc: Arc<dyn Rpc>,
        shutdown: CancellationToken,
    ) -> Result<ClientHandle, ClientError> {
        let client_dir = config.data_dir.join("client");
        let alloc_root = config.data_dir.join("alloc");
        for dir in [&client_dir, &alloc_root] {
            std::fs::create_dir_all(dir).map_err(|source| ClientError::DataDir {
                path: dir.clone(),
                source,
            })?;
        }
        if let Some(name) = config.network_interface.clone().filter(|n| !n.is_empty()) {
            config.network_ip = fingerprint::interface_ipv4(&name)
                .ok_or(ClientError::NetworkInterface(name))?
                .to_string();
        }
        let (node_id, secret_id) =
            node::identity(&client_dir).map_err(|source| ClientError::DataDir {
                path: client_dir.clone(),
                source,
            })?;
        let state = Arc::new(state::ClientState::open(&client_dir)?);
        let drivers = drivers::catalog(&config.options);
        node::detect_drivers(&drivers).await;
        let node = fingerprint::node(&config, &node_id, &secret_id, &drivers);
        let mut tasks = JoinSet::new();
        let (reporter, reporter_task) = reporter::Reporter::new(rpc.clone(), shutdown.clone());
        tasks.spawn(reporter_task);
        let registration = node::Registration::new(
            rpc.clone(),
            node.clone(),
            drivers.clone(),
            config.heartbeat_retry,
            shutdown.clone(),
        );
        // Register before watching, so the first allocation query finds the node.
        let ttl = registration.register_until_ok().await;
        tasks.spawn(registration.heartbeat_loop(ttl));
        // Nomad passes the agent's environment to tasks of drivers without image isolation,
        // minus its `env.denylist` of credentials.
        let host_env = std::env::vars()
            .filter(|(k, _)| !env::HOST_ENV_DENYLIST.contains(&k.as_str()))
            .collect();
        let controls = Arc::new(control::Controls::default());
        let ctx = Arc::new(watcher::ClientCtx {
            node: Arc::new(node),
            config,
            alloc_root: alloc_root.clone(),
            drivers,
            reporter,
            host_env,
            shutdown: shutdown.clone(),
            controls: controls.clone(),
            state,
        });
        tasks.spawn(watcher::run(ctx, rpc, shutdown.clone()));
        Ok(ClientHandle {
            node_id,
            alloc_root,
            controls,
            tasks,
            shutdown,
        })
    }
}

impl ClientHandle {
    /// This node's ID (stable across restarts: kept in `<data_dir>/client/node-id`).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Cancels the shutdown token (if the caller has not) and waits until every task has been
    /// stopped and the client's loops have ended.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

#[async_trait::async_trait]
impl rpc::ClientFs for ClientHandle {
    fn alloc_dir(&self, alloc_id: &str) -> Option<PathBuf> {
        if alloc_id.is_empty() || alloc_id.contains('/') || alloc_id.contains("..") {
            return None;
        }
        let dir = self.alloc_root.join(alloc_id);
        dir.is_dir().then_some(dir)
    }

    async fn signal_tasks(
        &self,
        alloc_id: &str,
        task: Option<&str>,
        signal: &str,
    ) -> Result<(), rpc::TaskControlError> {
        let number = drivers::signal_number(signal)
            .ok_or_else(|| rpc::TaskControlError::BadSignal(signal.to_string()))?;
        let known = self.alloc_dir(alloc_id).is_some();
        self.controls
            .send(alloc_id, task, control::Control::Signal(number), known)
    }

    async fn restart_tasks(
        &self,
        alloc_id: &str,
        task: Option<&str>,
    ) -> Result<(), rpc::TaskControlError> {
        let known = self.alloc_dir(alloc_id).is_some();
        self.controls
            .send(alloc_id, task, control::Control::Restart, known)
    }

    async fn alloc_stats(
        &self,
        alloc_id: &str,
    ) -> Result<structs::AllocResourceUsage, rpc::TaskControlError> {
        if self.alloc_dir(alloc_id).is_none() {
            return Err(rpc::TaskControlError::UnknownAlloc(alloc_id.to_string()));
        }
        let mut out = structs::AllocResourceUsage {
            timestamp: alloc_runner::now_ns(),
            ..Default::default()
        };
        for (task, rx) in self.controls.stats(alloc_id) {
            let Ok(Ok(usage)) = tokio::time::timeout(Duration::from_secs(5), rx).await else {
                continue;
            };
            let (sum, one) = (&mut out.resource_usage, &usage.resource_usage);
            sum.memory_stats.rss += one.memory_stats.rss;
            sum.memory_stats.usage += one.memory_stats.usage;
            sum.memory_stats.measured = one.memory_stats.measured.clone();
            sum.cpu_stats.percent += one.cpu_stats.percent;
            sum.cpu_stats.user_mode += one.cpu_stats.user_mode;
            sum.cpu_stats.system_mode += one.cpu_stats.system_mode;
            sum.cpu_stats.total_ticks += one.cpu_stats.total_ticks;
            sum.cpu_stats.measured = one.cpu_stats.measured.clone();
            out.tasks.insert(task, usage);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;

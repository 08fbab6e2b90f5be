//! The client agent: fingerprints the node, registers and heartbeats with the servers, watches
//! its allocations, and runs them (alloc dir, task environment, driver, logs, restart policy),
//! reporting task states back.
//!
//! Owns: everything that happens on a worker node. Must not: depend on server crates; it
//! reaches the servers only through `Arc<dyn rpc::Rpc>`.

mod alloc_runner;
mod env;
mod fingerprint;
mod logs;
mod node;
mod reporter;
mod task_runner;
mod watcher;

use rpc::Rpc;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
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
    /// The IP tasks' ports are bound to and advertised on.
    pub network_ip: String,
    /// This agent's HTTP address, registered so others can reach the client (logs).
    pub http_addr: String,
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
            http_addr: "127.0.0.1:4646".into(),
        }
    }
}

/// The running client.
pub struct ClientHandle {
    node_id: String,
    alloc_root: PathBuf,
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
}

/// The client agent.
pub struct Client;

impl Client {
    /// Fingerprints the node, registers it, and starts the heartbeat and allocation watcher.
    pub async fn start(
        config: ClientConfig,
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
        let (node_id, secret_id) =
            node::identity(&client_dir).map_err(|source| ClientError::DataDir {
                path: client_dir.clone(),
                source,
            })?;
        let drivers = drivers::catalog(&config.options);
        let node = fingerprint::node(&config, &node_id, &secret_id, &drivers);
        let mut tasks = JoinSet::new();
        let (reporter, reporter_task) = reporter::Reporter::new(rpc.clone(), shutdown.clone());
        tasks.spawn(reporter_task);
        let registered = node::Registration::new(rpc.clone(), node.clone(), shutdown.clone());
        // Register before watching, so the first allocation query finds the node.
        registered.register_until_ok().await;
        tasks.spawn(registered.heartbeat_loop());
        let ctx = Arc::new(watcher::ClientCtx {
            node: Arc::new(node),
            region: config.region.clone(),
            alloc_root: alloc_root.clone(),
            drivers,
            reporter,
        });
        tasks.spawn(watcher::run(ctx, rpc, shutdown.clone()));
        Ok(ClientHandle {
            node_id,
            alloc_root,
            tasks,
            shutdown,
        })
    }
}

impl ClientHandle {
    /// This node's ID.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Stops every task (the shutdown token is cancelled) and waits for the client's tasks.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl rpc::ClientFs for ClientHandle {
    fn alloc_dir(&self, alloc_id: &str) -> Option<PathBuf> {
        if alloc_id.is_empty() || alloc_id.contains('/') || alloc_id.contains("..") {
            return None;
        }
        let dir = self.alloc_root.join(alloc_id);
        dir.is_dir().then_some(dir)
    }
}

#[cfg(test)]
mod tests;

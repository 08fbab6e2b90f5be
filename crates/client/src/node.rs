//! Node identity (stable across restarts) and registration with heartbeats.

use rpc::{ErrorCode, Rpc};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use structs::Node;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Reads (or creates) `client/node-id` and `client/secret-id`.
pub(crate) fn identity(dir: &Path) -> std::io::Result<(String, String)> {
    let read_or_create = |name: &str| -> std::io::Result<String> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(s) if s.trim().len() == 36 => Ok(s.trim().to_string()),
            _ => {
                let id = uuid::Uuid::new_v4().to_string();
                std::fs::write(&path, &id)?;
                Ok(id)
            }
        }
    };
    Ok((read_or_create("node-id")?, read_or_create("secret-id")?))
}

/// Keeps the node registered: registers, then heartbeats within the TTL the servers give.
pub(crate) struct Registration {
    rpc: Arc<dyn Rpc>,
    node: Node,
    shutdown: CancellationToken,
}

impl Registration {
    pub(crate) fn new(rpc: Arc<dyn Rpc>, node: Node, shutdown: CancellationToken) -> Self {
        Self {
            rpc,
            node,
            shutdown,
        }
    }

    /// Registers, retrying until it works or the client shuts down; returns the TTL.
    pub(crate) async fn register_until_ok(&self) -> Duration {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.rpc.node_register(self.node.clone()).await {
                Ok(resp) => {
                    info!(node_id = %self.node.id, "node registered");
                    return resp.heartbeat_ttl;
                }
                Err(e) => {
                    warn!(error = %e, "node registration failed; retrying");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return Duration::from_secs(10),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Heartbeats at half the TTL; re-registers when the servers forgot the node.
    pub(crate) async fn heartbeat_loop(self) {
        let mut ttl = Duration::from_secs(10);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(ttl / 2) => {}
            }
            match self.rpc.node_heartbeat(&self.node.id).await {
                Ok(resp) => ttl = resp.heartbeat_ttl.max(Duration::from_millis(200)),
                Err(e) if e.code == ErrorCode::NotFound => ttl = self.register_until_ok().await,
                Err(e) => {
                    warn!(error = %e, "heartbeat failed");
                    ttl = Duration::from_secs(2);
                }
            }
        }
    }
}

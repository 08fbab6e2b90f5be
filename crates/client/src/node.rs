//! Node identity (stable across restarts) and registration with heartbeats.

use drivers::Driver;
use rpc::{ErrorCode, Rpc};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use structs::Node;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The shortest pause between heartbeats, whatever TTL the servers give.
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
/// How often drivers are fingerprinted again (Nomad's docker driver: 30 s).
pub(crate) const DRIVER_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// Fingerprints every driver again.
pub(crate) async fn detect_drivers(drivers: &BTreeMap<&'static str, Arc<dyn Driver>>) {
    for driver in drivers.values() {
        driver.detect().await;
    }
}

/// Reads (or creates, on first start) `client/node-id` and `client/secret-id`. A file that does
/// not hold a UUID is replaced, with a warning, since the node cannot run without an identity.
pub(crate) fn identity(dir: &Path) -> std::io::Result<(String, String)> {
    let read_or_create = |name: &str| -> std::io::Result<String> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(s) if uuid::Uuid::parse_str(s.trim()).is_ok() => return Ok(s.trim().to_string()),
            Ok(_) => warn!(path = %path.display(), "not a UUID; generating a new identity"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let id = uuid::Uuid::new_v4().to_string();
        std::fs::write(&path, &id)?;
        Ok(id)
    };
    Ok((read_or_create("node-id")?, read_or_create("secret-id")?))
}

/// Keeps the node registered: registers, then heartbeats within the TTL the servers give.
pub(crate) struct Registration {
    rpc: Arc<dyn Rpc>,
    node: Node,
    drivers: BTreeMap<&'static str, Arc<dyn Driver>>,
    driver_check: Duration,
    retry: Duration,
    shutdown: CancellationToken,
}

impl Registration {
    pub(crate) fn new(
        rpc: Arc<dyn Rpc>,
        node: Node,
        drivers: BTreeMap<&'static str, Arc<dyn Driver>>,
        retry: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            rpc,
            node,
            drivers,
            driver_check: DRIVER_CHECK_INTERVAL,
            retry: retry.max(Duration::from_millis(10)),
            shutdown,
        }
    }

    /// Fingerprints drivers every `every` instead of every 30 s (tests).
    #[cfg(test)]
    pub(crate) fn with_driver_check(mut self, every: Duration) -> Self {
        self.driver_check = every;
        self
    }

    /// Fingerprints the drivers again; when one changed (a daemon went away or came back),
    /// registers the node again with its new drivers and attributes.
    async fn refresh_drivers(&mut self) {
        detect_drivers(&self.drivers).await;
        let mut attrs = self.node.attributes.clone();
        let infos = crate::fingerprint::driver_fingerprints(&self.drivers, &mut attrs);
        let changed = attrs != self.node.attributes
            || infos.len() != self.node.drivers.len()
            || infos.iter().any(|(name, new)| {
                self.node.drivers.get(name).is_none_or(|old| {
                    old.detected != new.detected
                        || old.healthy != new.healthy
                        || old.health_description != new.health_description
                })
            });
        if !changed {
            return;
        }
        info!(node_id = %self.node.id, "driver health changed; updating the node");
        self.node.attributes = attrs;
        self.node.drivers = infos;
        self.register_until_ok().await;
    }

    /// Registers, retrying with backoff until it works or the client shuts down; returns the
    /// heartbeat TTL.
    pub(crate) async fn register_until_ok(&self) -> Duration {
        let mut backoff = self.retry;
        loop {
            match self.rpc.node_register(self.node.clone()).await {
                Ok(resp) => {
                    info!(node_id = %self.node.id, ttl = ?resp.heartbeat_ttl, "node registered");
                    return resp.heartbeat_ttl;
                }
                Err(e) => {
                    warn!(error = %e, retry_in = ?backoff, "node registration failed");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return self.retry,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.retry * 30);
                }
            }
        }
    }

    /// Heartbeats at half the TTL (the servers add their grace on top); re-registers when the
    /// servers no longer know the node.
    pub(crate) async fn heartbeat_loop(mut self, first_ttl: Duration) {
        let mut wait = first_ttl / 2;
        let mut next_driver_check = tokio::time::Instant::now() + self.driver_check;
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait.max(MIN_HEARTBEAT_INTERVAL)) => {}
            }
            if tokio::time::Instant::now() >= next_driver_check {
                self.refresh_drivers().await;
                next_driver_check = tokio::time::Instant::now() + self.driver_check;
            }
            wait = match self.rpc.node_heartbeat(&self.node.id).await {
                Ok(resp) => resp.heartbeat_ttl / 2,
                Err(e) if e.code == ErrorCode::NotFound => {
                    info!(node_id = %self.node.id, "servers lost the node; registering again");
                    self.register_until_ok().await / 2
                }
                Err(e) => {
                    warn!(error = %e, retry_in = ?self.retry, "heartbeat failed");
                    self.retry
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_stable_and_garbage_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let first = identity(dir.path()).unwrap();
        assert_ne!(first.0, first.1);
        assert_eq!(identity(dir.path()).unwrap(), first);
        std::fs::write(dir.path().join("node-id"), "garbage\n").unwrap();
        let again = identity(dir.path()).unwrap();
        assert_ne!(again.0, first.0);
        assert!(uuid::Uuid::parse_str(&again.0).is_ok());
        assert_eq!(again.1, first.1);
    }
}

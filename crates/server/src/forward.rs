//! Forwarding to the leader. Writes and consistent reads run on the leader; a follower passes
//! them on over gRPC (the same `Rpc` calls), and `?stale` reads are answered locally. While a
//! region has no leader, requests wait for one up to Nomad's `rpc_hold_timeout` (5 s).

use crate::Shared;
use rpc::remote::RemoteRpc;
use rpc::{ErrorCode, RpcError};
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

/// Nomad's `rpc_hold_timeout`.
pub(crate) const HOLD: Duration = Duration::from_secs(5);

/// Where a request runs.
pub(crate) enum Route {
    /// Here (this server leads, or the read may be stale).
    Local,
    /// On the leader.
    Leader(Arc<RemoteRpc>),
}

impl Shared {
    /// Decides where a request runs, waiting up to 5 s for a leader.
    pub(crate) async fn route(&self, stale: bool) -> Result<Route, RpcError> {
        if stale {
            return self.local().await;
        }
        let deadline = Instant::now() + HOLD;
        let mut leadership = self.raft.leadership();
        loop {
            let now = leadership.borrow_and_update().clone();
            if now.is_self {
                return self.local().await;
            }
            if let Some((id, node)) = now.leader {
                if id != self.raft.id() {
                    return Ok(Route::Leader(self.forwarder(&node.rpc_addr)));
                }
            }
            tokio::select! {
                changed = leadership.changed() => if changed.is_err() {
                    return Err(RpcError::new(ErrorCode::Unavailable, "server shutting down"));
                },
                _ = sleep_until(deadline) => {
                    return Err(RpcError::new(ErrorCode::NoLeader, "No cluster leader"));
                }
                _ = self.shutdown.cancelled() => {
                    return Err(RpcError::new(ErrorCode::Unavailable, "server shutting down"));
                }
            }
        }
    }

    /// Served here, once the state is: a restarted server rebuilds it from the snapshot on
    /// disk while Raft runs, and forwards to the leader meanwhile.
    async fn local(&self) -> Result<Route, RpcError> {
        self.raft
            .state()
            .wait_loaded()
            .await
            .map_err(|e| RpcError::new(ErrorCode::Internal, e))?;
        Ok(Route::Local)
    }

    /// A (cached) gRPC client for the leader at `addr`.
    fn forwarder(&self, addr: &str) -> Arc<RemoteRpc> {
        let mut map = self
            .forwarders
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.entry(addr.to_string())
            .or_insert_with(|| {
                Arc::new(RemoteRpc::new(
                    vec![addr.to_string()],
                    self.config.region.clone(),
                ))
            })
            .clone()
    }
}

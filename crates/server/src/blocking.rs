//! Blocking queries: answer when the watched index passes `min_index`, or when `wait` runs out.

use crate::Shared;
use rpc::{ErrorCode, QueryMeta, QueryOptions, QueryResponse, RpcError};
use state::StateStore;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

/// Nomad's default and maximum wait.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const MAX_WAIT: Duration = Duration::from_secs(600);

impl Shared {
    /// Checks the region and namespace of a request.
    pub(crate) fn check_region(&self, region: &str) -> Result<(), RpcError> {
        if region.is_empty() || region == self.config.region {
            Ok(())
        } else {
            Err(RpcError::new(ErrorCode::NoRegionPath, "No path to region"))
        }
    }

    /// Runs `read` on a snapshot; `read` returns the value and the index it reflects. Blocks
    /// while that index is not above `q.min_index`.
    pub(crate) async fn blocking<T>(
        &self,
        q: &QueryOptions,
        read: impl Fn(&StateStore) -> Result<(T, u64), RpcError>,
    ) -> Result<QueryResponse<T>, RpcError> {
        self.check_region(&q.region)?;
        let wait = q.wait.unwrap_or(DEFAULT_WAIT).min(MAX_WAIT);
        // Nomad adds up to wait/16 of jitter so many watchers do not return together.
        let jitter =
            Duration::from_nanos(u64::from(rand_u16()) * (wait.as_nanos() as u64 / 16) / 65_536);
        let deadline = Instant::now() + wait + jitter;
        let mut changes = self.log.subscribe();
        loop {
            let snap = self.log.snapshot();
            let (value, index) = read(&snap)?;
            let index = index.max(1);
            if q.min_index == 0 || index > q.min_index || Instant::now() >= deadline {
                return Ok(QueryResponse {
                    value,
                    meta: QueryMeta {
                        index,
                        known_leader: self.raft.current_leadership().leader.is_some(),
                        last_contact_ms: self.raft.last_contact_ms(),
                    },
                });
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Err(RpcError::new(ErrorCode::Unavailable, "server shutting down"));
                    }
                }
                _ = sleep_until(deadline) => {}
                _ = self.shutdown.cancelled() => {
                    return Err(RpcError::new(ErrorCode::Unavailable, "server shutting down"));
                }
            }
        }
    }
}

/// A cheap non-cryptographic random number for jitter.
fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ (nanos >> 16)) as u16
}

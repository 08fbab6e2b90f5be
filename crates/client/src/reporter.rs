//! Sends allocation status to the servers: one task drains a channel of updates, keeps the
//! newest per allocation, and sends them in one batch (retrying failures).

use rpc::{AllocClientUpdate, Rpc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The handle alloc runners report through.
#[derive(Clone)]
pub(crate) struct Reporter {
    tx: mpsc::Sender<AllocClientUpdate>,
}

impl Reporter {
    /// The reporter handle and its task. The task ends when every handle is dropped and the
    /// last batch is sent (or, during shutdown, has failed a few times).
    pub(crate) fn new(
        rpc: Arc<dyn Rpc>,
        shutdown: CancellationToken,
    ) -> (Self, impl std::future::Future<Output = ()>) {
        let (tx, rx) = mpsc::channel(1024);
        (Self { tx }, run(rpc, rx, shutdown))
    }

    /// Queues an update.
    pub(crate) async fn send(&self, update: AllocClientUpdate) {
        if self.tx.send(update).await.is_err() {
            warn!("status reporter stopped; update dropped");
        }
    }
}

async fn run(
    rpc: Arc<dyn Rpc>,
    mut rx: mpsc::Receiver<AllocClientUpdate>,
    shutdown: CancellationToken,
) {
    let mut pending: BTreeMap<String, AllocClientUpdate> = BTreeMap::new();
    let mut closed = false;
    let mut failures = 0;
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(u) => {
                    pending.insert(u.alloc_id.clone(), u);
                }
                None => return,
            }
        }
        while let Ok(u) = rx.try_recv() {
            pending.insert(u.alloc_id.clone(), u);
        }
        let batch: Vec<AllocClientUpdate> = pending.values().cloned().collect();
        match rpc.alloc_client_update(batch).await {
            Ok(_) => {
                pending.clear();
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                warn!(error = %e, "reporting allocation status failed; will retry");
                if shutdown.is_cancelled() && failures >= 3 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        if closed && pending.is_empty() {
            return;
        }
        closed = rx.is_closed();
    }
}

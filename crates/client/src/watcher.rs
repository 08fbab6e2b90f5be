//! Watches the node's allocations with blocking queries and starts, stops and tracks an alloc
//! runner for each.

use crate::alloc_runner;
use crate::reporter::Reporter;
use crate::ClientConfig;
use drivers::Driver;
use rpc::{QueryOptions, Rpc};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use structs::Node;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// What every alloc runner of this client shares.
pub(crate) struct ClientCtx {
    /// The node as registered (attributes and meta feed interpolation).
    pub(crate) node: Arc<Node>,
    /// The client's settings.
    pub(crate) config: ClientConfig,
    /// `<data_dir>/alloc`.
    pub(crate) alloc_root: PathBuf,
    /// Drivers by name.
    pub(crate) drivers: BTreeMap<&'static str, Arc<dyn Driver>>,
    /// Where allocation status goes.
    pub(crate) reporter: Reporter,
    /// The agent's environment minus the denylist, for drivers that pass it on.
    pub(crate) host_env: BTreeMap<String, String>,
    /// The client's shutdown token: once cancelled, tasks are stopped but not reported.
    pub(crate) shutdown: CancellationToken,
    /// Running tasks, for `alloc signal` and `alloc restart`.
    pub(crate) controls: Arc<crate::control::Controls>,
}

struct Running {
    stop: CancellationToken,
    join: JoinHandle<()>,
}

/// Watches the node's allocations until `shutdown`, then stops every allocation it runs.
pub(crate) async fn run(ctx: Arc<ClientCtx>, rpc: Arc<dyn Rpc>, shutdown: CancellationToken) {
    let mut runners: BTreeMap<String, Running> = BTreeMap::new();
    // Allocations this client already ran to the end; never started again.
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut index = 0;
    loop {
        let q = QueryOptions {
            min_index: index,
            wait: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let resp = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = rpc.node_client_allocs(&ctx.node.id, &q) => r,
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "watching allocations failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(ctx.config.heartbeat_retry) => {}
                }
                continue;
            }
        };
        if resp.meta.index <= index {
            // Nothing new (the wait ran out) or the servers' index went back: never spin.
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        index = resp.meta.index;
        runners.retain(|id, r| {
            if r.join.is_finished() {
                finished.insert(id.clone());
                false
            } else {
                true
            }
        });
        // Allocations the servers no longer list for this node (garbage collected or moved)
        // are stopped too.
        let listed: BTreeSet<&str> = resp.value.iter().map(|a| a.id.as_str()).collect();
        for (id, r) in &runners {
            if !listed.contains(id.as_str()) {
                debug!(alloc_id = %id, "allocation no longer assigned; stopping it");
                r.stop.cancel();
            }
        }
        for alloc in resp.value {
            if alloc.server_terminal() {
                if let Some(r) = runners.get(&alloc.id) {
                    debug!(alloc_id = %alloc.id, "stopping allocation");
                    r.stop.cancel();
                }
                continue;
            }
            if runners.contains_key(&alloc.id)
                || finished.contains(&alloc.id)
                || alloc.client_terminal()
            {
                continue;
            }
            let stop = CancellationToken::new();
            let join = tokio::spawn(alloc_runner::run(ctx.clone(), alloc.clone(), stop.clone()));
            runners.insert(alloc.id.clone(), Running { stop, join });
        }
    }
    // Shutdown: stop every task and wait for the final reports to be queued.
    for r in runners.values() {
        r.stop.cancel();
    }
    for (_, r) in runners {
        let _ = r.join.await;
    }
}

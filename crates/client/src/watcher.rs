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
use tracing::{debug, info, warn};

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
    /// The durable record of started tasks.
    pub(crate) state: Arc<crate::state::ClientState>,
}

impl ClientCtx {
    /// Whether the client is shutting down and leaving its tasks running: task runners let
    /// go of their tasks instead of killing them.
    pub(crate) fn detaching(&self) -> bool {
        self.shutdown.is_cancelled() && !self.config.stop_tasks_on_shutdown
    }
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
    let mut orphans_checked = false;
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
        if !orphans_checked {
            // Tasks an earlier run of this client left running for allocations the servers
            // no longer want here (stopped, lost, or gone) are stopped.
            orphans_checked = true;
            let wanted = resp
                .value
                .iter()
                .filter(|a| !a.server_terminal() && !a.client_terminal())
                .map(|a| a.id.clone())
                .collect();
            tokio::spawn(stop_orphans(ctx.clone(), wanted));
        }
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

/// Stops the recorded tasks of allocations not in `wanted` and forgets them.
async fn stop_orphans(ctx: Arc<ClientCtx>, wanted: BTreeSet<String>) {
    let records = match ctx.state.all() {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "cannot read the recorded tasks");
            return;
        }
    };
    for (alloc_id, task, record) in records {
        if wanted.contains(&alloc_id) {
            continue;
        }
        if let Some(driver) = ctx.drivers.get(record.driver.as_str()) {
            let dir = crate::alloc_dir::AllocDir::new(&ctx.alloc_root, &alloc_id);
            let spec = drivers::TaskSpec {
                alloc_id: alloc_id.clone(),
                task_name: task.clone(),
                config: Default::default(),
                env: BTreeMap::new(),
                task_dir: dir.task(&task),
                alloc_dir: dir.shared(),
                user: String::new(),
                resources: Default::default(),
                ports: Vec::new(),
                state_dir: crate::state::task_state_dir(&ctx.config.data_dir, &alloc_id, &task),
            };
            let found = match drivers::TaskOutput::discard() {
                Ok(out) => driver.recover(&spec, &record.handle, out).await,
                Err(e) => Err(drivers::DriverError::Start(e)),
            };
            if let Ok(drivers::Recovered::Running(mut handle)) = found {
                info!(alloc_id = %alloc_id, task = %task, "stopping a task of an allocation no longer assigned here");
                handle
                    .stop(driver.default_kill_signal(), ctx.config.max_kill_timeout)
                    .await;
            }
        }
        if let Err(e) = ctx.state.remove(&alloc_id, &task) {
            warn!(error = %e, "cannot remove a task's record");
        }
    }
}

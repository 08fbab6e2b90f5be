//! `caravan alloc signal [-s SIGNAL] <alloc> [task]` (default SIGKILL, every task unless one
//! is named) and `caravan alloc restart [-task T | -all-tasks] <alloc> [task]`: the running
//! tasks of an allocation, through the client that runs it. `caravan alloc stop [-detach]
//! <alloc>`: the servers stop it and place a replacement; the evaluation is monitored.

use super::{prefix, Global};
use anyhow::Context;
use api_client::ApiClient;
use clap::Args;
use structs::Allocation;

/// Flags of `alloc signal`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SignalArgs {
    /// The signal to send (default SIGKILL).
    #[arg(short = 's', default_value = "SIGKILL")]
    signal: String,
    /// The task (instead of the second argument).
    #[arg(long)]
    task: Option<String>,
    /// Show full IDs in messages.
    #[arg(long)]
    verbose: bool,
    /// The allocation ID (or a prefix).
    alloc: String,
    /// The task; every task when none is named.
    task_arg: Option<String>,
}

/// Flags of `alloc restart`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RestartArgs {
    /// The task (instead of the second argument).
    #[arg(long)]
    task: Option<String>,
    /// Restart every task of the allocation.
    #[arg(long = "all-tasks")]
    all_tasks: bool,
    /// Show full IDs in messages.
    #[arg(long)]
    verbose: bool,
    /// The allocation ID (or a prefix).
    alloc: String,
    /// The task; every task when none is named.
    task_arg: Option<String>,
}

/// Flags of `alloc stop`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StopArgs {
    /// Print the evaluation ID and return at once.
    #[arg(long)]
    detach: bool,
    /// Show full IDs.
    #[arg(long)]
    verbose: bool,
    /// The allocation ID (or a prefix).
    alloc: String,
}

/// `alloc stop`.
pub(crate) fn stop(g: &Global, a: &StopArgs) -> anyhow::Result<i32> {
    let (c, alloc) = resolve(g, &a.alloc)?;
    let eval_id = c
        .alloc_stop(&alloc.id)
        .context("Error stopping allocation")?;
    if a.detach {
        println!("{eval_id}");
        return Ok(0);
    }
    super::monitor::monitor(&c, &eval_id, a.verbose)
}

/// The client, and the allocation an ID prefix names.
fn resolve(g: &Global, prefix: &str) -> anyhow::Result<(ApiClient, Allocation)> {
    let c = g.client();
    let id = prefix::alloc(&c, prefix)?;
    let alloc = c
        .allocation(&id)
        .context("Error querying allocation")?
        .value;
    Ok((c, alloc))
}

/// `alloc signal`.
pub(crate) fn signal(g: &Global, a: &SignalArgs) -> anyhow::Result<i32> {
    let (c, alloc) = resolve(g, &a.alloc)?;
    let task = a.task.as_deref().or(a.task_arg.as_deref());
    super::alloc_node::call(&c, &alloc.node_id, "Error signalling allocation", |c| {
        c.alloc_signal(&alloc.id, task, &a.signal)
    })?;
    Ok(0)
}

/// `alloc restart`.
pub(crate) fn restart(g: &Global, a: &RestartArgs) -> anyhow::Result<i32> {
    let (c, alloc) = resolve(g, &a.alloc)?;
    let task = a.task.as_deref().or(a.task_arg.as_deref());
    anyhow::ensure!(
        !(a.all_tasks && task.is_some()),
        "The -all-tasks option is not allowed when providing a task"
    );
    super::alloc_node::call(&c, &alloc.node_id, "Failed to restart allocation", |c| {
        c.alloc_restart(&alloc.id, task)
    })?;
    Ok(0)
}

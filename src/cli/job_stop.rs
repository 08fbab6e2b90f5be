//! `caravan job stop` (alias `caravan stop`): deregisters a job (`-purge` removes it) and
//! monitors the resulting evaluation like `job run`.

use super::{monitor, prefix, Global};
use anyhow::Context;
use clap::Args;

/// Flags of `job stop`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StopArgs {
    /// Remove the job from the system (not just stop it).
    #[arg(long)]
    purge: bool,
    /// Return immediately (printing the evaluation ID) instead of monitoring.
    #[arg(long)]
    detach: bool,
    /// Do not ask for confirmation (there is no prompt; accepted for compatibility).
    #[arg(long)]
    yes: bool,
    /// Show full IDs.
    #[arg(long)]
    verbose: bool,
    /// The job ID or a prefix.
    job: String,
}

/// Stops a job and monitors the resulting evaluation.
pub(crate) fn stop(g: &Global, a: &StopArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let id = prefix::job(&c, &a.job)?;
    let resp = c
        .deregister(&id, a.purge)
        .context("Error deregistering job")?;
    if resp.eval_id.is_empty() {
        return Ok(0);
    }
    if a.detach {
        println!("{}", resp.eval_id);
        return Ok(0);
    }
    monitor::monitor(&c, &resp.eval_id, a.verbose)
}

//! `caravan node eligibility -enable|-disable NODE`: whether the scheduler may place new
//! allocations on a node (its running allocations are left alone), through
//! `/v1/node/:id/eligibility`.

use super::{prefix, Global};
use anyhow::{bail, Context};
use clap::Args;

/// Flags of `node eligibility`.
#[derive(Debug, Clone, Args)]
pub(crate) struct EligibilityArgs {
    /// Mark the node eligible for new placements.
    #[arg(long)]
    enable: bool,
    /// Mark the node ineligible for new placements.
    #[arg(long)]
    disable: bool,
    /// The node ID or a prefix.
    node: Option<String>,
}

/// `node eligibility`.
pub(crate) fn eligibility(g: &Global, a: &EligibilityArgs) -> anyhow::Result<i32> {
    if a.enable == a.disable {
        bail!("Either the '-enable' or '-disable' flag must be set");
    }
    let Some(node) = &a.node else {
        bail!("This command takes one argument: <node-id>");
    };
    let c = g.client();
    let id = prefix::node(&c, node)?;
    c.node_eligibility(&id, a.enable)
        .context("Error updating scheduling eligibility")?;
    let state = if a.enable {
        "eligible for scheduling"
    } else {
        "ineligible for scheduling"
    };
    println!("Node {id:?} scheduling eligibility set: {state}");
    Ok(0)
}

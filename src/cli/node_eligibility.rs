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
    /// The node of the agent the CLI talks to.
    #[arg(long = "self")]
    self_: bool,
    /// The node ID or a prefix.
    node: Option<String>,
}

/// `node eligibility`.
pub(crate) fn eligibility(g: &Global, a: &EligibilityArgs) -> anyhow::Result<i32> {
    if a.enable == a.disable {
        bail!("Either the '-enable' or '-disable' flag must be set");
    }
    let c = g.client();
    let id = prefix::node_arg(&c, a.self_, a.node.as_deref())?;
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

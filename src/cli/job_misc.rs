//! `caravan job inspect` and `caravan job validate`.

use super::jobfile::{self, FileArgs};
use super::{prefix, Global};
use anyhow::Context;
use api_client::Query;
use clap::Args;

/// Flags of `job inspect`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InspectArgs {
    /// Accepted for compatibility; the output is always JSON.
    #[arg(long)]
    json: bool,
    /// The job ID or a prefix.
    job: String,
}

/// Prints the registered job as pretty JSON `{"Job": ...}`.
pub(crate) fn inspect(g: &Global, a: &InspectArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let id = prefix::job(&c, &a.job)?;
    let job = c
        .job(&id, &Query::default())
        .context("Error inspecting job")?
        .value;
    let json = serde_json::json!({ "Job": job });
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(0)
}

/// `job validate`: `Job validation successful` (exit 0) or the problems (exit 1).
pub(crate) fn validate(a: &FileArgs) -> anyhow::Result<i32> {
    let parsed = jobfile::read(a)?;
    jobfile::check(&parsed.job)?;
    println!("Job validation successful");
    Ok(0)
}

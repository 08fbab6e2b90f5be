//! `caravan job run` and `caravan job validate`.

use super::jobfile::{self, FileArgs};
use super::{monitor, Global};
use clap::Args;
use structs::{JobRegisterRequest, JobSubmission};

/// Flags of `job run`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// Return immediately instead of monitoring the evaluation.
    #[arg(long)]
    detach: bool,
    /// Register only if the job's modify index equals this (0: only if the job is new).
    #[arg(long = "check-index")]
    check_index: Option<u64>,
    /// Show full IDs.
    #[arg(long)]
    verbose: bool,
    /// Print the job as JSON instead of running it.
    #[arg(long)]
    output: bool,
    #[command(flatten)]
    file: FileArgs,
}

/// Submits the job; exit 0 ok, 2 placement failures, 1 other errors.
pub(crate) fn run(g: &Global, a: &RunArgs) -> anyhow::Result<i32> {
    let parsed = jobfile::read(&a.file)?;
    jobfile::check(&parsed.job)?;
    if a.output {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "Job": parsed.job }))?
        );
        return Ok(0);
    }
    let client = g.client_in_region(Some(&parsed.job.region));
    let req = JobRegisterRequest {
        job: Some(parsed.job.clone()),
        enforce_index: a.check_index.is_some(),
        job_modify_index: a.check_index.unwrap_or(0),
        submission: Some(JobSubmission {
            source: parsed.source,
            format: parsed.format.into(),
            variable_flags: parsed.vars,
            variables: String::new(),
        }),
        ..Default::default()
    };
    let resp = match client.register(&req) {
        Ok(r) => r,
        Err(e) if a.check_index.is_some() && e.status() == Some(409) => {
            let reason = match &e {
                api_client::ApiError::Status { body, .. } => body.clone(),
                other => other.to_string(),
            };
            eprintln!("{reason}\nJob not updated");
            return Ok(1);
        }
        Err(e) => return Err(anyhow::anyhow!("Error submitting job: {e}")),
    };
    if resp.eval_id.is_empty() {
        println!("Job registration successful");
        if parsed.job.periodic.is_some() || parsed.job.parameterized_job.is_some() {
            println!("Approximate next launch time: not scheduled by this version");
        }
        return Ok(0);
    }
    if a.detach {
        println!("Job registration successful");
        println!("Evaluation ID: {}", resp.eval_id);
        return Ok(0);
    }
    monitor::monitor(&client, &resp.eval_id, a.verbose)
}

/// `job validate`: exit 0 when the file parses and validates.
pub(crate) fn validate(a: &FileArgs) -> anyhow::Result<i32> {
    let parsed = jobfile::read(a)?;
    jobfile::check(&parsed.job)?;
    println!("Job validation successful");
    Ok(0)
}

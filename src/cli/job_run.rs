//! `caravan job run` (alias `caravan run`): parse locally, validate, register, then monitor the
//! evaluation (exit 0 ok, 2 placement failures, 1 other errors).

use super::jobfile::{self, FileArgs};
use super::{monitor, Global};
use api_client::ApiError;
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
    /// Print the job as JSON instead of submitting it.
    #[arg(long)]
    output: bool,
    #[command(flatten)]
    file: FileArgs,
}

/// The message Nomad prints when `-check-index` does not match, if `e` is that conflict.
fn check_index_conflict(e: &ApiError) -> Option<String> {
    let reason = e.reason();
    (e.status().is_some() && reason.contains("Enforcing job modify index")).then_some(reason)
}

/// Submits the job; exit 0 ok, 2 placement failures, 1 other errors.
pub(crate) fn run(g: &Global, a: &RunArgs) -> anyhow::Result<i32> {
    let parsed = jobfile::read(&a.file)?;
    jobfile::check(&parsed.job)?;
    if a.output {
        let json = serde_json::json!({ "Job": parsed.job });
        println!("{}", serde_json::to_string_pretty(&json)?);
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
        Err(e) => {
            if let Some(reason) = check_index_conflict(&e) {
                eprintln!("{reason}\nJob not updated");
                return Ok(1);
            }
            anyhow::bail!("Error submitting job: {e}");
        }
    };
    if !resp.warnings.trim().is_empty() {
        println!("Job Warnings:\n{}\n", resp.warnings.trim_end());
    }
    let periodic_or_param = parsed.job.periodic.is_some() || parsed.job.parameterized_job.is_some();
    if resp.eval_id.is_empty() || periodic_or_param {
        // Periodic and parameterized jobs only register; their children get evaluations.
        println!("Job registration successful");
        return Ok(0);
    }
    if a.detach {
        println!("Job registration successful");
        println!("Evaluation ID: {}", resp.eval_id);
        return Ok(0);
    }
    monitor::monitor(&client, &resp.eval_id, a.verbose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_check_index_conflicts_on_400_and_409() {
        let msg = "Enforcing job modify index 5: job exists with conflicting job modify index: 6";
        for status in [400, 409, 500] {
            let e = ApiError::Status {
                status,
                body: msg.into(),
            };
            assert_eq!(check_index_conflict(&e).as_deref(), Some(msg));
        }
        let other = ApiError::Status {
            status: 400,
            body: "bad job".into(),
        };
        assert_eq!(check_index_conflict(&other), None);
    }
}

//! `caravan job init`, `job inspect` and `job stop`.

use super::{monitor, prefix, Global};
use api_client::Query;
use clap::Args;

/// Flags of `job init`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InitArgs {
    /// Write a minimal example without comments.
    #[arg(long)]
    short: bool,
    /// The file to write.
    #[arg(default_value = "example.nomad.hcl")]
    file: String,
}

const EXAMPLE: &str = r#"# An example job: a small web-ish service run by the raw_exec driver, so it works on any
# Linux machine without Docker. `caravan job run example.nomad.hcl` starts it.
job "example" {
  # Where the job may run; "*" matches every datacenter.
  datacenters = ["*"]

  # "service" jobs run until stopped; "batch" jobs run to completion.
  type = "service"

  group "app" {
    # How many allocations of this group to run.
    count = 1

    network {
      # A dynamic port, exposed to the task as NOMAD_PORT_http.
      port "http" {}
    }

    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }

    task "hello" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args = [
          "-c",
          "while true; do echo \"hello from $${NOMAD_ALLOC_NAME} on port $${NOMAD_PORT_http}\"; sleep 5; done",
        ]
      }

      resources {
        cpu    = 100 # MHz
        memory = 64  # MB
      }

      logs {
        max_files     = 3
        max_file_size = 5
      }
    }
  }
}
"#;

const EXAMPLE_SHORT: &str = r#"job "example" {
  datacenters = ["*"]

  group "app" {
    network {
      port "http" {}
    }

    task "hello" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["-c", "while true; do echo hello from $${NOMAD_ALLOC_NAME}; sleep 5; done"]
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"#;

/// Writes the example job file.
pub(crate) fn init(a: &InitArgs) -> anyhow::Result<i32> {
    if std::path::Path::new(&a.file).exists() {
        eprintln!("Job '{}' already exists", a.file);
        return Ok(1);
    }
    std::fs::write(&a.file, if a.short { EXAMPLE_SHORT } else { EXAMPLE })
        .map_err(|e| anyhow::anyhow!("Failed to write {:?}: {e}", a.file))?;
    println!("Example job file written to {}", a.file);
    Ok(0)
}

/// Flags of `job inspect`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InspectArgs {
    /// Accepted for compatibility; the output is always JSON.
    #[arg(long)]
    json: bool,
    /// The job ID or a prefix.
    job: String,
}

/// Prints `{"Job": ...}`.
pub(crate) fn inspect(g: &Global, a: &InspectArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let id = prefix::job(&c, &a.job)?;
    let job = c.job(&id, &Query::default())?.value;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "Job": job }))?
    );
    Ok(0)
}

/// Flags of `job stop`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StopArgs {
    /// Remove the job from the system (not just stop it).
    #[arg(long)]
    purge: bool,
    /// Return immediately instead of monitoring.
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
    let resp = c.deregister(&id, a.purge)?;
    if a.detach || resp.eval_id.is_empty() {
        println!("{}", resp.eval_id);
        return Ok(0);
    }
    monitor::monitor(&c, &resp.eval_id, a.verbose)
}

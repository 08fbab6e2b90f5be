//! `caravan job init` (alias `caravan init`): writes an example job that runs on any Linux box
//! (raw_exec, no Docker needed). Refuses to overwrite an existing file.

use clap::Args;
use std::path::Path;

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

/// Writes the example job file; exit 1 when it already exists.
pub(crate) fn init(a: &InitArgs) -> anyhow::Result<i32> {
    let (code, msg) = write_example(Path::new(&a.file), a.short)?;
    if code == 0 {
        println!("{msg}");
    } else {
        eprintln!("{msg}");
    }
    Ok(code)
}

fn write_example(path: &Path, short: bool) -> anyhow::Result<(i32, String)> {
    if path.exists() {
        return Ok((1, format!("Job '{}' already exists", path.display())));
    }
    std::fs::write(path, if short { EXAMPLE_SHORT } else { EXAMPLE })
        .map_err(|e| anyhow::anyhow!("Failed to write '{}': {e}", path.display()))?;
    Ok((0, format!("Example job file written to {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_parse_and_validate() {
        for (name, src) in [("full", EXAMPLE), ("short", EXAMPLE_SHORT)] {
            let job = jobspec::parse(src, "example.nomad.hcl", &jobspec::ParseOptions::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            structs::validate::validate(&job).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(job.id, "example");
            assert_eq!(job.task_groups[0].count, 1);
            assert_eq!(job.task_groups[0].tasks[0].driver, "raw_exec");
        }
    }

    #[test]
    fn writes_once_then_refuses() {
        let dir = std::env::temp_dir().join(format!("caravan-init-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("example.nomad.hcl");
        let _ = std::fs::remove_file(&path);
        let (code, msg) = write_example(&path, false).unwrap();
        assert_eq!(code, 0);
        assert!(msg.starts_with("Example job file written to "), "{msg}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), EXAMPLE);
        let (code, msg) = write_example(&path, true).unwrap();
        assert_eq!(code, 1);
        assert_eq!(msg, format!("Job '{}' already exists", path.display()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Reading a job file the way `job run`, `job plan` and `job validate` do: HCL2 or JSON, from a
//! path or stdin (`-`), with `-var`, `-var-file` and `NOMAD_VAR_*`.

use anyhow::{anyhow, Context};
use clap::Args;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use structs::Job;

/// The job file and its variables.
#[derive(Debug, Clone, Args)]
pub(crate) struct FileArgs {
    /// HCL2 variable `name=value` (repeatable).
    #[arg(long = "var")]
    pub(crate) vars: Vec<String>,
    /// HCL or JSON file of variable values (repeatable).
    #[arg(long = "var-file")]
    pub(crate) var_files: Vec<PathBuf>,
    /// Fail on values for undeclared variables.
    #[arg(long = "hcl2-strict", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) strict: bool,
    /// The job file, or `-` for standard input.
    pub(crate) file: String,
}

/// The parsed job and its source text.
pub(crate) struct JobFile {
    pub(crate) job: Job,
    pub(crate) source: String,
    pub(crate) format: &'static str,
    pub(crate) vars: BTreeMap<String, String>,
}

/// Reads and parses the job file (not validated).
pub(crate) fn read(args: &FileArgs) -> anyhow::Result<JobFile> {
    let (source, name) = if args.file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the job from standard input")?;
        (s, "<stdin>".to_string())
    } else {
        let s = std::fs::read_to_string(&args.file)
            .with_context(|| format!("Error getting job struct: reading job file {}", args.file))?;
        (s, args.file.clone())
    };
    let mut vars = BTreeMap::new();
    for kv in &args.vars {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("-var {kv:?}: expected name=value"))?;
        vars.insert(k.to_string(), v.to_string());
    }
    let opts = jobspec::ParseOptions {
        vars: vars.clone(),
        var_files: args.var_files.clone(),
        env_vars: std::env::vars()
            .filter(|(k, _)| k.starts_with("NOMAD_VAR_"))
            .collect(),
        strict: args.strict,
    };
    let job = jobspec::parse(&source, &name, &opts)
        .map_err(|e| anyhow!("Error parsing job file from {name}:\n{e}"))?;
    let format = if source.trim_start().starts_with('{') {
        "json"
    } else {
        "hcl2"
    };
    Ok(JobFile {
        job,
        source,
        format,
        vars,
    })
}

/// Validates a parsed job; the error lists every problem as Nomad does.
pub(crate) fn check(job: &Job) -> anyhow::Result<()> {
    structs::validate::validate(job).map_err(|problems| {
        let mut msg = format!(
            "Job validation errors:\n{} error(s) occurred:\n",
            problems.len()
        );
        for p in problems {
            msg.push_str(&format!("\n* {p}"));
        }
        anyhow!(msg)
    })
}

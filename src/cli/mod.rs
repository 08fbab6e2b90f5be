//! CLI subcommands, one module per command group. They reach agents only through
//! `api-client` and parse job files with `jobspec`; they never import server crates.

mod alloc;
mod args;
mod format;
mod job_misc;
mod job_plan;
mod job_run;
mod job_status;
mod jobfile;
mod monitor;
mod node;
mod prefix;
mod system;

use crate::agent::AgentArgs;
use api_client::ApiClient;
use clap::{Args, Parser, Subcommand};

/// Flags every API command takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    /// The agent's HTTP address (env CARAVAN_ADDR, then NOMAD_ADDR).
    #[arg(long, global = true)]
    address: Option<String>,
    /// The region to send the request to (env CARAVAN_REGION, then NOMAD_REGION).
    #[arg(long, global = true)]
    region: Option<String>,
    /// The namespace (env CARAVAN_NAMESPACE, then NOMAD_NAMESPACE).
    #[arg(long, global = true)]
    namespace: Option<String>,
}

fn env2(a: &str, b: &str) -> Option<String> {
    std::env::var(a)
        .ok()
        .or_else(|| std::env::var(b).ok())
        .filter(|v| !v.is_empty())
}

impl Global {
    /// The API client for these flags.
    pub(crate) fn client(&self) -> ApiClient {
        self.client_in_region(None)
    }

    /// The API client, with `job_region` used when no `-region` was given (a job's `region`).
    pub(crate) fn client_in_region(&self, job_region: Option<&str>) -> ApiClient {
        let address = self
            .address
            .clone()
            .or_else(|| env2("CARAVAN_ADDR", "NOMAD_ADDR"))
            .unwrap_or_else(|| "http://127.0.0.1:4646".into());
        let region = self
            .region
            .clone()
            .or_else(|| {
                job_region
                    .filter(|r| !r.is_empty() && *r != "global")
                    .map(str::to_string)
            })
            .or_else(|| env2("CARAVAN_REGION", "NOMAD_REGION"));
        let namespace = self
            .namespace
            .clone()
            .or_else(|| env2("CARAVAN_NAMESPACE", "NOMAD_NAMESPACE"));
        ApiClient::new(&address, region).with_namespace(namespace)
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "caravan",
    about = "Caravan: a Nomad-compatible workload scheduler",
    disable_version_flag = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a Caravan agent.
    Agent(AgentArgs),
    /// Interacts with jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Runs a new job or updates an existing one (alias of `job run`).
    Run(job_run::RunArgs),
    /// Dry-runs a job update (alias of `job plan`).
    Plan(job_plan::PlanArgs),
    /// Stops a job (alias of `job stop`).
    Stop(job_misc::StopArgs),
    /// Lists jobs, or shows a job, allocation, node or evaluation by ID prefix.
    Status(job_status::StatusArgs),
    /// Creates an example job file (alias of `job init`).
    Init(job_misc::InitArgs),
    /// Interacts with allocations.
    #[command(subcommand)]
    Alloc(AllocCommand),
    /// Streams an allocation's logs (alias of `alloc logs`).
    Logs(alloc::LogsArgs),
    /// Interacts with nodes.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Interacts with evaluations.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Interacts with servers.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Prints the version.
    Version,
}

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// Runs a new job or updates an existing one.
    Run(job_run::RunArgs),
    /// Dry-runs a job update and shows the diff.
    Plan(job_plan::PlanArgs),
    /// Shows a job, or lists jobs.
    Status(job_status::StatusArgs),
    /// Stops a job.
    Stop(job_misc::StopArgs),
    /// Creates an example job file.
    Init(job_misc::InitArgs),
    /// Prints a registered job as JSON.
    Inspect(job_misc::InspectArgs),
    /// Checks a job file for errors.
    Validate(jobfile::FileArgs),
}

#[derive(Debug, Subcommand)]
enum AllocCommand {
    /// Shows an allocation.
    Status(alloc::StatusArgs),
    /// Streams an allocation's logs.
    Logs(alloc::LogsArgs),
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Lists nodes, or shows one.
    Status(node::StatusArgs),
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Shows an evaluation.
    Status(system::EvalStatusArgs),
    /// Lists evaluations.
    List,
}

#[derive(Debug, Subcommand)]
enum ServerCommand {
    /// Lists the servers.
    Members,
}

/// Runs the CLI with the process arguments; returns the exit code.
pub fn main() -> i32 {
    let argv = args::normalize(std::env::args());
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let g = &cli.global;
    let result = match cli.command {
        Command::Agent(a) => crate::agent::run(a).map(|()| 0),
        Command::Job(JobCommand::Run(a)) | Command::Run(a) => job_run::run(g, &a),
        Command::Job(JobCommand::Plan(a)) | Command::Plan(a) => {
            return job_plan::run(g, &a).unwrap_or_else(|e| {
                eprintln!("Error during plan: {e:#}");
                255
            })
        }
        Command::Job(JobCommand::Status(a)) => job_status::job_status(g, &a),
        Command::Status(a) => job_status::status(g, &a),
        Command::Job(JobCommand::Stop(a)) | Command::Stop(a) => job_misc::stop(g, &a),
        Command::Job(JobCommand::Init(a)) | Command::Init(a) => job_misc::init(&a),
        Command::Job(JobCommand::Inspect(a)) => job_misc::inspect(g, &a),
        Command::Job(JobCommand::Validate(a)) => job_run::validate(&a),
        Command::Alloc(AllocCommand::Status(a)) => alloc::status(g, &a),
        Command::Alloc(AllocCommand::Logs(a)) | Command::Logs(a) => alloc::logs(g, &a),
        Command::Node(NodeCommand::Status(a)) => node::status(g, &a),
        Command::Eval(EvalCommand::Status(a)) => system::eval_status(g, &a),
        Command::Eval(EvalCommand::List) => system::eval_list(g),
        Command::Server(ServerCommand::Members) => system::members(g),
        Command::Version => {
            println!("Caravan v{}", structs::VERSION);
            println!("Nomad API compatible (v1); built with Rust");
            Ok(0)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            1
        }
    }
}

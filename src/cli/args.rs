//! The command line: argv normalisation (Nomad's users type single-dash long flags such as
//! `-detach` and `-address=...`; clap wants `--`) and the clap command tree.

use crate::agent::AgentArgs;
use api_client::ApiClient;
use clap::{Args, Parser, Subcommand};

/// Rewrites `-name` / `-name=value` (two or more letters) to `--name...`, leaving single-letter
/// shorts (`-f`, `-n 5`), negative numbers, `-` (stdin), and everything after `--` alone.
pub(crate) fn normalize(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = false;
    for arg in args {
        if rest || arg == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        let name = arg
            .strip_prefix('-')
            .filter(|a| !a.starts_with('-'))
            .map(|a| a.split('=').next().unwrap_or_default());
        let is_long_single = name.is_some_and(|name| {
            name.len() >= 2
                && name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
        if is_long_single {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

/// Flags every API command takes.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct Global {
    /// The agent's HTTP address (env CARAVAN_ADDR, then NOMAD_ADDR; default http://127.0.0.1:4646).
    #[arg(long, global = true)]
    pub(crate) address: Option<String>,
    /// The region to send the request to (env CARAVAN_REGION, then NOMAD_REGION).
    #[arg(long, global = true)]
    pub(crate) region: Option<String>,
    /// The namespace (env CARAVAN_NAMESPACE, then NOMAD_NAMESPACE).
    #[arg(long, global = true)]
    pub(crate) namespace: Option<String>,
}

fn env2(a: &str, b: &str) -> Option<String> {
    std::env::var(a)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var(b).ok())
        .filter(|v| !v.is_empty())
}

impl Global {
    /// The API client for these flags.
    pub(crate) fn client(&self) -> ApiClient {
        self.client_in_region(None)
    }

    /// The API client; a job's `region` (`job_region`) is used when `-region` was not given.
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

/// `caravan agent`'s own flags. The agent is parsed on its own because its `-region` names the
/// region it serves, not the one a request goes to.
#[derive(Debug, Parser)]
#[command(name = "caravan agent", about = "Runs a Caravan agent")]
pub(crate) struct AgentCli {
    #[command(flatten)]
    pub(crate) args: AgentArgs,
}

impl AgentCli {
    /// Parses the (normalised) arguments that follow `agent`.
    pub(crate) fn parse_rest(rest: &[String]) -> Result<AgentArgs, clap::Error> {
        let argv = std::iter::once("caravan agent".to_string()).chain(rest.iter().cloned());
        Ok(AgentCli::try_parse_from(argv)?.args)
    }
}

/// What follows `agent` when it is not the first argument (handed to `AgentCli`).
#[derive(Debug, Args)]
pub(crate) struct AgentPassthrough {
    /// The agent's flags.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) args: Vec<String>,
}

/// `caravan ...`.
#[derive(Debug, Parser)]
#[command(
    name = "caravan",
    about = "Caravan: a Nomad-compatible workload scheduler",
    disable_version_flag = true
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The top-level commands (Nomad's, with its aliases).
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Runs a Caravan agent (`caravan agent -help` lists its flags).
    Agent(AgentPassthrough),
    /// Interacts with jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Runs a new job or updates an existing one (alias of `job run`).
    Run(super::job_run::RunArgs),
    /// Dry-runs a job update (alias of `job plan`).
    Plan(super::job_plan::PlanArgs),
    /// Stops a job (alias of `job stop`).
    Stop(super::job_stop::StopArgs),
    /// Lists jobs, or shows a job, allocation, node or evaluation by ID prefix.
    Status(super::job_status::StatusArgs),
    /// Creates an example job file (alias of `job init`).
    Init(super::job_init::InitArgs),
    /// Prints a registered job as JSON (alias of `job inspect`).
    Inspect(super::job_misc::InspectArgs),
    /// Checks a job file for errors (alias of `job validate`).
    Validate(super::jobfile::FileArgs),
    /// Interacts with allocations.
    #[command(subcommand)]
    Alloc(AllocCommand),
    /// Streams an allocation's logs (alias of `alloc logs`).
    Logs(super::alloc_logs::LogsArgs),
    /// Lists or reads an allocation's directory (alias of `alloc fs`).
    Fs(super::alloc_fs::FsArgs),
    /// Interacts with nodes.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Interacts with evaluations.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Interacts with servers.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Operator tools: the Raft configuration and state snapshots.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Prints the version.
    Version,
}

/// `caravan job ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// Runs a new job or updates an existing one.
    Run(super::job_run::RunArgs),
    /// Dry-runs a job update and shows the diff.
    Plan(super::job_plan::PlanArgs),
    /// Shows a job, or lists jobs.
    Status(super::job_status::StatusArgs),
    /// Stops a job.
    Stop(super::job_stop::StopArgs),
    /// Creates an example job file.
    Init(super::job_init::InitArgs),
    /// Prints a registered job as JSON.
    Inspect(super::job_misc::InspectArgs),
    /// Checks a job file for errors.
    Validate(super::jobfile::FileArgs),
}

/// `caravan alloc ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AllocCommand {
    /// Shows an allocation.
    Status(super::alloc_status::StatusArgs),
    /// Streams an allocation's logs.
    Logs(super::alloc_logs::LogsArgs),
    /// Lists or reads an allocation's directory.
    Fs(super::alloc_fs::FsArgs),
    /// Sends a signal to an allocation's tasks.
    Signal(super::alloc_control::SignalArgs),
    /// Restarts an allocation's tasks in place.
    Restart(super::alloc_control::RestartArgs),
    /// Stops an allocation; the scheduler places a replacement.
    Stop(super::alloc_control::StopArgs),
}

/// `caravan node ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Lists nodes, or shows one.
    Status(super::node_status::StatusArgs),
    /// Marks a node eligible or ineligible for new placements.
    Eligibility(super::node_eligibility::EligibilityArgs),
    /// Starts or ends a node's drain (its allocations migrate to other nodes).
    Drain(super::node_drain::DrainArgs),
}

/// `caravan eval ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum EvalCommand {
    /// Shows an evaluation.
    Status(super::eval::EvalStatusArgs),
    /// Lists evaluations.
    List(super::eval::EvalListArgs),
}

/// `caravan server ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ServerCommand {
    /// Lists the servers.
    Members(super::server_members::MembersArgs),
}

/// `caravan operator ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum OperatorCommand {
    /// Inspects and changes the Raft configuration.
    #[command(subcommand)]
    Raft(OperatorRaftCommand),
    /// Saves and restores the region's state.
    #[command(subcommand)]
    Snapshot(OperatorSnapshotCommand),
    /// Reads and changes the region's scheduler configuration.
    #[command(subcommand)]
    Scheduler(OperatorSchedulerCommand),
}

/// `caravan operator scheduler ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum OperatorSchedulerCommand {
    /// Shows the scheduler configuration.
    GetConfig(super::operator_scheduler::GetConfigArgs),
    /// Changes the scheduler configuration.
    SetConfig(super::operator_scheduler::SetConfigArgs),
}

/// `caravan operator raft ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum OperatorRaftCommand {
    /// Lists the Raft peers of the region.
    ListPeers(super::operator_raft::ListPeersArgs),
    /// Removes a server from the Raft configuration.
    RemovePeer(super::operator_raft::RemovePeerArgs),
}

/// `caravan operator snapshot ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum OperatorSnapshotCommand {
    /// Saves the region's state to a file.
    Save(super::operator_snapshot::FileArg),
    /// Replaces the region's state with a saved file.
    Restore(super::operator_snapshot::FileArg),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn n(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(|s| s.to_string()))
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(n(args)).unwrap()
    }

    #[test]
    fn single_dash_long_flags_become_double() {
        assert_eq!(
            n(&[
                "caravan",
                "job",
                "run",
                "-detach",
                "-address=http://x:1",
                "-var",
                "a=1",
                "f.hcl"
            ]),
            vec![
                "caravan",
                "job",
                "run",
                "--detach",
                "--address=http://x:1",
                "--var",
                "a=1",
                "f.hcl"
            ]
        );
    }

    #[test]
    fn shorts_values_and_rest_stay() {
        assert_eq!(
            n(&["logs", "-f", "-n", "5", "--tail", "-"]),
            vec!["logs", "-f", "-n", "5", "--tail", "-"]
        );
        assert_eq!(n(&["x", "--", "-detach"]), vec!["x", "--", "-detach"]);
        assert_eq!(
            n(&["x", "-check-index", "5"]),
            vec!["x", "--check-index", "5"]
        );
        assert_eq!(n(&["x", "-1", "-var=a=-b"]), vec!["x", "-1", "--var=a=-b"]);
        assert_eq!(
            n(&["x", "-hcl2-strict=false"]),
            vec!["x", "--hcl2-strict=false"]
        );
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn nomad_style_command_lines_parse() {
        let cli = parse(&[
            "caravan",
            "job",
            "run",
            "-detach",
            "-check-index",
            "5",
            "-var",
            "x=1",
            "-address=http://10.0.0.1:4646",
            "web.nomad.hcl",
        ]);
        assert_eq!(cli.global.address.as_deref(), Some("http://10.0.0.1:4646"));
        assert!(matches!(cli.command, Command::Job(JobCommand::Run(_))));

        let cli = parse(&[
            "caravan", "logs", "-stderr", "-f", "-tail", "-n", "20", "ab12",
        ]);
        assert!(matches!(cli.command, Command::Logs(_)));
        let cli = parse(&["caravan", "-region", "eu", "status"]);
        assert_eq!(cli.global.region.as_deref(), Some("eu"));
        assert!(matches!(cli.command, Command::Status(_)));
    }

    #[test]
    fn operator_command_lines_parse() {
        match parse(&["caravan", "operator", "raft", "list-peers", "-stale"]).command {
            Command::Operator(OperatorCommand::Raft(OperatorRaftCommand::ListPeers(a))) => {
                assert!(a.stale)
            }
            other => panic!("parsed as {other:?}"),
        }
        let cli = parse(&[
            "caravan",
            "-region=eu",
            "operator",
            "raft",
            "remove-peer",
            "-peer-id=a1",
        ]);
        assert_eq!(cli.global.region.as_deref(), Some("eu"));
        match cli.command {
            Command::Operator(OperatorCommand::Raft(OperatorRaftCommand::RemovePeer(a))) => {
                assert_eq!(a.peer_id.as_deref(), Some("a1"));
                assert_eq!(a.peer_address, None);
            }
            other => panic!("parsed as {other:?}"),
        }
        match parse(&[
            "caravan",
            "operator",
            "raft",
            "remove-peer",
            "-peer-address",
            "10.0.0.1:4647",
        ])
        .command
        {
            Command::Operator(OperatorCommand::Raft(OperatorRaftCommand::RemovePeer(a))) => {
                assert_eq!(a.peer_address.as_deref(), Some("10.0.0.1:4647"))
            }
            other => panic!("parsed as {other:?}"),
        }
        for (verb, restore) in [("save", false), ("restore", true)] {
            match parse(&["caravan", "operator", "snapshot", verb, "s.snap"]).command {
                Command::Operator(OperatorCommand::Snapshot(OperatorSnapshotCommand::Save(f)))
                    if !restore =>
                {
                    assert_eq!(f.file, Some("s.snap".into()))
                }
                Command::Operator(OperatorCommand::Snapshot(OperatorSnapshotCommand::Restore(
                    f,
                ))) if restore => assert_eq!(f.file, Some("s.snap".into())),
                other => panic!("parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn agent_flags_parse_on_their_own() {
        AgentCli::command().debug_assert();
        let a = AgentCli::parse_rest(&n(&["-dev", "-region", "eu", "-dc", "dc2"])).unwrap();
        assert!(a.dev);
        assert_eq!(a.region.as_deref(), Some("eu"));
        assert_eq!(a.dc.as_deref(), Some("dc2"));
        assert!(AgentCli::parse_rest(&n(&["-bogus"])).is_err());
        let cli = parse(&["caravan", "-address=x", "agent", "-dev"]);
        match cli.command {
            Command::Agent(p) => assert_eq!(p.args, vec!["--dev"]),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn job_region_applies_only_without_the_flag() {
        let g = Global {
            address: Some("127.0.0.1:1".into()),
            ..Default::default()
        };
        assert_eq!(g.client_in_region(Some("eu")).region(), Some("eu"));
        assert_eq!(
            g.client_in_region(Some("global")).region(),
            g.client().region()
        );
        let g = Global {
            region: Some("us".into()),
            ..g
        };
        assert_eq!(g.client_in_region(Some("eu")).region(), Some("us"));
        assert_eq!(g.client().address(), "http://127.0.0.1:1");
    }
}

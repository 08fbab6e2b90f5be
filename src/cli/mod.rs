//! The `caravan` command line: argv normalisation, the clap tree and one module per command
//! group. Commands reach agents only through `api-client` and parse job files with `jobspec`;
//! they never import server crates. Output matches Nomad's text and exit codes.

mod alloc_control;
mod alloc_fs;
mod alloc_logs;
mod alloc_node;
mod alloc_status;
mod args;
mod eval;
mod format;
mod job_init;
mod job_misc;
mod job_plan;
mod job_run;
mod job_status;
mod job_stop;
mod jobfile;
mod monitor;
mod node_drain;
mod node_eligibility;
mod node_status;
mod operator_raft;
mod operator_scheduler;
mod operator_snapshot;
mod prefix;
mod server_members;
#[cfg(test)]
mod test_server;
mod version;

use args::{
    AgentCli, AllocCommand, Cli, Command, EvalCommand, JobCommand, NodeCommand, OperatorCommand,
    OperatorRaftCommand, OperatorSchedulerCommand, OperatorSnapshotCommand, ServerCommand,
};
use clap::Parser;

pub(crate) use args::Global;

fn clap_exit(e: clap::Error) -> i32 {
    let code = if e.use_stderr() { 1 } else { 0 };
    let _ = e.print();
    code
}

fn run_agent(rest: &[String]) -> i32 {
    match AgentCli::parse_rest(rest) {
        Ok(a) => match crate::agent::run(a) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("==> Error starting agent: {e:#}");
                1
            }
        },
        Err(e) => clap_exit(e),
    }
}

/// Runs the CLI with the process arguments; returns the exit code.
pub fn main() -> i32 {
    let argv = args::normalize(std::env::args());
    if argv.get(1).map(String::as_str) == Some("agent") {
        return run_agent(&argv[2..]);
    }
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => return clap_exit(e),
    };
    let g = &cli.global;
    let result = match cli.command {
        Command::Agent(p) => return run_agent(&p.args),
        Command::Job(JobCommand::Run(a)) | Command::Run(a) => job_run::run(g, &a),
        Command::Job(JobCommand::Plan(a)) | Command::Plan(a) => {
            // Nomad's plan exits 255 on errors (1 means "allocations change").
            return job_plan::run(g, &a).unwrap_or_else(|e| {
                eprintln!("{e:#}");
                255
            });
        }
        Command::Job(JobCommand::Status(a)) => job_status::job_status(g, &a),
        Command::Status(a) => job_status::status(g, &a),
        Command::Job(JobCommand::Stop(a)) | Command::Stop(a) => job_stop::stop(g, &a),
        Command::Job(JobCommand::Init(a)) | Command::Init(a) => job_init::init(&a),
        Command::Job(JobCommand::Inspect(a)) | Command::Inspect(a) => job_misc::inspect(g, &a),
        Command::Job(JobCommand::Validate(a)) | Command::Validate(a) => job_misc::validate(&a),
        Command::Alloc(AllocCommand::Status(a)) => alloc_status::status(g, &a),
        Command::Alloc(AllocCommand::Logs(a)) | Command::Logs(a) => alloc_logs::logs(g, &a),
        Command::Alloc(AllocCommand::Fs(a)) | Command::Fs(a) => alloc_fs::fs(g, &a),
        Command::Alloc(AllocCommand::Signal(a)) => alloc_control::signal(g, &a),
        Command::Alloc(AllocCommand::Restart(a)) => alloc_control::restart(g, &a),
        Command::Alloc(AllocCommand::Stop(a)) => alloc_control::stop(g, &a),
        Command::Node(NodeCommand::Status(a)) => node_status::status(g, &a),
        Command::Node(NodeCommand::Eligibility(a)) => node_eligibility::eligibility(g, &a),
        Command::Node(NodeCommand::Drain(a)) => node_drain::drain(g, &a),
        Command::Eval(EvalCommand::Status(a)) => eval::status(g, &a),
        Command::Eval(EvalCommand::List(a)) => eval::list(g, &a),
        Command::Server(ServerCommand::Members(a)) => server_members::members(g, &a),
        Command::Operator(OperatorCommand::Raft(OperatorRaftCommand::ListPeers(a))) => {
            operator_raft::list_peers(g, &a)
        }
        Command::Operator(OperatorCommand::Raft(OperatorRaftCommand::RemovePeer(a))) => {
            operator_raft::remove_peer(g, &a)
        }
        Command::Operator(OperatorCommand::Snapshot(OperatorSnapshotCommand::Save(f))) => {
            operator_snapshot::save(g, &f)
        }
        Command::Operator(OperatorCommand::Snapshot(OperatorSnapshotCommand::Restore(f))) => {
            operator_snapshot::restore(g, &f)
        }
        Command::Operator(OperatorCommand::Scheduler(OperatorSchedulerCommand::GetConfig(a))) => {
            operator_scheduler::get_config(g, &a)
        }
        Command::Operator(OperatorCommand::Scheduler(OperatorSchedulerCommand::SetConfig(a))) => {
            operator_scheduler::set_config(g, &a)
        }
        Command::Version => version::version(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            1
        }
    }
}

//! `caravan agent`: builds the server, client and HTTP API from the agent configuration and runs
//! them until a signal arrives.

use clap::Args;

/// Flags of `caravan agent` (Nomad's names; single-dash long flags are accepted).
#[derive(Debug, Clone, Default, Args)]
pub struct AgentArgs {
    /// Run a server and a client in one process with a throw-away data dir.
    #[arg(long)]
    pub dev: bool,
    /// Agent configuration files or directories (repeatable).
    #[arg(long = "config")]
    pub config: Vec<std::path::PathBuf>,
    /// Address to bind the HTTP API, RPC and gossip listeners to.
    #[arg(long)]
    pub bind: Option<String>,
    /// Data directory.
    #[arg(long = "data-dir")]
    pub data_dir: Option<std::path::PathBuf>,
    /// Region.
    #[arg(long)]
    pub region: Option<String>,
    /// Datacenter.
    #[arg(long)]
    pub dc: Option<String>,
    /// Node name.
    #[arg(long)]
    pub node: Option<String>,
    /// Log level (DEBUG, INFO, WARN, ERROR).
    #[arg(long = "log-level")]
    pub log_level: Option<String>,
}

/// Runs the agent until interrupted.
pub fn run(_args: AgentArgs) -> anyhow::Result<()> {
    anyhow::bail!("agent not wired yet")
}

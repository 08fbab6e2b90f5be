//! `caravan agent`: builds the server, client and HTTP API from the agent configuration and runs
//! them until SIGINT/SIGTERM, then shuts them down in order (HTTP, client, server).

mod banner;
mod settings;

use anyhow::Context;
use clap::Args;
use settings::AgentSettings;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Flags of `caravan agent` (Nomad's names; single-dash long flags are accepted).
#[derive(Debug, Clone, Default, Args)]
pub struct AgentArgs {
    /// Run a server and a client in one process with a throw-away data dir.
    #[arg(long)]
    pub dev: bool,
    /// Agent configuration files or directories (repeatable).
    #[arg(long = "config")]
    pub config: Vec<std::path::PathBuf>,
    /// Enable server mode.
    #[arg(long)]
    pub server: bool,
    /// Enable client mode.
    #[arg(long)]
    pub client: bool,
    /// Servers a client registers with (`host:port`, comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub servers: Vec<String>,
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
    /// Node class of a client.
    #[arg(long = "node-class")]
    pub node_class: Option<String>,
    /// Node pool of a client.
    #[arg(long = "node-pool")]
    pub node_pool: Option<String>,
    /// Client metadata `key=value` (repeatable).
    #[arg(long = "meta")]
    pub meta: Vec<String>,
    /// Log level (TRACE, DEBUG, INFO, WARN, ERROR).
    #[arg(long = "log-level")]
    pub log_level: Option<String>,
}

/// Runs the agent until interrupted.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let settings = AgentSettings::build(&args)?;
    init_logging(&settings.log_level);
    // One worker thread per core, or `TOKIO_WORKER_THREADS` (tokio reads it): e.g. 1 when
    // several agents share a small machine.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(settings))
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{},h2=info,hyper=info,tower=info,openraft=warn",
            level.to_ascii_lowercase()
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

async fn run_async(settings: AgentSettings) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let http_listener = tokio::net::TcpListener::bind(settings.http_bind())
        .await
        .with_context(|| format!("binding the HTTP API to {}", settings.http_bind()))?;

    // Server: the region's state and scheduler, and its gRPC endpoint for remote clients.
    let server_token = shutdown.child_token();
    let mut server = None;
    let mut rpc_task = None;
    let rpc: Arc<dyn rpc::Rpc> = if settings.server_enabled {
        let listener = tokio::net::TcpListener::bind(settings.rpc_bind())
            .await
            .with_context(|| format!("binding RPC to {}", settings.rpc_bind()))?;
        let handle = server::ServerHandle::start(settings.server_config(), server_token.clone())
            .await
            .context("starting the server")?;
        let local: Arc<dyn rpc::Rpc> = handle.rpc();
        // Raft, the HTTP API and forwarding to the leader run while a restarted server
        // rebuilds its state from disk; what needs the local state waits for it.
        rpc_task = Some(tokio::spawn(rpc::grpc_server::serve(
            local.clone(),
            Some(handle.peer_handler()),
            listener,
            server_token.clone(),
        )));
        server = Some(handle);
        local
    } else {
        if settings.servers.is_empty() {
            anyhow::bail!(
                "client mode needs servers to join: set -servers or client {{ servers = [...] }}"
            );
        }
        Arc::new(rpc::remote::RemoteRpc::new(
            settings.servers.clone(),
            settings.region.clone(),
        ))
    };

    // Client: runs allocations placed on this node.
    let client_token = shutdown.child_token();
    let client = if settings.client_enabled {
        let handle =
            client::Client::start(settings.client_config(), rpc.clone(), client_token.clone())
                .await
                .context("starting the client")?;
        Some(Arc::new(handle))
    } else {
        None
    };
    let client_fs = client.clone().map(|c| c as Arc<dyn rpc::ClientFs>);
    let node_id = client.as_ref().map(|c| c.node_id().to_string());
    let router = http_api::router(
        rpc.clone(),
        client_fs,
        settings.agent_info(node_id.as_deref().unwrap_or_default()),
    );
    let http_token = shutdown.child_token();
    let http_task = tokio::spawn(http_api::serve(http_listener, router, http_token.clone()));

    banner::print(&settings, node_id.as_deref());

    // A state rebuild that fails (a snapshot that passed its checksum but cannot be read)
    // stops the agent with its error.
    let rebuilt = async {
        match &server {
            Some(s) => s.ready().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = wait_for_signal() => {}
        Err(e) = rebuilt => return Err(anyhow::Error::new(e).context("starting the server")),
    }
    eprintln!("==> Caught signal: interrupt\n==> Gracefully shutting down agent...");
    http_token.cancel();
    let _ = http_task.await;
    client_token.cancel();
    if let Some(client) = client {
        match Arc::try_unwrap(client) {
            Ok(client) => client.shutdown().await,
            Err(_) => tracing::warn!(
                "client still referenced at shutdown; its tasks may outlive the agent"
            ),
        }
    }
    server_token.cancel();
    if let Some(task) = rpc_task {
        let _ = task.await;
    }
    if let Some(server) = server {
        server.join().await;
    }
    shutdown.cancel();
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

//! Nomad's `/v1` HTTP API on axum: jobs, allocations, nodes, evaluations, agent and status
//! endpoints, and the client's log streaming. Bodies are the `structs` types, so field names are
//! Nomad's (`ID`, `TaskGroups`, `CreateIndex`...).
//!
//! This crate owns HTTP concerns only: query parameters, status codes, headers, JSON framing.
//! It must not hold cluster state or scheduling logic: every read and write goes through
//! `Arc<dyn rpc::Rpc>` (the servers), and log files are found through `rpc::ClientFs` (the local
//! client agent). Blocking queries are implemented by the server; this crate only passes
//! `?index=&wait=` along.
//!
//! Module map: `query` (query parameters, JSON bodies and responses, `X-Nomad-*` headers),
//! `error` (the one mapping from `rpc::ErrorCode` to HTTP status), `jobs`, `allocs`, `nodes`,
//! `evals`, `agent` (agent and status endpoints), `logs` (`/v1/client/fs/logs`).

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use rpc::{ClientFs, Rpc};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod agent;
mod allocs;
mod error;
mod evals;
mod fs;
mod jobs;
mod logs;
mod nodes;
mod operator;
mod parse;
mod query;
mod task_control;
#[cfg(test)]
mod testing;

/// How long `serve` lets in-flight requests (blocking queries can last minutes) finish after
/// shutdown is requested before it returns anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The largest request body accepted (job submissions with inline templates can be large).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Largest snapshot `PUT /v1/operator/snapshot` accepts.
const MAX_SNAPSHOT_BYTES: usize = 16 * 1024 * 1024 * 1024;

/// What the agent serving the API says about itself (`/v1/agent/self`, `/v1/agent/members`,
/// `/v1/agent/health`), and the defaults of `?region=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// The agent's region; the default of `?region=`.
    pub region: String,
    /// The agent's datacenter.
    pub datacenter: String,
    /// The agent's node name; the gossip member name is `<node_name>.<region>`.
    pub node_name: String,
    /// The server's or client's node ID (the `id` member tag).
    pub node_id: String,
    /// The version reported to users (`Version.Version`, the `build` tag).
    pub version: String,
    /// The build's revision, if known.
    pub revision: String,
    /// The address the agent binds its listeners to, e.g. `0.0.0.0`.
    pub bind_addr: String,
    /// The advertised HTTP address.
    pub http_addr: SocketAddr,
    /// The advertised RPC address.
    pub rpc_addr: SocketAddr,
    /// The advertised gossip (Serf) address.
    pub serf_addr: SocketAddr,
    /// Whether this agent runs a server.
    pub server: bool,
    /// Whether this agent runs a client.
    pub client: bool,
    /// `bootstrap_expect` of the server (0 when not set).
    pub bootstrap_expect: u32,
    /// The agent's data directory, if any.
    pub data_dir: String,
}

impl Default for AgentInfo {
    fn default() -> Self {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            region: "global".into(),
            datacenter: "dc1".into(),
            node_name: "local".into(),
            node_id: String::new(),
            version: structs::VERSION.into(),
            revision: String::new(),
            bind_addr: "127.0.0.1".into(),
            http_addr: local(4646),
            rpc_addr: local(4647),
            serf_addr: local(4648),
            server: true,
            client: true,
            bootstrap_expect: 1,
            data_dir: String::new(),
        }
    }
}

/// What every handler gets: the servers, the local client (if any) and the agent's identity.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) rpc: Arc<dyn Rpc>,
    pub(crate) client_fs: Option<Arc<dyn ClientFs>>,
    pub(crate) agent: Arc<AgentInfo>,
}

impl AppState {
    /// The local client agent, for an allocation's files or tasks; Nomad's 404 when this
    /// agent runs no client.
    pub(crate) fn local_client(
        &self,
        alloc_id: &str,
    ) -> Result<Arc<dyn ClientFs>, error::ApiError> {
        self.client_fs
            .clone()
            .ok_or_else(|| error::unknown_alloc(alloc_id))
    }

    /// The local client and the directory of `alloc_id` on it; a 404 when it has none.
    pub(crate) fn local_alloc_dir(
        &self,
        alloc_id: &str,
    ) -> Result<(Arc<dyn ClientFs>, std::path::PathBuf), error::ApiError> {
        let client = self.local_client(alloc_id)?;
        let dir = client
            .alloc_dir(alloc_id)
            .ok_or_else(|| error::unknown_alloc(alloc_id))?;
        Ok((client, dir))
    }
}

/// The `/v1` routes over the servers (`rpc`) and the local client agent (`client_fs`, used for
/// logs; `None` on a server-only agent). Unknown routes answer 404, wrong methods 405.
pub fn router(rpc: Arc<dyn Rpc>, client_fs: Option<Arc<dyn ClientFs>>, agent: AgentInfo) -> Router {
    let state = AppState {
        rpc,
        client_fs,
        agent: Arc::new(agent),
    };
    Router::new()
        .route(
            "/v1/jobs",
            get(jobs::list).put(jobs::register).post(jobs::register),
        )
        .route("/v1/jobs/parse", post(parse::parse).put(parse::parse))
        .route(
            "/v1/validate/job",
            post(parse::validate).put(parse::validate),
        )
        .route(
            "/v1/job/{id}",
            get(jobs::get_job)
                .put(jobs::update)
                .post(jobs::update)
                .delete(jobs::deregister),
        )
        .route("/v1/job/{id}/plan", post(jobs::plan).put(jobs::plan))
        .route("/v1/job/{id}/allocations", get(jobs::allocations))
        .route("/v1/job/{id}/evaluations", get(jobs::evaluations))
        .route("/v1/job/{id}/summary", get(jobs::summary))
        .route("/v1/job/{id}/versions", get(jobs::versions))
        .route("/v1/allocations", get(allocs::list))
        .route("/v1/allocation/{id}", get(allocs::get_alloc))
        .route(
            "/v1/allocation/{id}/stop",
            post(allocs::stop).put(allocs::stop),
        )
        .route("/v1/client/fs/logs/{alloc}", get(logs::logs))
        .route("/v1/client/fs/ls/{alloc}", get(fs::ls))
        .route("/v1/client/fs/stat/{alloc}", get(fs::stat))
        .route("/v1/client/fs/cat/{alloc}", get(fs::cat))
        .route(
            "/v1/client/allocation/{alloc}/signal",
            post(task_control::signal).put(task_control::signal),
        )
        .route(
            "/v1/client/allocation/{alloc}/stats",
            get(task_control::stats),
        )
        .route(
            "/v1/client/allocation/{alloc}/restart",
            post(task_control::restart).put(task_control::restart),
        )
        .route("/v1/nodes", get(nodes::list))
        .route("/v1/node/{id}", get(nodes::get_node))
        .route("/v1/node/{id}/allocations", get(nodes::allocations))
        .route(
            "/v1/node/{id}/eligibility",
            post(nodes::eligibility).put(nodes::eligibility),
        )
        .route("/v1/node/{id}/drain", post(nodes::drain).put(nodes::drain))
        .route("/v1/evaluations", get(evals::list))
        .route("/v1/evaluation/{id}", get(evals::get_eval))
        .route("/v1/agent/self", get(agent::agent_self))
        .route("/v1/agent/health", get(agent::health))
        .route("/v1/agent/members", get(agent::members))
        .route("/v1/status/leader", get(agent::leader))
        .route("/v1/status/peers", get(agent::peers))
        .route("/v1/regions", get(agent::regions))
        .route(
            "/v1/operator/raft/configuration",
            get(operator::raft_configuration),
        )
        .route("/v1/operator/raft/peer", delete(operator::remove_peer))
        .route(
            "/v1/operator/scheduler/configuration",
            get(operator::scheduler_get_config)
                .put(operator::scheduler_set_config)
                .post(operator::scheduler_set_config),
        )
        .route(
            "/v1/operator/snapshot",
            get(operator::snapshot_save)
                .put(operator::snapshot_restore)
                .post(operator::snapshot_restore)
                .layer(DefaultBodyLimit::max(MAX_SNAPSHOT_BYTES)),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found").into_response() })
        .method_not_allowed_fallback(|| async {
            (StatusCode::METHOD_NOT_ALLOWED, "Invalid method").into_response()
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting
/// connections, tells streaming responses (followed logs) to end, and waits up to a few seconds
/// for in-flight requests before returning.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "HTTP API listening");
    // Handlers that stream (logs with follow=true) watch this token so they end on shutdown.
    let app = router.layer(Extension(shutdown.clone()));
    // Small responses go out at once instead of waiting for the client's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let graceful =
        axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let grace_expired = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = graceful => result,
        () = grace_expired => {
            tracing::warn!(%addr, "HTTP API stopped with requests still in flight");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{app, call, FakeRpc};
    use axum::http::Method;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn unknown_routes_are_404_and_wrong_methods_405() {
        let rpc = Arc::new(FakeRpc::default());
        let app = app(&rpc, None);
        let r = call(&app, Method::GET, "/v1/nope", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.text(), "404 page not found");
        let r = call(&app, Method::DELETE, "/v1/jobs", None).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.text(), "Invalid method");
    }

    #[tokio::test]
    async fn serve_answers_on_a_real_socket_and_stops_on_shutdown() {
        let rpc = Arc::new(FakeRpc::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, app(&rpc, None), shutdown.clone()));

        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /v1/regions HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), conn.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("[\"global\",\"us\"]"), "{answer}");

        shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        assert!(result.is_ok());
    }
}

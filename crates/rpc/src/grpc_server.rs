//! Serves an `Rpc` implementation over gRPC (the `Caravan.Call` envelope), so agents in other
//! processes (client-only agents, later other servers) can call it.

use crate::peer::{PeerHandler, PeerRequest, PeerResponse, PEER_PATH, PEER_STREAM_PATH};
use crate::stream::{serve_stream, Answer, Tagged};
use crate::wire::{code_to_wire, Call, CallRequest, CallResponse, CALL_PATH, STREAM_PATH};
use crate::{QueryMeta, Rpc, RpcError};
use serde::Serialize;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codec::ProstCodec;
use tonic::codegen::{http, Service};

/// The gRPC server failed.
#[derive(Debug, Error)]
#[error("RPC server: {0}")]
pub struct RpcTransportError(String);

/// Largest message either side accepts: Raft batches and snapshot restores can be large, and
/// agents are trusted peers (gRPC's 4 MiB default would cap a state restore).
pub(crate) const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024 * 1024 - 1;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How many peer streams this process has served (tests check peer calls use the stream).
#[cfg(test)]
pub(crate) static PEER_STREAMS_SERVED: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Serves `rpc` (and, on servers, peer calls) on `listener` until `shutdown` is cancelled.
pub async fn serve(
    rpc: Arc<dyn Rpc>,
    peer: Option<Arc<dyn PeerHandler>>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RpcTransportError> {
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        // The call stream carries many calls at once: windows large enough that flow control
        // never holds a burst of small calls behind a round trip.
        .initial_stream_window_size(Some(crate::stream::STREAM_WINDOW))
        .initial_connection_window_size(Some(crate::stream::CONNECTION_WINDOW))
        .serve_with_incoming_shutdown(
            CaravanService {
                rpc,
                peer,
                shutdown: shutdown.clone(),
            },
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown.cancelled_owned(),
        )
        .await
        .map_err(|e| RpcTransportError(e.to_string()))
}

#[derive(Clone)]
struct CaravanService {
    rpc: Arc<dyn Rpc>,
    peer: Option<Arc<dyn PeerHandler>>,
    /// Ends open call streams, so a graceful shutdown does not wait for their callers.
    shutdown: CancellationToken,
}

impl tonic::server::NamedService for CaravanService {
    const NAME: &'static str = "caravan.Caravan";
}

impl Service<http::Request<Body>> for CaravanService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let shutdown = self.shutdown.clone();
        let rpc = || -> Arc<dyn Answer<CallRequest, CallResponse>> {
            Arc::new(RpcAnswer {
                rpc: self.rpc.clone(),
            })
        };
        let peer = || -> Option<Arc<dyn Answer<PeerRequest, PeerResponse>>> {
            let peer = self.peer.clone()?;
            Some(Arc::new(PeerAnswer { peer }))
        };
        match req.uri().path() {
            CALL_PATH => {
                let answer = rpc();
                Box::pin(async move { Ok(serve_unary(answer, req).await) })
            }
            STREAM_PATH => {
                let answer = rpc();
                Box::pin(async move { Ok(serve_stream(answer, shutdown, req).await) })
            }
            PEER_PATH => match peer() {
                Some(answer) => Box::pin(async move { Ok(serve_unary(answer, req).await) }),
                None => unimplemented(),
            },
            PEER_STREAM_PATH => match peer() {
                Some(answer) => {
                    #[cfg(test)]
                    PEER_STREAMS_SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Box::pin(async move { Ok(serve_stream(answer, shutdown, req).await) })
                }
                None => unimplemented(),
            },
            _ => unimplemented(),
        }
    }
}

/// gRPC's UNIMPLEMENTED (12), for paths this server does not serve.
fn unimplemented() -> BoxFuture<Result<http::Response<Body>, Infallible>> {
    Box::pin(async {
        let mut resp = http::Response::new(Body::default());
        let headers = resp.headers_mut();
        headers.insert("grpc-status", http::HeaderValue::from_static("12"));
        headers.insert(
            "content-type",
            http::HeaderValue::from_static("application/grpc"),
        );
        Ok(resp)
    })
}

/// Serves one unary call with `answer`.
async fn serve_unary<Req: Tagged, Resp: Tagged>(
    answer: Arc<dyn Answer<Req, Resp>>,
    req: http::Request<Body>,
) -> http::Response<Body> {
    let mut grpc = tonic::server::Grpc::new(ProstCodec::<Resp, Req>::default())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    grpc.unary(Unary { answer }, req).await
}

/// A unary call as a tonic service.
struct Unary<Req, Resp> {
    answer: Arc<dyn Answer<Req, Resp>>,
}

impl<Req: Tagged, Resp: Tagged> Service<tonic::Request<Req>> for Unary<Req, Resp> {
    type Response = tonic::Response<Resp>;
    type Error = tonic::Status;
    type Future = BoxFuture<Result<Self::Response, tonic::Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), tonic::Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::Request<Req>) -> Self::Future {
        let work = self.answer.answer(req.into_inner());
        Box::pin(async move { Ok(tonic::Response::new(work.await)) })
    }
}

/// Decodes and runs one call; every outcome, a body that does not decode included, is a
/// response.
async fn answer(rpc: &dyn Rpc, req: CallRequest) -> CallResponse {
    match serde_json::from_slice::<Call>(&req.body) {
        Err(e) => error_response(RpcError::bad_request(format!(
            "cannot decode RPC call {:?}: {e}",
            req.method
        ))),
        Ok(call) => match dispatch(rpc, call).await {
            Ok((body, meta)) => CallResponse {
                index: meta.index,
                known_leader: meta.known_leader,
                last_contact_ms: meta.last_contact_ms,
                body,
                ..Default::default()
            },
            Err(e) => error_response(e),
        },
    }
}

/// Runs one peer call; an error travels back as the response's message.
async fn answer_peer(peer: &dyn PeerHandler, req: PeerRequest) -> PeerResponse {
    match peer.handle(&req.kind, req.body).await {
        Ok(body) => PeerResponse {
            body,
            ..Default::default()
        },
        Err(error) => PeerResponse {
            error,
            ..Default::default()
        },
    }
}

/// `Rpc` calls arriving on the call stream.
struct RpcAnswer {
    rpc: Arc<dyn Rpc>,
}

impl Answer<CallRequest, CallResponse> for RpcAnswer {
    fn answer(&self, req: CallRequest) -> BoxFuture<CallResponse> {
        let rpc = self.rpc.clone();
        Box::pin(async move { answer(rpc.as_ref(), req).await })
    }
}

/// Peer calls arriving on the peer stream.
struct PeerAnswer {
    peer: Arc<dyn PeerHandler>,
}

impl Answer<PeerRequest, PeerResponse> for PeerAnswer {
    fn answer(&self, req: PeerRequest) -> BoxFuture<PeerResponse> {
        let peer = self.peer.clone();
        Box::pin(async move { answer_peer(peer.as_ref(), req).await })
    }
}

fn error_response(e: RpcError) -> CallResponse {
    CallResponse {
        code: code_to_wire(e.code),
        message: e.message,
        leader_hint: e.leader_hint.unwrap_or_default(),
        ..Default::default()
    }
}

fn body<T: Serialize>(value: &T, meta: QueryMeta) -> Result<(Vec<u8>, QueryMeta), RpcError> {
    serde_json::to_vec(value)
        .map(|b| (b, meta))
        .map_err(|e| RpcError::internal(format!("cannot encode RPC result: {e}")))
}

fn plain<T: Serialize>(value: &T) -> Result<(Vec<u8>, QueryMeta), RpcError> {
    body(value, QueryMeta::default())
}

/// Calls the trait method a `Call` names.
async fn dispatch(rpc: &dyn Rpc, call: Call) -> Result<(Vec<u8>, QueryMeta), RpcError> {
    macro_rules! query {
        ($e:expr) => {{
            let r = $e.await?;
            body(&r.value, r.meta)
        }};
    }
    match call {
        Call::JobRegister(req) => plain(&rpc.job_register(*req).await?),
        Call::JobDeregister {
            namespace,
            job_id,
            purge,
        } => plain(&rpc.job_deregister(&namespace, &job_id, purge).await?),
        Call::JobPlan(req) => plain(&rpc.job_plan(*req).await?),
        Call::JobList(q) => query!(rpc.job_list(&q.into())),
        Call::JobGet { job_id, q } => query!(rpc.job_get(&job_id, &q.into())),
        Call::JobVersions { job_id, q } => query!(rpc.job_versions(&job_id, &q.into())),
        Call::JobAllocations { job_id, all, q } => {
            query!(rpc.job_allocations(&job_id, all, &q.into()))
        }
        Call::JobEvaluations { job_id, q } => query!(rpc.job_evaluations(&job_id, &q.into())),
        Call::JobSummary { job_id, q } => query!(rpc.job_summary(&job_id, &q.into())),
        Call::AllocList(q) => query!(rpc.alloc_list(&q.into())),
        Call::AllocGet { alloc_id, q } => query!(rpc.alloc_get(&alloc_id, &q.into())),
        Call::NodeList(q) => query!(rpc.node_list(&q.into())),
        Call::NodeGet { node_id, q } => query!(rpc.node_get(&node_id, &q.into())),
        Call::NodeAllocations { node_id, q } => query!(rpc.node_allocations(&node_id, &q.into())),
        Call::EvalList(q) => query!(rpc.eval_list(&q.into())),
        Call::EvalGet { eval_id, q } => query!(rpc.eval_get(&eval_id, &q.into())),
        Call::StatusLeader { region } => plain(&rpc.status_leader(&region).await?),
        Call::StatusPeers { region } => plain(&rpc.status_peers(&region).await?),
        Call::Regions => plain(&rpc.regions().await?),
        Call::NodeRegister(node) => plain(&rpc.node_register(*node).await?),
        Call::NodeHeartbeat { node_id } => plain(&rpc.node_heartbeat(&node_id).await?),
        Call::NodeClientAllocs { node_id, q } => {
            query!(rpc.node_client_allocs(&node_id, &q.into()))
        }
        Call::AllocClientUpdate(updates) => plain(&rpc.alloc_client_update(updates).await?),
        Call::RegionMembers { region } => plain(&rpc.region_members(&region).await?),
        Call::RaftConfiguration { region } => plain(&rpc.raft_configuration(&region).await?),
        Call::RaftRemovePeer { region, peer } => plain(&rpc.raft_remove_peer(&region, peer).await?),
        Call::SnapshotSave { region } => {
            let bytes = rpc.snapshot_save(&region).await?;
            plain(&crate::wire::encode_bytes(&bytes))
        }
        Call::SnapshotRestore { region, snapshot } => {
            let bytes = crate::wire::decode_bytes(&snapshot)?;
            plain(&rpc.snapshot_restore(&region, bytes).await?)
        }
        Call::NodeUpdateEligibility {
            node_id,
            eligibility,
        } => plain(&rpc.node_update_eligibility(&node_id, &eligibility).await?),
        Call::AllocStop { alloc_id } => plain(&rpc.alloc_stop(&alloc_id).await?),
        Call::NodeUpdateDrain { node_id, req } => {
            plain(&rpc.node_update_drain(&node_id, *req).await?)
        }
        Call::SchedulerGetConfig(q) => query!(rpc.scheduler_get_config(&q.into())),
        Call::SchedulerSetConfig {
            region,
            config,
            cas,
        } => plain(&rpc.scheduler_set_config(&region, *config, cas).await?),
    }
}

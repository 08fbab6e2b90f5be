//! `RemoteRpc`: the `Rpc` trait over gRPC to a list of servers, failing over to the next
//! server when one cannot be reached.

use crate::stream::{SessionSlot, CONNECTION_WINDOW, MAX_STREAMED_BODY, STREAM_WINDOW};
use crate::wire::{code_from_wire, Call, CallRequest, CallResponse, CALL_PATH, STREAM_PATH};
use crate::{
    AllocClientUpdate, ErrorCode, NodeUpdateResponse, PeerRef, QueryMeta, QueryOptions,
    QueryResponse, RaftConfiguration, Rpc, RpcError, SchedulerSetConfigResponse, ServerMember,
};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use structs::{
    AllocListStub, Allocation, Evaluation, Job, JobDeregisterResponse, JobListStub, JobPlanRequest,
    JobPlanResponse, JobRegisterRequest, JobRegisterResponse, JobSummary, Node, NodeListStub,
    SchedulerConfiguration,
};
use tonic::codec::ProstCodec;
use tonic::transport::{Channel, Endpoint};

/// Time allowed for a call beyond any blocking wait it asks for.
const CALL_SLACK: Duration = Duration::from_secs(30);

/// The servers of a region, reached over gRPC.
pub struct RemoteRpc {
    servers: Vec<Server>,
    region: String,
    current: AtomicUsize,
    streams: bool,
}

/// One server: its address, connection, and the call stream on it (opened on first use).
struct Server {
    addr: String,
    channel: Option<Channel>,
    session: SessionSlot<CallRequest, CallResponse>,
}

impl RemoteRpc {
    /// A client for `servers` (`host:port`). Connections are made lazily.
    pub fn new(servers: Vec<String>, region: String) -> Self {
        let servers = servers
            .into_iter()
            .map(|addr| {
                let channel = Endpoint::from_shared(format!("http://{addr}"))
                    .ok()
                    .map(|e| {
                        e.connect_timeout(Duration::from_secs(2))
                            .tcp_nodelay(true)
                            .initial_stream_window_size(STREAM_WINDOW)
                            .initial_connection_window_size(CONNECTION_WINDOW)
                            .connect_lazy()
                    });
                Server {
                    addr,
                    channel,
                    session: SessionSlot::new(STREAM_PATH),
                }
            })
            .collect();
        Self {
            servers,
            region,
            current: AtomicUsize::new(0),
            streams: true,
        }
    }

    /// Sends every call as its own unary gRPC call instead of on the shared call stream
    /// (benchmarks compare the two).
    pub fn without_call_stream(mut self) -> Self {
        self.streams = false;
        self
    }

    async fn call_one(
        channel: Channel,
        req: CallRequest,
        timeout: Duration,
    ) -> Result<CallResponse, tonic::Status> {
        let mut grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(crate::grpc_server::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::grpc_server::MAX_MESSAGE_BYTES);
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut request = tonic::Request::new(req);
        request.set_timeout(timeout);
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(CALL_PATH);
        grpc.unary(request, path, ProstCodec::default())
            .await
            .map(tonic::Response::into_inner)
    }

    async fn call<T: DeserializeOwned>(&self, call: Call) -> Result<QueryResponse<T>, RpcError> {
        if self.servers.is_empty() {
            return Err(RpcError::new(
                ErrorCode::Unavailable,
                "no servers configured",
            ));
        }
        let method = call.method();
        let timeout = call.max_wait() + CALL_SLACK;
        let body = serde_json::to_vec(&call)
            .map_err(|e| RpcError::internal(format!("cannot encode {method}: {e}")))?;
        // Small calls share the server's call stream; large ones (snapshots, big jobs) get a
        // stream of their own so they never delay the others.
        let streamed = self.streams && body.len() <= MAX_STREAMED_BODY;
        let req = CallRequest {
            method: method.to_string(),
            region: self.region.clone(),
            body,
            id: 0,
        };
        let start = self.current.load(Ordering::Relaxed);
        let mut last = String::new();
        for k in 0..self.servers.len() {
            let i = (start + k) % self.servers.len();
            let server = &self.servers[i];
            let addr = &server.addr;
            let Some(channel) = server.channel.as_ref() else {
                last = format!("invalid server address {addr:?}");
                continue;
            };
            let result = if streamed {
                server.session.get(channel).call(req.clone(), timeout).await
            } else {
                Self::call_one(channel.clone(), req.clone(), timeout).await
            };
            match result {
                Ok(resp) => {
                    self.current.store(i, Ordering::Relaxed);
                    if resp.code != 0 {
                        let mut e = RpcError::new(code_from_wire(resp.code), resp.message);
                        e.leader_hint = (!resp.leader_hint.is_empty()).then_some(resp.leader_hint);
                        return Err(e);
                    }
                    let value = serde_json::from_slice(&resp.body).map_err(|e| {
                        RpcError::internal(format!(
                            "cannot decode {method} response from {addr}: {e}"
                        ))
                    })?;
                    return Ok(QueryResponse {
                        value,
                        meta: QueryMeta {
                            index: resp.index,
                            known_leader: resp.known_leader,
                            last_contact_ms: resp.last_contact_ms,
                        },
                    });
                }
                Err(status) => last = format!("server {addr}: {}", status.message()),
            }
        }
        Err(RpcError::new(
            ErrorCode::Unavailable,
            format!("no server reachable ({last})"),
        ))
    }

    async fn value<T: DeserializeOwned>(&self, call: Call) -> Result<T, RpcError> {
        Ok(self.call(call).await?.value)
    }
}

#[async_trait]
impl Rpc for RemoteRpc {
    async fn job_register(&self, req: JobRegisterRequest) -> Result<JobRegisterResponse, RpcError> {
        self.value(Call::JobRegister(Box::new(req))).await
    }
    async fn job_deregister(
        &self,
        namespace: &str,
        job_id: &str,
        purge: bool,
    ) -> Result<JobDeregisterResponse, RpcError> {
        self.value(Call::JobDeregister {
            namespace: namespace.into(),
            job_id: job_id.into(),
            purge,
        })
        .await
    }
    async fn job_plan(&self, req: JobPlanRequest) -> Result<JobPlanResponse, RpcError> {
        self.value(Call::JobPlan(Box::new(req))).await
    }
    async fn job_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<JobListStub>>, RpcError> {
        self.call(Call::JobList(q.into())).await
    }
    async fn job_get(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Job>, RpcError> {
        self.call(Call::JobGet {
            job_id: job_id.into(),
            q: q.into(),
        })
        .await
    }
    async fn job_versions(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Job>>, RpcError> {
        self.call(Call::JobVersions {
            job_id: job_id.into(),
            q: q.into(),
        })
        .await
    }
    async fn job_allocations(
        &self,
        job_id: &str,
        all: bool,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        self.call(Call::JobAllocations {
            job_id: job_id.into(),
            all,
            q: q.into(),
        })
        .await
    }
    async fn job_evaluations(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        self.call(Call::JobEvaluations {
            job_id: job_id.into(),
            q: q.into(),
        })
        .await
    }
    async fn job_summary(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<JobSummary>, RpcError> {
        self.call(Call::JobSummary {
            job_id: job_id.into(),
            q: q.into(),
        })
        .await
    }
    async fn alloc_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        self.call(Call::AllocList(q.into())).await
    }
    async fn alloc_get(
        &self,
        alloc_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Allocation>, RpcError> {
        self.call(Call::AllocGet {
            alloc_id: alloc_id.into(),
            q: q.into(),
        })
        .await
    }
    async fn node_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<NodeListStub>>, RpcError> {
        self.call(Call::NodeList(q.into())).await
    }
    async fn node_get(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Node>, RpcError> {
        self.call(Call::NodeGet {
            node_id: node_id.into(),
            q: q.into(),
        })
        .await
    }
    async fn node_allocations(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        self.call(Call::NodeAllocations {
            node_id: node_id.into(),
            q: q.into(),
        })
        .await
    }
    async fn eval_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        self.call(Call::EvalList(q.into())).await
    }
    async fn eval_get(
        &self,
        eval_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Evaluation>, RpcError> {
        self.call(Call::EvalGet {
            eval_id: eval_id.into(),
            q: q.into(),
        })
        .await
    }
    async fn status_leader(&self, region: &str) -> Result<String, RpcError> {
        self.value(Call::StatusLeader {
            region: region.into(),
        })
        .await
    }
    async fn status_peers(&self, region: &str) -> Result<Vec<String>, RpcError> {
        self.value(Call::StatusPeers {
            region: region.into(),
        })
        .await
    }
    async fn regions(&self) -> Result<Vec<String>, RpcError> {
        self.value(Call::Regions).await
    }
    async fn region_members(&self, region: &str) -> Result<Vec<ServerMember>, RpcError> {
        self.value(Call::RegionMembers {
            region: region.into(),
        })
        .await
    }
    async fn raft_configuration(&self, region: &str) -> Result<RaftConfiguration, RpcError> {
        self.value(Call::RaftConfiguration {
            region: region.into(),
        })
        .await
    }
    async fn raft_remove_peer(&self, region: &str, peer: PeerRef) -> Result<(), RpcError> {
        self.value(Call::RaftRemovePeer {
            region: region.into(),
            peer,
        })
        .await
    }
    async fn snapshot_save(&self, region: &str) -> Result<Vec<u8>, RpcError> {
        let encoded: String = self
            .value(Call::SnapshotSave {
                region: region.into(),
            })
            .await?;
        crate::wire::decode_bytes(&encoded)
    }
    async fn snapshot_restore(&self, region: &str, snapshot: Vec<u8>) -> Result<u64, RpcError> {
        self.value(Call::SnapshotRestore {
            region: region.into(),
            snapshot: crate::wire::encode_bytes(&snapshot),
        })
        .await
    }
    async fn alloc_stop(&self, alloc_id: &str) -> Result<crate::AllocStopResponse, RpcError> {
        self.value(Call::AllocStop {
            alloc_id: alloc_id.into(),
        })
        .await
    }
    async fn node_update_eligibility(
        &self,
        node_id: &str,
        eligibility: &str,
    ) -> Result<u64, RpcError> {
        self.value(Call::NodeUpdateEligibility {
            node_id: node_id.into(),
            eligibility: eligibility.into(),
        })
        .await
    }
    async fn node_update_drain(
        &self,
        node_id: &str,
        req: crate::NodeDrainRequest,
    ) -> Result<crate::NodeDrainResponse, RpcError> {
        self.value(Call::NodeUpdateDrain {
            node_id: node_id.into(),
            req: Box::new(req),
        })
        .await
    }
    async fn scheduler_get_config(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<SchedulerConfiguration>, RpcError> {
        self.call(Call::SchedulerGetConfig(q.into())).await
    }
    async fn scheduler_set_config(
        &self,
        region: &str,
        config: SchedulerConfiguration,
        cas: Option<u64>,
    ) -> Result<SchedulerSetConfigResponse, RpcError> {
        self.value(Call::SchedulerSetConfig {
            region: region.into(),
            config: Box::new(config),
            cas,
        })
        .await
    }
    async fn node_register(&self, node: Node) -> Result<NodeUpdateResponse, RpcError> {
        self.value(Call::NodeRegister(Box::new(node))).await
    }
    async fn node_heartbeat(&self, node_id: &str) -> Result<NodeUpdateResponse, RpcError> {
        self.value(Call::NodeHeartbeat {
            node_id: node_id.into(),
        })
        .await
    }
    async fn node_client_allocs(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        self.call(Call::NodeClientAllocs {
            node_id: node_id.into(),
            q: q.into(),
        })
        .await
    }
    async fn alloc_client_update(&self, updates: Vec<AllocClientUpdate>) -> Result<u64, RpcError> {
        self.value(Call::AllocClientUpdate(updates)).await
    }
}

//! The gRPC envelope (`proto/caravan.proto`) and the calls it carries. Bodies are JSON of the
//! `structs` types; the envelope carries the method, region, index and error code.

use crate::{AllocClientUpdate, ErrorCode, PeerRef, QueryOptions};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use structs::{JobPlanRequest, JobRegisterRequest, Node};

/// The gRPC path of one call per request.
pub(crate) const CALL_PATH: &str = "/caravan.Caravan/Call";

/// The gRPC path of the multiplexed call stream: many calls, each tagged with an `id`, in
/// flight at once on one HTTP/2 stream, answered in completion order.
pub(crate) const STREAM_PATH: &str = "/caravan.Caravan/Stream";

/// `CallRequest` of caravan.proto.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CallRequest {
    #[prost(string, tag = "1")]
    pub(crate) method: String,
    #[prost(string, tag = "2")]
    pub(crate) region: String,
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) body: Vec<u8>,
    /// On the call stream: the caller's tag, echoed in the response.
    #[prost(uint64, tag = "4")]
    pub(crate) id: u64,
}

/// `CallResponse` of caravan.proto.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CallResponse {
    #[prost(uint64, tag = "1")]
    pub(crate) index: u64,
    #[prost(bool, tag = "2")]
    pub(crate) known_leader: bool,
    #[prost(uint64, tag = "3")]
    pub(crate) last_contact_ms: u64,
    #[prost(int32, tag = "4")]
    pub(crate) code: i32,
    #[prost(string, tag = "5")]
    pub(crate) message: String,
    #[prost(string, tag = "6")]
    pub(crate) leader_hint: String,
    #[prost(bytes = "vec", tag = "7")]
    pub(crate) body: Vec<u8>,
    /// On the call stream: the `id` of the request this answers.
    #[prost(uint64, tag = "8")]
    pub(crate) id: u64,
}

/// The one mapping between `ErrorCode` and its wire number (0 means success).
pub(crate) fn code_to_wire(code: ErrorCode) -> i32 {
    match code {
        ErrorCode::BadRequest => 1,
        ErrorCode::NotFound => 2,
        ErrorCode::Conflict => 3,
        ErrorCode::NoLeader => 4,
        ErrorCode::NoRegionPath => 5,
        ErrorCode::Unavailable => 6,
        ErrorCode::Internal => 7,
    }
}

/// Inverse of [`code_to_wire`]; unknown numbers are `Internal`.
pub(crate) fn code_from_wire(code: i32) -> ErrorCode {
    match code {
        1 => ErrorCode::BadRequest,
        2 => ErrorCode::NotFound,
        3 => ErrorCode::Conflict,
        4 => ErrorCode::NoLeader,
        5 => ErrorCode::NoRegionPath,
        6 => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    }
}

/// `QueryOptions` on the wire (the wait in milliseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct WireQuery {
    region: String,
    namespace: String,
    prefix: String,
    min_index: u64,
    wait_ms: Option<u64>,
    stale: bool,
}

impl From<&QueryOptions> for WireQuery {
    fn from(q: &QueryOptions) -> Self {
        Self {
            region: q.region.clone(),
            namespace: q.namespace.clone(),
            prefix: q.prefix.clone(),
            min_index: q.min_index,
            wait_ms: q
                .wait
                .map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX)),
            stale: q.stale,
        }
    }
}

impl From<WireQuery> for QueryOptions {
    fn from(q: WireQuery) -> Self {
        Self {
            region: q.region,
            namespace: q.namespace,
            prefix: q.prefix,
            min_index: q.min_index,
            wait: q.wait_ms.map(Duration::from_millis),
            stale: q.stale,
        }
    }
}

/// Every `Rpc` method with its arguments: the JSON body of a `CallRequest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
pub(crate) enum Call {
    JobRegister(Box<JobRegisterRequest>),
    JobDeregister {
        namespace: String,
        job_id: String,
        purge: bool,
    },
    JobPlan(Box<JobPlanRequest>),
    JobList(WireQuery),
    JobGet {
        job_id: String,
        q: WireQuery,
    },
    JobVersions {
        job_id: String,
        q: WireQuery,
    },
    JobAllocations {
        job_id: String,
        all: bool,
        q: WireQuery,
    },
    JobEvaluations {
        job_id: String,
        q: WireQuery,
    },
    JobSummary {
        job_id: String,
        q: WireQuery,
    },
    AllocList(WireQuery),
    AllocGet {
        alloc_id: String,
        q: WireQuery,
    },
    NodeList(WireQuery),
    NodeGet {
        node_id: String,
        q: WireQuery,
    },
    NodeAllocations {
        node_id: String,
        q: WireQuery,
    },
    EvalList(WireQuery),
    EvalGet {
        eval_id: String,
        q: WireQuery,
    },
    StatusLeader {
        region: String,
    },
    StatusPeers {
        region: String,
    },
    Regions,
    NodeRegister(Box<Node>),
    NodeHeartbeat {
        node_id: String,
    },
    NodeClientAllocs {
        node_id: String,
        q: WireQuery,
    },
    AllocClientUpdate(Vec<AllocClientUpdate>),
    RegionMembers {
        region: String,
    },
    RaftConfiguration {
        region: String,
    },
    RaftRemovePeer {
        region: String,
        peer: PeerRef,
    },
    SnapshotSave {
        region: String,
    },
    SnapshotRestore {
        region: String,
        /// Base64 of the snapshot file.
        snapshot: String,
    },
    NodeUpdateEligibility {
        node_id: String,
        eligibility: String,
    },
    AllocStop {
        alloc_id: String,
    },
    NodeUpdateDrain {
        node_id: String,
        req: Box<crate::NodeDrainRequest>,
    },
    SchedulerGetConfig(WireQuery),
    SchedulerSetConfig {
        region: String,
        config: Box<structs::SchedulerConfiguration>,
        cas: Option<u64>,
    },
}

impl Call {
    /// The method name (the serde tag), for logs and the envelope.
    pub(crate) fn method(&self) -> &'static str {
        match self {
            Call::JobRegister(_) => "job_register",
            Call::JobDeregister { .. } => "job_deregister",
            Call::JobPlan(_) => "job_plan",
            Call::JobList(_) => "job_list",
            Call::JobGet { .. } => "job_get",
            Call::JobVersions { .. } => "job_versions",
            Call::JobAllocations { .. } => "job_allocations",
            Call::JobEvaluations { .. } => "job_evaluations",
            Call::JobSummary { .. } => "job_summary",
            Call::AllocList(_) => "alloc_list",
            Call::AllocGet { .. } => "alloc_get",
            Call::NodeList(_) => "node_list",
            Call::NodeGet { .. } => "node_get",
            Call::NodeAllocations { .. } => "node_allocations",
            Call::EvalList(_) => "eval_list",
            Call::EvalGet { .. } => "eval_get",
            Call::StatusLeader { .. } => "status_leader",
            Call::StatusPeers { .. } => "status_peers",
            Call::Regions => "regions",
            Call::NodeRegister(_) => "node_register",
            Call::NodeHeartbeat { .. } => "node_heartbeat",
            Call::NodeClientAllocs { .. } => "node_client_allocs",
            Call::AllocClientUpdate(_) => "alloc_client_update",
            Call::RegionMembers { .. } => "region_members",
            Call::RaftConfiguration { .. } => "raft_configuration",
            Call::RaftRemovePeer { .. } => "raft_remove_peer",
            Call::SnapshotSave { .. } => "snapshot_save",
            Call::SnapshotRestore { .. } => "snapshot_restore",
            Call::NodeUpdateEligibility { .. } => "node_update_eligibility",
            Call::AllocStop { .. } => "alloc_stop",
            Call::NodeUpdateDrain { .. } => "node_update_drain",
            Call::SchedulerGetConfig(_) => "scheduler_get_config",
            Call::SchedulerSetConfig { .. } => "scheduler_set_config",
        }
    }

    /// How long a call may block on the server (blocking queries), beyond transport time.
    pub(crate) fn max_wait(&self) -> Duration {
        let q = match self {
            Call::JobList(q)
            | Call::AllocList(q)
            | Call::NodeList(q)
            | Call::EvalList(q)
            | Call::SchedulerGetConfig(q) => Some(q),
            Call::JobGet { q, .. }
            | Call::JobVersions { q, .. }
            | Call::JobAllocations { q, .. }
            | Call::JobEvaluations { q, .. }
            | Call::JobSummary { q, .. }
            | Call::AllocGet { q, .. }
            | Call::NodeGet { q, .. }
            | Call::NodeAllocations { q, .. }
            | Call::EvalGet { q, .. }
            | Call::NodeClientAllocs { q, .. } => Some(q),
            _ => None,
        };
        match q {
            Some(q) if q.min_index > 0 => {
                Duration::from_millis(q.wait_ms.unwrap_or(300_000).min(600_000)) * 17 / 16
            }
            _ => Duration::ZERO,
        }
    }
}

/// Binary payloads (snapshots) travel as base64 inside the JSON bodies.
pub(crate) fn encode_bytes(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Inverse of [`encode_bytes`].
pub(crate) fn decode_bytes(s: &str) -> Result<Vec<u8>, crate::RpcError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| crate::RpcError::bad_request(format!("invalid base64 payload: {e}")))
}

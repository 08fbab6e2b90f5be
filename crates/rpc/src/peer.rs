//! Server-to-server calls that are not `Rpc` methods: Raft's own RPCs and the region
//! membership handshake. A call carries a kind (e.g. `raft/append`) and opaque bytes; the
//! server crate decides what each kind means. Calls travel on one multiplexed stream per peer
//! (`caravan.Caravan/PeerStream`, see `stream.rs`): a Raft append is then one HTTP/2 DATA
//! frame each way instead of a new HTTP/2 stream. Bodies over
//! [`MAX_STREAMED_BODY`] (snapshot installs) go as unary calls (`caravan.Caravan/Peer`).

use crate::stream::{SessionSlot, CONNECTION_WINDOW, MAX_STREAMED_BODY, STREAM_WINDOW};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use thiserror::Error;
use tonic::codec::ProstCodec;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// The gRPC path of unary peer calls.
pub(crate) const PEER_PATH: &str = "/caravan.Caravan/Peer";
/// The gRPC path of the multiplexed peer stream.
pub(crate) const PEER_STREAM_PATH: &str = "/caravan.Caravan/PeerStream";

/// `PeerRequest` of caravan.proto.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PeerRequest {
    #[prost(string, tag = "1")]
    pub(crate) kind: String,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) body: Vec<u8>,
    /// On the peer stream: the caller's tag, echoed in the response.
    #[prost(uint64, tag = "3")]
    pub(crate) id: u64,
}

/// `PeerResponse` of caravan.proto.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PeerResponse {
    #[prost(string, tag = "1")]
    pub(crate) error: String,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) body: Vec<u8>,
    /// On the peer stream: the `id` of the request this answers.
    #[prost(uint64, tag = "3")]
    pub(crate) id: u64,
}

/// One peer: its connection and the stream on it.
#[derive(Clone)]
struct Peer {
    channel: Channel,
    session: Arc<SessionSlot<PeerRequest, PeerResponse>>,
}

/// What a server does with peer calls.
#[async_trait]
pub trait PeerHandler: Send + Sync + 'static {
    /// Handles one call; an `Err` travels back as the call's error message.
    async fn handle(&self, kind: &str, body: Vec<u8>) -> Result<Vec<u8>, String>;
}

/// Why a peer call failed.
#[derive(Debug, Clone, Error)]
pub enum PeerCallError {
    /// The peer could not be reached.
    #[error("server {addr} unreachable: {reason}")]
    Unreachable {
        /// The peer.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The peer was reached but did not answer within the call's deadline (a busy server,
    /// a slow disk): worth retrying, and no sign that the peer is gone.
    #[error("server {addr} did not answer in time: {reason}")]
    Slow {
        /// The peer.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The peer answered with an error.
    #[error("server {addr}: {message}")]
    Remote {
        /// The peer.
        addr: String,
        /// Its message.
        message: String,
    },
}

/// Connections to peers by address, made lazily and reused.
#[derive(Clone, Default)]
pub struct PeerClient {
    peers: Arc<Mutex<HashMap<String, Peer>>>,
    /// False: every call is unary (for comparison in benchmarks and tests).
    unary_only: bool,
}

impl PeerClient {
    /// A client with no connections yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client that sends every call as a unary gRPC call, without the peer stream.
    pub fn without_stream() -> Self {
        Self {
            unary_only: true,
            ..Self::default()
        }
    }

    fn peer(&self, addr: &str) -> Result<Peer, PeerCallError> {
        let mut map = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = map.get(addr) {
            return Ok(p.clone());
        }
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| PeerCallError::Unreachable {
                addr: addr.to_string(),
                reason: format!("invalid address: {e}"),
            })?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .connect_lazy();
        let peer = Peer {
            channel,
            session: Arc::new(SessionSlot::new(PEER_STREAM_PATH)),
        };
        map.insert(addr.to_string(), peer.clone());
        Ok(peer)
    }

    /// Calls `kind` on the server at `addr`.
    pub async fn call(
        &self,
        addr: &str,
        kind: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, PeerCallError> {
        let failed = |status: Status| {
            let addr = addr.to_string();
            let reason = status.message().to_string();
            match status.code() {
                // The deadline passed, here or at the peer (tonic's server cancels a call
                // whose `grpc-timeout` ran out: "Timeout expired").
                Code::DeadlineExceeded | Code::Cancelled => PeerCallError::Slow { addr, reason },
                _ => PeerCallError::Unreachable { addr, reason },
            }
        };
        let peer = self.peer(addr)?;
        let request = PeerRequest {
            kind: kind.to_string(),
            body,
            id: 0,
        };
        let resp = if !self.unary_only && request.body.len() <= MAX_STREAMED_BODY {
            peer.session
                .get(&peer.channel)
                .call(request, timeout)
                .await
                .map_err(failed)?
        } else {
            Self::unary(peer.channel, request, timeout)
                .await
                .map_err(failed)?
        };
        if resp.error.is_empty() {
            Ok(resp.body)
        } else {
            Err(PeerCallError::Remote {
                addr: addr.to_string(),
                message: resp.error,
            })
        }
    }

    async fn unary(
        channel: Channel,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, Status> {
        let mut grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(crate::grpc_server::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::grpc_server::MAX_MESSAGE_BYTES);
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut request = tonic::Request::new(request);
        request.set_timeout(timeout);
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(PEER_PATH);
        tokio::time::timeout(timeout, grpc.unary(request, path, ProstCodec::default()))
            .await
            .map_err(|_| Status::deadline_exceeded(format!("no answer within {timeout:?}")))?
            .map(tonic::Response::into_inner)
    }
}

//! Server-to-server calls that are not `Rpc` methods: Raft's own RPCs and the region
//! membership handshake. One gRPC method (`caravan.Caravan/Peer`) carries a kind
//! (e.g. `raft/append`) and opaque bytes; the server crate decides what each kind means.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use thiserror::Error;
use tonic::codec::ProstCodec;
use tonic::transport::{Channel, Endpoint};

/// The gRPC path of peer calls.
pub(crate) const PEER_PATH: &str = "/caravan.Caravan/Peer";

/// `PeerRequest` of caravan.proto.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PeerRequest {
    #[prost(string, tag = "1")]
    pub(crate) kind: String,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) body: Vec<u8>,
}

/// `PeerResponse` of caravan.proto.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PeerResponse {
    #[prost(string, tag = "1")]
    pub(crate) error: String,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) body: Vec<u8>,
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
    /// The peer could not be reached (or did not answer in time).
    #[error("server {addr} unreachable: {reason}")]
    Unreachable {
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
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl PeerClient {
    /// A client with no connections yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn channel(&self, addr: &str) -> Result<Channel, PeerCallError> {
        let mut map = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = map.get(addr) {
            return Ok(c.clone());
        }
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| PeerCallError::Unreachable {
                addr: addr.to_string(),
                reason: format!("invalid address: {e}"),
            })?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .connect_lazy();
        map.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    /// Calls `kind` on the server at `addr`.
    pub async fn call(
        &self,
        addr: &str,
        kind: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, PeerCallError> {
        let unreachable = |reason: String| PeerCallError::Unreachable {
            addr: addr.to_string(),
            reason,
        };
        let channel = self.channel(addr)?;
        let mut grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(crate::grpc_server::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::grpc_server::MAX_MESSAGE_BYTES);
        grpc.ready().await.map_err(|e| unreachable(e.to_string()))?;
        let mut request = tonic::Request::new(PeerRequest {
            kind: kind.to_string(),
            body,
        });
        request.set_timeout(timeout);
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(PEER_PATH);
        let resp: PeerResponse =
            tokio::time::timeout(timeout, grpc.unary(request, path, ProstCodec::default()))
                .await
                .map_err(|_| unreachable(format!("no answer within {timeout:?}")))?
                .map_err(|s| unreachable(s.message().to_string()))?
                .into_inner();
        if resp.error.is_empty() {
            Ok(resp.body)
        } else {
            Err(PeerCallError::Remote {
                addr: addr.to_string(),
                message: resp.error,
            })
        }
    }
}

//! The multiplexed call stream (`caravan.Caravan/Stream`): one long-lived HTTP/2 stream per
//! connection that carries many calls at once. Each request is tagged with an `id`; the server
//! runs every call as its own task and sends each response, tagged with the same `id`, as soon
//! as it is ready, so a blocking query never holds up a write behind it.
//!
//! A unary call costs a new HTTP/2 stream (HEADERS, DATA and trailers both ways, and its own
//! bookkeeping on both sides); on the stream a call is one DATA frame each way, and frames that
//! are ready together go out in one write. Agents send small calls here; [`Session`] is the
//! client side, [`StreamHandler`] the server side.

use crate::grpc_server::{answer, MAX_MESSAGE_BYTES};
use crate::wire::{CallRequest, CallResponse, STREAM_PATH};
use crate::Rpc;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::codec::{ProstCodec, Streaming};
use tonic::codegen::{http, Service};
use tonic::transport::Channel;
use tonic::Status;

/// HTTP/2 flow-control windows for connections that carry call streams (both sides).
pub(crate) const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
/// See [`STREAM_WINDOW`].
pub(crate) const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// Calls whose request body is larger than this go as unary calls, so one large transfer
/// never delays the small calls sharing the stream.
pub(crate) const MAX_STREAMED_BODY: usize = 256 * 1024;

type ResponseStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<CallResponse, Status>> + Send>>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Server side: answers every call of one stream, each in its own task. When the server
/// shuts down the stream ends (calls still running are dropped, their callers fail over), so
/// a graceful shutdown never waits for a caller to hang up.
pub(crate) struct StreamHandler {
    rpc: Arc<dyn Rpc>,
    shutdown: CancellationToken,
}

impl StreamHandler {
    pub(crate) fn new(rpc: Arc<dyn Rpc>, shutdown: CancellationToken) -> Self {
        Self { rpc, shutdown }
    }
}

impl Service<tonic::Request<Streaming<CallRequest>>> for StreamHandler {
    type Response = tonic::Response<ResponseStream>;
    type Error = Status;
    type Future = BoxFuture<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::Request<Streaming<CallRequest>>) -> Self::Future {
        let rpc = self.rpc.clone();
        let shutdown = self.shutdown.clone();
        Box::pin(async move {
            let mut incoming = req.into_inner();
            let (tx, mut rx) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                loop {
                    let next = tokio::select! {
                        next = incoming.message() => next,
                        _ = shutdown.cancelled() => return,
                    };
                    match next {
                        Ok(Some(call)) => {
                            let rpc = rpc.clone();
                            let tx = tx.clone();
                            let shutdown = shutdown.clone();
                            tokio::spawn(async move {
                                // A caller that went away cancels its calls (a blocking query
                                // must not outlive its connection), and so does shutdown.
                                tokio::select! {
                                    resp = answer(rpc.as_ref(), call) => { let _ = tx.send(Ok(resp)); }
                                    _ = tx.closed() => {}
                                    _ = shutdown.cancelled() => {}
                                }
                            });
                        }
                        Ok(None) => return,
                        Err(status) => {
                            tracing::debug!(error = %status.message(), "call stream ended");
                            return;
                        }
                    }
                }
            });
            let out: ResponseStream =
                Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
            Ok(tonic::Response::new(out))
        })
    }
}

type Waiters = HashMap<u64, oneshot::Sender<Result<CallResponse, Status>>>;

/// Client side: one call stream to one server. Calls wait for the response with their `id`;
/// when the stream breaks, every waiting call fails with `Unavailable` and the session is
/// closed (the owner opens a new one for the next call).
pub(crate) struct Session {
    tx: mpsc::UnboundedSender<CallRequest>,
    /// `None` once the stream has ended.
    waiting: Arc<Mutex<Option<Waiters>>>,
    next_id: AtomicU64,
}

fn lock(w: &Mutex<Option<Waiters>>) -> std::sync::MutexGuard<'_, Option<Waiters>> {
    w.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes a call's waiter if the call ends without a response (timeout, or the caller
/// dropped the future).
struct Forget<'a> {
    waiting: &'a Mutex<Option<Waiters>>,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(w) = lock(self.waiting).as_mut() {
            w.remove(&self.id);
        }
    }
}

impl Session {
    /// Opens a stream on `channel` (connecting lazily; must run inside a tokio runtime).
    pub(crate) fn open(channel: Channel) -> Session {
        let (tx, rx) = mpsc::unbounded_channel();
        let waiting: Arc<Mutex<Option<Waiters>>> = Arc::new(Mutex::new(Some(HashMap::new())));
        tokio::spawn(drive(channel, rx, waiting.clone()));
        Session {
            tx,
            waiting,
            next_id: AtomicU64::new(1),
        }
    }

    /// Whether the stream has ended (the session cannot carry calls any more).
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed() || lock(&self.waiting).is_none()
    }

    /// Sends one call and waits up to `timeout` for its response.
    pub(crate) async fn call(
        &self,
        mut req: CallRequest,
        timeout: Duration,
    ) -> Result<CallResponse, Status> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        req.id = id;
        let (reply, response) = oneshot::channel();
        match lock(&self.waiting).as_mut() {
            Some(w) => {
                w.insert(id, reply);
            }
            None => return Err(Status::unavailable("the call stream is closed")),
        }
        let _forget = Forget {
            waiting: &self.waiting,
            id,
        };
        if self.tx.send(req).is_err() {
            return Err(Status::unavailable("the call stream is closed"));
        }
        match tokio::time::timeout(timeout, response).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Status::unavailable("the call stream is closed")),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no response within {} s",
                timeout.as_secs()
            ))),
        }
    }
}

/// Runs one stream: sends queued calls, hands each response to its waiter, and fails every
/// waiter when the stream ends.
async fn drive(
    channel: Channel,
    mut rx: mpsc::UnboundedReceiver<CallRequest>,
    waiting: Arc<Mutex<Option<Waiters>>>,
) {
    let ended: Status = async {
        let mut grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let requests = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let path = http::uri::PathAndQuery::from_static(STREAM_PATH);
        let mut responses = grpc
            .streaming(
                tonic::Request::new(requests),
                path,
                ProstCodec::<CallRequest, CallResponse>::default(),
            )
            .await?
            .into_inner();
        while let Some(resp) = responses.message().await? {
            let waiter = lock(&waiting).as_mut().and_then(|w| w.remove(&resp.id));
            if let Some(waiter) = waiter {
                let _ = waiter.send(Ok(resp));
            }
        }
        Ok::<Status, Status>(Status::unavailable("the server closed the call stream"))
    }
    .await
    .unwrap_or_else(|e| e);
    let ended = if ended.code() == tonic::Code::Unknown || ended.code() == tonic::Code::Internal {
        // A broken connection surfaces as Unknown/Internal: to callers the server is
        // unavailable, and they fail over.
        Status::unavailable(ended.message().to_string())
    } else {
        ended
    };
    let waiters = lock(&waiting).take();
    for (_, waiter) in waiters.into_iter().flatten() {
        let _ = waiter.send(Err(ended.clone()));
    }
}

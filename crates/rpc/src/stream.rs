//! Multiplexed call streams: one long-lived HTTP/2 stream per connection that carries many
//! calls at once. Each request is tagged with an `id`; the server runs every call as its own
//! task and sends each response, tagged with the same `id`, as soon as it is ready, so a
//! blocking query never holds up a write behind it.
//!
//! A unary call costs a new HTTP/2 stream (HEADERS, DATA and trailers both ways, and its own
//! bookkeeping on both sides); on the stream a call is one DATA frame each way, and frames that
//! are ready together go out in one write. Two streams use this: agents' `Rpc` calls
//! (`caravan.Caravan/Stream`) and servers' Raft and membership calls
//! (`caravan.Caravan/PeerStream`). [`Session`] is the client side, [`StreamHandler`] the
//! server side; [`Tagged`] is what a message needs to travel on either.

use crate::grpc_server::MAX_MESSAGE_BYTES;
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
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

/// A message that carries the tag pairing a response with its request.
pub(crate) trait Tagged: prost::Message + Default + Send + 'static {
    fn id(&self) -> u64;
    fn set_id(&mut self, id: u64);
}

macro_rules! tagged_by_id_field {
    ($($message:ty),*) => {$(
        impl Tagged for $message {
            fn id(&self) -> u64 {
                self.id
            }
            fn set_id(&mut self, id: u64) {
                self.id = id;
            }
        }
    )*};
}

tagged_by_id_field!(
    crate::wire::CallRequest,
    crate::wire::CallResponse,
    crate::peer::PeerRequest,
    crate::peer::PeerResponse
);

type ResponseStream<Resp> = Pin<Box<dyn futures_util::Stream<Item = Result<Resp, Status>> + Send>>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a server does with one call that arrived on a stream: every outcome is a response
/// (the handler tags it).
pub(crate) trait Answer<Req, Resp>: Send + Sync + 'static {
    fn answer(&self, req: Req) -> BoxFuture<Resp>;
}

/// Server side: answers every call of one stream, each in its own task. When the server
/// shuts down the stream ends (calls still running are dropped, their callers fail over), so
/// a graceful shutdown never waits for a caller to hang up.
pub(crate) struct StreamHandler<Req, Resp> {
    answer: Arc<dyn Answer<Req, Resp>>,
    shutdown: CancellationToken,
}

impl<Req, Resp> StreamHandler<Req, Resp> {
    pub(crate) fn new(answer: Arc<dyn Answer<Req, Resp>>, shutdown: CancellationToken) -> Self {
        Self { answer, shutdown }
    }
}

impl<Req: Tagged, Resp: Tagged> Service<tonic::Request<Streaming<Req>>>
    for StreamHandler<Req, Resp>
{
    type Response = tonic::Response<ResponseStream<Resp>>;
    type Error = Status;
    type Future = BoxFuture<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::Request<Streaming<Req>>) -> Self::Future {
        let answer = self.answer.clone();
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
                            let id = call.id();
                            let work = answer.answer(call);
                            let tx = tx.clone();
                            let shutdown = shutdown.clone();
                            tokio::spawn(async move {
                                // A caller that went away cancels its calls (a blocking query
                                // must not outlive its connection), and so does shutdown.
                                tokio::select! {
                                    mut resp = work => {
                                        resp.set_id(id);
                                        let _ = tx.send(Ok(resp));
                                    }
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
            let out: ResponseStream<Resp> =
                Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
            Ok(tonic::Response::new(out))
        })
    }
}

/// Serves one stream request on `path`'s route with `answer`.
pub(crate) async fn serve_stream<Req: Tagged, Resp: Tagged>(
    answer: Arc<dyn Answer<Req, Resp>>,
    shutdown: CancellationToken,
    req: http::Request<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let mut grpc = tonic::server::Grpc::new(ProstCodec::<Resp, Req>::default())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    grpc.streaming(StreamHandler::new(answer, shutdown), req)
        .await
}

type Waiters<Resp> = HashMap<u64, oneshot::Sender<Result<Resp, Status>>>;

/// Client side: one call stream to one server. Calls wait for the response with their `id`;
/// when the stream breaks, every waiting call fails with `Unavailable` and the session is
/// closed (the owner opens a new one for the next call).
pub(crate) struct Session<Req, Resp> {
    tx: mpsc::UnboundedSender<Req>,
    /// `None` once the stream has ended.
    waiting: Arc<Mutex<Option<Waiters<Resp>>>>,
    next_id: AtomicU64,
    _resp: PhantomData<fn() -> Resp>,
}

fn lock<Resp>(
    w: &Mutex<Option<Waiters<Resp>>>,
) -> std::sync::MutexGuard<'_, Option<Waiters<Resp>>> {
    w.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The open session to one server, opened on first use and reopened once it has ended.
pub(crate) struct SessionSlot<Req, Resp> {
    path: &'static str,
    open: Mutex<Option<Arc<Session<Req, Resp>>>>,
}

impl<Req: Tagged, Resp: Tagged> SessionSlot<Req, Resp> {
    /// An empty slot for streams to `path`.
    pub(crate) fn new(path: &'static str) -> Self {
        Self {
            path,
            open: Mutex::new(None),
        }
    }

    /// The open session on `channel`, or a new one if there is none or it has ended.
    pub(crate) fn get(&self, channel: &Channel) -> Arc<Session<Req, Resp>> {
        let mut slot = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some(s) if !s.is_closed() => s.clone(),
            _ => {
                let s = Arc::new(Session::open(channel.clone(), self.path));
                *slot = Some(s.clone());
                s
            }
        }
    }
}

/// Removes a call's waiter if the call ends without a response (timeout, or the caller
/// dropped the future).
struct Forget<'a, Resp> {
    waiting: &'a Mutex<Option<Waiters<Resp>>>,
    id: u64,
}

impl<Resp> Drop for Forget<'_, Resp> {
    fn drop(&mut self) {
        if let Some(w) = lock(self.waiting).as_mut() {
            w.remove(&self.id);
        }
    }
}

impl<Req: Tagged, Resp: Tagged> Session<Req, Resp> {
    /// Opens a stream to `path` on `channel` (connecting lazily; must run inside a tokio
    /// runtime).
    pub(crate) fn open(channel: Channel, path: &'static str) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let waiting: Arc<Mutex<Option<Waiters<Resp>>>> = Arc::new(Mutex::new(Some(HashMap::new())));
        tokio::spawn(drive(channel, path, rx, waiting.clone()));
        Session {
            tx,
            waiting,
            next_id: AtomicU64::new(1),
            _resp: PhantomData,
        }
    }

    /// Whether the stream has ended (the session cannot carry calls any more).
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed() || lock(&self.waiting).is_none()
    }

    /// Sends one call and waits up to `timeout` for its response.
    pub(crate) async fn call(&self, mut req: Req, timeout: Duration) -> Result<Resp, Status> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        req.set_id(id);
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
                "no response within {timeout:?}"
            ))),
        }
    }
}

/// Runs one stream: sends queued calls, hands each response to its waiter, and fails every
/// waiter when the stream ends.
async fn drive<Req: Tagged, Resp: Tagged>(
    channel: Channel,
    path: &'static str,
    mut rx: mpsc::UnboundedReceiver<Req>,
    waiting: Arc<Mutex<Option<Waiters<Resp>>>>,
) {
    let ended: Status = async {
        let mut grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let requests = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let path = http::uri::PathAndQuery::from_static(path);
        let mut responses = grpc
            .streaming(
                tonic::Request::new(requests),
                path,
                ProstCodec::<Req, Resp>::default(),
            )
            .await?
            .into_inner();
        while let Some(resp) = responses.message().await? {
            let waiter = lock(&waiting).as_mut().and_then(|w| w.remove(&resp.id()));
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

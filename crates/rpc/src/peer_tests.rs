//! Peer calls end to end: a peer handler served on loopback, called through `PeerClient`, on
//! the peer stream and as unary calls.

use crate::grpc_server::{serve, PEER_STREAMS_SERVED};
use crate::peer::{PeerCallError, PeerClient, PeerHandler};
use crate::stream::MAX_STREAMED_BODY;
use crate::transport_tests::fake;
use async_trait::async_trait;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// `echo` answers with the body, `slow` waits for `release`, `fail` is an error.
struct Echo {
    release: Notify,
}

#[async_trait]
impl PeerHandler for Echo {
    async fn handle(&self, kind: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
        match kind {
            "echo" => Ok(body),
            "slow" => {
                self.release.notified().await;
                Ok(b"late".to_vec())
            }
            _ => Err(format!("unknown kind {kind:?}")),
        }
    }
}

async fn serve_on(listener: tokio::net::TcpListener) -> (Arc<Echo>, CancellationToken) {
    let echo = Arc::new(Echo {
        release: Notify::new(),
    });
    let token = CancellationToken::new();
    tokio::spawn(serve(
        fake(),
        Some(echo.clone() as Arc<dyn PeerHandler>),
        listener,
        token.clone(),
    ));
    (echo, token)
}

async fn start() -> (Arc<Echo>, String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (echo, token) = serve_on(listener).await;
    (echo, addr, token)
}

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn concurrent_peer_calls_share_the_stream_and_a_slow_one_delays_none() {
    let (echo, addr, token) = start().await;
    let client = PeerClient::new();
    let streams_before = PEER_STREAMS_SERVED.load(Ordering::Relaxed);
    let slow = {
        let (client, addr) = (client.clone(), addr.clone());
        tokio::spawn(async move { client.call(&addr, "slow", vec![], T).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let calls: Vec<_> = (0..200u32)
        .map(|i| {
            let (client, addr) = (client.clone(), addr.clone());
            tokio::spawn(async move {
                let body = i.to_le_bytes().to_vec();
                (body.clone(), client.call(&addr, "echo", body, T).await)
            })
        })
        .collect();
    for c in calls {
        let (sent, got) = c.await.unwrap();
        assert_eq!(got.unwrap(), sent, "each call gets its own answer");
    }
    assert!(!slow.is_finished(), "the slow call is still waiting");
    echo.release.notify_one();
    assert_eq!(slow.await.unwrap().unwrap(), b"late".to_vec());
    assert!(
        PEER_STREAMS_SERVED.load(Ordering::Relaxed) > streams_before,
        "the calls travelled on a peer stream"
    );
    token.cancel();
}

#[tokio::test]
async fn errors_and_large_bodies_cross_both_paths() {
    let (_echo, addr, token) = start().await;
    for client in [PeerClient::new(), PeerClient::without_stream()] {
        match client.call(&addr, "nope", vec![], T).await {
            Err(PeerCallError::Remote { message, .. }) => {
                assert_eq!(message, "unknown kind \"nope\"")
            }
            other => panic!("expected the handler's error, got {other:?}"),
        }
        // Over the streamed limit: a unary call of its own.
        let big: Vec<u8> = (0..MAX_STREAMED_BODY + 1000).map(|i| i as u8).collect();
        assert_eq!(
            client.call(&addr, "echo", big.clone(), T).await.unwrap(),
            big
        );
        assert_eq!(
            client
                .call(&addr, "echo", b"small".to_vec(), T)
                .await
                .unwrap(),
            b"small".to_vec()
        );
    }
    token.cancel();
}

#[tokio::test]
async fn a_stopped_peer_is_unreachable_and_reached_again_once_back() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (echo, token) = serve_on(listener).await;
    let client = PeerClient::new();
    assert_eq!(
        client.call(&addr, "echo", vec![1], T).await.unwrap(),
        vec![1]
    );
    // A call in flight when the peer stops fails as unreachable, without waiting for its
    // deadline.
    let slow = {
        let (client, addr) = (client.clone(), addr.clone());
        tokio::spawn(async move { client.call(&addr, "slow", vec![], T).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    token.cancel();
    let got = tokio::time::timeout(Duration::from_secs(5), slow)
        .await
        .expect("the call failed before its deadline")
        .unwrap();
    assert!(
        matches!(got, Err(PeerCallError::Unreachable { .. })),
        "{got:?}"
    );
    drop(echo);
    // Back on the same address: the next calls open a new stream.
    let listener = loop {
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let (_echo, token) = serve_on(listener).await;
    let mut answered = None;
    for _ in 0..100 {
        match client.call(&addr, "echo", vec![2], T).await {
            Ok(b) => {
                answered = Some(b);
                break;
            }
            Err(PeerCallError::Unreachable { .. }) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(answered, Some(vec![2]));
    token.cancel();
}

#[tokio::test]
async fn a_peer_that_answers_late_is_slow_not_unreachable_on_both_paths() {
    let (echo, addr, token) = start().await;
    let client = PeerClient::new();
    let short = Duration::from_millis(100);
    let big: Vec<u8> = vec![7; MAX_STREAMED_BODY + 1000];
    for (path, body) in [("streamed", vec![1]), ("unary", big)] {
        match client.call(&addr, "slow", body, short).await {
            Err(PeerCallError::Slow { reason, .. }) => assert!(!reason.is_empty(), "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
    echo.release.notify_waiters();
    assert_eq!(
        client.call(&addr, "echo", vec![3], T).await.unwrap(),
        vec![3],
        "the peer is still reached after the late answers"
    );
    token.cancel();
}

//! The gRPC transport end to end: a fake `Rpc` served on loopback, called through `RemoteRpc`.

use crate::grpc_server::serve;
use crate::remote::RemoteRpc;
use crate::wire::{self, CallRequest, CallResponse, CALL_PATH};
use crate::*;
use std::sync::{Arc, Mutex};
use structs::*;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub(crate) struct Fake {
    nodes: Mutex<Vec<Node>>,
    index: watch::Sender<u64>,
}

fn nope<T>() -> Result<T, RpcError> {
    Err(RpcError::internal("not in the fake"))
}

#[async_trait]
impl Rpc for Fake {
    async fn job_register(&self, req: JobRegisterRequest) -> Result<JobRegisterResponse, RpcError> {
        let job = req
            .job
            .ok_or_else(|| RpcError::bad_request("Job must be specified"))?;
        Ok(JobRegisterResponse {
            eval_id: format!("eval-for-{}", job.id),
            index: 7,
            ..Default::default()
        })
    }
    async fn job_deregister(
        &self,
        _: &str,
        _: &str,
        _: bool,
    ) -> Result<JobDeregisterResponse, RpcError> {
        nope()
    }
    async fn job_plan(&self, _: JobPlanRequest) -> Result<JobPlanResponse, RpcError> {
        nope()
    }
    async fn job_list(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<JobListStub>>, RpcError> {
        nope()
    }
    async fn job_get(&self, id: &str, _: &QueryOptions) -> Result<QueryResponse<Job>, RpcError> {
        Err(RpcError::not_found(format!("job {id} not found")))
    }
    async fn job_versions(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Job>>, RpcError> {
        nope()
    }
    async fn job_allocations(
        &self,
        _: &str,
        _: bool,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        nope()
    }
    async fn job_evaluations(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        nope()
    }
    async fn job_summary(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<JobSummary>, RpcError> {
        nope()
    }
    async fn alloc_list(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        nope()
    }
    async fn alloc_get(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Allocation>, RpcError> {
        nope()
    }
    async fn node_list(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<NodeListStub>>, RpcError> {
        nope()
    }
    async fn node_get(&self, _: &str, _: &QueryOptions) -> Result<QueryResponse<Node>, RpcError> {
        nope()
    }
    async fn node_allocations(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        nope()
    }
    async fn eval_list(
        &self,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        nope()
    }
    async fn eval_get(
        &self,
        _: &str,
        _: &QueryOptions,
    ) -> Result<QueryResponse<Evaluation>, RpcError> {
        nope()
    }
    async fn status_leader(&self, _: &str) -> Result<String, RpcError> {
        Ok("127.0.0.1:4647".into())
    }
    async fn status_peers(&self, _: &str) -> Result<Vec<String>, RpcError> {
        nope()
    }
    async fn regions(&self) -> Result<Vec<String>, RpcError> {
        Ok(vec!["global".into()])
    }
    async fn region_members(&self, _: &str) -> Result<Vec<ServerMember>, RpcError> {
        nope()
    }
    async fn raft_configuration(&self, region: &str) -> Result<RaftConfiguration, RpcError> {
        Ok(RaftConfiguration {
            index: 3,
            servers: vec![RaftServer {
                id: "1".into(),
                node: format!("s1.{region}"),
                address: "127.0.0.1:4647".into(),
                leader: true,
                voter: true,
                raft_protocol: "3".into(),
            }],
        })
    }
    async fn raft_remove_peer(&self, _: &str, peer: PeerRef) -> Result<(), RpcError> {
        match peer {
            PeerRef::Id(id) if id == "1" => Ok(()),
            other => Err(RpcError::not_found(format!("{other:?}"))),
        }
    }
    async fn snapshot_save(&self, _: &str) -> Result<Vec<u8>, RpcError> {
        Ok((0..=255u8).collect())
    }
    async fn snapshot_restore(&self, _: &str, snapshot: Vec<u8>) -> Result<u64, RpcError> {
        Ok(snapshot.len() as u64)
    }
    async fn alloc_stop(&self, alloc_id: &str) -> Result<AllocStopResponse, RpcError> {
        Ok(AllocStopResponse {
            eval_id: format!("eval-for-{alloc_id}"),
            index: 7,
        })
    }
    async fn node_update_eligibility(
        &self,
        node_id: &str,
        eligibility: &str,
    ) -> Result<u64, RpcError> {
        match eligibility {
            "eligible" | "ineligible" => Ok(node_id.len() as u64),
            other => Err(RpcError::bad_request(other.to_string())),
        }
    }
    async fn node_update_drain(
        &self,
        node_id: &str,
        req: NodeDrainRequest,
    ) -> Result<NodeDrainResponse, RpcError> {
        Ok(NodeDrainResponse {
            eval_ids: vec![node_id.to_string()],
            eval_create_index: req.drain_spec.map_or(0, |s| s.deadline as u64),
            node_modify_index: u64::from(req.mark_eligible),
        })
    }
    async fn scheduler_get_config(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<SchedulerConfiguration>, RpcError> {
        Ok(QueryResponse {
            value: SchedulerConfiguration {
                scheduler_algorithm: "spread".into(),
                modify_index: 9,
                ..Default::default()
            },
            meta: QueryMeta {
                index: q.min_index + 9,
                ..Default::default()
            },
        })
    }
    async fn scheduler_set_config(
        &self,
        region: &str,
        config: SchedulerConfiguration,
        cas: Option<u64>,
    ) -> Result<SchedulerSetConfigResponse, RpcError> {
        Ok(SchedulerSetConfigResponse {
            updated: region == "eu" && config.spread_algorithm() && cas != Some(1),
            index: 10,
        })
    }
    async fn node_register(&self, node: Node) -> Result<NodeUpdateResponse, RpcError> {
        self.nodes.lock().unwrap().push(node);
        Ok(NodeUpdateResponse {
            heartbeat_ttl: Duration::from_secs(12),
            index: 3,
        })
    }
    async fn node_heartbeat(&self, _: &str) -> Result<NodeUpdateResponse, RpcError> {
        nope()
    }
    async fn node_client_allocs(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        let mut rx = self.index.subscribe();
        while *rx.borrow_and_update() <= q.min_index {
            if rx.changed().await.is_err() {
                break;
            }
        }
        let index = *self.index.borrow();
        let alloc = Allocation {
            id: format!("alloc-{index}"),
            node_id: node_id.into(),
            ..Default::default()
        };
        Ok(QueryResponse {
            value: vec![alloc],
            meta: QueryMeta {
                index,
                known_leader: true,
                last_contact_ms: 0,
            },
        })
    }
    async fn alloc_client_update(&self, updates: Vec<AllocClientUpdate>) -> Result<u64, RpcError> {
        Ok(updates.len() as u64)
    }
}

/// A fake `Rpc` with no nodes at index 1.
pub(crate) fn fake() -> Arc<Fake> {
    Arc::new(Fake {
        nodes: Mutex::new(vec![]),
        index: watch::channel(1).0,
    })
}

async fn start() -> (Arc<Fake>, String, CancellationToken) {
    let fake = fake();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let token = CancellationToken::new();
    tokio::spawn(serve(fake.clone(), None, listener, token.clone()));
    (fake, addr, token)
}

fn dead_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn calls_round_trip_with_codes_and_metadata() {
    let (fake, addr, token) = start().await;
    let remote = RemoteRpc::new(vec![addr], "global".into());
    let resp = remote
        .job_register(JobRegisterRequest {
            job: Some(mock::job("web", 1)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((resp.eval_id.as_str(), resp.index), ("eval-for-web", 7));
    let err = remote
        .job_register(JobRegisterRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
    let err = remote
        .job_get("nope", &QueryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::NotFound, "job nope not found")
    );
    let reg = remote.node_register(mock::node("n1")).await.unwrap();
    assert_eq!(reg.heartbeat_ttl, Duration::from_secs(12));
    assert_eq!(fake.nodes.lock().unwrap()[0].id, "n1");
    assert_eq!(remote.status_leader("").await.unwrap(), "127.0.0.1:4647");
    assert_eq!(
        remote
            .alloc_client_update(vec![AllocClientUpdate::default(); 3])
            .await
            .unwrap(),
        3
    );
    token.cancel();
}

#[tokio::test]
async fn blocking_queries_return_when_the_index_moves() {
    let (fake, addr, token) = start().await;
    let remote = Arc::new(RemoteRpc::new(vec![addr], "global".into()));
    let waiter = blocking_allocs(&remote);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());
    fake.index.send_replace(5);
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.meta.index, got.value[0].id.as_str()), (5, "alloc-5"));
    token.cancel();
}

#[tokio::test]
async fn dead_servers_are_unavailable_and_the_next_one_is_tried() {
    let dead = dead_addr();
    let err = RemoteRpc::new(vec![dead.clone()], "global".into())
        .regions()
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable);
    assert!(err.message.contains(&dead), "{}", err.message);
    let (_fake, addr, token) = start().await;
    let remote = RemoteRpc::new(vec![dead, addr], "global".into());
    assert_eq!(remote.regions().await.unwrap(), vec!["global".to_string()]);
    token.cancel();
}

#[tokio::test]
async fn garbage_bodies_get_bad_request() {
    let (_fake, addr, token) = start().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let req = CallRequest {
        method: "job_register".into(),
        region: String::new(),
        body: b"\x00garbage{".to_vec(),
        id: 0,
    };
    let resp: CallResponse = grpc
        .unary(
            tonic::Request::new(req),
            tonic::codegen::http::uri::PathAndQuery::from_static(CALL_PATH),
            tonic::codec::ProstCodec::default(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(wire::code_from_wire(resp.code), ErrorCode::BadRequest);
    assert!(
        resp.message
            .contains("cannot decode RPC call \"job_register\""),
        "{}",
        resp.message
    );
    token.cancel();
}

#[tokio::test]
async fn operator_calls_and_binary_snapshots_cross_the_wire() {
    let (_fake, addr, token) = start().await;
    let remote = RemoteRpc::new(vec![addr], "global".into());
    let config = remote.raft_configuration("eu").await.unwrap();
    assert_eq!(config.servers[0].node, "s1.eu");
    remote
        .raft_remove_peer("eu", PeerRef::Id("1".into()))
        .await
        .unwrap();
    let err = remote
        .raft_remove_peer("eu", PeerRef::Address("x:1".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    let bytes = remote.snapshot_save("eu").await.unwrap();
    assert_eq!(bytes, (0..=255u8).collect::<Vec<_>>());
    assert_eq!(remote.snapshot_restore("eu", bytes).await.unwrap(), 256);
    assert_eq!(
        remote.alloc_stop("a1").await.unwrap(),
        AllocStopResponse {
            eval_id: "eval-for-a1".into(),
            index: 7
        }
    );
    let q = QueryOptions {
        min_index: 1,
        ..Default::default()
    };
    let got = remote.scheduler_get_config(&q).await.unwrap();
    assert!(got.value.spread_algorithm());
    assert_eq!((got.value.modify_index, got.meta.index), (9, 10));
    let spread = SchedulerConfiguration {
        scheduler_algorithm: "spread".into(),
        ..Default::default()
    };
    let set = remote
        .scheduler_set_config("eu", spread.clone(), None)
        .await
        .unwrap();
    assert_eq!((set.updated, set.index), (true, 10));
    let set = remote
        .scheduler_set_config("eu", spread, Some(1))
        .await
        .unwrap();
    assert!(!set.updated, "the check-and-set index crossed the wire");
    let drain = remote
        .node_update_drain(
            "n1",
            NodeDrainRequest {
                drain_spec: Some(DrainSpec {
                    deadline: 7,
                    ignore_system_jobs: true,
                }),
                mark_eligible: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            drain.eval_ids,
            drain.eval_create_index,
            drain.node_modify_index
        ),
        (vec!["n1".to_string()], 7, 1),
        "the drain request and its answer crossed the wire"
    );
    token.cancel();
}

fn blocking_allocs(
    remote: &Arc<RemoteRpc>,
) -> tokio::task::JoinHandle<QueryResponse<Vec<Allocation>>> {
    let remote = remote.clone();
    tokio::spawn(async move {
        let q = QueryOptions {
            min_index: 1,
            wait: Some(Duration::from_secs(30)),
            ..Default::default()
        };
        remote.node_client_allocs("n1", &q).await.unwrap()
    })
}

#[tokio::test]
async fn concurrent_calls_share_the_stream_and_a_blocking_one_delays_none() {
    let (fake, addr, token) = start().await;
    let remote = Arc::new(RemoteRpc::new(vec![addr], "global".into()));
    let waiter = blocking_allocs(&remote);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Many writes in flight at once on the same connection, each answered with its own result
    // while the blocking query is still waiting in front of them.
    let writes: Vec<_> = (0..200usize)
        .map(|i| {
            let remote = remote.clone();
            tokio::spawn(async move {
                let n = i % 5 + 1;
                (
                    n,
                    remote
                        .alloc_client_update(vec![AllocClientUpdate::default(); n])
                        .await,
                )
            })
        })
        .collect();
    for w in writes {
        let (n, got) = w.await.unwrap();
        assert_eq!(got.unwrap(), n as u64, "each call gets its own answer");
    }
    assert!(!waiter.is_finished(), "the blocking query is still waiting");
    fake.index.send_replace(5);
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.meta.index, 5);
    token.cancel();
}

#[tokio::test]
async fn a_server_shutting_down_ends_its_streams_and_callers_fail_over() {
    let fake_a = fake();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = listener.local_addr().unwrap().to_string();
    let token_a = CancellationToken::new();
    let server_a = tokio::spawn(serve(fake_a, None, listener, token_a.clone()));
    let (fake_b, b, token_b) = start().await;
    let remote = Arc::new(RemoteRpc::new(vec![a, b], "global".into()));
    assert_eq!(remote.regions().await.unwrap(), vec!["global".to_string()]);
    // A blocking query waits on A's stream; A shuts down.
    let waiter = blocking_allocs(&remote);
    tokio::time::sleep(Duration::from_millis(50)).await;
    token_a.cancel();
    // A's graceful shutdown does not wait for the caller to close its stream.
    tokio::time::timeout(Duration::from_secs(10), server_a)
        .await
        .expect("server A shut down while a client held its call stream open")
        .unwrap()
        .unwrap();
    // The query moved to B, and B answers it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    fake_b.index.send_replace(9);
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.meta.index, 9);
    assert_eq!(remote.regions().await.unwrap(), vec!["global".to_string()]);
    token_b.cancel();
}

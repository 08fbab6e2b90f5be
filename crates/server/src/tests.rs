//! End-to-end tests of the server's pieces together: endpoints, broker, workers, applier,
//! heartbeats, blocked evaluations.

use crate::{ServerConfig, ServerHandle};
use rpc::{QueryOptions, Rpc};
use std::time::Duration;
use structs::{mock, Constraint, JobRegisterRequest};
use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;

async fn start(cfg: impl FnOnce(&mut ServerConfig)) -> (ServerHandle, CancellationToken) {
    let mut config = ServerConfig {
        num_schedulers: 2,
        ..Default::default()
    };
    cfg(&mut config);
    let token = CancellationToken::new();
    let server = ServerHandle::start(config, token.clone()).await.unwrap();
    (server, token)
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn register(job: structs::Job) -> JobRegisterRequest {
    JobRegisterRequest {
        job: Some(job),
        ..Default::default()
    }
}

async fn live_allocs(rpc: &dyn Rpc, job: &str) -> usize {
    rpc.job_allocations(job, false, &QueryOptions::default())
        .await
        .map(|r| r.value.iter().filter(|a| a.desired_status == "run").count())
        .unwrap_or(0)
}

#[tokio::test]
async fn register_places_and_stop_stops() {
    let (server, token) = start(|_| {}).await;
    let rpc = server.rpc();
    rpc.node_register(mock::node("n1")).await.unwrap();
    let resp = rpc
        .job_register(register(mock::job("web", 3)))
        .await
        .unwrap();
    assert!(!resp.eval_id.is_empty());
    eventually("3 allocations", || async {
        live_allocs(rpc.as_ref(), "web").await == 3
    })
    .await;
    eventually("eval complete", || async {
        rpc.eval_get(&resp.eval_id, &QueryOptions::default())
            .await
            .is_ok_and(|e| e.value.status == "complete")
    })
    .await;
    // Scale down to 1.
    rpc.job_register(register(mock::job("web", 1)))
        .await
        .unwrap();
    eventually("1 allocation", || async {
        live_allocs(rpc.as_ref(), "web").await == 1
    })
    .await;
    // Stop.
    rpc.job_deregister("default", "web", false).await.unwrap();
    eventually("0 allocations", || async {
        live_allocs(rpc.as_ref(), "web").await == 0
    })
    .await;
    let job = rpc
        .job_get("web", &QueryOptions::default())
        .await
        .unwrap()
        .value;
    assert!(job.stop);
    token.cancel();
    server.join().await;
}

#[tokio::test]
async fn blocked_eval_places_when_a_matching_node_joins() {
    let (server, token) = start(|_| {}).await;
    let rpc = server.rpc();
    rpc.node_register(mock::node("n1")).await.unwrap();
    let mut job = mock::job("win", 1);
    job.constraints.push(Constraint {
        l_target: "${attr.kernel.name}".into(),
        operand: "=".into(),
        r_target: "windows".into(),
    });
    let resp = rpc.job_register(register(job)).await.unwrap();
    eventually("blocked eval", || async {
        rpc.eval_get(&resp.eval_id, &QueryOptions::default())
            .await
            .is_ok_and(|e| {
                !e.value.blocked_eval.is_empty() && e.value.failed_tg_allocs.contains_key("web")
            })
    })
    .await;
    let summary = rpc
        .job_summary("win", &QueryOptions::default())
        .await
        .unwrap()
        .value;
    assert_eq!(summary.summary["web"].queued, 1);
    let mut node = mock::node("n2");
    node.attributes
        .insert("kernel.name".into(), "windows".into());
    rpc.node_register(node).await.unwrap();
    eventually("placed on n2", || async {
        rpc.job_allocations("win", false, &QueryOptions::default())
            .await
            .is_ok_and(|r| r.value.iter().any(|a| a.node_id == "n2"))
    })
    .await;
    token.cancel();
    server.join().await;
}

#[tokio::test]
async fn missed_heartbeat_marks_node_down_and_replaces_allocs() {
    let (server, token) = start(|c| {
        c.min_heartbeat_ttl = Duration::from_millis(200);
        c.heartbeat_grace = Duration::from_millis(100);
    })
    .await;
    let rpc = server.rpc();
    rpc.node_register(mock::node("n1")).await.unwrap();
    rpc.job_register(register(mock::job("web", 1)))
        .await
        .unwrap();
    eventually("placed", || async {
        live_allocs(rpc.as_ref(), "web").await == 1
    })
    .await;
    // n2 keeps heartbeating; n1 goes silent.
    rpc.node_register(mock::node("n2")).await.unwrap();
    let hb = {
        let rpc = rpc.clone();
        tokio::spawn(async move {
            loop {
                let _ = rpc.node_heartbeat("n2").await;
                sleep(Duration::from_millis(50)).await;
            }
        })
    };
    eventually("n1 down", || async {
        rpc.node_get("n1", &QueryOptions::default())
            .await
            .is_ok_and(|n| n.value.status == "down")
    })
    .await;
    eventually("replacement on n2", || async {
        let allocs = rpc
            .job_allocations("web", false, &QueryOptions::default())
            .await
            .unwrap()
            .value;
        allocs
            .iter()
            .any(|a| a.node_id == "n1" && a.client_status == "lost")
            && allocs
                .iter()
                .any(|a| a.node_id == "n2" && a.desired_status == "run")
    })
    .await;
    hb.abort();
    token.cancel();
    server.join().await;
}

#[tokio::test]
async fn check_index_conflicts_and_blocking_queries_wake() {
    let (server, token) = start(|_| {}).await;
    let rpc = server.rpc();
    let first = rpc
        .job_register(register(mock::job("web", 0)))
        .await
        .unwrap();
    let mut req = register(mock::job("web", 0));
    req.enforce_index = true;
    req.job_modify_index = first.job_modify_index + 100;
    let err = rpc.job_register(req).await.unwrap_err();
    assert_eq!(err.code, rpc::ErrorCode::Conflict);
    assert!(err.message.contains("conflicting job modify index"));

    // Let the first job's evaluation settle so the only later change is the next register.
    eventually("first eval complete", || async {
        rpc.eval_get(&first.eval_id, &QueryOptions::default())
            .await
            .is_ok_and(|e| e.value.status == "complete")
    })
    .await;
    let before = rpc
        .job_list(&QueryOptions::default())
        .await
        .unwrap()
        .meta
        .index;
    let waiter = {
        let rpc = rpc.clone();
        tokio::spawn(async move {
            let q = QueryOptions {
                min_index: before,
                wait: Some(Duration::from_secs(30)),
                ..Default::default()
            };
            rpc.job_list(&q).await.unwrap()
        })
    };
    sleep(Duration::from_millis(50)).await;
    rpc.job_register(register(mock::job("other", 0)))
        .await
        .unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(woke.meta.index > before);
    assert_eq!(woke.value.len(), 2);
    let err = rpc
        .job_list(&QueryOptions {
            region: "mars".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, rpc::ErrorCode::NoRegionPath);
    token.cancel();
    server.join().await;
}

#[tokio::test]
async fn plan_reports_diff_and_placements_without_changing_state() {
    let (server, token) = start(|_| {}).await;
    let rpc = server.rpc();
    rpc.node_register(mock::node("n1")).await.unwrap();
    let plan = rpc
        .job_plan(structs::JobPlanRequest {
            job: Some(mock::job("web", 2)),
            diff: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(plan.annotations.desired_tg_updates["web"].place, 2);
    assert_eq!(plan.diff.unwrap().diff_type, "Added");
    assert_eq!(plan.job_modify_index, 0);
    assert!(rpc.job_get("web", &QueryOptions::default()).await.is_err());
    token.cancel();
    server.join().await;
}

#[tokio::test]
async fn a_drain_moves_service_allocations_and_waits_for_batch_ones() {
    let (server, token) = start(|_| {}).await;
    let rpc = server.rpc();
    rpc.node_register(mock::node("n1")).await.unwrap();
    rpc.node_register(mock::node("n2")).await.unwrap();
    rpc.node_update_eligibility("n2", "ineligible")
        .await
        .unwrap();
    rpc.job_register(register(mock::job("web", 2)))
        .await
        .unwrap();
    let mut batch = mock::job("report", 1);
    batch.job_type = structs::JOB_TYPE_BATCH.into();
    rpc.job_register(register(batch)).await.unwrap();
    let on = |node: &'static str| {
        let rpc = rpc.clone();
        async move {
            rpc.node_allocations(node, &QueryOptions::default())
                .await
                .map(|r| {
                    r.value
                        .iter()
                        .filter(|a| a.desired_status == "run")
                        .map(|a| a.job_id.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        }
    };
    eventually("three allocations on n1", || async {
        on("n1").await.len() == 3
    })
    .await;
    rpc.node_update_eligibility("n2", "eligible").await.unwrap();
    let drain = rpc::NodeDrainRequest {
        drain_spec: Some(structs::DrainSpec::default()),
        ..Default::default()
    };
    rpc.node_update_drain("n1", drain).await.unwrap();
    eventually("web moved to n2", || async {
        on("n2").await == ["web", "web"] && on("n1").await == ["report"]
    })
    .await;
    // The batch allocation waits (no deadline): the drain goes on, and the node cannot be
    // made eligible under it.
    let node = rpc.node_get("n1", &QueryOptions::default()).await.unwrap();
    assert!(node.value.draining());
    let err = rpc
        .node_update_eligibility("n1", "eligible")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("while it is draining"), "{err}");
    let cancel = rpc::NodeDrainRequest {
        mark_eligible: true,
        ..Default::default()
    };
    rpc.node_update_drain("n1", cancel).await.unwrap();
    let node = rpc
        .node_get("n1", &QueryOptions::default())
        .await
        .unwrap()
        .value;
    assert!(!node.draining());
    assert_eq!(node.scheduling_eligibility, "eligible");
    assert_eq!(node.last_drain.unwrap().status, "canceled");
    assert_eq!(on("n1").await, ["report"], "the batch allocation stayed");
    token.cancel();
    server.join().await;
}

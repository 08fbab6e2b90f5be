//! Client tests against an in-memory fake of the servers.

use crate::{Client, ClientConfig};
use async_trait::async_trait;
use rpc::{
    AllocClientUpdate, NodeUpdateResponse, QueryMeta, QueryOptions, QueryResponse, Rpc, RpcError,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use structs::*;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The fake servers: a node, allocations placed on it, and the reports received.
#[derive(Default)]
struct FakeState {
    node: Option<Node>,
    allocs: BTreeMap<String, Allocation>,
    reports: BTreeMap<String, AllocClientUpdate>,
}

struct Fake {
    state: Mutex<FakeState>,
    index: watch::Sender<u64>,
}

impl Fake {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(FakeState::default()),
            index: watch::channel(1).0,
        })
    }
    fn place(&self, alloc: Allocation) {
        self.state
            .lock()
            .unwrap()
            .allocs
            .insert(alloc.id.clone(), alloc);
        self.index.send_modify(|i| *i += 1);
    }
    fn stop(&self, id: &str) {
        if let Some(a) = self.state.lock().unwrap().allocs.get_mut(id) {
            a.desired_status = "stop".into();
        }
        self.index.send_modify(|i| *i += 1);
    }
    fn report(&self, id: &str) -> Option<AllocClientUpdate> {
        self.state.lock().unwrap().reports.get(id).cloned()
    }
    fn node_id(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .node
            .as_ref()
            .map(|n| n.id.clone())
    }
}

fn nope<T>() -> Result<T, RpcError> {
    Err(RpcError::internal("not in the fake"))
}

#[async_trait]
impl Rpc for Fake {
    async fn job_register(&self, _: JobRegisterRequest) -> Result<JobRegisterResponse, RpcError> {
        nope()
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
    async fn job_get(&self, _: &str, _: &QueryOptions) -> Result<QueryResponse<Job>, RpcError> {
        nope()
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
        nope()
    }
    async fn status_peers(&self, _: &str) -> Result<Vec<String>, RpcError> {
        nope()
    }
    async fn regions(&self) -> Result<Vec<String>, RpcError> {
        nope()
    }
    async fn node_register(&self, node: Node) -> Result<NodeUpdateResponse, RpcError> {
        self.state.lock().unwrap().node = Some(node);
        Ok(NodeUpdateResponse {
            heartbeat_ttl: Duration::from_secs(10),
            index: 1,
        })
    }
    async fn node_heartbeat(&self, _: &str) -> Result<NodeUpdateResponse, RpcError> {
        Ok(NodeUpdateResponse {
            heartbeat_ttl: Duration::from_secs(10),
            index: 1,
        })
    }
    async fn node_client_allocs(
        &self,
        _: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        let mut rx = self.index.subscribe();
        while *rx.borrow_and_update() <= q.min_index {
            if tokio::time::timeout(Duration::from_secs(5), rx.changed())
                .await
                .is_err()
            {
                break;
            }
        }
        let index = *self.index.borrow();
        let allocs = self
            .state
            .lock()
            .unwrap()
            .allocs
            .values()
            .cloned()
            .collect();
        Ok(QueryResponse {
            value: allocs,
            meta: QueryMeta {
                index,
                known_leader: true,
                last_contact_ms: 0,
            },
        })
    }
    async fn alloc_client_update(&self, updates: Vec<AllocClientUpdate>) -> Result<u64, RpcError> {
        let mut s = self.state.lock().unwrap();
        for u in updates {
            s.reports.insert(u.alloc_id.clone(), u);
        }
        Ok(1)
    }
}

async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn alloc(id: &str, job_type: &str, command: &str, restart: Option<RestartPolicy>) -> Allocation {
    let mut job = mock::job("j", 1);
    job.job_type = job_type.into();
    let group = &mut job.task_groups[0];
    group.restart_policy = restart.or(group.restart_policy.take());
    let task = &mut group.tasks[0];
    task.driver = "raw_exec".into();
    task.kill_timeout = 2_000_000_000;
    task.env
        .insert("GREETING".into(), "hi from ${NOMAD_JOB_NAME}".into());
    task.config = serde_json::json!({"command": "/bin/sh", "args": ["-c", command]})
        .as_object()
        .cloned()
        .unwrap();
    Allocation {
        id: id.into(),
        namespace: "default".into(),
        name: "j.web[0]".into(),
        job_id: "j".into(),
        task_group: "web".into(),
        desired_status: "run".into(),
        client_status: "pending".into(),
        job: Some(Arc::new(job)),
        ..Default::default()
    }
}

async fn start(fake: Arc<Fake>) -> (crate::ClientHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = ClientConfig {
        data_dir: dir.path().to_path_buf(),
        options: [("driver.raw_exec.enable".to_string(), "1".to_string())].into(),
        ..Default::default()
    };
    let handle = Client::start(config, fake, CancellationToken::new())
        .await
        .unwrap();
    (handle, dir)
}

#[tokio::test]
async fn batch_task_runs_with_nomad_env_and_completes() {
    let fake = Fake::new();
    let (client, dir) = start(fake.clone()).await;
    assert_eq!(fake.node_id().as_deref(), Some(client.node_id()));
    fake.place(alloc(
        "a1",
        "batch",
        "echo $GREETING $NOMAD_ALLOC_INDEX $NOMAD_TASK_NAME; pwd",
        None,
    ));
    let done = eventually("complete", || {
        fake.report("a1").filter(|r| r.client_status == "complete")
    })
    .await;
    let events: Vec<&str> = done.task_states["web"]
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        events,
        vec!["Received", "Task Setup", "Started", "Terminated"]
    );
    let log = dir.path().join("alloc/a1/alloc/logs/web.stdout.0");
    let text = eventually("log", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.lines().count() == 2)
    })
    .await;
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("hi from j 0 web"));
    assert!(lines.next().unwrap().ends_with("alloc/a1/web"));
    assert!(dir.path().join("alloc/a1/web/secrets").is_dir());
    assert!(dir.path().join("alloc/a1/alloc/data").is_dir());
    client.shutdown().await;
}

#[tokio::test]
async fn failing_task_restarts_then_fails() {
    let fake = Fake::new();
    let (client, _dir) = start(fake.clone()).await;
    let policy = RestartPolicy {
        attempts: 2,
        interval: 60_000_000_000,
        delay: 10_000_000,
        mode: "fail".into(),
        render_templates: false,
    };
    fake.place(alloc("a2", "batch", "exit 3", Some(policy)));
    let failed = eventually("failed", || {
        fake.report("a2").filter(|r| r.client_status == "failed")
    })
    .await;
    let state = &failed.task_states["web"];
    assert_eq!(state.restarts, 2);
    assert!(state.failed);
    let last = state.events.last().unwrap();
    assert_eq!(last.event_type, "Not Restarting");
    assert!(state
        .events
        .iter()
        .any(|e| e.event_type == "Terminated" && e.display_message == "Exit Code: 3"));
    client.shutdown().await;
}

#[tokio::test]
async fn stopping_an_allocation_kills_its_process_group() {
    let fake = Fake::new();
    let (client, dir) = start(fake.clone()).await;
    fake.place(alloc(
        "a3",
        "service",
        "sleep 300 & echo $! > $NOMAD_TASK_DIR/child; wait",
        None,
    ));
    eventually("running", || {
        fake.report("a3").filter(|r| r.client_status == "running")
    })
    .await;
    let pid_file = dir.path().join("alloc/a3/web/local/child");
    let child: i32 = eventually("child pid", || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    })
    .await;
    fake.stop("a3");
    let done = eventually("complete", || {
        fake.report("a3").filter(|r| r.client_status == "complete")
    })
    .await;
    let types: Vec<&str> = done.task_states["web"]
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert!(types.ends_with(&["Killing", "Killed"]), "{types:?}");
    let alive = |pid: i32| {
        // SAFETY: signal 0 only checks whether the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    };
    eventually("grandchild gone", || (!alive(child)).then_some(())).await;
    client.shutdown().await;
}

#[tokio::test]
async fn missing_driver_fails_the_task() {
    let fake = Fake::new();
    let (client, _dir) = start(fake.clone()).await;
    let mut a = alloc("a4", "batch", "true", None);
    let mut job = (**a.job.as_ref().unwrap()).clone();
    job.task_groups[0].tasks[0].driver = "docker".into();
    a.job = Some(Arc::new(job));
    fake.place(a);
    let failed = eventually("failed", || {
        fake.report("a4").filter(|r| r.client_status == "failed")
    })
    .await;
    assert_eq!(
        failed.task_states["web"].events.last().unwrap().event_type,
        "Driver Failure"
    );
    client.shutdown().await;
}

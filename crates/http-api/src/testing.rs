//! Test support: an in-memory `Rpc`, an in-memory `ClientFs`, and helpers that drive the router
//! with `tower::ServiceExt::oneshot`.

use crate::{router, AgentInfo};
use async_trait::async_trait;
use axum::body::{to_bytes, Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use rpc::{
    AllocClientUpdate, ClientFs, NodeUpdateResponse, QueryMeta, QueryOptions, QueryResponse, Rpc,
    RpcError,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use structs::{
    AllocListStub, Allocation, Evaluation, Job, JobDeregisterResponse, JobListStub, JobPlanRequest,
    JobPlanResponse, JobRegisterRequest, JobRegisterResponse, JobSummary, Node, NodeListStub,
};
use tower::ServiceExt;

/// The index every fake read reports.
pub(crate) const INDEX: u64 = 42;

/// Servers kept in memory; records the calls the API makes.
#[derive(Default)]
pub(crate) struct FakeRpc {
    pub(crate) jobs: Mutex<BTreeMap<String, Job>>,
    pub(crate) allocs: Mutex<BTreeMap<String, Allocation>>,
    pub(crate) nodes: Mutex<BTreeMap<String, Node>>,
    pub(crate) evals: Mutex<BTreeMap<String, Evaluation>>,
    /// Every registration received.
    pub(crate) registered: Mutex<Vec<JobRegisterRequest>>,
    /// Every deregistration received: (namespace, job, purge).
    pub(crate) deregistered: Mutex<Vec<(String, String, bool)>>,
    /// The options of the last read.
    pub(crate) last_query: Mutex<Option<QueryOptions>>,
    /// The region of the last status call.
    pub(crate) last_region: Mutex<String>,
    /// When set, status calls fail with this error.
    pub(crate) status_error: Mutex<Option<RpcError>>,
    /// Peers removed through the operator API.
    pub(crate) removed_peers: Mutex<Vec<rpc::PeerRef>>,
    /// Snapshots restored through the operator API.
    pub(crate) restored: Mutex<Vec<Vec<u8>>>,
    /// The scheduler configuration the operator API reads and sets.
    pub(crate) scheduler: Mutex<structs::SchedulerConfiguration>,
    /// Allocations stopped through `alloc stop`.
    pub(crate) stopped: Mutex<Vec<String>>,
}

impl FakeRpc {
    fn read<T>(&self, q: &QueryOptions, value: T) -> Result<QueryResponse<T>, RpcError> {
        *self.last_query.lock().unwrap() = Some(q.clone());
        Ok(QueryResponse {
            value,
            meta: QueryMeta {
                index: INDEX,
                known_leader: true,
                last_contact_ms: 3,
            },
        })
    }

    fn status(&self, region: &str) -> Result<(), RpcError> {
        *self.last_region.lock().unwrap() = region.to_string();
        match self.status_error.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn get<T: Clone>(map: &Mutex<BTreeMap<String, T>>, id: &str, what: &str) -> Result<T, RpcError> {
    map.lock()
        .unwrap()
        .get(id)
        .cloned()
        .ok_or_else(|| RpcError::not_found(format!("{what} {id} does not exist")))
}

#[async_trait]
impl Rpc for FakeRpc {
    async fn job_register(&self, req: JobRegisterRequest) -> Result<JobRegisterResponse, RpcError> {
        let job = req.job.clone().unwrap();
        self.jobs.lock().unwrap().insert(job.id.clone(), job);
        self.registered.lock().unwrap().push(req);
        Ok(JobRegisterResponse {
            eval_id: "eval-1".into(),
            eval_create_index: 7,
            job_modify_index: 7,
            index: 7,
            known_leader: true,
            ..Default::default()
        })
    }
    async fn job_deregister(
        &self,
        namespace: &str,
        job_id: &str,
        purge: bool,
    ) -> Result<JobDeregisterResponse, RpcError> {
        get(&self.jobs, job_id, "job")?;
        self.deregistered
            .lock()
            .unwrap()
            .push((namespace.into(), job_id.into(), purge));
        Ok(JobDeregisterResponse {
            eval_id: "eval-2".into(),
            eval_create_index: 8,
            job_modify_index: 8,
            index: 8,
        })
    }
    async fn job_plan(&self, req: JobPlanRequest) -> Result<JobPlanResponse, RpcError> {
        let job = req.job.unwrap();
        let mut resp = JobPlanResponse {
            job_modify_index: 5,
            ..Default::default()
        };
        for g in &job.task_groups {
            resp.annotations.desired_tg_updates.insert(
                g.name.clone(),
                structs::DesiredUpdates {
                    place: g.count as u64,
                    ..Default::default()
                },
            );
        }
        Ok(resp)
    }
    async fn job_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<JobListStub>>, RpcError> {
        let stubs = self
            .jobs
            .lock()
            .unwrap()
            .values()
            .filter(|j| j.id.starts_with(&q.prefix))
            .map(|j| JobListStub::new(j, None))
            .collect();
        self.read(q, stubs)
    }
    async fn job_get(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Job>, RpcError> {
        let job = get(&self.jobs, job_id, "job")?;
        self.read(q, job)
    }
    async fn job_versions(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Job>>, RpcError> {
        let job = get(&self.jobs, job_id, "job")?;
        let mut older = job.clone();
        older.version = job.version.saturating_sub(1);
        self.read(q, vec![job, older])
    }
    async fn job_allocations(
        &self,
        job_id: &str,
        _all: bool,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        let stubs = self
            .allocs
            .lock()
            .unwrap()
            .values()
            .filter(|a| a.job_id == job_id)
            .map(AllocListStub::from)
            .collect();
        self.read(q, stubs)
    }
    async fn job_evaluations(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        let evals = self
            .evals
            .lock()
            .unwrap()
            .values()
            .filter(|e| e.job_id == job_id)
            .cloned()
            .collect();
        self.read(q, evals)
    }
    async fn job_summary(
        &self,
        job_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<JobSummary>, RpcError> {
        let job = get(&self.jobs, job_id, "job")?;
        let summary = JobSummary {
            job_id: job.id.clone(),
            namespace: job.namespace.clone(),
            ..Default::default()
        };
        self.read(q, summary)
    }
    async fn alloc_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
        let stubs = self
            .allocs
            .lock()
            .unwrap()
            .values()
            .filter(|a| a.id.starts_with(&q.prefix))
            .map(AllocListStub::from)
            .collect();
        self.read(q, stubs)
    }
    async fn alloc_get(
        &self,
        alloc_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Allocation>, RpcError> {
        let alloc = get(&self.allocs, alloc_id, "alloc")?;
        self.read(q, alloc)
    }
    async fn node_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<NodeListStub>>, RpcError> {
        let stubs = self
            .nodes
            .lock()
            .unwrap()
            .values()
            .filter(|n| n.id.starts_with(&q.prefix))
            .map(NodeListStub::from)
            .collect();
        self.read(q, stubs)
    }
    async fn node_get(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Node>, RpcError> {
        let node = get(&self.nodes, node_id, "node")?;
        self.read(q, node)
    }
    async fn node_allocations(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        let allocs = self
            .allocs
            .lock()
            .unwrap()
            .values()
            .filter(|a| a.node_id == node_id)
            .cloned()
            .collect();
        self.read(q, allocs)
    }
    async fn eval_list(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
        let evals = self
            .evals
            .lock()
            .unwrap()
            .values()
            .filter(|e| e.id.starts_with(&q.prefix))
            .cloned()
            .collect();
        self.read(q, evals)
    }
    async fn eval_get(
        &self,
        eval_id: &str,
        q: &QueryOptions,
    ) -> Result<QueryResponse<Evaluation>, RpcError> {
        let eval = get(&self.evals, eval_id, "eval")?;
        self.read(q, eval)
    }
    async fn status_leader(&self, region: &str) -> Result<String, RpcError> {
        self.status(region)?;
        Ok("127.0.0.1:4647".into())
    }
    async fn status_peers(&self, region: &str) -> Result<Vec<String>, RpcError> {
        self.status(region)?;
        Ok(vec!["127.0.0.1:4647".into()])
    }
    async fn regions(&self) -> Result<Vec<String>, RpcError> {
        Ok(vec!["us".into(), "global".into(), "us".into()])
    }
    async fn region_members(&self, region: &str) -> Result<Vec<rpc::ServerMember>, RpcError> {
        self.status(region)?;
        Ok(["s1", "s2"]
            .iter()
            .enumerate()
            .map(|(i, name)| rpc::ServerMember {
                name: name.to_string(),
                id: format!("{}", i + 1),
                rpc_addr: format!("127.0.0.{}:4647", i + 1),
                serf_port: 4648,
                status: if i == 0 { "alive" } else { "failed" }.into(),
                leader: i == 0,
                build: structs::VERSION.into(),
                datacenter: "dc1".into(),
                region: region.to_string(),
                bootstrap_expect: 3,
            })
            .collect())
    }
    async fn raft_configuration(&self, region: &str) -> Result<rpc::RaftConfiguration, RpcError> {
        self.status(region)?;
        Ok(rpc::RaftConfiguration {
            index: INDEX,
            servers: vec![rpc::RaftServer {
                id: "11".into(),
                node: format!("s1.{region}"),
                address: "127.0.0.1:4647".into(),
                leader: true,
                voter: true,
                raft_protocol: "3".into(),
            }],
        })
    }
    async fn raft_remove_peer(&self, region: &str, peer: rpc::PeerRef) -> Result<(), RpcError> {
        self.status(region)?;
        self.removed_peers.lock().unwrap().push(peer);
        Ok(())
    }
    async fn snapshot_save(&self, region: &str) -> Result<Vec<u8>, RpcError> {
        self.status(region)?;
        Ok(b"CRVNSNP1 fake".to_vec())
    }
    async fn snapshot_restore(&self, region: &str, snapshot: Vec<u8>) -> Result<u64, RpcError> {
        self.status(region)?;
        self.restored.lock().unwrap().push(snapshot);
        Ok(INDEX + 1)
    }
    async fn alloc_stop(&self, alloc_id: &str) -> Result<rpc::AllocStopResponse, RpcError> {
        if !self.allocs.lock().unwrap().contains_key(alloc_id) {
            return Err(RpcError::not_found("alloc not found"));
        }
        self.stopped.lock().unwrap().push(alloc_id.to_string());
        Ok(rpc::AllocStopResponse {
            eval_id: format!("eval-stop-{alloc_id}"),
            index: INDEX + 2,
        })
    }
    async fn node_update_eligibility(
        &self,
        node_id: &str,
        eligibility: &str,
    ) -> Result<u64, RpcError> {
        let mut nodes = self.nodes.lock().unwrap();
        let node = nodes
            .get_mut(node_id)
            .ok_or_else(|| RpcError::not_found(format!("node {node_id:?} not found")))?;
        node.scheduling_eligibility = eligibility.to_string();
        Ok(INDEX + 1)
    }
    async fn node_update_drain(
        &self,
        node_id: &str,
        req: rpc::NodeDrainRequest,
    ) -> Result<rpc::NodeDrainResponse, RpcError> {
        let mut nodes = self.nodes.lock().unwrap();
        let node = nodes
            .get_mut(node_id)
            .ok_or_else(|| RpcError::not_found(format!("node {node_id:?} not found")))?;
        node.drain_strategy = req
            .drain_spec
            .map(|spec| structs::DrainStrategy::new(spec, 1));
        node.drain = node.drain_strategy.is_some();
        if node.drain {
            node.scheduling_eligibility = "ineligible".into();
            node.last_drain = Some(structs::DrainMetadata {
                meta: req.meta,
                ..Default::default()
            });
        } else if req.mark_eligible {
            node.scheduling_eligibility = "eligible".into();
        }
        Ok(rpc::NodeDrainResponse {
            node_modify_index: INDEX + 1,
            ..Default::default()
        })
    }
    async fn scheduler_get_config(
        &self,
        q: &QueryOptions,
    ) -> Result<QueryResponse<structs::SchedulerConfiguration>, RpcError> {
        self.status(&q.region)?;
        let value = self.scheduler.lock().unwrap().clone();
        Ok(QueryResponse {
            meta: QueryMeta {
                index: value.modify_index,
                known_leader: true,
                ..Default::default()
            },
            value,
        })
    }
    async fn scheduler_set_config(
        &self,
        region: &str,
        mut config: structs::SchedulerConfiguration,
        cas: Option<u64>,
    ) -> Result<rpc::SchedulerSetConfigResponse, RpcError> {
        self.status(region)?;
        let mut current = self.scheduler.lock().unwrap();
        if cas.is_some_and(|c| c != current.modify_index) {
            return Ok(rpc::SchedulerSetConfigResponse {
                updated: false,
                index: current.modify_index,
            });
        }
        config.modify_index = current.modify_index + 1;
        *current = config;
        Ok(rpc::SchedulerSetConfigResponse {
            updated: true,
            index: current.modify_index,
        })
    }
    async fn node_register(&self, _node: Node) -> Result<NodeUpdateResponse, RpcError> {
        Err(RpcError::internal("not used by the HTTP API"))
    }
    async fn node_heartbeat(&self, _node_id: &str) -> Result<NodeUpdateResponse, RpcError> {
        Err(RpcError::internal("not used by the HTTP API"))
    }
    async fn node_client_allocs(
        &self,
        _node_id: &str,
        _q: &QueryOptions,
    ) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
        Err(RpcError::internal("not used by the HTTP API"))
    }
    async fn alloc_client_update(&self, _updates: Vec<AllocClientUpdate>) -> Result<u64, RpcError> {
        Err(RpcError::internal("not used by the HTTP API"))
    }
}

/// A task control call the fake client received: (alloc, task, the signal, or none for a
/// restart).
pub(crate) type ControlCall = (String, Option<String>, Option<String>);

/// A client agent whose allocation directories are given by the test.
#[derive(Default)]
pub(crate) struct FakeFs {
    pub(crate) dirs: Mutex<BTreeMap<String, PathBuf>>,
    /// Task control calls: (alloc, task, Some(signal) or None for a restart).
    pub(crate) controls: Mutex<Vec<ControlCall>>,
}

#[async_trait::async_trait]
impl ClientFs for FakeFs {
    fn alloc_dir(&self, alloc_id: &str) -> Option<PathBuf> {
        self.dirs.lock().unwrap().get(alloc_id).cloned()
    }

    async fn signal_tasks(
        &self,
        alloc_id: &str,
        task: Option<&str>,
        signal: &str,
    ) -> Result<(), rpc::TaskControlError> {
        if signal == "SIGNOPE" {
            return Err(rpc::TaskControlError::BadSignal(signal.into()));
        }
        self.record(alloc_id, task, Some(signal.to_string()))
    }

    async fn restart_tasks(
        &self,
        alloc_id: &str,
        task: Option<&str>,
    ) -> Result<(), rpc::TaskControlError> {
        self.record(alloc_id, task, None)
    }

    async fn alloc_stats(
        &self,
        alloc_id: &str,
    ) -> Result<structs::AllocResourceUsage, rpc::TaskControlError> {
        if !self.dirs.lock().unwrap().contains_key(alloc_id) {
            return Err(rpc::TaskControlError::UnknownAlloc(alloc_id.into()));
        }
        let mut u = structs::AllocResourceUsage::default();
        u.resource_usage.memory_stats.rss = 4096;
        u.tasks
            .insert("web".into(), structs::TaskResourceUsage::default());
        Ok(u)
    }
}

impl FakeFs {
    /// Records a control call for a known allocation; a task named `gone` does not run.
    fn record(
        &self,
        alloc_id: &str,
        task: Option<&str>,
        signal: Option<String>,
    ) -> Result<(), rpc::TaskControlError> {
        if !self.dirs.lock().unwrap().contains_key(alloc_id) {
            return Err(rpc::TaskControlError::UnknownAlloc(alloc_id.into()));
        }
        if task == Some("gone") {
            return Err(rpc::TaskControlError::NotRunning("gone".into()));
        }
        self.controls
            .lock()
            .unwrap()
            .push((alloc_id.into(), task.map(str::to_string), signal));
        Ok(())
    }
}

/// The router over the fakes, with the default agent.
pub(crate) fn app(rpc: &Arc<FakeRpc>, fs: Option<&Arc<FakeFs>>) -> Router {
    let fs = fs.map(|f| Arc::clone(f) as Arc<dyn ClientFs>);
    router(Arc::clone(rpc) as Arc<dyn Rpc>, fs, AgentInfo::default())
}

/// A response's status, headers and whole body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The body decoded as JSON into `T`.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not the expected JSON ({e}): {}", self.text()))
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text.
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("missing header {name}"))
            .to_str()
            .unwrap()
    }
}

/// Sends one request through the router and reads the whole response.
pub(crate) async fn call(app: &Router, method: Method, uri: &str, body: Option<&str>) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

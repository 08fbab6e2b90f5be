//! Job endpoints: register, deregister, plan, and reads.

use super::{has_prefix, namespace};
use crate::{now_ns, Shared};
use rpc::{QueryOptions, QueryResponse, RpcError};
use scheduler::{compute, diff::job_diff, SchedCtx};
use state::{Command, Table};
use std::sync::Arc;
use structs::{
    AllocListStub, Evaluation, Job, JobDeregisterResponse, JobListStub, JobPlanRequest,
    JobPlanResponse, JobRegisterRequest, JobRegisterResponse, JobSummary, TRIGGER_JOB_DEREGISTER,
    TRIGGER_JOB_REGISTER,
};

/// Canonicalizes and validates a submitted job; every problem is reported at once.
fn prepare(job: Option<Job>, shared: &Shared) -> Result<Job, RpcError> {
    let mut job = job.ok_or_else(|| RpcError::bad_request("Job must be specified"))?;
    structs::canonicalize::canonicalize(&mut job);
    if let Err(problems) = structs::validate::validate(&job) {
        let list: Vec<String> = problems.iter().map(|p| format!("* {p}")).collect();
        return Err(RpcError::bad_request(format!(
            "{} error(s) occurred:\n\n{}",
            problems.len(),
            list.join("\n")
        )));
    }
    shared.check_region(&job.region)?;
    Ok(job)
}

pub(super) async fn register(
    shared: &Shared,
    req: JobRegisterRequest,
) -> Result<JobRegisterResponse, RpcError> {
    if shared
        .log
        .snapshot()
        .scheduler_config()
        .reject_job_registration
    {
        return Err(RpcError::bad_request(
            "Job registration, dispatch, and scale are disabled by the scheduler configuration",
        ));
    }
    let job = prepare(req.job, shared)?;
    let now = now_ns();
    // Periodic and parameterized jobs are templates: they are not scheduled themselves.
    let eval = (job.periodic.is_none() && job.parameterized_job.is_none())
        .then(|| crate::job_eval(&job, TRIGGER_JOB_REGISTER, now));
    let (index, outcome) = shared
        .log
        .apply(Command::JobRegister {
            job: Box::new(job),
            eval: eval.clone().map(Box::new),
            enforce_index: req.enforce_index.then_some(req.job_modify_index),
            now,
        })
        .await?;
    if let Some(eval) = &eval {
        if let Some(stored) = shared.log.snapshot().eval_by_id(&eval.id) {
            shared.broker.enqueue((**stored).clone()).await;
        }
    }
    Ok(JobRegisterResponse {
        eval_id: eval.map(|e| e.id).unwrap_or_default(),
        eval_create_index: index,
        job_modify_index: outcome.job_modify_index,
        index,
        known_leader: true,
        ..Default::default()
    })
}

pub(super) async fn deregister(
    shared: &Shared,
    ns: &str,
    job_id: &str,
    purge: bool,
) -> Result<JobDeregisterResponse, RpcError> {
    let ns = if ns.is_empty() { "default" } else { ns };
    let snap = shared.log.snapshot();
    let job = snap
        .job_by_id(ns, job_id)
        .ok_or_else(|| RpcError::not_found("job not found"))?;
    let now = now_ns();
    let eval = crate::job_eval(job, TRIGGER_JOB_DEREGISTER, now);
    let (index, outcome) = shared
        .log
        .apply(Command::JobDeregister {
            namespace: ns.to_string(),
            job_id: job_id.to_string(),
            purge,
            eval: Some(Box::new(eval.clone())),
            now,
        })
        .await?;
    if let Some(stored) = shared.log.snapshot().eval_by_id(&eval.id) {
        shared.broker.enqueue((**stored).clone()).await;
    }
    Ok(JobDeregisterResponse {
        eval_id: eval.id,
        eval_create_index: index,
        job_modify_index: outcome.job_modify_index,
        index,
    })
}

/// Dry-runs the scheduler on a copy of the state with the new job version registered.
pub(super) fn plan(shared: &Shared, req: JobPlanRequest) -> Result<JobPlanResponse, RpcError> {
    let job = prepare(req.job, shared)?;
    let snap = shared.log.snapshot();
    let old = snap.job_by_id(&job.namespace, &job.id).cloned();
    let mut scratch = snap.clone();
    let now = now_ns();
    let index = scratch.latest_index() + 1;
    scratch
        .apply(
            index,
            Command::JobRegister {
                job: Box::new(job.clone()),
                eval: None,
                enforce_index: None,
                now,
            },
        )
        .map_err(|e| RpcError::internal(e.to_string()))?;
    let eval = crate::job_eval(&job, TRIGGER_JOB_REGISTER, now);
    let ctx = SchedCtx {
        now,
        seed: eval.id.clone(),
        // The scratch copy holds the same node table, so the workers' views serve it too.
        nodes: shared.node_cache.clone(),
    };
    let out = compute(&scratch, &eval, &ctx);
    let planned = scratch
        .job_by_id(&job.namespace, &job.id)
        .cloned()
        .unwrap_or_else(|| Arc::new(job.clone()));
    let diff = req
        .diff
        .then(|| job_diff(old.as_deref(), &planned, &out.annotations));
    Ok(JobPlanResponse {
        annotations: out.annotations,
        failed_tg_allocs: out.failed_tg_allocs,
        job_modify_index: old.map(|j| j.job_modify_index).unwrap_or(0),
        diff,
        ..Default::default()
    })
}

pub(super) async fn list(
    shared: &Shared,
    q: &QueryOptions,
) -> Result<QueryResponse<Vec<JobListStub>>, RpcError> {
    let ns = namespace(q).to_string();
    shared
        .blocking(q, |s| {
            let jobs = s
                .jobs()
                .filter(|j| (ns == "*" || j.namespace == ns) && has_prefix(&j.id, q))
                .map(|j| {
                    JobListStub::new(j, s.job_summary(&j.namespace, &j.id).map(|x| (**x).clone()))
                })
                .collect();
            Ok((jobs, s.index_of(&[Table::Jobs, Table::JobSummaries])))
        })
        .await
}

pub(super) async fn get(
    shared: &Shared,
    job_id: &str,
    q: &QueryOptions,
) -> Result<QueryResponse<Job>, RpcError> {
    shared
        .blocking(q, |s| {
            let job = s
                .job_by_id(namespace(q), job_id)
                .ok_or_else(|| RpcError::not_found("job not found"))?;
            Ok(((**job).clone(), s.index_of(&[Table::Jobs])))
        })
        .await
}

pub(super) async fn versions(
    shared: &Shared,
    job_id: &str,
    q: &QueryOptions,
) -> Result<QueryResponse<Vec<Job>>, RpcError> {
    shared
        .blocking(q, |s| {
            let versions = s.job_versions(namespace(q), job_id);
            if versions.is_empty() {
                return Err(RpcError::not_found("job versions not found"));
            }
            Ok((
                versions.iter().map(|j| (**j).clone()).collect(),
                s.index_of(&[Table::Jobs]),
            ))
        })
        .await
}

pub(super) async fn allocations(
    shared: &Shared,
    job_id: &str,
    all: bool,
    q: &QueryOptions,
) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
    shared
        .blocking(q, |s| {
            let current = s.job_by_id(namespace(q), job_id).map(|j| j.create_index);
            let allocs = s
                .allocs_by_job(namespace(q), job_id)
                .iter()
                .filter(|a| {
                    all || current.is_none() || a.job.as_ref().map(|j| j.create_index) == current
                })
                .map(|a| AllocListStub::from(a.as_ref()))
                .collect();
            Ok((allocs, s.index_of(&[Table::Allocs])))
        })
        .await
}

pub(super) async fn evaluations(
    shared: &Shared,
    job_id: &str,
    q: &QueryOptions,
) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
    shared
        .blocking(q, |s| {
            let mut evals: Vec<Evaluation> = s
                .evals_by_job(namespace(q), job_id)
                .iter()
                .map(|e| (**e).clone())
                .collect();
            evals.sort_by_key(|e| std::cmp::Reverse(e.create_index));
            Ok((evals, s.index_of(&[Table::Evals])))
        })
        .await
}

pub(super) async fn summary(
    shared: &Shared,
    job_id: &str,
    q: &QueryOptions,
) -> Result<QueryResponse<JobSummary>, RpcError> {
    shared
        .blocking(q, |s| {
            let sum = s
                .job_summary(namespace(q), job_id)
                .ok_or_else(|| RpcError::not_found("job not found"))?;
            Ok(((**sum).clone(), s.index_of(&[Table::JobSummaries])))
        })
        .await
}

//! Job endpoints: `/v1/jobs` and `/v1/job/:id[/...]` (register, read, stop, plan, sub-resources).

use crate::error::{multi_error, not_found_as, ApiError};
use crate::query::{json, json_query, JsonBody, Params};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use structs::{Job, JobPlanRequest, JobRegisterRequest, JobVersionsResponse};

/// `GET /v1/jobs` (`?prefix=`).
pub(crate) async fn list(State(s): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s.rpc.job_list(&q).await?;
    Ok(json_query(&p, &resp))
}

/// `PUT|POST /v1/jobs`: register a job.
pub(crate) async fn register(
    State(s): State<AppState>,
    p: Params,
    JsonBody(req): JsonBody<JobRegisterRequest>,
) -> Result<Response, ApiError> {
    register_job(&s, &p, None, req).await
}

/// `PUT|POST /v1/job/:id`: register a job whose ID must be `:id`.
pub(crate) async fn update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    JsonBody(req): JsonBody<JobRegisterRequest>,
) -> Result<Response, ApiError> {
    register_job(&s, &p, Some(&id), req).await
}

/// Checks and completes a submitted job, then registers it.
async fn register_job(
    s: &AppState,
    p: &Params,
    path_id: Option<&str>,
    mut req: JobRegisterRequest,
) -> Result<Response, ApiError> {
    let job = req
        .job
        .take()
        .ok_or_else(|| ApiError::bad_request("Job must be specified"))?;
    if path_id.is_some_and(|id| id != job.id) {
        return Err(ApiError::bad_request("Job ID does not match name"));
    }
    if req.eval_priority != 0 && !(1..=100).contains(&req.eval_priority) {
        return Err(ApiError::bad_request(
            "Eval priority must be between 1 and 100",
        ));
    }
    let job = checked_job(s, p, job)?;
    tracing::debug!(job_id = %job.id, region = %job.region, "registering job");
    req.job = Some(job);
    let resp = s.rpc.job_register(req).await?;
    Ok(json(p, &resp))
}

/// Fills in the request's region and namespace and Nomad's defaults, then validates the job,
/// answering 400 with every problem.
fn checked_job(s: &AppState, p: &Params, mut job: Job) -> Result<Job, ApiError> {
    complete_job(s, p, &mut job);
    structs::validate::validate(&job)
        .map_err(|problems| ApiError::bad_request(multi_error(&problems)))?;
    Ok(job)
}

/// Gives a job without region or namespace those of the request, then applies Nomad's defaults.
pub(crate) fn complete_job(s: &AppState, p: &Params, job: &mut Job) {
    if job.region.is_empty() {
        job.region = p.region(&s.agent);
    }
    if job.namespace.is_empty() {
        job.namespace = p.namespace();
    }
    structs::canonicalize::canonicalize(job);
}

/// `GET /v1/job/:id`.
pub(crate) async fn get_job(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s
        .rpc
        .job_get(&id, &q)
        .await
        .map_err(not_found_as("job not found"))?;
    Ok(json_query(&p, &resp))
}

/// `DELETE /v1/job/:id` (`?purge=true`).
pub(crate) async fn deregister(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let purge = p.bool_param("purge")?;
    let resp = s
        .rpc
        .job_deregister(&p.namespace(), &id, purge)
        .await
        .map_err(not_found_as("job not found"))?;
    Ok(json(&p, &resp))
}

/// `POST|PUT /v1/job/:id/plan`.
pub(crate) async fn plan(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    JsonBody(mut req): JsonBody<JobPlanRequest>,
) -> Result<Response, ApiError> {
    let job = req
        .job
        .take()
        .ok_or_else(|| ApiError::bad_request("Job must be specified"))?;
    if job.id != id {
        return Err(ApiError::bad_request("Job ID does not match"));
    }
    req.job = Some(checked_job(&s, &p, job)?);
    let resp = s.rpc.job_plan(req).await?;
    Ok(json(&p, &resp))
}

/// `GET /v1/job/:id/allocations` (`?all=true`).
pub(crate) async fn allocations(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let all = p.bool_param("all")?;
    let resp = s.rpc.job_allocations(&id, all, &q).await?;
    Ok(json_query(&p, &resp))
}

/// `GET /v1/job/:id/evaluations`.
pub(crate) async fn evaluations(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s.rpc.job_evaluations(&id, &q).await?;
    Ok(json_query(&p, &resp))
}

/// `GET /v1/job/:id/summary`.
pub(crate) async fn summary(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s
        .rpc
        .job_summary(&id, &q)
        .await
        .map_err(not_found_as("job not found"))?;
    Ok(json_query(&p, &resp))
}

/// `GET /v1/job/:id/versions`. `Diffs` stays empty: diffs between versions are not computed yet.
pub(crate) async fn versions(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s
        .rpc
        .job_versions(&id, &q)
        .await
        .map_err(not_found_as("job not found"))?;
    let body = rpc::QueryResponse {
        value: JobVersionsResponse {
            versions: resp.value,
            diffs: Vec::new(),
        },
        meta: resp.meta,
    };
    Ok(json_query(&p, &body))
}

#[cfg(test)]
mod tests {
    use crate::testing::{app, call, FakeRpc, INDEX};
    use axum::http::{Method, StatusCode};
    use serde_json::{json, Value};
    use std::sync::Arc;
    use structs::{
        AllocListStub, Allocation, Evaluation, Job, JobDeregisterResponse, JobListStub,
        JobPlanResponse, JobRegisterResponse, JobSummary, JobVersionsResponse,
    };

    fn with_jobs(ids: &[&str]) -> Arc<FakeRpc> {
        let rpc = Arc::new(FakeRpc::default());
        for id in ids {
            let job = structs::mock::job(id, 2);
            rpc.jobs.lock().unwrap().insert(id.to_string(), job);
        }
        rpc
    }

    fn register_body(job: &Job) -> String {
        json!({ "Job": job }).to_string()
    }

    #[tokio::test]
    async fn list_filters_by_prefix_and_sets_blocking_headers() {
        let rpc = with_jobs(&["api", "web", "worker"]);
        let r = call(
            &app(&rpc, None),
            Method::GET,
            "/v1/jobs?prefix=w&index=3&wait=30s",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("X-Nomad-Index"), INDEX.to_string());
        assert_eq!(r.header("X-Nomad-KnownLeader"), "true");
        assert_eq!(r.header("X-Nomad-LastContact"), "3");
        let raw: Value = r.json();
        assert_eq!(raw[0]["ID"], "web");
        assert!(raw[0].get("JobModifyIndex").is_some(), "{raw}");
        let stubs: Vec<JobListStub> = r.json();
        let ids: Vec<&str> = stubs.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["web", "worker"]);
        let q = rpc.last_query.lock().unwrap().clone().unwrap();
        assert_eq!(q.prefix, "w");
        assert_eq!(q.min_index, 3);
        assert_eq!(q.wait, Some(std::time::Duration::from_secs(30)));
        assert_eq!(q.region, "global");
    }

    #[tokio::test]
    async fn bad_wait_and_index_are_400() {
        let rpc = with_jobs(&["web"]);
        let r = call(
            &app(&rpc, None),
            Method::GET,
            "/v1/jobs?index=1&wait=forever",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.text(), "Invalid wait time");
        let r = call(&app(&rpc, None), Method::GET, "/v1/job/web?index=abc", None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.text(), "Invalid index");
    }

    #[tokio::test]
    async fn register_fills_region_and_namespace_and_answers_the_eval() {
        let rpc = Arc::new(FakeRpc::default());
        let mut job = structs::mock::job("web", 1);
        job.region.clear();
        job.namespace.clear();
        for method in [Method::PUT, Method::POST] {
            let r = call(
                &app(&rpc, None),
                method,
                "/v1/jobs?region=eu",
                Some(&register_body(&job)),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            let raw: Value = r.json();
            assert_eq!(raw["EvalID"], "eval-1");
            let resp: JobRegisterResponse = r.json();
            assert_eq!(resp.job_modify_index, 7);
        }
        let registered = rpc.registered.lock().unwrap();
        assert_eq!(registered.len(), 2);
        let sent = registered[0].job.as_ref().unwrap();
        assert_eq!(sent.region, "eu");
        assert_eq!(sent.namespace, "default");
    }

    #[tokio::test]
    async fn register_without_job_or_with_bad_json_is_400() {
        let rpc = Arc::new(FakeRpc::default());
        let r = call(&app(&rpc, None), Method::PUT, "/v1/jobs", Some("{}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.text(), "Job must be specified");
        let r = call(
            &app(&rpc, None),
            Method::PUT,
            "/v1/jobs",
            Some("{\"Job\": {\"ID\": }"),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.text().starts_with("Failed to decode request body: "),
            "{}",
            r.text()
        );
        assert!(r.text().contains("line 1 column 16"), "{}", r.text());
        let r = call(
            &app(&rpc, None),
            Method::PUT,
            "/v1/jobs",
            Some("{\"Job\": {\"Priority\": \"high\"}}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("invalid type"), "{}", r.text());
        assert!(rpc.registered.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn invalid_job_is_400_listing_every_problem() {
        let rpc = Arc::new(FakeRpc::default());
        let mut job = structs::mock::job("web", 1);
        job.task_groups.clear();
        job.priority = 1000;
        let r = call(
            &app(&rpc, None),
            Method::PUT,
            "/v1/jobs",
            Some(&register_body(&job)),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let text = r.text();
        assert!(text.starts_with("2 errors occurred:\n\t* "), "{text}");
        assert!(text.to_lowercase().contains("task group"), "{text}");
        assert!(text.to_lowercase().contains("priority"), "{text}");
        assert!(rpc.registered.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn job_path_must_match_the_body() {
        let rpc = Arc::new(FakeRpc::default());
        let job = structs::mock::job("web", 1);
        let r = call(
            &app(&rpc, None),
            Method::POST,
            "/v1/job/api",
            Some(&register_body(&job)),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.text(), "Job ID does not match name");
        let r = call(
            &app(&rpc, None),
            Method::POST,
            "/v1/job/web",
            Some(&register_body(&job)),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }

    #[tokio::test]
    async fn get_job_decodes_and_missing_is_404() {
        let rpc = with_jobs(&["web", "batch/nightly"]);
        let r = call(&app(&rpc, None), Method::GET, "/v1/job/web", None).await;
        assert_eq!(r.status, StatusCode::OK);
        let raw: Value = r.json();
        assert_eq!(raw["TaskGroups"][0]["Tasks"][0]["Driver"], "mock");
        let job: Job = r.json();
        assert_eq!(job.id, "web");
        let r = call(
            &app(&rpc, None),
            Method::GET,
            "/v1/job/batch%2Fnightly",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json::<Job>().id, "batch/nightly");
        let r = call(&app(&rpc, None), Method::GET, "/v1/job/nope", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.text(), "job not found");
    }

    #[tokio::test]
    async fn deregister_passes_purge_and_namespace() {
        let rpc = with_jobs(&["web"]);
        let r = call(
            &app(&rpc, None),
            Method::DELETE,
            "/v1/job/web?purge=true",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json::<JobDeregisterResponse>().eval_id, "eval-2");
        assert_eq!(
            rpc.deregistered.lock().unwrap()[0],
            ("default".to_string(), "web".to_string(), true)
        );
        let r = call(
            &app(&rpc, None),
            Method::DELETE,
            "/v1/job/web?purge=maybe",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = call(&app(&rpc, None), Method::DELETE, "/v1/job/nope", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn plan_answers_annotations() {
        let rpc = Arc::new(FakeRpc::default());
        let job = structs::mock::job("web", 3);
        let body = json!({ "Job": job, "Diff": true }).to_string();
        let r = call(
            &app(&rpc, None),
            Method::POST,
            "/v1/job/web/plan",
            Some(&body),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let raw: Value = r.json();
        assert_eq!(raw["Annotations"]["DesiredTGUpdates"]["web"]["Place"], 3);
        let plan: JobPlanResponse = r.json();
        assert_eq!(plan.job_modify_index, 5);
        let r = call(
            &app(&rpc, None),
            Method::PUT,
            "/v1/job/api/plan",
            Some(&body),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.text(), "Job ID does not match");
    }

    #[tokio::test]
    async fn job_sub_resources_decode() {
        let rpc = with_jobs(&["web"]);
        let alloc = Allocation {
            id: "a1".into(),
            job_id: "web".into(),
            task_group: "web".into(),
            ..Default::default()
        };
        rpc.allocs.lock().unwrap().insert("a1".into(), alloc);
        let eval = Evaluation {
            id: "e1".into(),
            job_id: "web".into(),
            ..Default::default()
        };
        rpc.evals.lock().unwrap().insert("e1".into(), eval);
        let app = app(&rpc, None);

        let r = call(&app, Method::GET, "/v1/job/web/allocations?all=true", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("X-Nomad-Index"), INDEX.to_string());
        assert_eq!(r.json::<Value>()[0]["TaskGroup"], "web");
        assert_eq!(r.json::<Vec<AllocListStub>>()[0].id, "a1");

        let r = call(&app, Method::GET, "/v1/job/web/evaluations", None).await;
        assert_eq!(r.json::<Value>()[0]["JobID"], "web");
        assert_eq!(r.json::<Vec<Evaluation>>()[0].id, "e1");

        let r = call(&app, Method::GET, "/v1/job/web/summary", None).await;
        assert_eq!(r.json::<Value>()["JobID"], "web");
        assert_eq!(r.json::<JobSummary>().job_id, "web");

        let r = call(&app, Method::GET, "/v1/job/web/versions", None).await;
        let raw: Value = r.json();
        assert_eq!(raw["Versions"][0]["ID"], "web");
        assert_eq!(raw["Diffs"], json!([]));
        assert_eq!(r.json::<JobVersionsResponse>().versions.len(), 2);
        let r = call(&app, Method::GET, "/v1/job/nope/versions", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn pretty_indents_with_four_spaces() {
        let rpc = with_jobs(&["web"]);
        let r = call(&app(&rpc, None), Method::GET, "/v1/job/web?pretty", None).await;
        let text = r.text();
        assert!(text.starts_with("{\n    \""), "{text}");
        assert!(text.ends_with("}\n"));
        let r = call(&app(&rpc, None), Method::GET, "/v1/job/web", None).await;
        assert!(!r.text().contains('\n'));
    }
}

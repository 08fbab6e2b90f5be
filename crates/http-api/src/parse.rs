//! Job endpoints that register nothing: `POST /v1/jobs/parse` (HCL to job JSON) and
//! `POST /v1/validate/job` (a job's problems).

use crate::error::{multi_error, ApiError};
use crate::jobs::complete_job;
use crate::query::{json, JsonBody, Params};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use structs::{Job, JobValidateResponse, JobsParseRequest};

/// `POST /v1/jobs/parse`: HCL to job JSON, without registering anything.
pub(crate) async fn parse(
    p: Params,
    JsonBody(req): JsonBody<JobsParseRequest>,
) -> Result<Response, ApiError> {
    if req.job_hcl.trim().is_empty() {
        return Err(ApiError::bad_request("Job spec is empty"));
    }
    let job = tokio::task::spawn_blocking(move || parse_hcl(&req))
        .await
        .map_err(|e| ApiError::Internal(format!("job parser failed: {e}")))??;
    Ok(json(&p, &job))
}

/// Parses `JobHCL` with `Variables` (the text of an HCL variable file) as its variable values.
fn parse_hcl(req: &JobsParseRequest) -> Result<Job, ApiError> {
    // The parser reads variable files from disk; the temporary file lives until parsing ends.
    let var_file = if req.variables.trim().is_empty() {
        None
    } else {
        let mut file = tempfile::Builder::new()
            .prefix("caravan-vars-")
            .suffix(".hcl")
            .tempfile()
            .map_err(|e| ApiError::Internal(format!("cannot store variables: {e}")))?;
        std::io::Write::write_all(&mut file, req.variables.as_bytes())
            .map_err(|e| ApiError::Internal(format!("cannot store variables: {e}")))?;
        Some(file)
    };
    let opts = jobspec::ParseOptions {
        var_files: var_file.iter().map(|f| f.path().to_path_buf()).collect(),
        ..Default::default()
    };
    let mut job = jobspec::parse(&req.job_hcl, "input.hcl", &opts)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if req.canonicalize {
        structs::canonicalize::canonicalize(&mut job);
    }
    Ok(job)
}

/// `POST /v1/validate/job` body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct JobValidateRequest {
    #[serde(rename = "Job")]
    job: Option<Job>,
}

/// `POST|PUT /v1/validate/job`: the job's problems, as a 200 response.
pub(crate) async fn validate(
    State(s): State<AppState>,
    p: Params,
    JsonBody(req): JsonBody<JobValidateRequest>,
) -> Result<Response, ApiError> {
    let mut job = req
        .job
        .ok_or_else(|| ApiError::bad_request("Job must be specified"))?;
    complete_job(&s, &p, &mut job);
    let validation_errors = structs::validate::validate(&job).err().unwrap_or_default();
    let error = if validation_errors.is_empty() {
        String::new()
    } else {
        multi_error(&validation_errors)
    };
    let resp = JobValidateResponse {
        // Nomad reports driver configs as validated; Caravan's drivers check them when the task
        // starts.
        driver_config_validated: true,
        validation_errors,
        error,
        warnings: String::new(),
    };
    Ok(json(&p, &resp))
}

#[cfg(test)]
mod tests {
    use crate::testing::{app, call, FakeRpc};
    use axum::http::{Method, StatusCode};
    use serde_json::{json, Value};
    use std::sync::Arc;
    use structs::JobValidateResponse;

    #[tokio::test]
    async fn parse_turns_hcl_with_variables_into_a_job() {
        let rpc = Arc::new(FakeRpc::default());
        let hcl = r#"
variable "image" { type = string }
job "web" {
  group "g" {
    count = 2
    task "t" {
      driver = "docker"
      config { image = var.image }
    }
  }
}
"#;
        let body =
            json!({"JobHCL": hcl, "Canonicalize": true, "Variables": "image = \"nginx:1\"\n"});
        let r = call(
            &app(&rpc, None),
            Method::POST,
            "/v1/jobs/parse",
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let raw: Value = r.json();
        assert_eq!(raw["ID"], "web");
        assert_eq!(raw["TaskGroups"][0]["Count"], 2);
        assert_eq!(
            raw["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
            "nginx:1"
        );
        assert_eq!(raw["Type"], "service", "canonicalized: {raw}");

        let body = json!({"JobHCL": "job \"web\" {"});
        let r = call(
            &app(&rpc, None),
            Method::POST,
            "/v1/jobs/parse",
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("input.hcl"), "{}", r.text());
        let r = call(&app(&rpc, None), Method::POST, "/v1/jobs/parse", Some("{}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.text(), "Job spec is empty");
    }

    #[tokio::test]
    async fn validate_reports_problems_in_the_body() {
        let rpc = Arc::new(FakeRpc::default());
        let good = json!({ "Job": structs::mock::job("web", 1) }).to_string();
        let r = call(
            &app(&rpc, None),
            Method::POST,
            "/v1/validate/job",
            Some(&good),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let resp: JobValidateResponse = r.json();
        assert!(resp.validation_errors.is_empty(), "{resp:?}");
        assert_eq!(resp.error, "");

        let mut job = structs::mock::job("web", 1);
        job.task_groups.clear();
        let bad = json!({ "Job": job }).to_string();
        let r = call(
            &app(&rpc, None),
            Method::POST,
            "/v1/validate/job",
            Some(&bad),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let raw: Value = r.json();
        assert!(
            !raw["ValidationErrors"].as_array().unwrap().is_empty(),
            "{raw}"
        );
        assert!(raw["Error"].as_str().unwrap().contains("error"), "{raw}");
    }
}

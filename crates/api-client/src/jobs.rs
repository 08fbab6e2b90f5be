//! Job endpoints: `/v1/jobs`, `/v1/jobs/parse`, `/v1/job/:id` and its sub-resources.

use crate::client::escape;
use crate::{ApiClient, ApiError, Indexed, Query};
use structs::{
    AllocListStub, Evaluation, Job, JobDeregisterResponse, JobListStub, JobPlanRequest,
    JobPlanResponse, JobRegisterRequest, JobRegisterResponse, JobSummary, JobVersionsResponse,
    JobsParseRequest,
};

impl ApiClient {
    /// `GET /v1/jobs`.
    pub fn jobs(&self, q: &Query) -> Result<Indexed<Vec<JobListStub>>, ApiError> {
        self.get("/v1/jobs", q)
    }

    /// `PUT /v1/jobs`: registers (or updates) a job.
    pub fn register(&self, req: &JobRegisterRequest) -> Result<JobRegisterResponse, ApiError> {
        self.write("PUT", "/v1/jobs", &[], Some(req))
    }

    /// `POST /v1/job/:id`: registers a job at its own path (same body as `register`).
    pub fn register_at(
        &self,
        id: &str,
        req: &JobRegisterRequest,
    ) -> Result<JobRegisterResponse, ApiError> {
        self.write("POST", &format!("/v1/job/{}", escape(id)), &[], Some(req))
    }

    /// `POST /v1/jobs/parse`: the agent parses HCL into a job.
    pub fn parse_job(&self, req: &JobsParseRequest) -> Result<Job, ApiError> {
        self.write("POST", "/v1/jobs/parse", &[], Some(req))
    }

    /// `GET /v1/job/:id`.
    pub fn job(&self, id: &str, q: &Query) -> Result<Indexed<Job>, ApiError> {
        self.get(&format!("/v1/job/{}", escape(id)), q)
    }

    /// `DELETE /v1/job/:id` (`?purge=true` removes it from the system).
    pub fn deregister(&self, id: &str, purge: bool) -> Result<JobDeregisterResponse, ApiError> {
        self.write::<(), _>(
            "DELETE",
            &format!("/v1/job/{}", escape(id)),
            &[("purge", purge.to_string())],
            None,
        )
    }

    /// `POST /v1/job/:id/plan`: a dry run of the request's job.
    pub fn plan(&self, req: &JobPlanRequest) -> Result<JobPlanResponse, ApiError> {
        let id = req.job.as_ref().map(|j| j.id.as_str()).unwrap_or_default();
        let path = format!("/v1/job/{}/plan", escape(id));
        self.write("POST", &path, &[], Some(req))
    }

    /// `GET /v1/job/:id/allocations` (`all`: include allocations of older job versions).
    pub fn job_allocations(
        &self,
        id: &str,
        all: bool,
        q: &Query,
    ) -> Result<Indexed<Vec<AllocListStub>>, ApiError> {
        let path = format!("/v1/job/{}/allocations", escape(id));
        self.get_with(&path, q, &[("all", all.to_string())])
    }

    /// `GET /v1/job/:id/evaluations`.
    pub fn job_evaluations(&self, id: &str) -> Result<Indexed<Vec<Evaluation>>, ApiError> {
        let path = format!("/v1/job/{}/evaluations", escape(id));
        self.get(&path, &Query::default())
    }

    /// `GET /v1/job/:id/summary`.
    pub fn job_summary(&self, id: &str) -> Result<Indexed<JobSummary>, ApiError> {
        let path = format!("/v1/job/{}/summary", escape(id));
        self.get(&path, &Query::default())
    }

    /// `GET /v1/job/:id/versions`.
    pub fn job_versions(&self, id: &str) -> Result<Indexed<JobVersionsResponse>, ApiError> {
        let path = format!("/v1/job/{}/versions", escape(id));
        self.get(&path, &Query::default())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_server::{http, serve};
    use crate::{ApiClient, Query};
    use structs::{JobPlanRequest, JobRegisterRequest, JobsParseRequest};

    #[test]
    fn register_sends_the_body_and_decodes_the_response() {
        let (addr, seen) = serve(vec![http(
            "200 OK",
            "",
            r#"{"EvalID":"e-1","EvalCreateIndex":9,"JobModifyIndex":9}"#,
        )]);
        let req = JobRegisterRequest {
            job: Some(structs::mock::job("web", 1)),
            enforce_index: true,
            job_modify_index: 4,
            ..Default::default()
        };
        let resp = ApiClient::new(&addr, None).register(&req).unwrap();
        assert_eq!((resp.eval_id.as_str(), resp.job_modify_index), ("e-1", 9));
        let s = seen.recv().unwrap();
        assert!(s.line.starts_with("PUT /v1/jobs "), "{}", s.line);
        let body: serde_json::Value = serde_json::from_str(&s.body).unwrap();
        assert_eq!(body["Job"]["ID"], "web");
        assert_eq!(body["EnforceIndex"], true);
        assert_eq!(body["JobModifyIndex"], 4);
    }

    #[test]
    fn deregister_plan_parse_and_escaped_ids() {
        let (addr, seen) = serve(vec![
            http("200 OK", "", r#"{"EvalID":"e-2"}"#),
            http("200 OK", "", r#"{"JobModifyIndex":3}"#),
            http("200 OK", "", r#"{"ID":"parsed"}"#),
            http(
                "200 OK",
                "X-Nomad-Index: 5\r\n",
                r#"{"Versions":[],"Diffs":[]}"#,
            ),
        ]);
        let c = ApiClient::new(&addr, None);
        assert_eq!(c.deregister("batch/nightly", true).unwrap().eval_id, "e-2");
        let line = seen.recv().unwrap().line;
        assert!(
            line.starts_with("DELETE /v1/job/batch%2Fnightly?purge=true"),
            "{line}"
        );
        let plan = c
            .plan(&JobPlanRequest {
                job: Some(structs::mock::job("web", 1)),
                diff: true,
                policy_override: false,
            })
            .unwrap();
        assert_eq!(plan.job_modify_index, 3);
        let s = seen.recv().unwrap();
        assert!(s.line.starts_with("POST /v1/job/web/plan "), "{}", s.line);
        assert!(s.body.contains("\"Diff\":true"), "{}", s.body);
        let job = c
            .parse_job(&JobsParseRequest {
                job_hcl: "job \"parsed\" {}".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(job.id, "parsed");
        assert!(seen
            .recv()
            .unwrap()
            .line
            .starts_with("POST /v1/jobs/parse "));
        assert_eq!(c.job_versions("web").unwrap().index, 5);
    }

    #[test]
    fn job_allocations_passes_all() {
        let (addr, seen) = serve(vec![http("200 OK", "", "[]")]);
        let allocs = ApiClient::new(&addr, None)
            .job_allocations("web", true, &Query::default())
            .unwrap();
        assert!(allocs.value.is_empty());
        let line = seen.recv().unwrap().line;
        assert!(
            line.starts_with("GET /v1/job/web/allocations?all=true"),
            "{line}"
        );
    }
}

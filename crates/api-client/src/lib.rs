//! A typed, blocking HTTP client for Caravan's (Nomad's) `/v1` API, used by the CLI and tests.
//! Bodies are the `structs` types; errors keep the HTTP status and the server's plain-text reason.
//!
//! Owns: URLs, query parameters, decoding. Must not: depend on server crates (it speaks HTTP).

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::Read;
use std::time::Duration;
use structs::{
    AllocListStub, Allocation, Evaluation, Job, JobDeregisterResponse, JobListStub, JobPlanRequest,
    JobPlanResponse, JobRegisterRequest, JobRegisterResponse, JobSummary, Node, NodeListStub,
};
use thiserror::Error;

/// Why a call failed.
#[derive(Debug, Error)]
pub enum ApiError {
    /// The agent could not be reached.
    #[error("Error querying {address}: {reason} (is the agent running?)")]
    Connect {
        /// The agent address tried.
        address: String,
        /// The transport error.
        reason: String,
    },
    /// The agent answered with an error status.
    #[error("Unexpected response code: {status} ({body})")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The plain-text reason.
        body: String,
    },
    /// The response body was not the JSON expected.
    #[error("Failed to decode response from {path}: {reason}")]
    Decode {
        /// The API path.
        path: String,
        /// The decode error.
        reason: String,
    },
}

impl ApiError {
    /// The HTTP status, when the agent answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Blocking-query options.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `?prefix=`.
    pub prefix: Option<String>,
    /// `?index=`: block until the index passes this.
    pub index: Option<u64>,
    /// `?wait=`.
    pub wait: Option<Duration>,
}

/// A response with its `X-Nomad-Index`.
#[derive(Debug, Clone)]
pub struct Indexed<T> {
    /// The decoded body.
    pub value: T,
    /// `X-Nomad-Index` (0 when absent).
    pub index: u64,
}

/// The client. Cheap to clone.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    region: Option<String>,
    namespace: Option<String>,
    agent: ureq::Agent,
}

impl ApiClient {
    /// A client for `address` (`http://127.0.0.1:4646`, or without the scheme).
    pub fn new(address: &str, region: Option<String>) -> Self {
        let address = address.trim_end_matches('/');
        let base = if address.contains("://") {
            address.to_string()
        } else {
            format!("http://{address}")
        };
        Self {
            base,
            region: region.filter(|r| !r.is_empty()),
            namespace: None,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(5))
                .build(),
        }
    }

    /// Sets `?namespace=` on every call.
    pub fn with_namespace(mut self, namespace: Option<String>) -> Self {
        self.namespace = namespace.filter(|n| !n.is_empty());
        self
    }

    /// The agent address.
    pub fn address(&self) -> &str {
        &self.base
    }

    fn request(&self, method: &str, path: &str, params: &[(&str, String)]) -> ureq::Request {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(r) = &self.region {
            req = req.query("region", r);
        }
        if let Some(ns) = &self.namespace {
            req = req.query("namespace", ns);
        }
        for (k, v) in params {
            req = req.query(k, v);
        }
        req
    }

    fn send(&self, req: ureq::Request, body: Option<String>) -> Result<ureq::Response, ApiError> {
        let result = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(&b),
            None => req.call(),
        };
        match result {
            Ok(resp) => Ok(resp),
            Err(ureq::Error::Status(status, resp)) => Err(ApiError::Status {
                status,
                body: resp.into_string().unwrap_or_default().trim().to_string(),
            }),
            Err(ureq::Error::Transport(t)) => Err(ApiError::Connect {
                address: self.base.clone(),
                reason: t.to_string(),
            }),
        }
    }

    fn decode<T: DeserializeOwned>(
        path: &str,
        resp: ureq::Response,
    ) -> Result<Indexed<T>, ApiError> {
        let index = resp
            .header("X-Nomad-Index")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let text = resp.into_string().map_err(|e| ApiError::Decode {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        let value = serde_json::from_str(&text).map_err(|e| ApiError::Decode {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Indexed { value, index })
    }

    fn query_params(q: &Query) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(prefix) = &q.prefix {
            p.push(("prefix", prefix.clone()));
        }
        if let Some(i) = q.index {
            p.push(("index", i.to_string()));
        }
        if let Some(w) = q.wait {
            p.push(("wait", format!("{}ms", w.as_millis())));
        }
        p
    }

    /// A GET with query options.
    pub fn get<T: DeserializeOwned>(&self, path: &str, q: &Query) -> Result<Indexed<T>, ApiError> {
        let mut req = self.request("GET", path, &Self::query_params(q));
        if let Some(w) = q.wait {
            req = req.timeout(w + Duration::from_secs(30));
        }
        let resp = self.send(req, None)?;
        Self::decode(path, resp)
    }

    fn write<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let body = body
            .map(|b| serde_json::to_string(b))
            .transpose()
            .map_err(|e| ApiError::Decode {
                path: path.to_string(),
                reason: e.to_string(),
            })?;
        let resp = self.send(self.request(method, path, params), body)?;
        Ok(Self::decode(path, resp)?.value)
    }

    // ---- jobs ----

    /// `GET /v1/jobs`.
    pub fn jobs(&self, q: &Query) -> Result<Indexed<Vec<JobListStub>>, ApiError> {
        self.get("/v1/jobs", q)
    }
    /// `PUT /v1/jobs`.
    pub fn register(&self, req: &JobRegisterRequest) -> Result<JobRegisterResponse, ApiError> {
        self.write("PUT", "/v1/jobs", &[], Some(req))
    }
    /// `GET /v1/job/:id`.
    pub fn job(&self, id: &str, q: &Query) -> Result<Indexed<Job>, ApiError> {
        self.get(&format!("/v1/job/{}", escape(id)), q)
    }
    /// `DELETE /v1/job/:id`.
    pub fn deregister(&self, id: &str, purge: bool) -> Result<JobDeregisterResponse, ApiError> {
        self.write::<(), _>(
            "DELETE",
            &format!("/v1/job/{}", escape(id)),
            &[("purge", purge.to_string())],
            None,
        )
    }
    /// `POST /v1/job/:id/plan`.
    pub fn plan(&self, req: &JobPlanRequest) -> Result<JobPlanResponse, ApiError> {
        let id = req.job.as_ref().map(|j| j.id.clone()).unwrap_or_default();
        self.write(
            "POST",
            &format!("/v1/job/{}/plan", escape(&id)),
            &[],
            Some(req),
        )
    }
    /// `GET /v1/job/:id/allocations`.
    pub fn job_allocations(
        &self,
        id: &str,
        all: bool,
        q: &Query,
    ) -> Result<Indexed<Vec<AllocListStub>>, ApiError> {
        let mut params = Self::query_params(q);
        params.push(("all", all.to_string()));
        let path = format!("/v1/job/{}/allocations", escape(id));
        let resp = self.send(self.request("GET", &path, &params), None)?;
        Self::decode(&path, resp)
    }
    /// `GET /v1/job/:id/evaluations`.
    pub fn job_evaluations(&self, id: &str) -> Result<Indexed<Vec<Evaluation>>, ApiError> {
        self.get(
            &format!("/v1/job/{}/evaluations", escape(id)),
            &Query::default(),
        )
    }
    /// `GET /v1/job/:id/summary`.
    pub fn job_summary(&self, id: &str) -> Result<Indexed<JobSummary>, ApiError> {
        self.get(
            &format!("/v1/job/{}/summary", escape(id)),
            &Query::default(),
        )
    }

    // ---- allocations, nodes, evaluations ----

    /// `GET /v1/allocations`.
    pub fn allocations(&self, q: &Query) -> Result<Indexed<Vec<AllocListStub>>, ApiError> {
        self.get("/v1/allocations", q)
    }
    /// `GET /v1/allocation/:id`.
    pub fn allocation(&self, id: &str) -> Result<Indexed<Allocation>, ApiError> {
        self.get(&format!("/v1/allocation/{id}"), &Query::default())
    }
    /// `GET /v1/nodes`.
    pub fn nodes(&self, q: &Query) -> Result<Indexed<Vec<NodeListStub>>, ApiError> {
        self.get("/v1/nodes", q)
    }
    /// `GET /v1/node/:id`.
    pub fn node(&self, id: &str) -> Result<Indexed<Node>, ApiError> {
        self.get(&format!("/v1/node/{id}"), &Query::default())
    }
    /// `GET /v1/node/:id/allocations`.
    pub fn node_allocations(&self, id: &str) -> Result<Indexed<Vec<Allocation>>, ApiError> {
        self.get(&format!("/v1/node/{id}/allocations"), &Query::default())
    }
    /// `GET /v1/evaluations`.
    pub fn evaluations(&self, q: &Query) -> Result<Indexed<Vec<Evaluation>>, ApiError> {
        self.get("/v1/evaluations", q)
    }
    /// `GET /v1/evaluation/:id` (blocking with `q`).
    pub fn evaluation(&self, id: &str, q: &Query) -> Result<Indexed<Evaluation>, ApiError> {
        self.get(&format!("/v1/evaluation/{id}"), q)
    }
    /// `GET /v1/agent/self` as raw JSON.
    pub fn agent_self(&self) -> Result<serde_json::Value, ApiError> {
        Ok(self.get("/v1/agent/self", &Query::default())?.value)
    }
    /// `GET /v1/agent/members` as raw JSON.
    pub fn agent_members(&self) -> Result<serde_json::Value, ApiError> {
        Ok(self.get("/v1/agent/members", &Query::default())?.value)
    }

    /// `GET /v1/client/fs/logs/:alloc?plain=true`: a reader of the raw log bytes.
    /// `origin_end_offset` reads only the last N bytes; `follow` keeps streaming.
    pub fn logs(
        &self,
        alloc_id: &str,
        task: &str,
        stderr: bool,
        follow: bool,
        origin_end_offset: Option<u64>,
    ) -> Result<Box<dyn Read + Send>, ApiError> {
        let mut params = vec![
            ("task", task.to_string()),
            ("type", if stderr { "stderr" } else { "stdout" }.to_string()),
            ("plain", "true".to_string()),
            ("follow", follow.to_string()),
        ];
        if let Some(off) = origin_end_offset {
            params.push(("origin", "end".to_string()));
            params.push(("offset", off.to_string()));
        }
        let resp = self.send(
            self.request("GET", &format!("/v1/client/fs/logs/{alloc_id}"), &params),
            None,
        )?;
        Ok(Box::new(resp.into_reader()))
    }
}

/// Percent-encodes a path segment (job IDs may hold `/` or spaces).
fn escape(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// Serves one canned response per connection; returns the address and the request lines seen.
    fn serve(responses: Vec<String>) -> (String, std::sync::mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for resp in responses {
                let (mut stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                reader.read_line(&mut first).unwrap();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let _ = tx.send(first.trim().to_string());
                stream.write_all(resp.as_bytes()).unwrap();
            }
        });
        (addr, rx)
    }

    fn http(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn decodes_bodies_and_index_and_passes_query() {
        let (addr, seen) = serve(vec![http(
            "200 OK",
            "X-Nomad-Index: 42\r\n",
            r#"[{"ID":"web","Type":"service","Priority":50}]"#,
        )]);
        let c = ApiClient::new(&addr, Some("eu".into()));
        let q = Query {
            prefix: Some("we".into()),
            ..Default::default()
        };
        let jobs = c.jobs(&q).unwrap();
        assert_eq!(jobs.index, 42);
        assert_eq!(jobs.value[0].id, "web");
        let line = seen.recv().unwrap();
        assert!(line.starts_with("GET /v1/jobs?"), "{line}");
        assert!(
            line.contains("region=eu") && line.contains("prefix=we"),
            "{line}"
        );
    }

    #[test]
    fn error_status_keeps_the_reason() {
        let (addr, _) = serve(vec![http("404 Not Found", "", "job not found")]);
        let err = ApiClient::new(&format!("http://{addr}"), None)
            .job("x", &Query::default())
            .unwrap_err();
        assert_eq!(err.status(), Some(404));
        assert!(err.to_string().contains("job not found"));
    }

    #[test]
    fn connection_refused_names_the_address() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = ApiClient::new(&format!("127.0.0.1:{port}"), None)
            .jobs(&Query::default())
            .unwrap_err();
        assert!(matches!(err, ApiError::Connect { .. }));
        assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
    }

    #[test]
    fn bad_json_is_a_decode_error() {
        let (addr, _) = serve(vec![http("200 OK", "", "{not json")]);
        let err = ApiClient::new(&addr, None)
            .jobs(&Query::default())
            .unwrap_err();
        assert!(matches!(err, ApiError::Decode { .. }), "{err}");
    }

    #[test]
    fn escapes_path_segments() {
        assert_eq!(escape("a/b c"), "a%2Fb%20c");
        assert_eq!(escape("web-1.x"), "web-1.x");
    }
}

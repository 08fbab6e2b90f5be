//! Allocation, node, evaluation, agent and status endpoints, and the log stream.

use crate::{ApiClient, ApiError, Indexed, Query};
use std::io::Read;
use structs::{AllocFileInfo, AllocListStub, Allocation, Evaluation, Node, NodeListStub};

/// Which part of a task's log `ApiClient::logs` reads.
#[derive(Debug, Clone, Default)]
pub struct LogsRequest {
    /// The task name.
    pub task: String,
    /// stderr instead of stdout.
    pub stderr: bool,
    /// Keep streaming as the log grows.
    pub follow: bool,
    /// Start this many bytes before the end (`origin=end&offset=N`) instead of at the start.
    pub from_end: Option<u64>,
}

impl ApiClient {
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

    /// `POST /v1/node/:id/eligibility`: `eligible` or `ineligible`.
    pub fn node_eligibility(&self, id: &str, eligible: bool) -> Result<(), ApiError> {
        let body = serde_json::json!({
            "NodeID": id,
            "Eligibility": if eligible { "eligible" } else { "ineligible" },
        });
        let path = format!("/v1/node/{}/eligibility", crate::client::escape(id));
        self.write::<_, serde_json::Value>("POST", &path, &[], Some(&body))
            .map(|_| ())
    }

    /// `POST /v1/node/:id/drain`: `spec` starts or changes the drain, None ends it
    /// (`mark_eligible` then makes the node eligible again). Returns the node's new index.
    pub fn node_drain(
        &self,
        id: &str,
        spec: Option<&structs::DrainSpec>,
        mark_eligible: bool,
        meta: &std::collections::BTreeMap<String, String>,
    ) -> Result<u64, ApiError> {
        let body = serde_json::json!({
            "NodeID": id,
            "DrainSpec": spec,
            "MarkEligible": mark_eligible,
            "Meta": meta,
        });
        let path = format!("/v1/node/{}/drain", crate::client::escape(id));
        let v = self.write::<_, serde_json::Value>("POST", &path, &[], Some(&body))?;
        Ok(v.get("NodeModifyIndex")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_default())
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

    /// `GET /v1/agent/self` as raw JSON (`{"config","member","stats"}`).
    pub fn agent_self(&self) -> Result<serde_json::Value, ApiError> {
        Ok(self.get("/v1/agent/self", &Query::default())?.value)
    }

    /// `GET /v1/agent/health` as raw JSON (`{"client":{"ok","message"},"server":{..}}`).
    pub fn agent_health(&self) -> Result<serde_json::Value, ApiError> {
        Ok(self.get("/v1/agent/health", &Query::default())?.value)
    }

    /// `GET /v1/agent/members` as raw JSON (`{"ServerName",..,"Members":[..]}`).
    pub fn agent_members(&self) -> Result<serde_json::Value, ApiError> {
        Ok(self.get("/v1/agent/members", &Query::default())?.value)
    }

    /// `GET /v1/status/leader`: the leader's RPC address in this client's region.
    pub fn status_leader(&self) -> Result<String, ApiError> {
        Ok(self.get("/v1/status/leader", &Query::default())?.value)
    }

    /// `GET /v1/status/peers`: the Raft peers' RPC addresses.
    pub fn status_peers(&self) -> Result<Vec<String>, ApiError> {
        Ok(self.get("/v1/status/peers", &Query::default())?.value)
    }

    /// `GET /v1/regions`.
    pub fn regions(&self) -> Result<Vec<String>, ApiError> {
        Ok(self.get("/v1/regions", &Query::default())?.value)
    }

    /// `GET /v1/client/fs/logs/:alloc?plain=true`: a reader of the raw log bytes, which keeps
    /// streaming while `follow` is set.
    pub fn logs(
        &self,
        alloc_id: &str,
        req: &LogsRequest,
    ) -> Result<Box<dyn Read + Send>, ApiError> {
        let mut params = vec![
            ("task", req.task.clone()),
            (
                "type",
                if req.stderr { "stderr" } else { "stdout" }.to_string(),
            ),
            ("plain", "true".to_string()),
            ("follow", req.follow.to_string()),
        ];
        if let Some(off) = req.from_end {
            params.push(("origin", "end".to_string()));
            params.push(("offset", off.to_string()));
        }
        let path = format!("/v1/client/fs/logs/{alloc_id}");
        let resp = self.send(self.request("GET", &path, &params), None)?;
        Ok(Box::new(resp.into_reader()))
    }

    /// `GET /v1/client/allocation/:alloc/stats`.
    pub fn alloc_stats(&self, alloc_id: &str) -> Result<structs::AllocResourceUsage, ApiError> {
        let path = format!(
            "/v1/client/allocation/{}/stats",
            crate::client::escape(alloc_id)
        );
        Ok(self.get(&path, &Query::default())?.value)
    }

    /// `POST /v1/allocation/:alloc/stop`: the ID of the evaluation that replaces it.
    pub fn alloc_stop(&self, alloc_id: &str) -> Result<String, ApiError> {
        let path = format!("/v1/allocation/{}/stop", crate::client::escape(alloc_id));
        let v: serde_json::Value = self.write("POST", &path, &[], None::<&serde_json::Value>)?;
        Ok(v["EvalID"].as_str().unwrap_or_default().to_string())
    }

    /// `POST /v1/client/allocation/:alloc/signal`: `signal` to `task`, or to every task.
    pub fn alloc_signal(
        &self,
        alloc_id: &str,
        task: Option<&str>,
        signal: &str,
    ) -> Result<(), ApiError> {
        let body = serde_json::json!({"Task": task.unwrap_or(""), "Signal": signal});
        let path = format!(
            "/v1/client/allocation/{}/signal",
            crate::client::escape(alloc_id)
        );
        self.write::<_, serde_json::Value>("POST", &path, &[], Some(&body))
            .map(|_| ())
    }

    /// `POST /v1/client/allocation/:alloc/restart`: `task`, or every task.
    pub fn alloc_restart(&self, alloc_id: &str, task: Option<&str>) -> Result<(), ApiError> {
        let body = serde_json::json!({"TaskName": task.unwrap_or(""), "AllTasks": task.is_none()});
        let path = format!(
            "/v1/client/allocation/{}/restart",
            crate::client::escape(alloc_id)
        );
        self.write::<_, serde_json::Value>("POST", &path, &[], Some(&body))
            .map(|_| ())
    }

    /// `GET /v1/client/fs/stat/:alloc?path=`.
    pub fn fs_stat(&self, alloc_id: &str, path: &str) -> Result<AllocFileInfo, ApiError> {
        let q = Query::default();
        Ok(self
            .get_with(
                &format!("/v1/client/fs/stat/{alloc_id}"),
                &q,
                &[("path", path.to_string())],
            )?
            .value)
    }

    /// `GET /v1/client/fs/ls/:alloc?path=`.
    pub fn fs_ls(&self, alloc_id: &str, path: &str) -> Result<Vec<AllocFileInfo>, ApiError> {
        let q = Query::default();
        Ok(self
            .get_with(
                &format!("/v1/client/fs/ls/{alloc_id}"),
                &q,
                &[("path", path.to_string())],
            )?
            .value)
    }

    /// `GET /v1/client/fs/cat/:alloc?path=`: a reader of the file's bytes.
    pub fn fs_cat(&self, alloc_id: &str, path: &str) -> Result<Box<dyn Read + Send>, ApiError> {
        let path_q = [("path", path.to_string())];
        let url = format!("/v1/client/fs/cat/{alloc_id}");
        let resp = self.send(self.request("GET", &url, &path_q), None)?;
        Ok(Box::new(resp.into_reader()))
    }
}

#[cfg(test)]
mod tests {
    use super::LogsRequest;
    use crate::test_server::{http, serve};
    use crate::{ApiClient, Query};
    use std::io::Read;

    #[test]
    fn logs_stream_raw_bytes_with_the_right_query() {
        let (addr, seen) = serve(vec![http("200 OK", "", "line 1\nline 2\n")]);
        let mut r = ApiClient::new(&addr, None)
            .logs(
                "a1",
                &LogsRequest {
                    task: "web".into(),
                    stderr: true,
                    follow: false,
                    from_end: Some(100),
                },
            )
            .unwrap();
        let mut text = String::new();
        r.read_to_string(&mut text).unwrap();
        assert_eq!(text, "line 1\nline 2\n");
        let line = seen.recv().unwrap().line;
        for part in [
            "GET /v1/client/fs/logs/a1?",
            "task=web",
            "type=stderr",
            "plain=true",
            "follow=false",
            "origin=end",
            "offset=100",
        ] {
            assert!(line.contains(part), "{part} missing in {line}");
        }
    }

    #[test]
    fn status_and_agent_endpoints() {
        let (addr, seen) = serve(vec![
            http("200 OK", "", r#""127.0.0.1:4647""#),
            http("200 OK", "", r#"["127.0.0.1:4647"]"#),
            http("200 OK", "", r#"["eu","global"]"#),
            http("200 OK", "", r#"{"server":{"ok":true,"message":"ok"}}"#),
        ]);
        let c = ApiClient::new(&addr, None);
        assert_eq!(
            c.with_region(Some("eu".into())).status_leader().unwrap(),
            "127.0.0.1:4647"
        );
        assert!(seen
            .recv()
            .unwrap()
            .line
            .starts_with("GET /v1/status/leader?region=eu "));
        assert_eq!(c.status_peers().unwrap(), vec!["127.0.0.1:4647"]);
        assert_eq!(c.regions().unwrap(), vec!["eu", "global"]);
        assert_eq!(c.agent_health().unwrap()["server"]["ok"], true);
    }

    #[test]
    fn node_and_alloc_lists_decode() {
        let (addr, _) = serve(vec![
            http(
                "200 OK",
                "X-Nomad-Index: 3\r\n",
                r#"[{"ID":"n1","Name":"dev","Status":"ready"}]"#,
            ),
            http("200 OK", "", r#"[{"ID":"a1","ClientStatus":"running"}]"#),
        ]);
        let c = ApiClient::new(&addr, None);
        let nodes = c.nodes(&Query::default()).unwrap();
        assert_eq!((nodes.index, nodes.value[0].status.as_str()), (3, "ready"));
        let allocs = c.allocations(&Query::prefix("a")).unwrap().value;
        assert_eq!(allocs[0].client_status, "running");
    }
}

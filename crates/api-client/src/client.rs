//! The client itself: base address, region/namespace parameters, the transport and decoding.
//! The typed endpoint methods live in `jobs.rs` and `cluster.rs`.

use crate::ApiError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// Options of a read: `?prefix=` for lists, `?index=&wait=` for a blocking query.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `?prefix=`.
    pub prefix: Option<String>,
    /// `?index=`: block until the data's index passes this.
    pub index: Option<u64>,
    /// `?wait=`: how long the agent may block (Nomad's default is 5m).
    pub wait: Option<Duration>,
}

impl Query {
    /// A list query for IDs starting with `prefix`.
    pub fn prefix(prefix: &str) -> Self {
        Self {
            prefix: Some(prefix.to_string()),
            ..Default::default()
        }
    }

    /// A blocking query: answer once the index passes `index`, or after `wait`.
    pub fn blocking(index: u64, wait: Duration) -> Self {
        Self {
            prefix: None,
            index: (index > 0).then_some(index),
            wait: Some(wait),
        }
    }
}

/// A read's body with its query metadata (`X-Nomad-Index`).
#[derive(Debug, Clone)]
pub struct Indexed<T> {
    /// The decoded body.
    pub value: T,
    /// `X-Nomad-Index` (0 when absent): pass it back as `Query::index` to block for changes.
    pub index: u64,
}

/// The client. Cheap to clone; every call is blocking.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    region: Option<String>,
    namespace: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("region", &self.region)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl ApiClient {
    /// A client for `address` (`http://127.0.0.1:4646`, or `127.0.0.1:4646` without the scheme);
    /// `region` is sent as `?region=` on every call when set.
    pub fn new(address: &str, region: Option<String>) -> Self {
        let address = address.trim().trim_end_matches('/');
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

    /// The same client sending `?region=region` instead.
    pub fn with_region(&self, region: Option<String>) -> Self {
        let mut c = self.clone();
        c.region = region.filter(|r| !r.is_empty());
        c
    }

    /// The agent address, with its scheme.
    pub fn address(&self) -> &str {
        &self.base
    }

    /// The region sent with every call, if any.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, String)],
    ) -> ureq::Request {
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

    pub(crate) fn send(
        &self,
        req: ureq::Request,
        body: Option<String>,
    ) -> Result<ureq::Response, ApiError> {
        self.finish(match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(&b),
            None => req.call(),
        })
    }

    /// Sends raw bytes (`application/octet-stream`).
    pub(crate) fn send_bytes(
        &self,
        req: ureq::Request,
        bytes: &[u8],
    ) -> Result<ureq::Response, ApiError> {
        self.finish(
            req.set("Content-Type", "application/octet-stream")
                .send_bytes(bytes),
        )
    }

    /// Maps ureq's outcome to the agent's status and body, or the connection failure.
    fn finish(
        &self,
        result: Result<ureq::Response, ureq::Error>,
    ) -> Result<ureq::Response, ApiError> {
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
            .and_then(|v| v.trim().parse().ok())
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

    pub(crate) fn query_params(q: &Query) -> Vec<(&'static str, String)> {
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

    /// A GET of any `/v1` path with query options and extra parameters, decoded as `T`.
    pub fn get_with<T: DeserializeOwned>(
        &self,
        path: &str,
        q: &Query,
        extra: &[(&str, String)],
    ) -> Result<Indexed<T>, ApiError> {
        let mut params = Self::query_params(q);
        params.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        let mut req = self.request("GET", path, &params);
        if let Some(w) = q.wait {
            // The agent may hold a blocking query for `wait` plus jitter (wait/16).
            req = req.timeout(w + w / 16 + Duration::from_secs(30));
        }
        let resp = self.send(req, None)?;
        Self::decode(path, resp)
    }

    /// A GET of any `/v1` path with query options, decoded as `T`.
    pub fn get<T: DeserializeOwned>(&self, path: &str, q: &Query) -> Result<Indexed<T>, ApiError> {
        self.get_with(path, q, &[])
    }

    /// A write (`PUT`, `POST`, `DELETE`) with an optional JSON body, decoded as `T`.
    pub fn write<B: Serialize, T: DeserializeOwned>(
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
                reason: format!("encoding the request body: {e}"),
            })?;
        let resp = self.send(self.request(method, path, params), body)?;
        Ok(Self::decode(path, resp)?.value)
    }
}

/// Percent-encodes a path segment (job IDs may hold `/` or spaces).
pub(crate) fn escape(segment: &str) -> String {
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
    use crate::test_server::{http, serve};
    use std::net::TcpListener;

    #[test]
    fn addresses_with_and_without_scheme() {
        assert_eq!(
            ApiClient::new("127.0.0.1:4646", None).address(),
            "http://127.0.0.1:4646"
        );
        assert_eq!(
            ApiClient::new("https://nomad.example:4646/", None).address(),
            "https://nomad.example:4646"
        );
        let c = ApiClient::new("x:1", Some(String::new()));
        assert_eq!(c.region(), None);
        assert_eq!(c.with_region(Some("eu".into())).region(), Some("eu"));
    }

    #[test]
    fn decodes_bodies_and_index_and_passes_query() {
        let (addr, seen) = serve(vec![http(
            "200 OK",
            "X-Nomad-Index: 42\r\n",
            r#"[{"ID":"web","Type":"service","Priority":50}]"#,
        )]);
        let c = ApiClient::new(&addr, Some("eu".into())).with_namespace(Some("prod".into()));
        let jobs = c.jobs(&Query::prefix("we")).unwrap();
        assert_eq!(jobs.index, 42);
        assert_eq!(jobs.value[0].id, "web");
        assert_eq!(jobs.value[0].priority, 50);
        let req = seen.recv().unwrap();
        assert!(req.line.starts_with("GET /v1/jobs?"), "{}", req.line);
        for part in ["region=eu", "namespace=prod", "prefix=we"] {
            assert!(req.line.contains(part), "{part} missing in {}", req.line);
        }
    }

    #[test]
    fn blocking_query_sends_index_and_wait() {
        let (addr, seen) = serve(vec![http(
            "200 OK",
            "X-Nomad-Index: 8\r\n",
            r#"{"ID":"e1","Status":"complete"}"#,
        )]);
        let c = ApiClient::new(&addr, None);
        let e = c
            .evaluation("e1", &Query::blocking(7, Duration::from_secs(2)))
            .unwrap();
        assert_eq!((e.value.status.as_str(), e.index), ("complete", 8));
        let line = seen.recv().unwrap().line;
        assert!(
            line.contains("index=7") && line.contains("wait=2000ms"),
            "{line}"
        );
    }

    #[test]
    fn error_status_keeps_the_reason() {
        let (addr, _) = serve(vec![http("404 Not Found", "", "job not found\n")]);
        let err = ApiClient::new(&format!("http://{addr}"), None)
            .job("x", &Query::default())
            .unwrap_err();
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.reason(), "job not found");
        assert!(err.to_string().contains("404 (job not found)"), "{err}");
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
        assert!(matches!(err, ApiError::Connect { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("http://127.0.0.1:{port}")), "{msg}");
        assert!(msg.contains("is the agent running?"), "{msg}");
    }

    #[test]
    fn bad_json_is_a_decode_error_naming_the_path() {
        let (addr, _) = serve(vec![http("200 OK", "", "{not json")]);
        let err = ApiClient::new(&addr, None)
            .jobs(&Query::default())
            .unwrap_err();
        assert!(matches!(err, ApiError::Decode { .. }), "{err}");
        assert!(err.to_string().contains("/v1/jobs"), "{err}");
    }

    #[test]
    fn escapes_path_segments() {
        assert_eq!(escape("a/b c"), "a%2Fb%20c");
        assert_eq!(escape("web-1.x"), "web-1.x");
    }
}

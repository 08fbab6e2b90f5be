//! Request and response plumbing shared by every endpoint: query parameters (`?region=`,
//! `?namespace=`, `?prefix=`, blocking `?index=&wait=`, `?stale`, `?pretty`), JSON request
//! bodies with serde's error reasons, and JSON responses with the `X-Nomad-*` headers.

use crate::error::ApiError;
use crate::AgentInfo;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rpc::{QueryOptions, QueryResponse};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// Blocking queries wait this long when `?index=` is given without `?wait=`.
const DEFAULT_WAIT: Duration = Duration::from_secs(5 * 60);
/// The longest a blocking query may wait.
const MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// The query string of a request, in order, with helpers that parse Nomad's parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| Params(pairs))
            .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}")))
    }
}

impl Params {
    /// The first value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A presence flag such as `?stale` or `?pretty`: present and empty, or a true value, is
    /// true; a false value is false; anything else is a 400.
    pub(crate) fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some("") => Ok(true),
            Some(v) => parse_bool(key, v),
        }
    }

    /// A boolean such as `?purge=true`: absent or empty is false; a value that is not a boolean
    /// is a 400.
    pub(crate) fn bool_param(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(false),
            Some(v) => parse_bool(key, v),
        }
    }

    /// Whether the response should be indented (`?pretty`); an unparsable value counts as yes.
    pub(crate) fn pretty(&self) -> bool {
        self.flag("pretty").unwrap_or(true)
    }

    /// `?region=` or the agent's region.
    pub(crate) fn region(&self, agent: &AgentInfo) -> String {
        match self.get("region") {
            Some(r) if !r.is_empty() => r.to_string(),
            _ => agent.region.clone(),
        }
    }

    /// `?namespace=` or `default`.
    pub(crate) fn namespace(&self) -> String {
        match self.get("namespace") {
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => "default".to_string(),
        }
    }

    /// The options of a read: region, namespace, prefix, blocking and consistency.
    pub(crate) fn query_options(&self, agent: &AgentInfo) -> Result<QueryOptions, ApiError> {
        let min_index = match self.get("index") {
            None | Some("") => 0,
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request("Invalid index"))?,
        };
        let wait = match self.get("wait") {
            None | Some("") => (min_index > 0).then_some(DEFAULT_WAIT),
            Some(v) => {
                let ns = structs::duration::parse_duration(v)
                    .ok()
                    .and_then(|ns| u64::try_from(ns).ok())
                    .ok_or_else(|| ApiError::bad_request("Invalid wait time"))?;
                Some(Duration::from_nanos(ns).min(MAX_WAIT))
            }
        };
        let stale = match self.get("stale") {
            None | Some("") => self.get("stale").is_some(),
            Some(v) => parse_bool("stale", v).map_err(|_| {
                ApiError::bad_request(format!(
                    "Expect `true` or `false` for `stale` query string parameter, got {v}"
                ))
            })?,
        };
        Ok(QueryOptions {
            region: self.region(agent),
            namespace: self.namespace(),
            prefix: self.get("prefix").unwrap_or_default().to_string(),
            min_index,
            wait,
            stale,
        })
    }
}

/// Go's `strconv.ParseBool`, with Nomad's 400 message on failure.
fn parse_bool(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "Failed to parse value of {key:?} ({value}) as a bool"
        ))),
    }
}

/// A JSON request body. Malformed JSON is a 400 whose text is serde's reason with line and
/// column, never axum's default rejection text.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::bad_request(format!("Failed to decode request body: {e}")).into_response()
        })
    }
}

/// A 200 JSON response (indented with `?pretty`).
pub(crate) fn json<T: Serialize>(params: &Params, value: &T) -> Response {
    let encoded = if params.pretty() {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        value.serialize(&mut ser).map(|()| {
            out.push(b'\n');
            out
        })
    } else {
        serde_json::to_vec(value)
    };
    match encoded {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => ApiError::Internal(format!("failed to encode response: {e}")).into_response(),
    }
}

/// A 200 JSON response of a blocking read, with `X-Nomad-Index`, `X-Nomad-KnownLeader` and
/// `X-Nomad-LastContact`.
pub(crate) fn json_query<T: Serialize>(params: &Params, resp: &QueryResponse<T>) -> Response {
    let mut response = json(params, &resp.value);
    let headers = response.headers_mut();
    headers.insert("X-Nomad-Index", HeaderValue::from(resp.meta.index));
    let known = if resp.meta.known_leader {
        "true"
    } else {
        "false"
    };
    headers.insert("X-Nomad-KnownLeader", HeaderValue::from_static(known));
    headers.insert(
        "X-Nomad-LastContact",
        HeaderValue::from(resp.meta.last_contact_ms),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_come_from_the_agent() {
        let agent = AgentInfo {
            region: "eu".into(),
            ..AgentInfo::default()
        };
        let q = params(&[]).query_options(&agent).unwrap();
        assert_eq!(q.region, "eu");
        assert_eq!(q.namespace, "default");
        assert_eq!(q.min_index, 0);
        assert_eq!(q.wait, None);
        assert!(!q.stale);
    }

    #[test]
    fn blocking_parameters_are_parsed_and_capped() {
        let agent = AgentInfo::default();
        let q = params(&[("index", "7"), ("wait", "30s"), ("stale", "")])
            .query_options(&agent)
            .unwrap();
        assert_eq!(q.min_index, 7);
        assert_eq!(q.wait, Some(Duration::from_secs(30)));
        assert!(q.stale);
        let q = params(&[("index", "7")]).query_options(&agent).unwrap();
        assert_eq!(q.wait, Some(DEFAULT_WAIT));
        let q = params(&[("index", "7"), ("wait", "1h")])
            .query_options(&agent)
            .unwrap();
        assert_eq!(q.wait, Some(MAX_WAIT));
        let q = params(&[("stale", "false"), ("region", "us"), ("prefix", "ab")])
            .query_options(&agent)
            .unwrap();
        assert!(!q.stale);
        assert_eq!(q.region, "us");
        assert_eq!(q.prefix, "ab");
    }

    #[test]
    fn bad_blocking_parameters_are_400_with_nomads_text() {
        let agent = AgentInfo::default();
        for (k, v, msg) in [
            ("wait", "soon", "Invalid wait time"),
            ("wait", "-5s", "Invalid wait time"),
            ("index", "x", "Invalid index"),
            ("index", "-1", "Invalid index"),
        ] {
            let err = params(&[(k, v)]).query_options(&agent).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
            assert_eq!(err.to_string(), msg);
        }
        let err = params(&[("stale", "maybe")])
            .query_options(&agent)
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn booleans_follow_go_parse_bool() {
        let p = params(&[("purge", "true"), ("all", "0"), ("x", "yes"), ("e", "")]);
        assert!(p.bool_param("purge").unwrap());
        assert!(!p.bool_param("all").unwrap());
        assert!(!p.bool_param("e").unwrap());
        assert!(p.flag("e").unwrap());
        assert!(!p.bool_param("missing").unwrap());
        let err = p.bool_param("x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Failed to parse value of \"x\" (yes) as a bool"
        );
    }

    #[test]
    fn pretty_output_is_indented_with_four_spaces() {
        let resp = json(&params(&[("pretty", "")]), &serde_json::json!({"ID": "a"}));
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
    }
}

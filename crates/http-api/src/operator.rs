//! Operator endpoints: `/v1/operator/raft/configuration`, `/v1/operator/raft/peer`,
//! `/v1/operator/snapshot` (save with GET, restore with PUT/POST) and
//! `/v1/operator/scheduler/configuration`.

use crate::error::ApiError;
use crate::query::{json, json_query, JsonBody, Params};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use rpc::PeerRef;

/// `GET /v1/operator/raft/configuration`.
pub(crate) async fn raft_configuration(
    State(s): State<AppState>,
    p: Params,
) -> Result<Response, ApiError> {
    let config = s.rpc.raft_configuration(&p.region(&s.agent)).await?;
    Ok(json(&p, &config))
}

/// `DELETE /v1/operator/raft/peer?id=` or `?address=`.
pub(crate) async fn remove_peer(
    State(s): State<AppState>,
    p: Params,
) -> Result<Response, ApiError> {
    let peer = match (p.get("id"), p.get("address")) {
        (Some(id), None) if !id.is_empty() => PeerRef::Id(id.to_string()),
        (None, Some(a)) if !a.is_empty() => PeerRef::Address(a.to_string()),
        _ => {
            return Err(ApiError::bad_request(
                "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove",
            ))
        }
    };
    s.rpc.raft_remove_peer(&p.region(&s.agent), peer).await?;
    Ok(().into_response())
}

/// `GET /v1/operator/snapshot`: the region's state as a snapshot file.
pub(crate) async fn snapshot_save(
    State(s): State<AppState>,
    p: Params,
) -> Result<Response, ApiError> {
    let bytes = s.rpc.snapshot_save(&p.region(&s.agent)).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// `PUT /v1/operator/snapshot`: replaces the region's state with the snapshot in the body.
pub(crate) async fn snapshot_restore(
    State(s): State<AppState>,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "missing snapshot in the request body",
        ));
    }
    let index = s
        .rpc
        .snapshot_restore(&p.region(&s.agent), body.to_vec())
        .await?;
    Ok(json(&p, &serde_json::json!({ "Index": index })))
}

/// `GET /v1/operator/scheduler/configuration`: `{SchedulerConfig, Index, KnownLeader,
/// LastContact}` in the body, as Nomad answers it, and the usual index headers.
pub(crate) async fn scheduler_get_config(
    State(s): State<AppState>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s.rpc.scheduler_get_config(&q).await?;
    let body = serde_json::json!({
        "SchedulerConfig": resp.value,
        "Index": resp.meta.index,
        "KnownLeader": resp.meta.known_leader,
        "LastContact": resp.meta.last_contact_ms,
    });
    Ok(json_query(
        &p,
        &rpc::QueryResponse {
            value: body,
            meta: resp.meta,
        },
    ))
}

/// `PUT`/`POST /v1/operator/scheduler/configuration` (`?cas=<ModifyIndex>` to check and set):
/// `{Updated, Index}`.
pub(crate) async fn scheduler_set_config(
    State(s): State<AppState>,
    p: Params,
    JsonBody(config): JsonBody<structs::SchedulerConfiguration>,
) -> Result<Response, ApiError> {
    let cas = match p.get("cas") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "Failed to parse value of \"cas\" ({v}) as an index"
            ))
        })?),
    };
    let resp = s
        .rpc
        .scheduler_set_config(&p.region(&s.agent), config, cas)
        .await?;
    Ok(json(&p, &resp))
}

#[cfg(test)]
mod tests {
    use crate::testing::{app, call, FakeRpc};
    use axum::http::{Method, StatusCode};
    use rpc::PeerRef;
    use serde_json::Value;
    use std::sync::Arc;

    #[tokio::test]
    async fn scheduler_configuration_read_set_and_check_and_set() {
        let rpc = Arc::new(FakeRpc::default());
        let app = app(&rpc, None);
        let path = "/v1/operator/scheduler/configuration";
        let r = call(&app, Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK);
        let v: Value = r.json();
        assert_eq!(v["SchedulerConfig"]["SchedulerAlgorithm"], "binpack");
        assert_eq!(
            v["SchedulerConfig"]["PreemptionConfig"]["SystemSchedulerEnabled"],
            true
        );
        assert_eq!(v["KnownLeader"], true);
        assert!(v["Index"].is_u64());
        let r = call(
            &app,
            Method::PUT,
            path,
            Some(r#"{"SchedulerAlgorithm":"spread"}"#),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let v: Value = r.json();
        assert_eq!(
            (v["Updated"].clone(), v["Index"].clone()),
            (true.into(), 1.into())
        );
        let stale = format!("{path}?cas=0");
        let r = call(&app, Method::PUT, &stale, Some("{}")).await;
        assert_eq!(r.json::<Value>()["Updated"], false);
        assert!(rpc.scheduler.lock().unwrap().spread_algorithm());
        let r = call(&app, Method::PUT, &format!("{path}?cas=x"), Some("{}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = call(&app, Method::PUT, path, Some("{not json")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("line 1"), "{}", r.text());
    }

    #[tokio::test]
    async fn raft_configuration_in_nomads_shape() {
        let rpc = Arc::new(FakeRpc::default());
        let r = call(
            &app(&rpc, None),
            Method::GET,
            "/v1/operator/raft/configuration?region=eu",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let v: Value = r.json();
        assert_eq!(v["Index"], 42);
        let s = &v["Servers"][0];
        assert_eq!(s["ID"], "11");
        assert_eq!(s["Node"], "s1.eu");
        assert_eq!(s["Address"], "127.0.0.1:4647");
        assert_eq!(s["Leader"], true);
        assert_eq!(s["Voter"], true);
        assert_eq!(s["RaftProtocol"], "3");
    }

    #[tokio::test]
    async fn remove_peer_by_id_or_address_and_rejects_neither() {
        let rpc = Arc::new(FakeRpc::default());
        let app = app(&rpc, None);
        let r = call(&app, Method::DELETE, "/v1/operator/raft/peer?id=7", None).await;
        assert_eq!(r.status, StatusCode::OK);
        let r = call(
            &app,
            Method::DELETE,
            "/v1/operator/raft/peer?address=127.0.0.3:4647",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            *rpc.removed_peers.lock().unwrap(),
            [
                PeerRef::Id("7".into()),
                PeerRef::Address("127.0.0.3:4647".into())
            ]
        );
        let r = call(&app, Method::DELETE, "/v1/operator/raft/peer", None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("?id"), "{}", r.text());
    }

    #[tokio::test]
    async fn snapshot_save_and_restore() {
        let rpc = Arc::new(FakeRpc::default());
        let app = app(&rpc, None);
        let r = call(&app, Method::GET, "/v1/operator/snapshot", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], b"CRVNSNP1 fake");
        assert_eq!(r.header("content-type"), "application/octet-stream");
        let r = call(
            &app,
            Method::PUT,
            "/v1/operator/snapshot",
            Some("CRVNSNP1 x"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json::<Value>()["Index"], 43);
        assert_eq!(*rpc.restored.lock().unwrap(), [b"CRVNSNP1 x".to_vec()]);
        let r = call(&app, Method::PUT, "/v1/operator/snapshot", None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
}

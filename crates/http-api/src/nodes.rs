//! Node endpoints: `/v1/nodes`, `/v1/node/:id` and `/v1/node/:id/allocations`.

use crate::error::{not_found_as, ApiError};
use crate::query::{json, json_query, JsonBody, Params};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Response;

/// `GET /v1/nodes` (`?prefix=`).
pub(crate) async fn list(State(s): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s.rpc.node_list(&q).await?;
    Ok(json_query(&p, &resp))
}

/// `GET /v1/node/:id` (exact ID).
pub(crate) async fn get_node(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s
        .rpc
        .node_get(&id, &q)
        .await
        .map_err(not_found_as("node not found"))?;
    Ok(json_query(&p, &resp))
}

/// `GET /v1/node/:id/allocations`: full allocations.
pub(crate) async fn allocations(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s.rpc.node_allocations(&id, &q).await?;
    Ok(json_query(&p, &resp))
}

/// `POST /v1/node/:id/eligibility` body.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EligibilityRequest {
    #[serde(rename = "NodeID", default)]
    node_id: String,
    eligibility: String,
}

/// `POST`/`PUT /v1/node/:id/eligibility`: `{"Eligibility": "eligible" | "ineligible"}`.
pub(crate) async fn eligibility(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    JsonBody(req): JsonBody<EligibilityRequest>,
) -> Result<Response, ApiError> {
    if !req.node_id.is_empty() && req.node_id != id {
        return Err(ApiError::bad_request(format!(
            "NodeID {:?} in the body does not match the path ({id:?})",
            req.node_id
        )));
    }
    let index = s
        .rpc
        .node_update_eligibility(&id, &req.eligibility)
        .await
        .map_err(not_found_as("node not found"))?;
    Ok(json(
        &p,
        &serde_json::json!({
            "EvalCreateIndex": 0,
            "EvalIDs": null,
            "Index": index,
            "NodeModifyIndex": index,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use crate::testing::{app, call, FakeRpc, INDEX};
    use axum::http::{Method, StatusCode};
    use serde_json::Value;
    use std::sync::Arc;
    use structs::{Allocation, Node, NodeListStub};

    #[tokio::test]
    async fn list_get_and_allocations_decode_with_nomad_names() {
        let rpc = Arc::new(FakeRpc::default());
        for id in ["n1", "m2"] {
            rpc.nodes
                .lock()
                .unwrap()
                .insert(id.into(), structs::mock::node(id));
        }
        let alloc = Allocation {
            id: "a1".into(),
            node_id: "n1".into(),
            ..Default::default()
        };
        rpc.allocs.lock().unwrap().insert("a1".into(), alloc);
        let app = app(&rpc, None);

        let r = call(&app, Method::GET, "/v1/nodes?prefix=n", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("X-Nomad-KnownLeader"), "true");
        assert_eq!(r.json::<Value>()[0]["SchedulingEligibility"], "eligible");
        let stubs: Vec<NodeListStub> = r.json();
        assert_eq!(
            stubs.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
            ["n1"]
        );

        let r = call(&app, Method::GET, "/v1/node/m2", None).await;
        assert_eq!(r.json::<Value>()["ID"], "m2");
        assert_eq!(r.json::<Node>().datacenter, "dc1");

        let r = call(&app, Method::GET, "/v1/node/n1/allocations", None).await;
        assert_eq!(r.header("X-Nomad-Index"), INDEX.to_string());
        assert_eq!(r.json::<Vec<Allocation>>()[0].id, "a1");

        let r = call(&app, Method::GET, "/v1/node/zz", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.text(), "node not found");
    }
}

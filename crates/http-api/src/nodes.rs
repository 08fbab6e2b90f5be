//! Node endpoints: `/v1/nodes`, `/v1/node/:id`, `/v1/node/:id/allocations`, and the
//! operator writes `/v1/node/:id/eligibility` and `/v1/node/:id/drain`.

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

/// `POST /v1/node/:id/drain` body (Nomad's `NodeUpdateDrainRequest`).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DrainRequest {
    #[serde(rename = "NodeID", default)]
    node_id: String,
    #[serde(default)]
    drain_spec: Option<structs::DrainSpec>,
    #[serde(default)]
    mark_eligible: bool,
    #[serde(default)]
    meta: std::collections::BTreeMap<String, String>,
}

/// `POST`/`PUT /v1/node/:id/drain`: a `DrainSpec` starts or changes the drain, `null` ends
/// it (`MarkEligible` makes the node eligible again).
pub(crate) async fn drain(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    JsonBody(req): JsonBody<DrainRequest>,
) -> Result<Response, ApiError> {
    if !req.node_id.is_empty() && req.node_id != id {
        return Err(ApiError::bad_request(format!(
            "NodeID {:?} in the body does not match the path ({id:?})",
            req.node_id
        )));
    }
    let resp = s
        .rpc
        .node_update_drain(
            &id,
            rpc::NodeDrainRequest {
                drain_spec: req.drain_spec,
                mark_eligible: req.mark_eligible,
                meta: req.meta,
            },
        )
        .await
        .map_err(not_found_as("node not found"))?;
    Ok(json(
        &p,
        &serde_json::json!({
            "EvalCreateIndex": resp.eval_create_index,
            "EvalIDs": resp.eval_ids,
            "Index": resp.node_modify_index,
            "NodeModifyIndex": resp.node_modify_index,
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

    #[tokio::test]
    async fn drain_takes_nomads_request_and_shows_on_the_node() {
        let rpc = Arc::new(FakeRpc::default());
        rpc.nodes
            .lock()
            .unwrap()
            .insert("n1".into(), structs::mock::node("n1"));
        let app = app(&rpc, None);
        let body = r#"{"NodeID":"n1","DrainSpec":{"Deadline":3600000000000,"IgnoreSystemJobs":true},"MarkEligible":false,"Meta":{"message":"kernel upgrade"}}"#;
        let r = call(&app, Method::POST, "/v1/node/n1/drain", Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v: Value = r.json();
        assert_eq!(v["NodeModifyIndex"], INDEX + 1);
        assert_eq!(v["EvalIDs"], serde_json::json!([]));
        let node: Value = call(&app, Method::GET, "/v1/node/n1", None).await.json();
        assert_eq!(node["Drain"], true);
        assert_eq!(node["DrainStrategy"]["Deadline"], 3_600_000_000_000i64);
        assert_eq!(node["DrainStrategy"]["IgnoreSystemJobs"], true);
        assert_eq!(node["LastDrain"]["Meta"]["message"], "kernel upgrade");
        assert_eq!(node["SchedulingEligibility"], "ineligible");

        let r = call(
            &app,
            Method::POST,
            "/v1/node/n1/drain",
            Some(r#"{"DrainSpec":null,"MarkEligible":true}"#),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let node: Value = call(&app, Method::GET, "/v1/node/n1", None).await.json();
        assert_eq!(node["DrainStrategy"], Value::Null);
        assert_eq!(node["SchedulingEligibility"], "eligible");

        for (body, want) in [
            (r#"{"NodeID":"n2","DrainSpec":null}"#, "does not match"),
            (
                r#"{"DrainSpec":{"Deadline":"1h"}}"#,
                "expected i64 at line 1",
            ),
        ] {
            let r = call(&app, Method::POST, "/v1/node/n1/drain", Some(body)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
            assert!(r.text().contains(want), "{body}: {}", r.text());
        }
        let r = call(&app, Method::POST, "/v1/node/zz/drain", Some("{}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}

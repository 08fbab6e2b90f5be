//! Allocation endpoints: `/v1/allocations`, `/v1/allocation/:id` and its `stop`.

use crate::error::{not_found_as, ApiError};
use crate::query::{json, json_query, Params};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Response;

/// `GET /v1/allocations` (`?prefix=`).
pub(crate) async fn list(State(s): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s.rpc.alloc_list(&q).await?;
    Ok(json_query(&p, &resp))
}

/// `GET /v1/allocation/:id` (exact ID).
pub(crate) async fn get_alloc(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s
        .rpc
        .alloc_get(&id, &q)
        .await
        .map_err(not_found_as("alloc not found"))?;
    Ok(json_query(&p, &resp))
}

/// `POST`/`PUT /v1/allocation/:id/stop`: `{"EvalID", "Index"}` of the evaluation that
/// replaces it.
pub(crate) async fn stop(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let resp = s
        .rpc
        .alloc_stop(&id)
        .await
        .map_err(not_found_as("alloc not found"))?;
    Ok(json(
        &p,
        &serde_json::json!({"EvalID": resp.eval_id, "Index": resp.index}),
    ))
}

#[cfg(test)]
mod tests {
    use crate::testing::{app, call, FakeRpc, INDEX};
    use axum::http::{Method, StatusCode};
    use serde_json::Value;
    use std::sync::Arc;
    use structs::{AllocListStub, Allocation};

    #[tokio::test]
    async fn list_and_get_decode_with_nomad_names() {
        let rpc = Arc::new(FakeRpc::default());
        for id in ["aa11", "bb22"] {
            let alloc = Allocation {
                id: id.into(),
                job_id: "web".into(),
                node_id: "n1".into(),
                client_status: "running".into(),
                ..Default::default()
            };
            rpc.allocs.lock().unwrap().insert(id.into(), alloc);
        }
        let app = app(&rpc, None);
        let r = call(&app, Method::GET, "/v1/allocations?prefix=aa", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("X-Nomad-Index"), INDEX.to_string());
        assert_eq!(r.json::<Value>()[0]["ClientStatus"], "running");
        let stubs: Vec<AllocListStub> = r.json();
        assert_eq!(stubs.len(), 1);
        assert_eq!(stubs[0].id, "aa11");

        let r = call(&app, Method::GET, "/v1/allocation/bb22", None).await;
        assert_eq!(r.json::<Value>()["NodeID"], "n1");
        assert_eq!(r.json::<Allocation>().id, "bb22");
        let r = call(&app, Method::GET, "/v1/allocation/zz", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.text(), "alloc not found");
    }

    #[tokio::test]
    async fn stop_answers_the_replacing_evaluation() {
        let rpc = Arc::new(FakeRpc::default());
        rpc.allocs
            .lock()
            .unwrap()
            .insert("a1".into(), Allocation::default());
        let app = app(&rpc, None);
        let a = call(&app, Method::POST, "/v1/allocation/a1/stop", None).await;
        assert_eq!(a.status, 200, "{}", a.text());
        let v: Value = a.json();
        assert_eq!(v["EvalID"], "eval-stop-a1");
        assert!(v["Index"].as_u64().unwrap() > 0);
        assert_eq!(*rpc.stopped.lock().unwrap(), ["a1"]);
        let a = call(&app, Method::PUT, "/v1/allocation/zz/stop", None).await;
        assert_eq!(a.status, 404, "{}", a.text());
        assert!(a.text().contains("alloc not found"), "{}", a.text());
    }
}

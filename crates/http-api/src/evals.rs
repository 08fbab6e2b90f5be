//! Evaluation endpoints: `/v1/evaluations` and `/v1/evaluation/:id`.

use crate::error::{not_found_as, ApiError};
use crate::query::{json_query, Params};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Response;

/// `GET /v1/evaluations` (`?prefix=`).
pub(crate) async fn list(State(s): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s.rpc.eval_list(&q).await?;
    Ok(json_query(&p, &resp))
}

/// `GET /v1/evaluation/:id` (exact ID).
pub(crate) async fn get_eval(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let q = p.query_options(&s.agent)?;
    let resp = s
        .rpc
        .eval_get(&id, &q)
        .await
        .map_err(not_found_as("eval not found"))?;
    Ok(json_query(&p, &resp))
}

#[cfg(test)]
mod tests {
    use crate::testing::{app, call, FakeRpc};
    use axum::http::{Method, StatusCode};
    use serde_json::Value;
    use std::sync::Arc;
    use structs::Evaluation;

    #[tokio::test]
    async fn list_and_get_decode_with_nomad_names() {
        let rpc = Arc::new(FakeRpc::default());
        for id in ["e1", "f2"] {
            let eval = Evaluation {
                id: id.into(),
                job_id: "web".into(),
                triggered_by: "job-register".into(),
                ..Default::default()
            };
            rpc.evals.lock().unwrap().insert(id.into(), eval);
        }
        let app = app(&rpc, None);
        let r = call(&app, Method::GET, "/v1/evaluations?prefix=f", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json::<Value>()[0]["TriggeredBy"], "job-register");
        assert_eq!(r.json::<Vec<Evaluation>>().len(), 1);
        let r = call(&app, Method::GET, "/v1/evaluation/e1", None).await;
        assert_eq!(r.json::<Value>()["JobID"], "web");
        let r = call(&app, Method::GET, "/v1/evaluation/zz", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.text(), "eval not found");
    }
}

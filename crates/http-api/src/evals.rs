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

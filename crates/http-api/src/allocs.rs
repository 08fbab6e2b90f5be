//! Allocation endpoints: `/v1/allocations` and `/v1/allocation/:id`.

use crate::error::{not_found_as, ApiError};
use crate::query::{json_query, Params};
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

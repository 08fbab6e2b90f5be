//! Node endpoints: `/v1/nodes`, `/v1/node/:id` and `/v1/node/:id/allocations`.

use crate::error::{not_found_as, ApiError};
use crate::query::{json_query, Params};
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

//! Read endpoints for allocations, nodes and evaluations.

use super::has_prefix;
use crate::Shared;
use rpc::{QueryOptions, QueryResponse, RpcError};
use state::Table;
use structs::{AllocListStub, Allocation, Evaluation, Node, NodeListStub};

pub(super) async fn list(
    shared: &Shared,
    q: &QueryOptions,
) -> Result<QueryResponse<Vec<AllocListStub>>, RpcError> {
    shared
        .blocking(q, |s| {
            let allocs = s
                .allocs()
                .filter(|a| has_prefix(&a.id, q))
                .map(|a| AllocListStub::from(a.as_ref()))
                .collect();
            Ok((allocs, s.index_of(&[Table::Allocs])))
        })
        .await
}

pub(super) async fn get(
    shared: &Shared,
    id: &str,
    q: &QueryOptions,
) -> Result<QueryResponse<Allocation>, RpcError> {
    shared
        .blocking(q, |s| {
            let alloc = s
                .alloc_by_id(id)
                .ok_or_else(|| RpcError::not_found("alloc not found"))?;
            Ok(((**alloc).clone(), s.index_of(&[Table::Allocs])))
        })
        .await
}

pub(super) async fn node_list(
    shared: &Shared,
    q: &QueryOptions,
) -> Result<QueryResponse<Vec<NodeListStub>>, RpcError> {
    shared
        .blocking(q, |s| {
            let nodes = s
                .nodes()
                .filter(|n| has_prefix(&n.id, q))
                .map(|n| NodeListStub::from(n.as_ref()))
                .collect();
            Ok((nodes, s.index_of(&[Table::Nodes])))
        })
        .await
}

pub(super) async fn node_get(
    shared: &Shared,
    id: &str,
    q: &QueryOptions,
) -> Result<QueryResponse<Node>, RpcError> {
    shared
        .blocking(q, |s| {
            let node = s
                .node_by_id(id)
                .ok_or_else(|| RpcError::not_found("node not found"))?;
            let mut node = (**node).clone();
            // The secret authenticates the client; it is never served.
            node.secret_id.clear();
            Ok((node, s.index_of(&[Table::Nodes])))
        })
        .await
}

pub(super) async fn node_allocations(
    shared: &Shared,
    id: &str,
    q: &QueryOptions,
) -> Result<QueryResponse<Vec<Allocation>>, RpcError> {
    shared
        .blocking(q, |s| {
            let allocs = s.allocs_by_node(id).iter().map(|a| (**a).clone()).collect();
            Ok((allocs, s.index_of(&[Table::Allocs])))
        })
        .await
}

pub(super) async fn eval_list(
    shared: &Shared,
    q: &QueryOptions,
) -> Result<QueryResponse<Vec<Evaluation>>, RpcError> {
    shared
        .blocking(q, |s| {
            let evals = s
                .evals()
                .filter(|e| has_prefix(&e.id, q))
                .map(|e| (**e).clone())
                .collect();
            Ok((evals, s.index_of(&[Table::Evals])))
        })
        .await
}

pub(super) async fn eval_get(
    shared: &Shared,
    id: &str,
    q: &QueryOptions,
) -> Result<QueryResponse<Evaluation>, RpcError> {
    shared
        .blocking(q, |s| {
            let eval = s
                .eval_by_id(id)
                .ok_or_else(|| RpcError::not_found("eval not found"))?;
            Ok(((**eval).clone(), s.index_of(&[Table::Evals])))
        })
        .await
}

//! Calls that only the client running an allocation can answer (its files, its tasks): asked
//! of this agent first, then of the allocation's node when this agent's client does not have
//! it, as Nomad's CLI does.

use anyhow::Context;
use api_client::{ApiClient, ApiError};

/// Runs `call` against this agent, or against the node `node_id` when this agent answers
/// `Unknown allocation`; `what` prefixes the error.
pub(crate) fn call<T>(
    c: &ApiClient,
    node_id: &str,
    what: &str,
    call: impl Fn(&ApiClient) -> Result<T, ApiError>,
) -> anyhow::Result<(ApiClient, T)> {
    match call(c) {
        Ok(v) => Ok((c.clone(), v)),
        Err(ApiError::Status {
            status: 404,
            ref body,
        }) if body.contains("Unknown allocation") => {
            let node = c.node(node_id).context("Error querying node")?.value;
            anyhow::ensure!(
                !node.http_addr.is_empty(),
                "{what}: the allocation's node has no HTTP address"
            );
            let other = ApiClient::new(&node.http_addr, None);
            let v = call(&other).with_context(|| what.to_string())?;
            Ok((other, v))
        }
        Err(e) => Err(anyhow::Error::new(e).context(what.to_string())),
    }
}

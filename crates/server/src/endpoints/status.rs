//! Status endpoints: leader and peers of a region.

use crate::Shared;
use rpc::RpcError;

pub(super) fn leader(shared: &Shared, region: &str) -> Result<String, RpcError> {
    shared.check_region(region)?;
    Ok(shared.config.rpc_addr.clone())
}

pub(super) fn peers(shared: &Shared, region: &str) -> Result<Vec<String>, RpcError> {
    shared.check_region(region)?;
    Ok(vec![shared.config.rpc_addr.clone()])
}

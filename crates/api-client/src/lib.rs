//! A typed, blocking HTTP client for Caravan's (Nomad's) `/v1` API, used by the CLI and tests.
//! Bodies are the `structs` types; errors keep the HTTP status and the server's plain-text reason.
//!
//! Owns: URLs, query parameters (`region`, `namespace`, `prefix`, blocking `index`/`wait`),
//! decoding and the `X-Nomad-Index` header. Must not: depend on server crates (it speaks HTTP
//! only) or print anything.

mod client;
mod cluster;
mod error;
mod jobs;
mod operator;
#[cfg(test)]
mod test_server;

pub use client::{ApiClient, Indexed, Query};
pub use cluster::LogsRequest;
pub use error::ApiError;
pub use operator::{
    RaftConfiguration, RaftServer, SchedulerConfigResponse, SchedulerSetConfigResponse,
};

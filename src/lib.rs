//! The `caravan` binary's library: the composition root. `agent` wires the server, client and
//! HTTP API crates into one process; `cli` holds one module per CLI subcommand and talks to agents
//! only through `api-client`.

pub mod agent;
pub mod cli;
pub mod config;

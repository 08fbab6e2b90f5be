//! Caravan's domain types: jobs, nodes, allocations, evaluations, plans, with Nomad's JSON
//! field names (`ID`, `TaskGroups`, `CreateIndex`...). These types are the HTTP API's bodies.
//!
//! Pure: no I/O, no clock, no randomness. IDs that must be generated are derived from inputs
//! (`ids::derive_uuid`) or passed in by the server.

mod alloc;
mod api;
pub mod canonicalize;
mod drain;
pub mod duration;
mod eval;
pub mod ids;
mod job;
pub mod json_map;
pub mod mock;
mod node;
mod resources;
mod scheduler_config;
mod score;
pub mod time;
pub mod validate;
mod vecmap;

pub use alloc::*;
pub use api::*;
pub use drain::*;
pub use eval::*;
pub use ids::{derive_uuid, short_id};
pub use job::*;
pub use node::*;
pub use resources::*;
pub use scheduler_config::*;
pub use score::{NodeScoreMeta, ScoreTerms};
pub use vecmap::VecMap;

/// The version Caravan reports (`caravan version`, `/v1/agent/self`, node attributes).
pub const VERSION: &str = "0.1.0";

//! Consensus for one region: openraft glue.
//!
//! - [`TypeConfig`]: what Raft entries carry ([`Payload`]: an encoded `state::Command`, or a
//!   whole-state restore), what applying them answers ([`Applied`]), and the node type
//!   ([`ServerNode`]: name and RPC address).
//! - Log storage behind openraft's `RaftLogStorage` trait, twice: [`WalLogStore`] (durable: a
//!   write-ahead log of segment files, every append `fdatasync`'d before it is acknowledged)
//!   and [`MemLogStore`] (the in-memory twin for tests). Both pass `openraft::testing::Suite`.
//! - [`StateMachine`]: applies committed entries to a `state::StateStore` that readers see
//!   through [`StateHandle`]; snapshots are images of the store ([`snapshot`]), kept in a
//!   [`SnapshotStore`] (a directory, or memory).
//! - `load`: a restart rebuilds the store from the snapshot on disk on a thread of its own
//!   while Raft already runs (the region elects meanwhile; followers lower the rebuild's
//!   priority so the leader's finishes first); applying, snapshots, the leader barrier and the
//!   server's endpoints wait for it.
//! - [`network`]: Raft RPCs between servers over the `rpc` crate's gRPC transport.
//! - `leader_watch`: calls an election as soon as a dead leader is noticed, from the most
//!   up-to-date survivor, instead of waiting for openraft's election timers.
//!
//! The server crate decides when to bootstrap, forwards to the leader and runs leader duties;
//! this crate only makes entries durable, replicated and applied.

// openraft's storage traits fix their error type (`StorageError`, over 200 bytes); helpers
// that feed them return it as is.
#![allow(clippy::result_large_err)]

mod batch;
mod command_codec;
mod leader_watch;
mod load;
mod log_mem;
pub mod network;
mod node;
pub mod snapshot;
mod state_machine;
mod types;
mod wal;

pub use log_mem::MemLogStore;
pub use node::{Leadership, Peer, RaftNode, RaftSettings, StartError, Storage, WriteError};
pub use snapshot::SnapshotStore;
pub use state_machine::{StateHandle, StateMachine};
pub use types::{
    Applied, ApplyError, ApplyErrorKind, EntryApplied, Payload, ServerNode, TypeConfig,
};
pub use wal::{StoreOpenError, WalLogStore};

/// The Raft handle of a region server.
pub type Raft = openraft::Raft<TypeConfig>;

pub use openraft;

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod load_tests;
#[cfg(test)]
mod suite_tests;
#[cfg(test)]
mod watch_tests;

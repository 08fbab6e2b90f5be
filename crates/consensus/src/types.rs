//! The openraft type configuration: entry payloads, apply results and server nodes.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Cursor;

openraft::declare_raft_types!(
    /// Caravan's Raft types.
    pub TypeConfig:
        D = Payload,
        R = EntryApplied,
        NodeId = u64,
        Node = ServerNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// What a Raft entry carries. Commands travel encoded, so the leader encodes each one once and
/// every server decodes it once, when it applies it. Writes that arrive together share one
/// entry (see `RaftNode::write`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Encoded `state::Command`s (`command_codec`), applied in order at the entry's index.
    Commands(Vec<serde_bytes::ByteBuf>),
    /// Replace the whole state with a snapshot (`operator snapshot restore`); the bytes are a
    /// [`crate::snapshot`] file.
    Restore(#[serde(with = "serde_bytes")] Vec<u8>),
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Commands(c) => write!(f, "Commands({})", c.len()),
            Payload::Restore(b) => write!(f, "Restore({} bytes)", b.len()),
        }
    }
}

/// The result of applying one entry: one [`Applied`] per command it carried.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EntryApplied {
    /// The entry's log index.
    pub index: u64,
    /// Per command, in order.
    pub results: Vec<Applied>,
}

/// The result of applying one command, returned to its writer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Applied {
    /// The entry's log index (the state index it was applied at).
    pub index: u64,
    /// The job's `JobModifyIndex` after a register or deregister.
    pub job_modify_index: u64,
    /// Why the command was rejected (the state is unchanged), if it was.
    pub error: Option<ApplyError>,
}

/// A command the state store rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyError {
    /// What kind of failure.
    pub kind: ApplyErrorKind,
    /// The store's message.
    pub message: String,
}

/// Kinds of [`ApplyError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyErrorKind {
    /// The command names a missing object.
    NotFound,
    /// A check-and-set precondition failed.
    Conflict,
    /// The entry could not be decoded or applied (a bug or a version skew).
    Invalid,
}

/// A server as Raft membership records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerNode {
    /// The server's name.
    pub name: String,
    /// Its advertised RPC address (`host:port`).
    pub rpc_addr: String,
}

impl fmt::Display for ServerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.rpc_addr)
    }
}

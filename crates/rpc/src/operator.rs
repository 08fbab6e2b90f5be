//! Types of the operator and membership calls (`operator raft`, `operator snapshot`,
//! `server members`), in Nomad's JSON.

use serde::{Deserialize, Serialize};

/// One server of the Raft configuration (`/v1/operator/raft/configuration`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftServer {
    /// Raft node ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Node name (`<name>.<region>`).
    pub node: String,
    /// RPC address.
    pub address: String,
    /// Whether it is the leader.
    pub leader: bool,
    /// Whether it votes.
    pub voter: bool,
    /// Raft protocol version.
    pub raft_protocol: String,
}

/// The Raft configuration of a region.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftConfiguration {
    /// Raft index of the configuration.
    pub index: u64,
    /// The servers.
    pub servers: Vec<RaftServer>,
}

/// What `PUT /v1/operator/scheduler/configuration` answers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SchedulerSetConfigResponse {
    /// False when a check-and-set index did not match (nothing changed).
    pub updated: bool,
    /// The Raft index of the write (or the current one when not updated).
    pub index: u64,
}

/// Which peer `operator raft remove-peer` removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRef {
    /// By Raft ID.
    Id(String),
    /// By RPC address.
    Address(String),
}

/// A server of a region as `server members` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServerMember {
    /// Server name (without the region).
    pub name: String,
    /// Raft node ID.
    pub id: String,
    /// Advertised RPC address (`host:port`).
    pub rpc_addr: String,
    /// Gossip port (reported as the member's port).
    pub serf_port: u16,
    /// `alive` when it answered just now, else `failed`.
    pub status: String,
    /// Whether it leads its region.
    pub leader: bool,
    /// Version.
    pub build: String,
    /// Datacenter.
    pub datacenter: String,
    /// Region.
    pub region: String,
    /// `bootstrap_expect`.
    pub bootstrap_expect: u32,
}

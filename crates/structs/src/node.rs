//! Client nodes: what they fingerprinted and what they have left.

use crate::{DrainMetadata, DrainStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Node status values.
pub const NODE_STATUS_INIT: &str = "initializing";
/// The node heartbeats and can run work.
pub const NODE_STATUS_READY: &str = "ready";
/// The node missed its heartbeat TTL.
pub const NODE_STATUS_DOWN: &str = "down";
/// Scheduling eligibility values.
pub const NODE_ELIGIBLE: &str = "eligible";
/// The node takes no new work.
pub const NODE_INELIGIBLE: &str = "ineligible";

/// A client node as registered with the servers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    /// Secret used by the client to authenticate its node updates; never shown in lists.
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub datacenter: String,
    pub name: String,
    #[serde(rename = "HTTPAddr")]
    pub http_addr: String,
    #[serde(rename = "TLSEnabled")]
    pub tls_enabled: bool,
    pub attributes: BTreeMap<String, String>,
    pub node_resources: NodeResources,
    pub reserved_resources: NodeReservedResources,
    pub meta: BTreeMap<String, String>,
    pub node_class: String,
    pub node_pool: String,
    pub drivers: BTreeMap<String, DriverInfo>,
    pub status: String,
    pub status_description: String,
    pub status_updated_at: i64,
    pub scheduling_eligibility: String,
    /// True while a drain runs (kept equal to `drain_strategy.is_some()` by the state store).
    pub drain: bool,
    /// The drain in progress.
    pub drain_strategy: Option<DrainStrategy>,
    /// The most recent drain, kept after it ends.
    pub last_drain: Option<DrainMetadata>,
    pub events: Vec<NodeEvent>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Node {
    /// True when the scheduler may place new work here.
    pub fn ready_for_work(&self) -> bool {
        self.status == NODE_STATUS_READY
            && self.scheduling_eligibility != NODE_INELIGIBLE
            && !self.drain
            && self.drain_strategy.is_none()
    }

    /// True while a drain runs.
    pub fn draining(&self) -> bool {
        self.drain_strategy.is_some()
    }

    /// The node's IP address for port mappings (its first network, else the attribute).
    pub fn ip(&self) -> String {
        self.node_resources
            .networks
            .first()
            .map(|n| n.ip.clone())
            .filter(|ip| !ip.is_empty())
            .or_else(|| self.attributes.get("unique.network.ip-address").cloned())
            .unwrap_or_else(|| "127.0.0.1".to_string())
    }
}

/// What a node has in total.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeResources {
    pub cpu: NodeCpuResources,
    pub memory: NodeMemoryResources,
    pub disk: NodeDiskResources,
    pub networks: Vec<NodeNetworkResource>,
    pub min_dynamic_port: i64,
    pub max_dynamic_port: i64,
}

/// Node cpu in MHz.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeCpuResources {
    pub cpu_shares: i64,
    pub total_cpu_cores: i64,
    pub reservable_cpu_cores: Vec<i64>,
}

/// Node memory in MB.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeMemoryResources {
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
}

/// Node disk in MB.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeDiskResources {
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
}

/// A fingerprinted network interface.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeNetworkResource {
    pub mode: String,
    pub device: String,
    #[serde(rename = "CIDR")]
    pub cidr: String,
    #[serde(rename = "IP")]
    pub ip: String,
}

/// What the operator reserved for the host itself (`client { reserved { ... } }`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeReservedResources {
    pub cpu: NodeCpuResources,
    pub memory: NodeMemoryResources,
    pub disk: NodeDiskResources,
    pub networks: NodeReservedNetworks,
}

/// Reserved host ports, as Nomad's comma list `"22,80,8000-8010"`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeReservedNetworks {
    pub reserved_host_ports: String,
}

/// A task driver as the node sees it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverInfo {
    pub attributes: BTreeMap<String, String>,
    pub detected: bool,
    pub healthy: bool,
    pub health_description: String,
    pub update_time: i64,
}

/// A node lifecycle event.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeEvent {
    pub message: String,
    pub subsystem: String,
    pub details: BTreeMap<String, String>,
    pub timestamp: i64,
    pub create_index: u64,
}

/// The list form of a node (`GET /v1/nodes`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeListStub {
    pub address: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    pub datacenter: String,
    pub name: String,
    pub node_class: String,
    pub node_pool: String,
    pub version: String,
    pub drain: bool,
    pub scheduling_eligibility: String,
    pub status: String,
    pub status_description: String,
    pub drivers: BTreeMap<String, DriverInfo>,
    pub last_drain: Option<DrainMetadata>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl From<&Node> for NodeListStub {
    fn from(n: &Node) -> Self {
        let os_keys = ["os.name", "os.version", "kernel.name", "nomad.version"];
        Self {
            address: n.ip(),
            id: n.id.clone(),
            attributes: n
                .attributes
                .iter()
                .filter(|(k, _)| os_keys.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            datacenter: n.datacenter.clone(),
            name: n.name.clone(),
            node_class: n.node_class.clone(),
            node_pool: n.node_pool.clone(),
            version: n
                .attributes
                .get("nomad.version")
                .cloned()
                .unwrap_or_default(),
            drain: n.drain,
            scheduling_eligibility: n.scheduling_eligibility.clone(),
            status: n.status.clone(),
            status_description: n.status_description.clone(),
            drivers: n.drivers.clone(),
            last_drain: n.last_drain.clone(),
            create_index: n.create_index,
            modify_index: n.modify_index,
        }
    }
}

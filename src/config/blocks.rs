//! The blocks of the agent configuration file, one struct per block, Nomad's key names.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `advertise {}` / `addresses {}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressesConfig {
    /// HTTP API address.
    pub http: Option<String>,
    /// RPC address.
    pub rpc: Option<String>,
    /// Gossip address.
    pub serf: Option<String>,
}

/// `ports {}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortsConfig {
    /// HTTP API port (4646).
    pub http: Option<i64>,
    /// RPC port (4647).
    pub rpc: Option<i64>,
    /// Gossip port (4648).
    pub serf: Option<i64>,
}

/// `server {}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Runs the server part.
    pub enabled: Option<bool>,
    /// Servers to wait for before bootstrapping Raft.
    pub bootstrap_expect: Option<i64>,
    /// Gossip encryption key (base64 of 16, 24 or 32 bytes).
    pub encrypt: Option<String>,
    /// Scheduler workers (CPU cores).
    pub num_schedulers: Option<i64>,
    /// Joining other servers.
    pub server_join: Option<ServerJoinConfig>,
    /// Older form of `server_join.retry_join`.
    pub retry_join: Option<Vec<String>>,
    /// Older form of `server_join.start_join`.
    pub start_join: Option<Vec<String>>,
    /// Older form of `server_join.retry_interval`.
    pub retry_interval: Option<String>,
    /// Older form of `server_join.retry_max`.
    pub retry_max: Option<i64>,
    /// Extra time before a missed heartbeat marks a node down (`10s`).
    pub heartbeat_grace: Option<String>,
    /// Smallest heartbeat TTL given to clients (`10s`).
    pub min_heartbeat_ttl: Option<String>,
    /// Server-only state directory.
    pub data_dir: Option<String>,
    /// Raft protocol version.
    pub raft_protocol: Option<i64>,
    /// Raft timing multiplier.
    pub raft_multiplier: Option<i64>,
    /// Snapshot the state after this many Raft entries (8192).
    pub raft_snapshot_threshold: Option<i64>,
    /// Raft entries kept behind a snapshot (10240).
    pub raft_trailing_logs: Option<i64>,
    /// Minimum time between snapshots (accepted; snapshots follow the threshold).
    pub raft_snapshot_interval: Option<String>,
    /// Region that owns ACL policies and namespaces.
    pub authoritative_region: Option<String>,
    /// GC thresholds (Go durations).
    pub job_gc_threshold: Option<String>,
    /// Evaluation GC threshold.
    pub eval_gc_threshold: Option<String>,
    /// Deployment GC threshold.
    pub deployment_gc_threshold: Option<String>,
    /// Node GC threshold.
    pub node_gc_threshold: Option<String>,
    /// Rejoin the cluster after leaving.
    pub rejoin_after_leave: Option<bool>,
    /// Non-voting Raft member.
    pub non_voting_server: Option<bool>,
    /// Initial scheduler configuration, kept as JSON.
    pub default_scheduler_config: Option<Value>,
}

/// `server_join {}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerJoinConfig {
    /// Addresses to join, retried until one answers.
    pub retry_join: Option<Vec<String>>,
    /// Addresses to join once at start.
    pub start_join: Option<Vec<String>>,
    /// Pause between join attempts (`30s`).
    pub retry_interval: Option<String>,
    /// Attempts before giving up (0 = forever).
    pub retry_max: Option<i64>,
}

/// `client {}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Runs the client part.
    pub enabled: Option<bool>,
    /// Server RPC addresses (`host` or `host:port`).
    pub servers: Option<Vec<String>>,
    /// Node class.
    pub node_class: Option<String>,
    /// Node pool (`default`).
    pub node_pool: Option<String>,
    /// Node metadata (`${meta.x}`).
    #[serde(default, deserialize_with = "string_map")]
    pub meta: BTreeMap<String, String>,
    /// Resources kept for the host.
    pub reserved: Option<ReservedConfig>,
    /// Driver and client options (`driver.raw_exec.enable = "1"`); values become strings.
    #[serde(default, deserialize_with = "string_map")]
    pub options: BTreeMap<String, String>,
    /// `host_volume "<name>" { path, read_only }`.
    #[serde(default)]
    pub host_volume: BTreeMap<String, HostVolumeConfig>,
    /// Interface whose address is used for ports.
    pub network_interface: Option<String>,
    /// Deprecated link speed in Mbit/s (accepted, unused).
    pub network_speed: Option<i64>,
    /// Allocation directories.
    pub alloc_dir: Option<String>,
    /// Client state directory.
    pub state_dir: Option<String>,
    /// Overrides the fingerprinted CPU MHz.
    pub cpu_total_compute: Option<i64>,
    /// Overrides the fingerprinted memory.
    pub memory_total_mb: Option<i64>,
    /// Upper bound on task kill timeouts (`30s`).
    pub max_kill_timeout: Option<String>,
    /// Client GC interval (`1m`).
    pub gc_interval: Option<String>,
    /// Allocations kept before GC (50).
    pub gc_max_allocs: Option<i64>,
    /// Drain before shutting down, kept as JSON.
    pub drain_on_shutdown: Option<Value>,
    /// `host_network "<name>" {...}`, kept as JSON.
    #[serde(default)]
    pub host_network: BTreeMap<String, Value>,
    /// Server discovery, kept as JSON.
    pub server_join: Option<ServerJoinConfig>,
}

/// `client { reserved {} }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservedConfig {
    /// MHz.
    pub cpu: Option<i64>,
    /// Cores (`"0-1"`).
    pub cores: Option<String>,
    /// MB.
    pub memory: Option<i64>,
    /// MB.
    pub disk: Option<i64>,
    /// Ports, e.g. `"22,80,8000-8100"`.
    pub reserved_ports: Option<String>,
}

impl ReservedConfig {
    /// The reserved ports as numbers (ranges expanded).
    pub fn ports(&self) -> anyhow::Result<Vec<u16>> {
        super::parse_port_list(self.reserved_ports.as_deref().unwrap_or(""))
    }
}

/// `client { host_volume "<name>" {} }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostVolumeConfig {
    /// Host path.
    pub path: Option<String>,
    /// Mount read-only.
    pub read_only: Option<bool>,
}

/// `plugin "<name>" {}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The plugin's own configuration, as written.
    pub config: Option<Value>,
    /// Extra arguments for external plugins.
    pub args: Option<Vec<String>>,
}

/// `acl {}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclConfig {
    /// Enforce ACLs.
    pub enabled: Option<bool>,
    /// Token cache TTL.
    pub token_ttl: Option<String>,
    /// Policy cache TTL.
    pub policy_ttl: Option<String>,
    /// Token for replicating ACLs from the authoritative region.
    pub replication_token: Option<String>,
}

/// `tls {}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// TLS on the HTTP API.
    pub http: Option<bool>,
    /// mTLS on RPC.
    pub rpc: Option<bool>,
    /// CA certificate.
    pub ca_file: Option<String>,
    /// Agent certificate.
    pub cert_file: Option<String>,
    /// Agent key.
    pub key_file: Option<String>,
    /// Check the server name in certificates (`server.<region>.nomad`).
    pub verify_server_hostname: Option<bool>,
    /// Require client certificates on HTTP.
    pub verify_https_client: Option<bool>,
    /// Accept plain and TLS RPC while upgrading.
    pub rpc_upgrade_mode: Option<bool>,
    /// Minimum TLS version (`tls12`).
    pub tls_min_version: Option<String>,
    /// Allowed cipher suites.
    pub tls_cipher_suites: Option<String>,
}

/// `telemetry {}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Serve `/v1/metrics?format=prometheus`.
    pub prometheus_metrics: Option<bool>,
    /// Metrics collection interval (`1s`).
    pub collection_interval: Option<String>,
    /// Per-allocation metrics.
    pub publish_allocation_metrics: Option<bool>,
    /// Per-node metrics.
    pub publish_node_metrics: Option<bool>,
    /// Leave the host name out of metric names.
    pub disable_hostname: Option<bool>,
    /// statsd sink.
    pub statsd_address: Option<String>,
    /// statsite sink.
    pub statsite_address: Option<String>,
    /// DogStatsD sink.
    pub datadog_address: Option<String>,
    /// DogStatsD tags.
    pub datadog_tags: Option<Vec<String>>,
}

/// `consul {}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsulConfig {
    /// Consul agent address.
    pub address: Option<String>,
    /// Consul token.
    pub token: Option<String>,
    /// Register the agent's own services.
    pub auto_advertise: Option<bool>,
    /// Servers find each other through Consul.
    pub server_auto_join: Option<bool>,
    /// Clients find servers through Consul.
    pub client_auto_join: Option<bool>,
    /// Name of the server service.
    pub server_service_name: Option<String>,
    /// Name of the client service.
    pub client_service_name: Option<String>,
    /// HTTPS to Consul.
    pub ssl: Option<bool>,
    /// CA for Consul.
    pub ca_file: Option<String>,
    /// Certificate for Consul.
    pub cert_file: Option<String>,
    /// Key for Consul.
    pub key_file: Option<String>,
    /// Check Consul's certificate.
    pub verify_ssl: Option<bool>,
    /// gRPC address for Connect.
    pub grpc_address: Option<String>,
}

/// `vault {}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// Vault integration on.
    pub enabled: Option<bool>,
    /// Vault address.
    pub address: Option<String>,
    /// Token (legacy workflow).
    pub token: Option<String>,
    /// Role for tokens.
    pub create_from_role: Option<String>,
    /// CA for Vault.
    pub ca_file: Option<String>,
    /// Check Vault's certificate.
    pub tls_skip_verify: Option<bool>,
    /// Default JWT auth method.
    pub jwt_auth_backend_path: Option<String>,
}

/// Accepts a map of strings, bools or numbers (JSON configs write `"driver.raw_exec.enable":
/// true`), turning every value into a string.
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: Option<BTreeMap<String, Value>> = Option::deserialize(d)?;
    raw.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Bool(b) => Ok((k, b.to_string())),
            Value::Number(n) => Ok((k, n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "{k:?} must be a string, found {other}"
            ))),
        })
        .collect()
}

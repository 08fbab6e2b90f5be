//! Turns the layered agent configuration (defaults < `-dev` < files < flags) into the settings
//! each component takes.

use super::AgentArgs;
use crate::config::AgentConfig;
use anyhow::{anyhow, Context};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Everything the agent needs, resolved.
pub(super) struct AgentSettings {
    pub(super) config: AgentConfig,
    pub(super) config_files: Vec<String>,
    pub(super) region: String,
    pub(super) datacenter: String,
    pub(super) node_name: String,
    pub(super) data_dir: PathBuf,
    pub(super) log_level: String,
    pub(super) bind: IpAddr,
    pub(super) ports: (u16, u16, u16),
    pub(super) server_enabled: bool,
    pub(super) client_enabled: bool,
    pub(super) servers: Vec<String>,
    /// `-dev`: tasks are stopped when the agent shuts down (Nomad's dev mode), not left running.
    pub(super) dev: bool,
    /// Keeps the `-dev` data dir alive; it is deleted when the agent exits.
    _dev_dir: Option<tempfile::TempDir>,
}

fn port(p: Option<i64>, default: u16, what: &str) -> anyhow::Result<u16> {
    match p {
        None => Ok(default),
        Some(p) => u16::try_from(p).map_err(|_| anyhow!("ports.{what} = {p} is not a valid port")),
    }
}

impl AgentSettings {
    pub(super) fn build(args: &AgentArgs) -> anyhow::Result<Self> {
        let mut config = if args.dev {
            AgentConfig::dev()
        } else {
            AgentConfig::default()
        };
        let mut config_files = Vec::new();
        for path in &args.config {
            config = config.merge(AgentConfig::load(path)?)?;
            config_files.push(path.display().to_string());
        }
        // Flags win over files.
        let mut flags = AgentConfig {
            region: args.region.clone(),
            datacenter: args.dc.clone(),
            name: args.node.clone(),
            bind_addr: args.bind.clone(),
            log_level: args.log_level.clone(),
            data_dir: args.data_dir.as_ref().map(|p| p.display().to_string()),
            ..AgentConfig::default()
        };
        if args.server {
            flags.server = Some(crate::config::ServerConfig {
                enabled: Some(true),
                ..Default::default()
            });
        }
        if args.client
            || !args.servers.is_empty()
            || !args.meta.is_empty()
            || args.node_class.is_some()
            || args.node_pool.is_some()
        {
            let mut meta = BTreeMap::new();
            for kv in &args.meta {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| anyhow!("-meta {kv:?}: expected key=value"))?;
                meta.insert(k.to_string(), v.to_string());
            }
            flags.client = Some(crate::config::ClientConfig {
                enabled: args.client.then_some(true),
                servers: (!args.servers.is_empty()).then(|| args.servers.clone()),
                node_class: args.node_class.clone(),
                node_pool: args.node_pool.clone(),
                meta,
                ..Default::default()
            });
        }
        config = config.merge(flags)?;
        if let Err(problems) = config.validate() {
            return Err(anyhow!(
                "invalid agent configuration:\n  * {}",
                problems.join("\n  * ")
            ));
        }
        let server_enabled = config.server_enabled();
        let client_enabled = config.client_enabled();
        if !server_enabled && !client_enabled {
            return Err(anyhow!(
                "must specify either server, client or dev mode for the agent (-server, -client or -dev)"
            ));
        }
        let ports = config.ports.clone().unwrap_or_default();
        let ports = (
            port(ports.http, 4646, "http")?,
            port(ports.rpc, 4647, "rpc")?,
            port(ports.serf, 4648, "serf")?,
        );
        let bind_text = config.bind_addr.clone().unwrap_or_else(|| "0.0.0.0".into());
        let bind: IpAddr = bind_text
            .parse()
            .with_context(|| format!("bind_addr {bind_text:?} is not an IP address"))?;
        let (data_dir, dev_dir) = match &config.data_dir {
            Some(d) => (PathBuf::from(d), None),
            None if args.dev => {
                let tmp = tempfile::Builder::new()
                    .prefix("caravan-dev-")
                    .tempdir()
                    .context("creating the -dev data dir")?;
                (tmp.path().to_path_buf(), Some(tmp))
            }
            None => {
                return Err(anyhow!(
                    "data_dir is required outside -dev mode (set data_dir or -data-dir)"
                ))
            }
        };
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let node_name = config.name.clone().unwrap_or_else(hostname);
        let servers = config
            .client
            .as_ref()
            .and_then(|c| c.servers.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|s| {
                if s.contains(':') {
                    s
                } else {
                    format!("{s}:4647")
                }
            })
            .collect();
        Ok(Self {
            region: config.region().to_string(),
            datacenter: config.datacenter().to_string(),
            log_level: config.log_level.clone().unwrap_or_else(|| "INFO".into()),
            config_files,
            node_name,
            data_dir,
            bind,
            ports,
            server_enabled,
            client_enabled,
            servers,
            config,
            dev: args.dev,
            _dev_dir: dev_dir,
        })
    }

    /// The address others reach this agent at: the advertise address for `which`, else the
    /// bind address, else (for 0.0.0.0) loopback.
    fn advertise_ip(&self, which: fn(&crate::config::AddressesConfig) -> Option<String>) -> IpAddr {
        self.config
            .advertise
            .as_ref()
            .and_then(which)
            .and_then(|a| a.split(':').next().and_then(|h| h.parse().ok()))
            .unwrap_or(if self.bind.is_unspecified() {
                IpAddr::from([127, 0, 0, 1])
            } else {
                self.bind
            })
    }

    pub(super) fn http_bind(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.ports.0)
    }
    pub(super) fn rpc_bind(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.ports.1)
    }
    pub(super) fn serf_bind(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.ports.2)
    }
    pub(super) fn http_advertise(&self) -> SocketAddr {
        SocketAddr::new(self.advertise_ip(|a| a.http.clone()), self.ports.0)
    }
    pub(super) fn rpc_advertise(&self) -> SocketAddr {
        SocketAddr::new(self.advertise_ip(|a| a.rpc.clone()), self.ports.1)
    }
    pub(super) fn serf_advertise(&self) -> SocketAddr {
        SocketAddr::new(self.advertise_ip(|a| a.serf.clone()), self.ports.2)
    }

    pub(super) fn server_config(&self) -> server::ServerConfig {
        let s = self.config.server.clone().unwrap_or_default();
        let dur = |v: Option<String>, default: Duration| {
            v.and_then(|v| structs::duration::parse_duration(&v).ok())
                .and_then(|ns| u64::try_from(ns).ok())
                .map(Duration::from_nanos)
                .unwrap_or(default)
        };
        let defaults = server::ServerConfig::default();
        server::ServerConfig {
            region: self.region.clone(),
            datacenter: self.datacenter.clone(),
            node_name: self.node_name.clone(),
            rpc_addr: self.rpc_advertise().to_string(),
            num_schedulers: s
                .num_schedulers
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(defaults.num_schedulers),
            min_heartbeat_ttl: dur(s.min_heartbeat_ttl.clone(), defaults.min_heartbeat_ttl),
            heartbeat_grace: dur(s.heartbeat_grace.clone(), defaults.heartbeat_grace),
            // -dev keeps Raft in memory, as Nomad's dev mode does.
            data_dir: match (&s.data_dir, &self._dev_dir) {
                (Some(d), _) => Some(PathBuf::from(d)),
                (None, Some(_)) => None,
                (None, None) => Some(self.data_dir.join("server")),
            },
            bootstrap_expect: s
                .bootstrap_expect
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1)
                .max(1),
            retry_join: self.retry_join(&s),
            retry_interval: dur(
                s.server_join
                    .as_ref()
                    .and_then(|j| j.retry_interval.clone())
                    .or(s.retry_interval.clone()),
                defaults.retry_interval,
            ),
            raft: raft_settings(&s),
            // Checked when the config was loaded.
            default_scheduler_config: s
                .default_scheduler_config
                .as_ref()
                .and_then(|v| crate::config::scheduler::default_scheduler_config(v).ok()),
            serf_port: self.ports.2,
            build: structs::VERSION.into(),
            ..defaults
        }
    }

    /// `server_join { retry_join, start_join }` (and their older top-level forms) as RPC
    /// addresses; a bare host gets the RPC port 4647.
    fn retry_join(&self, s: &crate::config::ServerConfig) -> Vec<String> {
        let join = s.server_join.clone().unwrap_or_default();
        let mut out: Vec<String> = Vec::new();
        for list in [
            join.retry_join,
            join.start_join,
            s.retry_join.clone(),
            s.start_join.clone(),
        ]
        .into_iter()
        .flatten()
        {
            for addr in list {
                let addr = if addr.contains(':') {
                    addr
                } else {
                    format!("{addr}:4647")
                };
                if !out.contains(&addr) {
                    out.push(addr);
                }
            }
        }
        out
    }

    pub(super) fn client_config(&self) -> client::ClientConfig {
        let c = self.config.client.clone().unwrap_or_default();
        let reserved = c.reserved.clone().unwrap_or_default();
        let mut options = c.options.clone();
        plugin_options(&self.config.plugin, &mut options);
        client::ClientConfig {
            node_name: self.node_name.clone(),
            datacenter: self.datacenter.clone(),
            region: self.region.clone(),
            node_class: c.node_class.clone().unwrap_or_default(),
            node_pool: c.node_pool.clone().unwrap_or_else(|| "default".into()),
            meta: c.meta.clone(),
            data_dir: self.data_dir.clone(),
            options,
            reserved_cpu: reserved.cpu.unwrap_or(0),
            reserved_memory_mb: reserved.memory.unwrap_or(0),
            reserved_disk_mb: reserved.disk.unwrap_or(0),
            reserved_ports: reserved.reserved_ports.clone().unwrap_or_default(),
            cpu_total_compute: c.cpu_total_compute,
            memory_total_mb: c.memory_total_mb,
            network_ip: self.http_advertise().ip().to_string(),
            network_interface: c.network_interface.clone(),
            http_addr: self.http_advertise().to_string(),
            stop_tasks_on_shutdown: self.dev,
            ..Default::default()
        }
    }

    pub(super) fn agent_info(&self, node_id: &str) -> http_api::AgentInfo {
        http_api::AgentInfo {
            region: self.region.clone(),
            datacenter: self.datacenter.clone(),
            node_name: self.node_name.clone(),
            node_id: node_id.to_string(),
            version: structs::VERSION.into(),
            revision: String::new(),
            bind_addr: self.bind.to_string(),
            http_addr: self.http_advertise(),
            rpc_addr: self.rpc_advertise(),
            serf_addr: self.serf_advertise(),
            server: self.server_enabled,
            client: self.client_enabled,
            bootstrap_expect: self
                .config
                .server
                .as_ref()
                .and_then(|s| s.bootstrap_expect)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            data_dir: self.data_dir.display().to_string(),
        }
    }
}

/// The machine's host name, Nomad's default node name.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "caravan".into())
}

/// Raft timing from `raft_multiplier` (1 = the fastest, for LANs; Nomad's scale up to 10) and
/// compaction from `raft_snapshot_threshold` / `raft_trailing_logs`.
fn raft_settings(s: &crate::config::ServerConfig) -> server::RaftSettings {
    let defaults = server::RaftSettings::default();
    let m = s
        .raft_multiplier
        .and_then(|m| u64::try_from(m).ok())
        .unwrap_or(1)
        .clamp(1, 10);
    server::RaftSettings {
        heartbeat_ms: defaults.heartbeat_ms * m,
        election_min_ms: defaults.election_min_ms * m,
        election_max_ms: defaults.election_max_ms * m,
        snapshot_threshold: s
            .raft_snapshot_threshold
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(defaults.snapshot_threshold),
        trailing_logs: s
            .raft_trailing_logs
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(defaults.trailing_logs),
    }
}

/// What `plugin` blocks set, as the client options of the same meaning: `plugin "raw_exec"
/// { config { enabled = true } }` enables raw_exec; `plugin "docker" { config {
/// allow_privileged, volumes { enabled }, endpoint } }` sets `docker.privileged.enabled`,
/// `docker.volumes.enabled` and `docker.endpoint`.
fn plugin_options(
    plugins: &BTreeMap<String, crate::config::PluginConfig>,
    options: &mut BTreeMap<String, String>,
) {
    let config_of = |name: &str| {
        plugins
            .get(name)
            .and_then(|p| serde_json::to_value(p).ok())
            .and_then(|v| v.get("config").cloned())
    };
    if let Some(c) = config_of("raw_exec") {
        if c.pointer("/enabled").and_then(|e| e.as_bool()) == Some(true) {
            options.insert("driver.raw_exec.enable".into(), "1".into());
        }
    }
    if let Some(c) = config_of("docker") {
        for (ptr, option) in [
            ("/allow_privileged", "docker.privileged.enabled"),
            ("/volumes/enabled", "docker.volumes.enabled"),
        ] {
            if let Some(on) = c.pointer(ptr).and_then(|e| e.as_bool()) {
                options.insert(option.into(), if on { "1" } else { "0" }.into());
            }
        }
        if let Some(endpoint) = c.pointer("/endpoint").and_then(|e| e.as_str()) {
            options.insert("docker.endpoint".into(), endpoint.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_blocks_set_the_driver_options() {
        let config = AgentConfig::parse(
            r#"
plugin "raw_exec" {
  config {
    enabled = true
  }
}
plugin "docker" {
  config {
    allow_privileged = true
    endpoint         = "unix:///run/docker.sock"
    volumes {
      enabled = false
    }
  }
}
"#,
            false,
        )
        .unwrap();
        let mut options = BTreeMap::new();
        plugin_options(&config.plugin, &mut options);
        assert_eq!(options["driver.raw_exec.enable"], "1");
        assert_eq!(options["docker.privileged.enabled"], "1");
        assert_eq!(options["docker.volumes.enabled"], "0");
        assert_eq!(options["docker.endpoint"], "unix:///run/docker.sock");
    }
}

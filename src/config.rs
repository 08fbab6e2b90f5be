//! The agent configuration file (`caravan agent -config=<file or dir>`), HCL or JSON, with
//! Nomad's keys. Every scalar is optional so files merge in layers (defaults < files in order
//! < flags); unknown keys are errors that name the key and the file. `validate` lists every
//! problem at once. The agent wiring converts an `AgentConfig` into the crates' own configs.

mod blocks;
pub mod scheduler;

pub use blocks::*;

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole agent configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Region of the agent (`global`).
    pub region: Option<String>,
    /// Datacenter of the agent (`dc1`).
    pub datacenter: Option<String>,
    /// Node name (the host name).
    pub name: Option<String>,
    /// State directory.
    pub data_dir: Option<String>,
    /// Address every listener binds to (`0.0.0.0`).
    pub bind_addr: Option<String>,
    /// `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` (`INFO`).
    pub log_level: Option<String>,
    /// Logs as JSON lines.
    pub log_json: Option<bool>,
    /// Log file path.
    pub log_file: Option<String>,
    /// Directory of external driver plugins.
    pub plugin_dir: Option<String>,
    /// Addresses advertised to other agents.
    pub advertise: Option<AddressesConfig>,
    /// Per-listener bind addresses (override `bind_addr`).
    pub addresses: Option<AddressesConfig>,
    /// Listener ports.
    pub ports: Option<PortsConfig>,
    /// The server part.
    pub server: Option<ServerConfig>,
    /// The client (worker) part.
    pub client: Option<ClientConfig>,
    /// `plugin "<driver>" { config { ... } }`, the config kept as JSON.
    #[serde(default)]
    pub plugin: BTreeMap<String, PluginConfig>,
    /// ACL system.
    pub acl: Option<AclConfig>,
    /// TLS for HTTP and RPC.
    pub tls: Option<TlsConfig>,
    /// Metrics.
    pub telemetry: Option<TelemetryConfig>,
    /// Consul integration (kept for compatibility; Caravan has its own catalog).
    pub consul: Option<ConsulConfig>,
    /// Vault integration (parsed, not used).
    pub vault: Option<VaultConfig>,
    /// Leave the cluster gracefully on SIGINT.
    pub leave_on_interrupt: Option<bool>,
    /// Leave the cluster gracefully on SIGTERM.
    pub leave_on_terminate: Option<bool>,
    /// Enables debug endpoints.
    pub enable_debug: Option<bool>,
    /// Never check for updates (Caravan never does; accepted for compatibility).
    pub disable_update_check: Option<bool>,
    /// Logs to syslog.
    pub enable_syslog: Option<bool>,
}

impl AgentConfig {
    /// Nomad's `-dev` agent: server and client in one, region `global`, datacenter `dc1`,
    /// loopback, ports 4646/4647/4648, `bootstrap_expect = 1`, raw_exec enabled, DEBUG logs.
    pub fn dev() -> Self {
        AgentConfig {
            region: Some("global".into()),
            datacenter: Some("dc1".into()),
            bind_addr: Some("127.0.0.1".into()),
            log_level: Some("DEBUG".into()),
            ports: Some(PortsConfig {
                http: Some(4646),
                rpc: Some(4647),
                serf: Some(4648),
            }),
            server: Some(ServerConfig {
                enabled: Some(true),
                bootstrap_expect: Some(1),
                ..ServerConfig::default()
            }),
            client: Some(ClientConfig {
                enabled: Some(true),
                options: [("driver.raw_exec.enable".to_string(), "1".to_string())].into(),
                ..ClientConfig::default()
            }),
            ..AgentConfig::default()
        }
    }

    /// Loads a file (HCL, or JSON by its `.json` extension or a leading `{`), or every `*.hcl`
    /// and `*.json` file of a directory merged in lexical order.
    pub fn load(path: &Path) -> anyhow::Result<AgentConfig> {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read config directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "hcl" || e == "json"))
                .collect();
            files.sort();
            let mut config = AgentConfig::default();
            for f in files {
                config = config.merge(Self::load_file(&f)?)?;
            }
            Ok(config)
        } else {
            Self::load_file(path)
        }
    }

    fn load_file(path: &Path) -> anyhow::Result<AgentConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let json =
            path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
        Self::parse(&text, json).map_err(|e| {
            let msg = e.to_string();
            match unknown_key_line(&msg, &text) {
                Some(line) => anyhow!("{}:{line}: {msg}", path.display()),
                None => anyhow!("{}: {msg}", path.display()),
            }
        })
    }

    /// Parses one configuration text, HCL or JSON.
    pub fn parse(text: &str, json: bool) -> anyhow::Result<AgentConfig> {
        let value: Value = if json {
            serde_json::from_str(text)
                .map_err(|e| anyhow!("line {}, column {}: {e}", e.line(), e.column()))?
        } else {
            let body: hcl::Value =
                hcl::from_str(text).map_err(|e| anyhow!("{}", e.to_string().replace('\n', " ")))?;
            serde_json::to_value(body)?
        };
        serde_json::from_value(value).map_err(|e| anyhow!("{e}"))
    }

    /// Layers `other` over `self`: every value `other` sets wins; maps merge key by key.
    pub fn merge(self, other: AgentConfig) -> anyhow::Result<AgentConfig> {
        fn deep(base: &mut Value, over: Value) {
            match (base, over) {
                (_, Value::Null) => {}
                (Value::Object(b), Value::Object(o)) => {
                    for (k, v) in o {
                        deep(b.entry(k).or_insert(Value::Null), v);
                    }
                }
                (slot, v) => *slot = v,
            }
        }
        let mut base = serde_json::to_value(self)?;
        deep(&mut base, serde_json::to_value(other)?);
        Ok(serde_json::from_value(base)?)
    }

    /// Every problem with the configuration, or `Ok`.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        let server_on = self.server_enabled();
        let client_on = self.client_enabled();
        if !server_on && !client_on {
            errs.push("at least one of server.enabled or client.enabled must be true".into());
        }
        for (what, v) in [("region", &self.region), ("datacenter", &self.datacenter)] {
            if v.as_deref()
                .is_some_and(|s| s.is_empty() || s.contains(char::is_whitespace))
            {
                errs.push(format!("{what} must be a non-empty name without spaces"));
            }
        }
        if let Some(level) = &self.log_level {
            if !["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF"]
                .contains(&level.to_uppercase().as_str())
            {
                errs.push(format!(
                    "log_level {level:?} is not one of TRACE, DEBUG, INFO, WARN, ERROR, OFF"
                ));
            }
        }
        if let Some(p) = &self.ports {
            for (what, port) in [
                ("ports.http", p.http),
                ("ports.rpc", p.rpc),
                ("ports.serf", p.serf),
            ] {
                if port.is_some_and(|n| !(1..=65535).contains(&n)) {
                    errs.push(format!("{what} must be between 1 and 65535"));
                }
            }
        }
        if let Some(s) = &self.server {
            if server_on && s.bootstrap_expect.is_some_and(|n| n < 1) {
                errs.push("server.bootstrap_expect must be 1 or more".into());
            }
            if s.num_schedulers.is_some_and(|n| n < 0) {
                errs.push("server.num_schedulers must not be negative".into());
            }
            if let Some(Err(e)) = s
                .default_scheduler_config
                .as_ref()
                .map(scheduler::default_scheduler_config)
            {
                errs.push(e);
            }
            if let Some(key) = &s.encrypt {
                match base64_len(key) {
                    Some(16 | 24 | 32) => {}
                    _ => {
                        errs.push("server.encrypt must be base64 of a 16, 24 or 32 byte key".into())
                    }
                }
            }
            let join = s.server_join.as_ref();
            let durations = [
                ("server.heartbeat_grace", &s.heartbeat_grace),
                ("server.min_heartbeat_ttl", &s.min_heartbeat_ttl),
                ("server.retry_interval", &s.retry_interval),
                (
                    "server.server_join.retry_interval",
                    &join.and_then(|j| j.retry_interval.clone()),
                ),
                ("server.job_gc_threshold", &s.job_gc_threshold),
                ("server.eval_gc_threshold", &s.eval_gc_threshold),
            ];
            for (what, d) in durations {
                if let Some(d) = d {
                    if let Err(e) = structs::duration::parse_duration(d) {
                        errs.push(format!("{what}: {e}"));
                    }
                }
            }
        }
        if let Some(c) = &self.client {
            if let Some(r) = &c.reserved {
                if let Err(e) = r.ports() {
                    errs.push(format!("client.reserved.reserved_ports: {e}"));
                }
                if [r.cpu, r.memory, r.disk]
                    .iter()
                    .any(|v| v.is_some_and(|n| n < 0))
                {
                    errs.push("client.reserved values must not be negative".into());
                }
            }
            for (name, v) in &c.host_volume {
                if v.path.as_deref().is_none_or(|p| !p.starts_with('/')) {
                    errs.push(format!(
                        "client.host_volume {name:?} needs an absolute path"
                    ));
                }
            }
            if client_on
                && !server_on
                && c.servers.as_ref().is_none_or(Vec::is_empty)
                && c.server_join.is_none()
            {
                errs.push("client.servers (or client.server_join) is required when the agent is not also a server".into());
            }
        }
        if let Some(t) = &self.tls {
            if (t.http == Some(true) || t.rpc == Some(true))
                && (t.cert_file.is_none() || t.key_file.is_none())
            {
                errs.push(
                    "tls.cert_file and tls.key_file are required when tls.http or tls.rpc is on"
                        .into(),
                );
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    /// The region (`global` when unset).
    pub fn region(&self) -> &str {
        self.region.as_deref().unwrap_or("global")
    }

    /// The datacenter (`dc1` when unset).
    pub fn datacenter(&self) -> &str {
        self.datacenter.as_deref().unwrap_or("dc1")
    }

    /// True when `server.enabled`.
    pub fn server_enabled(&self) -> bool {
        self.server
            .as_ref()
            .and_then(|s| s.enabled)
            .unwrap_or(false)
    }

    /// True when `client.enabled`.
    pub fn client_enabled(&self) -> bool {
        self.client
            .as_ref()
            .and_then(|c| c.enabled)
            .unwrap_or(false)
    }

    /// Servers to join: `server_join.retry_join` plus the older `retry_join`.
    pub fn retry_join(&self) -> Vec<String> {
        let Some(s) = &self.server else {
            return Vec::new();
        };
        let mut out = s
            .server_join
            .as_ref()
            .and_then(|j| j.retry_join.clone())
            .unwrap_or_default();
        out.extend(s.retry_join.clone().unwrap_or_default());
        out
    }
}

/// `"22,80,8000-8100"` as a list of ports.
fn parse_port_list(spec: &str) -> anyhow::Result<Vec<u16>> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parse = |s: &str| {
            s.trim()
                .parse::<u16>()
                .map_err(|_| anyhow!("invalid port {s:?}"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse(a)?, parse(b)?);
                if a > b {
                    bail!("invalid port range {part:?}");
                }
                out.extend(a..=b);
            }
            None => out.push(parse(part)?),
        }
    }
    Ok(out)
}

/// The decoded length of standard base64 text, when it is valid.
fn base64_len(s: &str) -> Option<usize> {
    let body = s.trim_end_matches('=');
    let padding = s.len() - body.len();
    let valid = s.len().is_multiple_of(4)
        && padding <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    valid.then(|| s.len() / 4 * 3 - padding)
}

/// The first line of `text` that sets the key an "unknown field" error names.
fn unknown_key_line(msg: &str, text: &str) -> Option<usize> {
    let key = msg.split("unknown field `").nth(1)?.split('`').next()?;
    text.lines()
        .position(|l| {
            let l = l.trim_start().trim_start_matches('"');
            l.strip_prefix(key).is_some_and(|rest| {
                rest.trim_start()
                    .trim_start_matches('"')
                    .trim_start()
                    .starts_with(['=', '{', ':', '"'])
            })
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/agent-configs");

    fn fixture(name: &str) -> AgentConfig {
        let c = AgentConfig::load(&Path::new(FIXTURES).join(name)).unwrap();
        c.validate().unwrap_or_else(|e| panic!("{name}: {e:#?}"));
        c
    }

    #[test]
    fn server_eu_hcl() {
        let c = fixture("server-eu.hcl");
        assert_eq!((c.region(), c.datacenter()), ("eu", "eu-west-1a"));
        assert_eq!(c.name.as_deref(), Some("eu-server-1"));
        assert_eq!(c.bind_addr.as_deref(), Some("0.0.0.0"));
        assert_eq!(
            c.advertise.as_ref().unwrap().rpc.as_deref(),
            Some("10.0.1.10")
        );
        assert_eq!(c.ports.as_ref().unwrap().serf, Some(4648));
        let s = c.server.as_ref().unwrap();
        assert_eq!((s.enabled, s.bootstrap_expect), (Some(true), Some(3)));
        assert_eq!(
            s.encrypt.as_deref(),
            Some("Ixw3aBqu9rPMLqCfhV/Nt3+ybd3P4Ci6/1lQ9wAe5vs=")
        );
        let j = s.server_join.as_ref().unwrap();
        assert_eq!(
            c.retry_join(),
            vec!["10.0.1.11", "10.0.1.12", "10.1.1.10:4648"]
        );
        assert_eq!(
            (j.retry_interval.as_deref(), j.retry_max),
            (Some("15s"), Some(0))
        );
        assert_eq!(c.acl.as_ref().unwrap().enabled, Some(true));
        let t = c.tls.as_ref().unwrap();
        assert_eq!(
            (t.http, t.rpc, t.ca_file.as_deref()),
            (Some(true), Some(true), Some("/etc/caravan/ca.pem"))
        );
        assert_eq!(c.telemetry.as_ref().unwrap().prometheus_metrics, Some(true));
        assert!(c.server_enabled() && !c.client_enabled());
    }

    #[test]
    fn client_eu_hcl() {
        let c = fixture("client-eu.hcl");
        let cl = c.client.as_ref().unwrap();
        assert_eq!(cl.servers.as_ref().unwrap().len(), 3);
        assert_eq!(
            (cl.node_class.as_deref(), cl.node_pool.as_deref()),
            (Some("web"), Some("default"))
        );
        assert_eq!(cl.meta.get("rack").map(String::as_str), Some("r12"));
        let r = cl.reserved.as_ref().unwrap();
        assert_eq!((r.cpu, r.memory), (Some(500), Some(512)));
        assert_eq!(r.ports().unwrap(), vec![22, 80]);
        assert_eq!(
            cl.options.get("driver.raw_exec.enable").map(String::as_str),
            Some("1")
        );
        let hv = &cl.host_volume["pgdata"];
        assert_eq!(
            (hv.path.as_deref(), hv.read_only),
            (Some("/srv/pgdata"), Some(false))
        );
        let docker = c.plugin["docker"].config.clone().unwrap();
        assert_eq!(docker["allow_privileged"], Value::Bool(false));
        assert_eq!(docker["volumes"]["enabled"], Value::Bool(true));
    }

    #[test]
    fn seed_json_configs() {
        let c = fixture("seeds-client.json");
        assert_eq!(
            (c.name.as_deref(), c.datacenter()),
            (Some("i-0f5e4d3c2b1a"), "eu-west-1b")
        );
        let cl = c.client.as_ref().unwrap();
        assert_eq!(
            cl.options.get("driver.raw_exec.enable").map(String::as_str),
            Some("true")
        );
        assert_eq!(cl.servers.clone().unwrap(), vec!["10.0.1.10", "10.0.2.15"]);
        assert_eq!(cl.network_speed, Some(100));

        let s = fixture("seeds-server.json");
        assert_eq!(s.server.as_ref().unwrap().bootstrap_expect, Some(2));
        assert_eq!(s.retry_join(), vec!["10.0.2.15"]);
        assert_eq!(s.data_dir.as_deref(), Some("/opt/nomad"));
    }

    #[test]
    fn directory_loads_merge_in_lexical_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.hcl"),
            "region = \"eu\"\nclient {\n  enabled = true\n  meta {\n    a = \"1\"\n  }\n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.json"),
            r#"{"region": "us", "client": {"meta": {"b": "2"}}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a config").unwrap();
        let c = AgentConfig::load(dir.path()).unwrap();
        assert_eq!(c.region(), "us");
        let cl = c.client.unwrap();
        assert_eq!(cl.enabled, Some(true));
        assert_eq!(cl.meta.len(), 2);
    }

    #[test]
    fn unknown_keys_name_the_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.hcl");
        std::fs::write(
            &f,
            "region = \"eu\"\nserver {\n  enabled = true\n  bootstrap_expcet = 3\n}\n",
        )
        .unwrap();
        let err = AgentConfig::load(&f).unwrap_err().to_string();
        assert!(err.contains("bad.hcl:4:"), "{err}");
        assert!(err.contains("unknown field `bootstrap_expcet`"), "{err}");
        let j = dir.path().join("bad.json");
        std::fs::write(&j, "{\n  \"colour\": \"blue\"\n}").unwrap();
        let err = AgentConfig::load(&j).unwrap_err().to_string();
        assert!(
            err.contains("bad.json:2:") && err.contains("`colour`"),
            "{err}"
        );
        std::fs::write(&j, "{ \"region\": ").unwrap();
        assert!(AgentConfig::load(&j).is_err());
    }

    #[test]
    fn dev_defaults_and_merge() {
        let dev = AgentConfig::dev();
        assert_eq!(dev.validate(), Ok(()));
        assert_eq!(
            (dev.region(), dev.datacenter(), dev.bind_addr.as_deref()),
            ("global", "dc1", Some("127.0.0.1"))
        );
        assert_eq!(dev.server.as_ref().unwrap().bootstrap_expect, Some(1));
        assert_eq!(
            dev.client.as_ref().unwrap().options["driver.raw_exec.enable"],
            "1"
        );
        assert_eq!(dev.log_level.as_deref(), Some("DEBUG"));
        let over =
            AgentConfig::parse("region = \"eu\"\nports {\n  http = 5646\n}\n", false).unwrap();
        let merged = dev.clone().merge(over).unwrap();
        assert_eq!(merged.region(), "eu");
        let ports = merged.ports.as_ref().unwrap();
        assert_eq!((ports.http, ports.rpc), (Some(5646), Some(4647)));
        assert_eq!(
            merged.clone().merge(AgentConfig::default()).unwrap(),
            merged
        );
    }

    #[test]
    fn validate_lists_every_problem() {
        let c = AgentConfig::parse(
            r#"{"log_level": "LOUD", "ports": {"http": 70000},
                "server": {"enabled": false, "encrypt": "short", "heartbeat_grace": "soon"},
                "client": {"reserved": {"reserved_ports": "80-70"}},
                "tls": {"http": true}}"#,
            true,
        )
        .unwrap();
        let errs = c.validate().unwrap_err();
        for needle in [
            "at least one of",
            "log_level",
            "ports.http",
            "server.encrypt",
            "heartbeat_grace",
            "reserved_ports",
            "tls.cert_file",
        ] {
            assert!(
                errs.iter().any(|e| e.contains(needle)),
                "{needle} missing from {errs:#?}"
            );
        }
    }

    #[test]
    fn port_lists_and_base64() {
        assert_eq!(
            parse_port_list("22, 80,8000-8002").unwrap(),
            vec![22, 80, 8000, 8001, 8002]
        );
        assert!(parse_port_list("x").is_err());
        assert_eq!(
            base64_len("Ixw3aBqu9rPMLqCfhV/Nt3+ybd3P4Ci6/1lQ9wAe5vs="),
            Some(32)
        );
        assert_eq!(base64_len("abc"), None);
    }
}

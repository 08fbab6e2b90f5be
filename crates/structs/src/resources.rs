//! Resources asked for by tasks, and constraints on where they run.

use crate::NetworkResource;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Task `resources` block. Defaults: cpu 100 MHz, memory 300 MB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Resources {
    #[serde(rename = "CPU")]
    pub cpu: i64,
    pub cores: i64,
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
    #[serde(rename = "MemoryMaxMB")]
    pub memory_max_mb: i64,
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
    /// Old-style task networks (`resources { network { ... } }`).
    pub networks: Vec<NetworkResource>,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            cpu: 100,
            cores: 0,
            memory_mb: 300,
            memory_max_mb: 0,
            disk_mb: 0,
            networks: Vec::new(),
        }
    }
}

/// `constraint` block: `LTarget Operand RTarget`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Constraint {
    #[serde(rename = "LTarget")]
    pub l_target: String,
    #[serde(rename = "RTarget")]
    pub r_target: String,
    pub operand: String,
}

impl fmt::Display for Constraint {
    /// Nomad's form, used as the key of `ConstraintFiltered`: `${attr.kernel.name} = linux`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operand.as_str() {
            "distinct_hosts" => f.write_str("distinct_hosts"),
            _ => write!(f, "{} {} {}", self.l_target, self.operand, self.r_target),
        }
    }
}

/// `service` block at group or task level.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Service {
    pub name: String,
    pub task_name: String,
    pub port_label: String,
    pub address_mode: String,
    pub address: String,
    pub tags: Vec<String>,
    pub canary_tags: Vec<String>,
    pub meta: std::collections::BTreeMap<String, String>,
    pub provider: String,
    pub on_update: String,
    pub enable_tag_override: bool,
    pub checks: Vec<ServiceCheck>,
    pub check_restart: Option<CheckRestart>,
}

/// `check` block inside a service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceCheck {
    pub name: String,
    #[serde(rename = "Type")]
    pub check_type: String,
    pub command: String,
    pub args: Vec<String>,
    pub path: String,
    pub protocol: String,
    pub port_label: String,
    pub address_mode: String,
    pub interval: i64,
    pub timeout: i64,
    pub method: String,
    pub body: String,
    pub header: std::collections::BTreeMap<String, Vec<String>>,
    pub initial_status: String,
    pub success_before_passing: i64,
    pub failures_before_critical: i64,
    #[serde(rename = "TaskName")]
    pub task_name: String,
    #[serde(rename = "GRPCService")]
    pub grpc_service: String,
    #[serde(rename = "GRPCUseTLS")]
    pub grpc_use_tls: bool,
    #[serde(rename = "TLSSkipVerify")]
    pub tls_skip_verify: bool,
    pub check_restart: Option<CheckRestart>,
}

/// `check_restart` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CheckRestart {
    pub limit: i64,
    pub grace: i64,
    pub ignore_warnings: bool,
}

//! The job specification: Job, TaskGroup, Task and the blocks inside them, with Nomad's JSON
//! field names. Durations are integer nanoseconds, memory MB, cpu MHz, as in Nomad's API.

use crate::{Constraint, Resources, Service};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One second in nanoseconds, the unit of every duration field.
pub const SECOND: i64 = 1_000_000_000;

/// Job types.
pub const JOB_TYPE_SERVICE: &str = "service";
/// A batch job runs to completion.
pub const JOB_TYPE_BATCH: &str = "batch";
/// A system job runs on every eligible node.
pub const JOB_TYPE_SYSTEM: &str = "system";
/// A sysbatch job runs to completion on every eligible node.
pub const JOB_TYPE_SYSBATCH: &str = "sysbatch";

/// Job status values.
pub const JOB_STATUS_PENDING: &str = "pending";
/// At least one allocation is running or pending.
pub const JOB_STATUS_RUNNING: &str = "running";
/// Stopped, or every allocation terminal.
pub const JOB_STATUS_DEAD: &str = "dead";

/// A Nomad job. The server sets the index, version and status fields.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Job {
    pub region: String,
    pub namespace: String,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ParentID")]
    pub parent_id: String,
    pub name: String,
    #[serde(rename = "Type")]
    pub job_type: String,
    pub priority: i64,
    pub all_at_once: bool,
    pub datacenters: Vec<String>,
    pub node_pool: String,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    pub spreads: Vec<Spread>,
    pub task_groups: Vec<TaskGroup>,
    pub update: Option<UpdateStrategy>,
    pub periodic: Option<PeriodicConfig>,
    pub parameterized_job: Option<ParameterizedJobConfig>,
    pub dispatched: bool,
    pub meta: BTreeMap<String, String>,
    pub stop: bool,
    pub status: String,
    pub status_description: String,
    pub stable: bool,
    pub version: u64,
    pub submit_time: i64,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
}

impl Job {
    /// The group with this name.
    pub fn group(&self, name: &str) -> Option<&TaskGroup> {
        self.task_groups.iter().find(|g| g.name == name)
    }

    /// True for batch and sysbatch jobs, whose allocations run to completion.
    pub fn is_batch(&self) -> bool {
        self.job_type == JOB_TYPE_BATCH || self.job_type == JOB_TYPE_SYSBATCH
    }

    /// The sum of every group's count.
    pub fn total_count(&self) -> i64 {
        self.task_groups.iter().map(|g| g.count.max(0)).sum()
    }

    /// True when the user-specified parts of two jobs are equal (ignoring what the server sets:
    /// indexes, version, status, submit time, stability).
    pub fn spec_equal(&self, other: &Job) -> bool {
        let strip = |j: &Job| {
            let mut j = j.clone();
            j.status.clear();
            j.status_description.clear();
            j.stable = false;
            j.version = 0;
            j.submit_time = 0;
            j.create_index = 0;
            j.modify_index = 0;
            j.job_modify_index = 0;
            j
        };
        strip(self) == strip(other)
    }
}

/// A group of tasks placed together on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskGroup {
    pub name: String,
    pub count: i64,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    pub spreads: Vec<Spread>,
    pub tasks: Vec<Task>,
    pub restart_policy: Option<RestartPolicy>,
    pub reschedule_policy: Option<ReschedulePolicy>,
    pub ephemeral_disk: Option<EphemeralDisk>,
    pub update: Option<UpdateStrategy>,
    pub migrate: Option<MigrateStrategy>,
    pub networks: Vec<NetworkResource>,
    pub services: Vec<Service>,
    pub volumes: BTreeMap<String, VolumeRequest>,
    pub scaling: Option<ScalingPolicy>,
    pub meta: BTreeMap<String, String>,
    pub shutdown_delay: Option<i64>,
}

impl Default for TaskGroup {
    fn default() -> Self {
        Self {
            name: String::new(),
            count: 1,
            constraints: Vec::new(),
            affinities: Vec::new(),
            spreads: Vec::new(),
            tasks: Vec::new(),
            restart_policy: None,
            reschedule_policy: None,
            ephemeral_disk: None,
            update: None,
            migrate: None,
            networks: Vec::new(),
            services: Vec::new(),
            volumes: BTreeMap::new(),
            scaling: None,
            meta: BTreeMap::new(),
            shutdown_delay: None,
        }
    }
}

impl TaskGroup {
    /// The task with this name.
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// Every port the group asks for: the group network's and (old style) each task's.
    pub fn all_networks(&self) -> impl Iterator<Item = &NetworkResource> {
        self.networks
            .iter()
            .chain(self.tasks.iter().flat_map(|t| t.resources.networks.iter()))
    }
}

/// One task: a process run by a driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Task {
    pub name: String,
    pub driver: String,
    pub user: String,
    /// Driver configuration, keys as the user wrote them (`command`, `args`, `image`...).
    #[serde(with = "crate::json_map")]
    pub config: Map<String, Value>,
    pub env: BTreeMap<String, String>,
    pub services: Vec<Service>,
    pub resources: Resources,
    pub meta: BTreeMap<String, String>,
    pub kill_timeout: i64,
    pub kill_signal: String,
    pub log_config: Option<LogConfig>,
    pub artifacts: Vec<TaskArtifact>,
    pub templates: Vec<Template>,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    pub lifecycle: Option<TaskLifecycle>,
    pub leader: bool,
    pub shutdown_delay: i64,
    pub dispatch_payload: Option<DispatchPayloadConfig>,
    pub volume_mounts: Vec<VolumeMount>,
    pub kind: String,
}

impl Default for Task {
    fn default() -> Self {
        Self {
            name: String::new(),
            driver: String::new(),
            user: String::new(),
            config: Map::new(),
            env: BTreeMap::new(),
            services: Vec::new(),
            resources: Resources::default(),
            meta: BTreeMap::new(),
            kill_timeout: 5 * SECOND,
            kill_signal: String::new(),
            log_config: None,
            artifacts: Vec::new(),
            templates: Vec::new(),
            constraints: Vec::new(),
            affinities: Vec::new(),
            lifecycle: None,
            leader: false,
            shutdown_delay: 0,
            dispatch_payload: None,
            volume_mounts: Vec::new(),
            kind: String::new(),
        }
    }
}

/// A group network (`network` block) or an old-style task network inside `resources`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkResource {
    pub mode: String,
    pub device: String,
    #[serde(rename = "CIDR")]
    pub cidr: String,
    #[serde(rename = "IP")]
    pub ip: String,
    pub hostname: String,
    #[serde(rename = "MBits")]
    pub mbits: i64,
    pub reserved_ports: Vec<Port>,
    pub dynamic_ports: Vec<Port>,
    #[serde(rename = "DNS")]
    pub dns: Option<DnsConfig>,
}

/// A port label: static (`ReservedPorts`, `Value` set) or dynamic (`DynamicPorts`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Port {
    pub label: String,
    pub value: i64,
    pub to: i64,
    pub host_network: String,
}

/// `network { dns { ... } }`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// `affinity` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Affinity {
    #[serde(rename = "LTarget")]
    pub l_target: String,
    #[serde(rename = "RTarget")]
    pub r_target: String,
    pub operand: String,
    pub weight: i64,
}

/// `spread` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Spread {
    pub attribute: String,
    pub weight: i64,
    pub spread_target: Vec<SpreadTarget>,
}

/// `spread { target "v" { percent } }`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SpreadTarget {
    pub value: String,
    pub percent: i64,
}

/// `restart` block. Defaults depend on the job type (see `canonicalize`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub attempts: i64,
    pub interval: i64,
    pub delay: i64,
    pub mode: String,
    pub render_templates: bool,
}

/// `reschedule` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReschedulePolicy {
    pub attempts: i64,
    pub interval: i64,
    pub delay: i64,
    pub delay_function: String,
    pub max_delay: i64,
    pub unlimited: bool,
}

/// `ephemeral_disk` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EphemeralDisk {
    #[serde(rename = "SizeMB")]
    pub size_mb: i64,
    pub sticky: bool,
    pub migrate: bool,
}

impl Default for EphemeralDisk {
    fn default() -> Self {
        Self {
            size_mb: 300,
            sticky: false,
            migrate: false,
        }
    }
}

/// `update` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateStrategy {
    pub stagger: i64,
    pub max_parallel: i64,
    pub health_check: String,
    pub min_healthy_time: i64,
    pub healthy_deadline: i64,
    pub progress_deadline: i64,
    pub auto_revert: bool,
    pub auto_promote: bool,
    pub canary: i64,
}

/// `migrate` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MigrateStrategy {
    pub max_parallel: i64,
    pub health_check: String,
    pub min_healthy_time: i64,
    pub healthy_deadline: i64,
}

/// `periodic` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PeriodicConfig {
    pub enabled: bool,
    pub specs: Vec<String>,
    pub spec: String,
    pub spec_type: String,
    pub prohibit_overlap: bool,
    pub time_zone: String,
}

/// `parameterized` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ParameterizedJobConfig {
    pub payload: String,
    pub meta_required: Vec<String>,
    pub meta_optional: Vec<String>,
}

/// `logs` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    pub max_files: i64,
    #[serde(rename = "MaxFileSizeMB")]
    pub max_file_size_mb: i64,
    pub disabled: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            max_files: 10,
            max_file_size_mb: 10,
            disabled: false,
        }
    }
}

/// `artifact` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskArtifact {
    pub getter_source: String,
    pub getter_options: BTreeMap<String, String>,
    pub getter_headers: BTreeMap<String, String>,
    pub getter_mode: String,
    pub relative_dest: String,
}

/// `template` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Template {
    pub source_path: String,
    pub dest_path: String,
    pub embedded_tmpl: String,
    pub change_mode: String,
    pub change_signal: String,
    pub splay: i64,
    pub perms: String,
    pub left_delim: String,
    pub right_delim: String,
    pub envvars: bool,
}

/// `lifecycle` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskLifecycle {
    pub hook: String,
    pub sidecar: bool,
}

/// `dispatch_payload` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DispatchPayloadConfig {
    pub file: String,
}

/// Group `volume` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeRequest {
    pub name: String,
    #[serde(rename = "Type")]
    pub volume_type: String,
    pub source: String,
    pub read_only: bool,
    pub access_mode: String,
    pub attachment_mode: String,
    pub per_alloc: bool,
}

/// Task `volume_mount` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeMount {
    pub volume: String,
    pub destination: String,
    pub read_only: bool,
    pub propagation_mode: String,
}

/// Group `scaling` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ScalingPolicy {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub enabled: bool,
    #[serde(with = "crate::json_map")]
    pub policy: Map<String, Value>,
}
